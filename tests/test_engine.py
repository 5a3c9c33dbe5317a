"""The margin-engine simulator: accounting identity, liquidation rules,
liquidator economics, loss waterfall, determinism, snapshots and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zksolv.cli.main import cli
from zksolv.engine import output
from zksolv.engine.population import Population
from zksolv.engine.scenario import (
    GasSpike,
    Shock,
    builtin_names,
    load_scenario,
    parse_scenario,
)
from zksolv.engine.simulator import Simulation, credits_in_kind
from zksolv.errors import InputError
from zksolv.snapshot import open_snapshot

BUILTINS = ("calm", "crash-2020-03", "oracle-lag", "cascade", "contagion",
            "insurance-exhaustion")


def totals(sim: Simulation) -> dict[str, float]:
    keys = ("liquidations", "stalled", "bad_debt_usd", "socialised_loss_usd",
            "insurance_absorbed_usd", "adl_accounts", "paused")
    out = dict.fromkeys(keys, 0.0)
    for r in sim.run():
        for k in keys:
            out[k] += r.metrics[k]
    out["final_fund"] = sim.fund
    out["uncovered"] = sim.uncovered_prev
    return out


def check_identity(sim: Simulation, result) -> None:
    """The identity of docs/engine.md, exactly per asset and in value."""
    assert all(r == 0 for r in sim.identity_residuals())
    assert result.metrics["identity_residual_units"] == 0
    qi = sim.scenario.quote_index
    risky_cols = [c for c in range(len(sim.scenario.assets)) if c != qi]
    assert sim.vault_quote == int(sim.cash.sum()) + sim.fund
    assert np.array_equal(sim.vault, sim.collateral.sum(axis=0))
    assert (result.credits >= 0).all()
    liabilities = result.credits.sum(axis=0)
    assert (liabilities[risky_cols] == sim.vault).all()  # every token held is owed, in kind
    equity = sim.cash / sim.quote_units + sim.collateral @ (sim.oracle / sim.units)
    holdings = sim.vault_quote / sim.quote_units + float(sim.vault @ (sim.oracle / sim.units))
    rhs = np.maximum(equity, 0).sum() + sim.fund / sim.quote_units - np.maximum(-equity, 0).sum()
    assert holdings == pytest.approx(rhs, rel=1e-9, abs=1e-3)
    # Quote claims exceed quote reserves exactly when the debts left on accounts
    # exceed the insurance fund.
    short = liabilities[qi] > sim.vault_quote
    assert short == (int(np.maximum(-sim.cash, 0).sum()) > sim.fund)


# -- scenarios ------------------------------------------------------------------------


def test_builtins_present_and_valid() -> None:
    assert set(BUILTINS) <= set(builtin_names())
    for name in BUILTINS:
        assert load_scenario(name).name == name


@pytest.mark.parametrize(
    ("edit", "field", "why"),
    [
        (("leverage_median = 3.0", 'leverage_median = "high"'), "population.leverage_median",
         "must be a number"),
        (("leverage_median = 3.0", "leverage_median = -1"), "population.leverage_median",
         "must be a number > 0"),
        (("socialisation = \"haircut\"", "socialisation = \"pray\""),
         "insurance.socialisation", "must be one of haircut, adl, none"),
        (("steps_per_epoch = 12", "steps_per_epoch = 1.5"), "time.steps_per_epoch",
         "must be an integer"),
        (("deviation = 0.005", "deviaton = 0.005"), "oracle.deviaton", "unknown field"),
        (("maintenance_margin = 0.05", "maintenance_margin = 0.5"),
         "assets[1].maintenance_margin", "must not exceed initial_margin"),
        (("collateral_mix = { USDC = 0.6,", "collateral_mix = { DOGE = 0.1, USDC = 0.6,"),
         "population.collateral_mix.DOGE", "unknown asset"),
        (('token = "ETH"', 'token = "SOL"'), "gas.token", "must be one of"),
    ],
)
def test_bad_scenario_names_file_and_field(tmp_path: Path, edit: tuple[str, str], field: str,
                                           why: str) -> None:
    text = load_scenario_text("calm")
    assert edit[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(InputError) as info:
        load_scenario(str(bad))
    assert info.value.where == f"{bad}: {field}"
    assert why in info.value.reason
    assert "\n" not in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("name = \n")
    with pytest.raises(InputError, match="invalid TOML") as info:
        load_scenario(str(bad))
    assert info.value.where == str(bad)
    with pytest.raises(InputError, match=r"built-ins: .*\bcalm\b"):
        load_scenario(str(tmp_path / "nope.toml"))


def load_scenario_text(name: str) -> str:
    from importlib import resources

    return resources.files("zksolv.engine").joinpath("scenarios", f"{name}.toml").read_text()


# -- accounting identity ------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    accounts=st.integers(5, 150),
    base=st.sampled_from(BUILTINS),
    mode=st.sampled_from(("haircut", "adl", "none")),
    drop=st.floats(0.0, 0.8),
    leverage=st.floats(1.0, 15.0),
    fund=st.floats(0.0, 0.05),
    gas_multiplier=st.floats(1.0, 100.0),
    breaker=st.booleans(),
    dynamic=st.booleans(),
)
def test_accounting_identity_every_epoch(seed: int, accounts: int, base: str, mode: str,
                                         drop: float, leverage: float, fund: float,
                                         gas_multiplier: float, breaker: bool,
                                         dynamic: bool) -> None:
    sc = load_scenario(base)
    sc = dataclasses.replace(
        sc,
        steps_per_epoch=4,
        prices=dataclasses.replace(sc.prices, shocks=sc.prices.shocks + (
            Shock(1.0, 2.0, drop, tuple(a.symbol for a in sc.assets if not a.quote)),)),
        gas=dataclasses.replace(sc.gas, spikes=(GasSpike(0.0, 4.0, gas_multiplier),)),
        population=dataclasses.replace(sc.population, leverage_median=leverage,
                                       max_leverage=max(leverage, 2.0)),
        insurance=dataclasses.replace(sc.insurance, initial_fraction=fund, socialisation=mode),
        breaker=dataclasses.replace(sc.breaker, enabled=breaker),
        margin=dataclasses.replace(sc.margin, dynamic=dynamic),
    )
    sim = Simulation(sc, accounts=accounts, epochs=5, seed=seed)
    for result in sim.run():
        check_identity(sim, result)


def test_credits_in_kind_net_nothing() -> None:
    """A debt is not a smaller credit: the collateral of an account in debt
    is owed to it in full (its debt is stated apart, or is a loss)."""
    cash = np.array([5_000_000, -1_000_000, -10_000_000, 0], dtype=np.int64)
    coll = np.array([[10**9], [10**9], [10**9], [0]], dtype=np.int64)  # 1 ETH each
    credits = credits_in_kind(cash, coll, 0)
    assert credits.tolist() == [[5_000_000, 10**9], [0, 10**9], [0, 10**9], [0, 0]]


# -- liquidation rules ---------------------------------------------------------------------


def flat_scenario(**liquidation: float):
    """Flat prices, free gas, prompt liquidators and a book too deep to move."""
    sc = load_scenario("calm")
    return dataclasses.replace(
        sc,
        assets=tuple(dataclasses.replace(a, book_depth=1e6) for a in sc.assets),
        prices=dataclasses.replace(sc.prices, model="path", path=(("ETH", (2000.0,)),
                                                                   ("BTC", (40000.0,)))),
        gas=dataclasses.replace(sc.gas, volatility=0.0, base_gwei=0.0),
        liquidation=dataclasses.replace(sc.liquidation, **{"latency_minutes": 0.0, **liquidation}),
    )


def two_accounts(margin_usd: tuple[float, float]) -> Population:
    """Two accounts, quote cash only, each long 1 ETH at 2000: maintenance is
    1 * 2000 * 5% = 100 USD."""
    cash = np.array([round(m * 1e6) for m in margin_usd], dtype=np.int64)
    return Population(cash=cash, collateral=np.zeros((2, 2), dtype=np.int64),
                      position=np.array([[1.0, 0.0], [1.0, 0.0]]),
                      entry=np.full((2, 2), [2000.0, 40000.0]))


def test_just_below_maintenance_is_liquidated_just_above_is_not() -> None:
    sim = Simulation(flat_scenario(), epochs=1, population=two_accounts((99.99, 100.01)))
    assert sim.account_values()["maintenance"] == pytest.approx([100.0, 100.0])
    result = sim.run_epoch(1)
    assert result.metrics["liquidations"] >= 1
    assert sim.position[0, 0] < 1.0  # partially closed
    assert sim.position[1, 0] == 1.0  # untouched


def test_liquidators_stall_when_gas_exceeds_reward() -> None:
    # Reward: 25% of 2000 notional * 1% penalty * 50% share = 2.5 USD.
    cheap = flat_scenario()
    cheap = dataclasses.replace(cheap, gas=dataclasses.replace(cheap.gas, base_gwei=1.0))
    dear = dataclasses.replace(cheap, gas=dataclasses.replace(cheap.gas, base_gwei=1000.0))
    sim = Simulation(cheap, epochs=1, population=two_accounts((99.0, 99.0)))
    assert sim.gas_cost_usd(0) < 2.5
    assert sim.run_epoch(1).metrics["liquidations"] > 0
    sim = Simulation(dear, epochs=1, population=two_accounts((99.0, 99.0)))
    assert sim.gas_cost_usd(0) > 2.5
    metrics = sim.run_epoch(1).metrics
    assert metrics["liquidations"] == 0
    assert metrics["stalled"] > 0
    assert (sim.position[:, 0] == 1.0).all()


def test_liquidator_latency_delays_action() -> None:
    sc = flat_scenario(latency_minutes=20.0)  # 4 steps of 5 minutes
    sim = Simulation(sc, epochs=1, population=two_accounts((99.0, 200.0)))
    counters: dict[str, float] = dict.fromkeys(
        ("liquidatable", "liquidations", "full_liquidations", "liquidated_notional_usd",
         "penalties_usd", "stalled", "paused", "breaker_steps"), 0)
    for _ in range(4):
        sim.step(counters)
    assert counters["liquidations"] == 0 and counters["liquidatable"] == 4
    sim.step(counters)
    assert counters["liquidations"] == 1


def test_deep_breach_is_closed_in_full() -> None:
    sim = Simulation(flat_scenario(), epochs=1, population=two_accounts((40.0, 500.0)))
    sim.run_epoch(1)
    assert sim.position[0, 0] == 0.0


# -- scenarios end to end ------------------------------------------------------------------


def test_crash_stalls_and_leaves_bad_debt_calm_does_not() -> None:
    crash = load_scenario("crash-2020-03")
    got = totals(Simulation(crash, accounts=1500))
    assert got["stalled"] > 0
    assert got["bad_debt_usd"] > 0
    # With free gas nobody stalls on gas: strictly less bad debt.
    free = dataclasses.replace(crash, gas=dataclasses.replace(crash.gas, base_gwei=0.0))
    assert totals(Simulation(free, accounts=1500))["bad_debt_usd"] < got["bad_debt_usd"]
    calm = totals(Simulation(load_scenario("calm"), accounts=1500))
    assert calm["bad_debt_usd"] == 0
    assert calm["socialised_loss_usd"] == 0


def test_insurance_exhaustion_socialises_losses() -> None:
    sc = load_scenario("insurance-exhaustion")
    got = totals(Simulation(sc, accounts=1000, epochs=24))
    assert got["insurance_absorbed_usd"] > 0
    assert got["socialised_loss_usd"] > 0
    adl = dataclasses.replace(sc, insurance=dataclasses.replace(sc.insurance,
                                                                socialisation="adl"))
    got_adl = totals(Simulation(adl, accounts=1000, epochs=24))
    assert got_adl["socialised_loss_usd"] > 0 and got_adl["adl_accounts"] > 0
    none = dataclasses.replace(sc, insurance=dataclasses.replace(sc.insurance,
                                                                 socialisation="none"))
    sim = Simulation(none, accounts=1000, epochs=24)
    results = list(sim.run())
    assert sum(r.metrics["socialised_loss_usd"] for r in results) == 0
    assert results[-1].metrics["uncovered_bad_debt_usd"] > 0
    assert results[-1].metrics["assets_short"] >= 1  # the snapshot shows the hole


def test_circuit_breaker_pauses_liquidations() -> None:
    got = totals(Simulation(load_scenario("oracle-lag"), accounts=800, epochs=12))
    assert got["paused"] > 0


# -- output --------------------------------------------------------------------------------


def run_dir(tmp: Path, name: str, seed: int = 5, scenario: str = "cascade") -> Path:
    sim = Simulation(load_scenario(scenario), accounts=300, epochs=4, seed=seed)
    output.write_run(tmp / name, sim)
    return tmp / name


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = tree_bytes(run_dir(tmp_path, "a"))
    b = tree_bytes(run_dir(tmp_path, "b"))
    assert "metrics.png" in a and "epoch-000004/accounts.csv" in a
    assert a == b
    c = tree_bytes(run_dir(tmp_path, "c", seed=6))
    assert c["metrics.csv"] != a["metrics.csv"]


def test_snapshots_round_trip_through_reader(tmp_path: Path) -> None:
    sim = Simulation(load_scenario("contagion"), accounts=200, epochs=3, seed=2)
    results = []
    output.write_run(tmp_path / "run", sim,
                     lambda it: (results.append(r) or r for r in it))
    ids = output.account_ids(200)
    for r in results:
        snap = open_snapshot(tmp_path / "run" / f"epoch-{r.epoch:06d}")
        assert snap.header == r.header
        rows = list(snap.iter_accounts())
        assert [i for i, _ in rows] == ids
        assert np.array_equal(np.array([a for _, a in rows]), r.amounts)
        assert snap.header.symbols == ("USDC", "ETH", "BTC", "ALT")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]
    assert metrics["run"]["identity_holds_every_epoch"] is True


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing(out, header, rows):
        calls.append(out)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(out, header, rows)

    real = output.write_snapshot
    monkeypatch.setattr(output, "write_snapshot", failing)
    sim = Simulation(load_scenario("calm"), accounts=50, epochs=3)
    with pytest.raises(OSError, match="disk full"):
        output.write_run(tmp_path / "run", sim)
    assert list(tmp_path.iterdir()) == []


class RecordingHook:
    """An epoch hook that records what it saw when it was called."""

    def __init__(self, events: list[str], root: Path, stop_at: int | None = None) -> None:
        self.events, self.root, self.stop_at, self.seen = events, root, stop_at, 0

    def epoch(self, result, snapshot: Path) -> dict[str, int]:
        if result.epoch == self.stop_at:
            raise KeyboardInterrupt
        self.events.append(f"hook {result.epoch}")
        assert snapshot == self.root / f"epoch-{result.epoch:06d}"
        assert open_snapshot(snapshot).header == result.header  # written before the hook
        # the epochs before this one are already in the metrics on disk
        rows = json.loads((self.root / "metrics.json").read_text())["epochs"] \
            if result.epoch > 1 else []
        assert [r["epoch"] for r in rows] == list(range(1, result.epoch))
        self.seen += 1
        return {"hook_seen": self.seen}

    def summary(self) -> dict[str, int]:
        return {"hook_epochs": self.seen}


def test_hook_runs_on_each_epoch_before_the_next_is_simulated(tmp_path: Path) -> None:
    """The per-epoch hook (simulate --prove's prover) sees each epoch's
    snapshot on disk, before the engine simulates the next epoch; its
    columns and summary land in the metrics."""
    events: list[str] = []

    def simulated(it):
        for r in it:
            events.append(f"simulated {r.epoch}")
            yield r

    out = tmp_path / "run"
    sim = Simulation(load_scenario("calm"), accounts=20, epochs=3, seed=1)
    summary = output.write_run(out, sim, simulated, hook=RecordingHook(events, out))
    assert events == ["simulated 1", "hook 1", "simulated 2", "hook 2", "simulated 3", "hook 3"]
    m = json.loads((out / "metrics.json").read_text())
    assert [r["hook_seen"] for r in m["epochs"]] == [1, 2, 3]
    assert m["run"]["hook_epochs"] == 3 and m["run"]["complete"] is True
    assert summary["hook_epochs"] == 3 and (out / "metrics.png").exists()
    assert "hook_seen" in (out / "metrics.csv").read_text().splitlines()[0]
    # the same run without a hook: the same snapshots
    plain = output.write_run(tmp_path / "plain", Simulation(load_scenario("calm"), accounts=20,
                                                            epochs=3, seed=1))
    assert plain["complete"] is True
    for e in (1, 2, 3):
        name = f"epoch-{e:06d}"
        assert tree_bytes(out / name) == tree_bytes(tmp_path / "plain" / name)


def test_interrupted_hooked_run_keeps_the_epochs_done(tmp_path: Path) -> None:
    """With a hook the run is written in place: Ctrl-C during epoch 3 keeps
    epochs 1 and 2 with metrics covering exactly them (marked incomplete)."""
    out = tmp_path / "run"
    sim = Simulation(load_scenario("calm"), accounts=20, epochs=5, seed=1)
    with pytest.raises(KeyboardInterrupt):
        output.write_run(out, sim, hook=RecordingHook([], out, stop_at=3))
    m = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in m["epochs"]] == [1, 2]
    assert m["run"]["complete"] is False and m["run"]["hook_epochs"] == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 3
    assert open_snapshot(out / "epoch-000002").validate() == 20
    assert not (out / "metrics.png").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries


# -- command line --------------------------------------------------------------------------


def test_cli_simulate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "crash-2020-03", "--accounts", "200",
                                   "--epochs", "3", "--out", str(out), "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "identity          holds every epoch" in res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "epoch-000001", "epoch-000002", "epoch-000003", "metrics.csv", "metrics.json",
        "metrics.png"]
    assert open_snapshot(out / "epoch-000003").validate() == 200
    again = CliRunner().invoke(cli, ["simulate", "--scenario", "calm", "--out", str(out)])
    assert again.exit_code == 2
    assert "choose a new --out" in again.output


def test_cli_bad_scenario_file_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(load_scenario_text("calm").replace("max_leverage = 8.0",
                                                      "max_leverage = \"lots\""))
    res = CliRunner().invoke(cli, ["simulate", "--scenario", str(bad), "--out",
                                   str(tmp_path / "out"), "-q"])
    assert res.exit_code == 2
    line = res.output.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert str(bad) in line and "population.max_leverage" in line
    assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_cli_help_teaches() -> None:
    res = CliRunner().invoke(cli, ["simulate", "--help"])
    assert res.exit_code == 0
    for word in ("--scenario", "crash-2020-03", "Examples", "metrics.png", "docs/engine.md"):
        assert word in res.output


def test_bench_engine_quick_json() -> None:
    res = CliRunner().invoke(cli, ["bench", "engine", "--accounts", "300", "--epochs", "2",
                                   "--memory-accounts", "0", "--no-write", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["speed_accounts"] == 300 and data["simulate_seconds"] > 0


def test_parse_scenario_minimal() -> None:
    sc = parse_scenario(
        'name = "tiny"\n[[assets]]\nsymbol = "USD"\ndecimals = 2\nquote = true\n'
        '[[assets]]\nsymbol = "X"\ndecimals = 3\nprice = 10.0\nperp = true\n'
        '[population]\ncollateral_mix = { USD = 1.0 }\n')
    sim = Simulation(sc, accounts=20, epochs=2)
    for r in sim.run():
        check_identity(sim, r)


# -- reference path ------------------------------------------------------------------------


def test_vectorised_valuation_matches_reference() -> None:
    from zksolv.engine import reference

    sc = load_scenario("contagion")
    sc = dataclasses.replace(sc, margin=dataclasses.replace(sc.margin, size_weight=50.0))
    sim = Simulation(sc, accounts=300, epochs=3, seed=9)
    for _ in range(2):
        sim.run_epoch(1)
        for _ in range(3):  # mid-epoch: unrealised PnL and partial closes present
            sim.step(dict.fromkeys(("liquidatable", "liquidations", "full_liquidations",
                                    "liquidated_notional_usd", "penalties_usd", "stalled",
                                    "paused", "breaker_steps"), 0))
        fast = sim.account_values()
        mult = sim.margin_multiplier()
        for i in range(sim.n):
            ref = reference.account_values(
                int(sim.cash[i]), sim.collateral[i].tolist(), sim.position[i].tolist(),
                sim.entry[i].tolist(), sim.oracle.tolist(), sim.weights.tolist(),
                sim.units.tolist(), sim.quote_units, sim.market_assets, sim.mmf.tolist(),
                mult.tolist(), sc.margin.size_weight, sim.depth_1pct_markets.tolist())
            for key, value in ref.items():
                assert fast[key][i] == pytest.approx(value, rel=1e-12, abs=1e-6)
    sim.cash[:50] = -np.abs(sim.cash[:50]) - 1  # debts: still no netting
    fast_credits = credits_in_kind(sim.cash, sim.collateral, sim.scenario.quote_index)
    for i in range(sim.n):
        ref = reference.credits(int(sim.cash[i]), sim.collateral[i].tolist(),
                                sim.scenario.quote_index)
        assert fast_credits[i].tolist() == ref


def test_chart_skipped_without_matplotlib(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "calm", "--accounts", "50",
                                   "--epochs", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "chart             skipped: matplotlib is not installed" in res.output
    assert (out / "metrics.csv").is_file() and not (out / "metrics.png").exists()


def test_snapshot_haircuts_switch() -> None:
    sc = load_scenario("calm")
    assert sc.snapshot_haircuts == "none"  # in-kind liabilities: full weight by default
    liquidity = Simulation(dataclasses.replace(sc, snapshot_haircuts="liquidity"), accounts=100,
                           epochs=1).run_epoch(1).header
    assert any(a.haircut_bps < 10_000 for a in liquidity.assets)
    full = Simulation(sc, accounts=100, epochs=1).run_epoch(1).header
    assert all(a.haircut_bps == 10_000 for a in full.assets)
    assert [a.reserves for a in full.assets] == [a.reserves for a in liquidity.assets]
