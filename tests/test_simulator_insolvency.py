"""The simulator reports the epochs whose snapshot the prover refuses, and
its chart shows reserves as the snapshots state them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_epoch_support import KEY_HEX

from zksolv.cli.main import cli
from zksolv.engine import output
from zksolv.engine.scenario import builtin_names, load_scenario
from zksolv.engine.simulator import Simulation
from zksolv.prover.shortfall import asset_terms, shortfalls
from zksolv.snapshot import check_snapshot


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("sim") / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "cascade", "--accounts", "300",
                                   "--epochs", "12", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_summary_names_insolvent_epochs(cascade: tuple[Path, str]) -> None:
    out, text = cascade
    m = json.loads((out / "metrics.json").read_text())
    run = m["run"]
    rows = m["epochs"]
    assert run["insolvent_epochs"] == [r["epoch"] for r in rows if r["insolvent"]]
    assert run["insolvent_epochs"], "the cascade scenario collapses within 12 epochs"
    assert run["first_insolvent_epoch"] == run["insolvent_epochs"][0]
    peak = max(r["uncovered_bad_debt_usd"] for r in rows)
    assert peak > 0 and run["peak_uncovered_bad_debt_usd"] == peak
    assert rows[run["peak_uncovered_bad_debt_epoch"] - 1]["uncovered_bad_debt_usd"] == peak
    assert f"first {run['first_insolvent_epoch']} (prove refuses them, exit 3)" in text
    assert "peak" in text and "at epoch" in text


def test_engine_judges_solvency_as_the_prover_does(cascade: tuple[Path, str]) -> None:
    """Differential: for every epoch the engine's flag equals the prover's
    own shortfall computation on the written snapshot."""
    out, _ = cascade
    rows = json.loads((out / "metrics.json").read_text())["epochs"]
    for r in rows:
        res = check_snapshot(out / f"epoch-{r['epoch']:06d}")
        assert res.ok and res.header is not None
        short = shortfalls(asset_terms(res.header), res.owed_proof_units,
                           res.header.price_decimals, res.debts_proof_units)
        assert bool(short) == bool(r["insolvent"]), (r["epoch"], short)


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_engine_verdict_is_the_snapshot_preview(
        name: str, tmp_path: Path) -> None:
    """For every built-in scenario, epoch by epoch, the engine's insolvent
    flag is the verdict of `zksolv snapshot check` (the prover's solvency
    arithmetic on the written snapshot, debts counted beside reserves); the
    runs cover calm epochs and refused ones, and auction-2020-03 (the
    scenario with borrowers) proves its calm epochs solvent."""
    out = tmp_path / "run"
    sim = Simulation(load_scenario(name), accounts=40)
    output.write_run(out, sim)
    rows = json.loads((out / "metrics.json").read_text())["epochs"]
    runner = CliRunner()
    for r in rows:
        res = runner.invoke(cli, ["snapshot", "check", str(out / f"epoch-{r['epoch']:06d}"),
                                  "--json"])
        assert res.exit_code == 0, res.output
        preview = json.loads(res.stdout)
        assert preview["solvent"] == (not r["insolvent"]), (r["epoch"], preview["shortfalls"])
        short_assets = [a for a in preview["shortfall"]["assets"] if a["short_proof_units"]]
        assert len(short_assets) == r["assets_short"], (r["epoch"], preview["shortfalls"])
    flags = [r["insolvent"] for r in rows]
    if name == "auction-2020-03":
        assert sim.borrowable and any(r["debts_usd"] > 0 for r in rows)
        first = flags.index(1)
        assert first > 24 and not any(flags[:first])  # calm epochs: solvent, debts and all
    if name not in ("calm", "contagion", "crash-2020-03", "bridge-finality"):
        assert any(flags) and not all(flags), flags


def test_reserves_are_never_negative_in_the_metrics(cascade: tuple[Path, str]) -> None:
    """The chart drew collateral at about -5M USD where the snapshot said
    reserves 0: the metrics now state reserves as the snapshots do."""
    out, _ = cascade
    rows = json.loads((out / "metrics.json").read_text())["epochs"]
    for r in rows:
        header = json.loads((out / f"epoch-{r['epoch']:06d}" / "header.json").read_text())
        held = sum(a["reserves"] / 10 ** a["decimals"] * a["price"] / 10 ** header["price_decimals"]
                   for a in header["assets"])
        assert r["collateral_usd"] >= 0
        assert r["collateral_usd"] == pytest.approx(held, rel=1e-6, abs=1e-3)
    assert (out / "metrics.png").stat().st_size > 0


def _verify(*args: str) -> Any:
    return CliRunner().invoke(cli, ["verify", *args, "--quiet"])


def test_simulate_prove_marks_the_refused_epochs(tmp_path: Path) -> None:
    """--prove: the prover refuses exactly the epochs the engine flags
    insolvent (here the last two, 11 and 12, holes of about 40k and 17k USD:
    no bundle after them); the epochs before form one chain."""
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "cascade", "--accounts", "12",
                                   "--epochs", "12", "--seed", "5", "--out", str(out), "--prove",
                                   "--jobs", "1"],
                             env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    rows, run = m["epochs"], m["run"]
    refused = [r["epoch"] for r in rows if r["proof_refused"]]
    assert refused and refused == run["proof_refused_epochs"]
    assert refused == [r["epoch"] for r in rows if r["insolvent"]]
    assert run["proven_epochs"] == len(rows) - len(refused)
    assert run["first_refused_epoch"] == refused[0]
    assert f"refused by prove  {', '.join(map(str, refused))}: no bundle" in res.stdout
    assert "proof_refused" in (out / "metrics.csv").read_text().splitlines()[0]
    bundles = sorted(os.listdir(out / "bundles"))
    assert bundles == [f"epoch-{r['epoch']:06d}" for r in rows if not r["proof_refused"]]
    assert stat.S_IMODE((out / "private").stat().st_mode) == 0o700
    assert all(p.suffix == ".sqlite" for p in (out / "private").iterdir())
    res = _verify(str(out / "bundles"))
    assert res.exit_code == 0, res.output
    assert f"chain valid: epochs 1..{refused[0] - 1}" in res.output
    assert all(r["proof_chained"] for r in rows[1 : refused[0] - 1])


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A run whose epoch 4 is insolvent and whose epochs 5..7 are solvent
    again (contagion-isolated, 8 accounts, seed 4), proven as it runs."""
    out = tmp_path_factory.mktemp("gap") / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "contagion-isolated", "--accounts",
                                   "8", "--epochs", "7", "--seed", "4", "--out", str(out),
                                   "--prove", "--jobs", "1"],
                             env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 0, res.output
    flags = [r["insolvent"] for r in json.loads((out / "metrics.json").read_text())["epochs"]]
    assert flags == [0, 0, 0, 1, 0, 0, 0], "the scenario no longer dips once: pick another seed"
    return out, res


