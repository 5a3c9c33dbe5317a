"""The simulator reports the epochs whose snapshot the prover refuses, and
its chart shows reserves as the snapshots state them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zksolv.cli.main import cli
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
                           res.header.price_decimals)
        assert bool(short) == bool(r["insolvent"]), (r["epoch"], short)


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


def test_simulate_prove_marks_the_refused_epochs(tmp_path: Path) -> None:
    """--prove: every epoch proven and chained; the prover refuses exactly
    the epochs the engine flags insolvent; the public chain breaks there."""
    import os
    import stat

    from test_epoch_support import KEY_HEX

    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "cascade", "--accounts", "12",
                                   "--epochs", "11", "--out", str(out), "--prove", "--jobs", "1"],
                             env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    rows, run = m["epochs"], m["run"]
    refused = [r["epoch"] for r in rows if r["proof_refused"]]
    assert refused and refused == run["proof_refused_epochs"]
    assert refused == [r["epoch"] for r in rows if r["insolvent"]]
    assert run["proven_epochs"] == len(rows) - len(refused)
    assert f"the public chain breaks at epoch {refused[0]}" in res.output
    assert "proof_refused" in (out / "metrics.csv").read_text().splitlines()[0]
    bundles = sorted(os.listdir(out / "bundles"))
    assert bundles == [f"epoch-{r['epoch']:06d}" for r in rows if not r["proof_refused"]]
    assert stat.S_IMODE((out / "private").stat().st_mode) == 0o700
    assert all(p.suffix == ".sqlite" for p in (out / "private").iterdir())
    # the bundles before the first refusal form one verifiable chain
    before = [out / "bundles" / f"epoch-{e:06d}" for e in range(1, refused[0])]
    res = CliRunner().invoke(cli, ["verify", str(before[-1]),
                                   *[a for b in before[:-1] for a in ("--chain", str(b))],
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    assert all(r["proof_chained"] for r in rows[1 : refused[0] - 1])