def test_chain_goes_on_after_a_refused_epoch(gap_run: tuple[Path, Any]) -> None:
    """After the refused epoch 4 the bundle of epoch 5 links to epoch 3 and
    declares the gap; the metrics say so."""
    out, res = gap_run
    m = json.loads((out / "metrics.json").read_text())
    rows, run = m["epochs"], m["run"]
    assert [r["proof_refused"] for r in rows] == [0, 0, 0, 1, 0, 0, 0]
    assert [r["proof_chained"] for r in rows] == [0, 1, 1, 0, 1, 1, 1]
    assert [r["proof_gap_epochs"] for r in rows] == [0, 0, 0, 0, 1, 0, 0]
    assert run["proof_refused_epochs"] == [4] and run["first_refused_epoch"] == 4
    assert run["proof_gaps"] == [{"first": 4, "last": 4}]
    assert run["proven_epochs"] == 6 and run["chain_first_epoch"] == 1
    assert run["complete"] is True
    # short in USDC and so in value (ETH and BTC credits equal their reserves,
    # nothing netted): the summary names the worst epoch, never "epoch None"
    assert run["peak_snapshot_shortfall_epoch"] == 4 == run["peak_asset_shortfall_epoch"]
    assert "worst valued shortfall" in res.output and "at epoch 4" in res.output
    assert "epoch None" not in res.output
    assert sorted(os.listdir(out / "bundles")) == [f"epoch-{e:06d}" for e in (1, 2, 3, 5, 6, 7)]
    assert sorted(p.name for p in (out / "private").iterdir()) == [
        f"epoch-{e:06d}.inclusion.sqlite" for e in (1, 2, 3, 5, 6, 7)]  # no work area left
    assert ("gap in the chain  epoch 4 NOT proven solvent, declared by the bundle of epoch 5 "
            "(it links to epoch 3)") in res.stdout
    # each epoch's line, in order, as it happens
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in lines] == [f"epoch {e}" for e in range(1, 8)]
    assert "proof REFUSED: epoch 4 is insolvent: USDC short by" in lines[3]
    assert "proven in" in lines[4] and "links to epoch 3: its header declares epoch 4 NOT " \
                                      "proven solvent" in lines[4]
    assert all("proven in" in lines[i] for i in (0, 1, 2, 5, 6))


def test_verify_checks_the_chain_with_its_gap(gap_run: tuple[Path, Any]) -> None:
    """`zksolv verify RUN/bundles` checks one chain and lists the gap;
    --no-gaps refuses it (exit 1, chain-epoch)."""
    out, _ = gap_run
    res = CliRunner().invoke(cli, ["verify", str(out / "bundles"), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["valid"] is True and doc["gaps"] == [{"first": 4, "last": 4}]
    assert [b["epoch"] for b in doc["bundles"]] == [1, 2, 3, 5, 6, 7]
    assert [b["prev_epoch"] for b in doc["bundles"]] == [None, 1, 2, 3, 5, 6]
    res = _verify(str(out / "bundles"))
    assert res.exit_code == 0, res.output
    assert "chain valid: epochs 1..7, each linked, one operator key" in res.stdout
    assert "gap: epoch 4 NOT proven solvent (the bundle of epoch 5 links to epoch 3)" in res.stdout
    res = _verify(str(out / "bundles"), "--no-gaps")
    assert res.exit_code == 1
    assert "chain-epoch" in res.stderr and "epoch 4 NOT proven solvent" in res.stderr
    # the bundle that declares the gap, alone
    res = _verify(str(out / "bundles" / "epoch-000005"), "--no-gaps")
    assert res.exit_code == 1 and "chain-epoch" in res.stderr


def _spy_prover(monkeypatch: pytest.MonkeyPatch, out: Path, seen: dict[int, list[str]],
                stop_at: int | None = None) -> None:
    """Record which snapshots exist when each epoch is proven; Ctrl-C at
    ``stop_at`` while its shards are being proven."""
    import zksolv.prover.run as run_mod

    real = run_mod.prove_epoch

    def spy(snapshot: Any, bundle: Any, **kw: Any) -> Any:
        epoch = int(Path(snapshot).name.removeprefix("epoch-"))
        seen[epoch] = sorted(p.name for p in out.glob("epoch-*"))
        if epoch == stop_at:
            bar = kw["progress"]

            def interrupt(items: Any, total: int, desc: str) -> Any:
                if desc == "prove shards":
                    raise KeyboardInterrupt
                return bar(items, total, desc)

            kw["progress"] = interrupt
        return real(snapshot, bundle, **kw)

    monkeypatch.setattr(run_mod, "prove_epoch", spy)


def test_each_epoch_is_proven_before_the_next_is_simulated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    seen: dict[int, list[str]] = {}
    _spy_prover(monkeypatch, out, seen)
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "calm", "--accounts", "4",
                                   "--epochs", "3", "--out", str(out), "--prove", "--jobs", "1"],
                             env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 0, res.output
    assert seen == {e: [f"epoch-{i:06d}" for i in range(1, e + 1)] for e in (1, 2, 3)}


def test_interrupted_run_keeps_the_proven_epochs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while epoch 3 is proven: exit 130; epochs 1 and 2 stay, their
    bundles a valid chain, the metrics cover them; the command to finish
    epoch 3 from its work area is printed, and it works."""
    out = tmp_path / "run"
    _spy_prover(monkeypatch, out, {}, stop_at=3)
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "calm", "--accounts", "4",
                                   "--epochs", "5", "--out", str(out), "--prove", "--jobs", "1"],
                             env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 130, res.output
    assert f"interrupted: {out} keeps epochs 1..2" in res.stderr
    assert "Traceback" not in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in m["epochs"]] == [1, 2] and m["run"]["complete"] is False
    assert m["run"]["proven_epochs"] == 2
    assert sorted(os.listdir(out / "bundles")) == ["epoch-000001", "epoch-000002"]
    res2 = _verify(str(out / "bundles"))
    assert res2.exit_code == 0, res2.output
    hint = next(ln for ln in res.stderr.splitlines() if "to finish its bundle" in ln)
    argv = hint.split("zksolv ", 1)[1].replace("KEY", str(tmp_path / "op.key")).split()
    (tmp_path / "op.key").write_text(KEY_HEX + "\n")
    (tmp_path / "op.key").chmod(0o600)
    res3 = CliRunner().invoke(cli, [*argv, "-q"])
    assert res3.exit_code == 0, res3.output
    res4 = _verify(str(out / "bundles"), "--no-gaps")
    assert res4.exit_code == 0, res4.output
    assert "chain valid: epochs 1..3" in res4.stdout


def test_simulate_prove_with_borrowers_agrees_with_the_engine_epoch_by_epoch(
        tmp_path: Path) -> None:
    """auction-2020-03 in six-hour epochs (the same five-minute steps and
    price path), 16 accounts, proven as it runs: the prover proves the calm
    epochs, loans and all (epoch 7 with part of an underwater vault's debt
    written as a loss the insurance fund carries), and refuses exactly the
    epochs the engine flags insolvent, from where the auctions' losses
    outrun the fund. The chain verifies."""
    from importlib import resources

    text = resources.files("zksolv.engine").joinpath("scenarios", "auction-2020-03.toml"
                                                     ).read_text()
    six_hours = text.replace("epoch_minutes = 60\nsteps_per_epoch = 12",
                             "epoch_minutes = 360\nsteps_per_epoch = 72")
    assert six_hours != text
    scenario = tmp_path / "auction-6h.toml"
    scenario.write_text(six_hours)
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", str(scenario), "--accounts", "16",
                                   "--epochs", "9", "--seed", "1", "--out", str(out), "--prove",
                                   "--jobs", "1"], env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    rows, run = m["epochs"], m["run"]
    assert [r["insolvent"] for r in rows] == [0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert [r["proof_refused"] for r in rows] == [r["insolvent"] for r in rows]
    assert run["proof_refused_epochs"] == run["insolvent_epochs"] == [8, 9]
    assert all(r["debts_usd"] > 0 for r in rows)
    assert rows[6]["unbacked_debt_usd"] > 0 and not rows[6]["proof_refused"]
    header = json.loads((out / "epoch-000001" / "header.json").read_text())
    assert header["version"] == 2 and header["assets"][0]["borrowable"] is True
    assert sorted(os.listdir(out / "bundles")) == [f"epoch-{e:06d}" for e in range(1, 8)]
    res = _verify(str(out / "bundles"))
    assert res.exit_code == 0, res.output
    assert "chain valid: epochs 1..7" in res.output
