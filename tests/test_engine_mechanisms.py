"""The engine's liquidation mechanisms beyond the fixed threshold: Dutch
auctions with keepers, vAMM execution, isolated margin, priority-fee
liquidation in limited block space and collateral bridged from a second
chain. For each: the named failure appears for its stated cause and goes
away when the cause is removed; the accounting identity holds every epoch;
the same seed gives the same bytes."""

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
from zksolv.engine import auction, output
from zksolv.engine.population import Population
from zksolv.engine.scenario import Scenario, Shock, builtin_names, load_scenario, parse_scenario
from zksolv.engine.simulator import Simulation
from zksolv.engine.vamm import Vamm
from zksolv.errors import InputError
from zksolv.snapshot import open_snapshot

MECHANISM_SCENARIOS = ("auction-2020-03", "vamm-up-down", "vamm-down-up", "contagion-isolated",
                       "mev-congestion", "bridge-finality")


def run_totals(sim: Simulation) -> dict[str, float]:
    """Sum every numeric metric over the run; check the identity each epoch."""
    out: dict[str, float] = {}
    for r in sim.run():
        assert r.metrics["identity_residual_units"] == 0
        assert all(x == 0 for x in sim.identity_residuals())
        for k, v in r.metrics.items():
            out[k] = out.get(k, 0) + v
    return out


def check_identity(sim: Simulation, credits: np.ndarray) -> None:
    """docs/engine.md's identity, exactly per asset and in value, and no
    negative number in a snapshot row."""
    assert all(r == 0 for r in sim.identity_residuals())
    assert sim.vault_quote == int(sim.cash.sum()) + sim.fund
    assert np.array_equal(sim.vault, sim.collateral.sum(axis=0))
    assert (sim.collateral >= 0).all()
    assert (credits >= 0).all()
    qi = sim.scenario.quote_index
    risky_cols = [c for c in range(len(sim.scenario.assets)) if c != qi]
    assert (credits.sum(axis=0)[risky_cols] == sim.vault).all()
    equity = sim.cash / sim.quote_units + sim.collateral @ (sim.oracle / sim.units)
    holdings = sim.vault_quote / sim.quote_units + float(sim.vault @ (sim.oracle / sim.units))
    rhs = np.maximum(equity, 0).sum() + sim.fund / sim.quote_units - np.maximum(-equity, 0).sum()
    assert holdings == pytest.approx(rhs, rel=1e-9, abs=1e-3)


def test_builtins_present() -> None:
    assert set(MECHANISM_SCENARIOS) <= set(builtin_names())
    modes = {name: load_scenario(name) for name in MECHANISM_SCENARIOS}
    assert modes["auction-2020-03"].liquidation.mode == "auction"
    assert modes["vamm-up-down"].liquidation.execution == "vamm"
    assert any(a.margin_mode == "isolated" for a in modes["contagion-isolated"].assets)
    assert modes["mev-congestion"].mev.enabled
    assert modes["bridge-finality"].bridge.enabled
    # Every other scenario keeps the mechanisms off.
    calm = load_scenario("calm")
    assert (calm.liquidation.mode, calm.liquidation.execution) == ("fixed", "oracle")
    assert not calm.mev.enabled and not calm.bridge.enabled
    assert all(a.margin_mode == "cross" for a in calm.assets)


# -- Dutch auctions with keepers: lack of bidders ------------------------------------------


def with_keepers_present(sc: Scenario) -> Scenario:
    """Keepers whose bots land bids at any gas price the path reaches."""
    return dataclasses.replace(sc, auction=dataclasses.replace(sc.auction,
                                                               keeper_gas_limit_gwei=5000.0))


def auction_summary(sc: Scenario, accounts: int = 1000) -> dict[str, float]:
    sim = Simulation(sc, accounts=accounts)
    rows = []
    for r in sim.run():
        check_identity(sim, r.credits)
        rows.append(r.metrics)
    summary = output.mechanism_summary(sim, rows)
    summary["bad_debt"] = sum(r["bad_debt_usd"] for r in rows)
    summary["peak_gas"] = float(sim.gas_gwei.max())
    return summary


def test_auction_keepers_drop_out_lots_clear_near_zero_bad_debt_follows() -> None:
    sc = load_scenario("auction-2020-03")
    got = auction_summary(sc)
    assert got["total_auctions_started"] > 50
    assert got["auctions_open_at_end"] == 0
    # The gas spike outruns every keeper's bot: lots run down to (near) zero.
    gas, _ = auction.keeper_book(sc.auction)
    assert got["peak_gas"] > gas.max()
    assert got["auction_zero_bid_share"] > 0.3
    assert got["auction_clearing_ratio"] < 0.5
    assert got["bad_debt"] > 0.2 * got["total_auction_debt_usd"]
    # Keepers present on the same path: the auctions clear near market, no bad debt.
    fixed = auction_summary(with_keepers_present(sc))
    assert fixed["total_auctions_started"] == got["total_auctions_started"]
    assert fixed["total_auction_zero_bids"] == 0
    assert fixed["auction_clearing_ratio"] > 0.9
    assert fixed["bad_debt"] == 0


def test_auction_reports_published_figures_beside_its_own(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "auction-2020-03", "--accounts",
                                   "400", "--out", str(out), "--no-snapshots"])
    assert res.exit_code == 0, res.output
    assert "published         ETH collateral sold for zero DAI" in res.output
    assert "8,320,000 USD" in res.output and "36.0 %" in res.output
    run = json.loads((out / "metrics.json").read_text())["run"]
    figures = {f["compare"]: f for f in run["published"]}
    assert figures["total_auction_zero_bid_collateral_usd"]["published"] == 8_320_000
    assert figures["auction_zero_bid_share"]["this_run"] == run["auction_zero_bid_share"]
    assert figures["total_bad_debt_usd"]["this_run"] == run["total_bad_debt_usd"]
    assert "White Rabbit" in figures["total_bad_debt_usd"]["source"]


def one_vault(debt_usd: float, eth: float) -> Population:
    """One borrower: ``eth`` ETH against ``debt_usd`` of quote debt, no position;
    one lender with 10^6 USDC."""
    return Population(cash=np.array([-round(debt_usd * 1e6), 10**12], dtype=np.int64),
                      collateral=np.array([[round(eth * 1e9), 0], [0, 0]], dtype=np.int64),
                      position=np.zeros((2, 2)), entry=np.full((2, 2), [2000.0, 40000.0]))


def flat_auction_scenario(**auction_fields: float) -> Scenario:
    sc = load_scenario("calm")
    return dataclasses.replace(
        sc,
        assets=tuple(dataclasses.replace(a, book_depth=1e6, liquidity_haircut=0.0)
                     for a in sc.assets),
        prices=dataclasses.replace(sc.prices, model="path",
                                   path=(("ETH", (2000.0,)), ("BTC", (40000.0,)))),
        gas=dataclasses.replace(sc.gas, volatility=0.0, base_gwei=1.0),
        liquidation=dataclasses.replace(sc.liquidation, mode="auction"),
        auction=dataclasses.replace(sc.auction, **auction_fields),
    )


def test_auction_price_falls_linearly_and_keeper_buys_at_its_discount() -> None:
    # 1 ETH (2000 USD, haircut 10%: margin value 1800) against 1850 of debt: unsafe.
    sc = flat_auction_scenario(start_premium=1.2, duration_minutes=60.0, penalty=0.1,
                               keepers=1, keeper_discount=0.1, keeper_discount_sigma=0.0)
    sim = Simulation(sc, epochs=1, population=one_vault(1850.0, 1.0))
    counters = dict.fromkeys(("liquidatable", "liquidations", "full_liquidations",
                              "liquidated_notional_usd", "penalties_usd", "stalled", "paused",
                              "breaker_steps") + sim.mechanism_counters(), 0.0)
    sim.step(counters)  # kick: top = 2400, tab = 1850 * 1.1 = 2035
    assert sim.in_auction[0] and counters["auctions_started"] == 1
    assert sim.auction_tab[0] == 2_035_000_000
    steps = 0
    while sim.in_auction[0]:
        sim.step(counters)
        steps += 1
    # Price 2400 (1 - 5k/60) <= 0.9 * 2000 first at k = 3 (5-minute steps): 1800.
    assert steps == 3
    assert counters["auction_proceeds_usd"] == pytest.approx(1800.0)
    # The whole lot is sold (1800 < tab); debt first, nothing left for the penalty.
    assert sim.collateral[0, 0] == 0
    assert sim.cash[0] == -50_000_000
    assert all(x == 0 for x in sim.identity_residuals())


def test_auction_partial_sale_returns_collateral_and_pays_the_penalty() -> None:
    sc = flat_auction_scenario(start_premium=1.0, duration_minutes=60.0, penalty=0.1,
                               keepers=1, keeper_discount=0.05, keeper_discount_sigma=0.0)
    sc_tight = dataclasses.replace(sc, assets=tuple(
        dataclasses.replace(a, haircut=0.5) for a in sc.assets))  # 1 ETH backs only 1000
    sim = Simulation(sc_tight, epochs=1, population=one_vault(1100.0, 1.0))
    fund0 = sim.fund
    sim.run_epoch(1)
    # Tab 1210 paid at a price <= 0.95 * 2000; the rest of the ETH stays with the owner.
    assert 0 < sim.collateral[0, 0] < 10**9
    sold_eth = (10**9 - sim.collateral[0, 0]) / 1e9
    first_price = 2000.0 * (1.0 - 5.0 / 60.0)  # one 5-minute step in: 1833.33 <= 1900
    assert sold_eth == pytest.approx(1210.0 / first_price, rel=1e-6)
    assert sim.cash[0] == 0
    assert sim.fund - fund0 == 110_000_000  # the penalty, 10% of the debt
    assert all(x == 0 for x in sim.identity_residuals())


def test_keeper_book_and_price_curve() -> None:
    sc = load_scenario("auction-2020-03")
    gas, discount = auction.keeper_book(sc.auction)
    assert gas.size == sc.auction.keepers
    assert np.all(np.diff(gas) > 0) and np.all(np.diff(discount) < 0)
    # Symmetric quantiles: the geometric mean is the configured median.
    assert np.exp(np.log(gas).mean()) == pytest.approx(sc.auction.keeper_gas_limit_gwei)
    assert auction.best_discount(float(gas.max()) + 1.0, gas, discount) is None
    assert auction.best_discount(0.0, gas, discount) == pytest.approx(float(discount.min()))
    f = auction.price_factor(np.array([0.0, 90.0, 180.0, 400.0]), 360.0)
    assert f.tolist() == [1.0, 0.75, 0.5, 0.0]
    none = dataclasses.replace(sc.auction, keepers=0)
    assert auction.keeper_book(none)[0].size == 0


def test_auction_reset_restarts_from_the_oracle() -> None:
    sc = load_scenario("auction-2020-03")
    reset = dataclasses.replace(sc, auction=dataclasses.replace(sc.auction, reset_below=0.5))
    got = auction_summary(reset, accounts=500)
    assert got["total_auction_resets"] > 0
    # With resets no lot runs down to zero: no near-zero clearing.
    assert got["total_auction_zero_bids"] == 0


# -- vAMM: path dependency ---------------------------------------------------------------


def bad_debt(sc: Scenario, accounts: int = 1000) -> float:
    return run_totals(Simulation(sc, accounts=accounts))["bad_debt_usd"]


def test_vamm_same_moves_other_order_other_bad_debt() -> None:
    up_down, down_up = load_scenario("vamm-up-down"), load_scenario("vamm-down-up")
    assert up_down.prices.path[0][1][-1] == down_up.prices.path[0][1][-1]  # same end price
    a, b = bad_debt(up_down), bad_debt(down_up)
    assert max(a, b) > 0
    assert abs(a - b) > 0.5 * max(a, b)
    # Closed at the oracle instead of along the curve: the order no longer matters.
    oracle = [dataclasses.replace(sc, liquidation=dataclasses.replace(sc.liquidation,
                                                                      execution="oracle"))
              for sc in (up_down, down_up)]
    assert bad_debt(oracle[0]) == bad_debt(oracle[1]) == 0


def test_vamm_fills_along_the_curve() -> None:
    v = Vamm(np.array([2000.0]), np.array([1e6]), halflife_steps=1.0)
    assert v.mark()[0] == pytest.approx(2000.0)
    # Selling 1 % of a 1e6 book moves the mark about 1 %.
    sold = v.execute(np.array([-1e6 / 2000.0]))
    assert sold[0] < 2000.0
    assert v.mark()[0] == pytest.approx(2000.0 * 0.99, rel=2e-3)
    k = (v.liquidity / v.base) ** 2
    bought = v.execute(np.array([1e6 / 2000.0]))  # buy it back: fill above the mark
    assert bought[0] > k[0]
    assert v.mark()[0] == pytest.approx(2000.0)  # the round trip restores the curve
    v.execute(np.array([-2000.0]))
    low = v.mark()[0]
    v.arbitrage(np.array([2000.0]))  # one half-life: half the log gap closed
    assert np.log(v.mark()[0] / 2000.0) == pytest.approx(0.5 * np.log(low / 2000.0))


# -- isolated beside cross margin: contagion contained ------------------------------------


def without_alt_shock(sc: Scenario) -> Scenario:
    return dataclasses.replace(sc, prices=dataclasses.replace(
        sc.prices, shocks=tuple(s for s in sc.prices.shocks if s.assets != ("ALT",))))


def final_books(sc: Scenario) -> tuple[Simulation, dict[str, float]]:
    sim = Simulation(sc, accounts=800, epochs=24)
    return sim, run_totals(sim)


def test_isolated_alt_leaves_the_majors_untouched_cross_spreads() -> None:
    cross = load_scenario("contagion")
    isolated = load_scenario("contagion-isolated")
    assert cross.prices.shocks == isolated.prices.shocks
    # Cross (today's result): the ALT collapse liquidates ETH/BTC positions.
    hit, hit_totals = final_books(cross)
    calm, calm_totals = final_books(without_alt_shock(cross))
    assert hit_totals["liquidations"] > calm_totals["liquidations"]
    assert not np.allclose(hit.position, calm.position)
    # Isolated: every ETH/BTC book and every quote balance ends exactly as without it.
    hit, hit_totals = final_books(isolated)
    calm, calm_totals = final_books(without_alt_shock(isolated))
    assert np.array_equal(hit.position, calm.position)
    assert np.array_equal(hit.cash, calm.cash)
    majors = [j for j, a in enumerate(hit.risky) if a.symbol != "ALT"]
    assert np.array_equal(hit.collateral[:, majors], calm.collateral[:, majors])
    for key in ("liquidations", "bad_debt_usd", "socialised_loss_usd", "bankruptcies"):
        assert hit_totals[key] == calm_totals[key]
    # ...while the ALT holders did lose the ALT's value.
    alt = next(j for j, a in enumerate(hit.risky) if a.symbol == "ALT")
    assert hit.oracle[alt] < 0.5 * calm.oracle[alt]


def test_isolated_collateral_backs_nothing_in_the_cross_account() -> None:
    sim = Simulation(load_scenario("contagion-isolated"), accounts=200, epochs=1)
    alt = next(j for j, a in enumerate(sim.risky) if a.symbol == "ALT")
    before = sim.account_values()
    sim.oracle[alt] *= 0.01
    after = sim.account_values()
    assert np.array_equal(before["margin_value"], after["margin_value"])
    assert np.array_equal(before["equity"], after["equity"])
    cross = Simulation(load_scenario("contagion"), accounts=200, epochs=1)
    before = cross.account_values()
    cross.oracle[alt] *= 0.01
    assert (cross.account_values()["margin_value"] < before["margin_value"]).any()


# -- MEV-aware liquidation: execution delay vs toxic flow ---------------------------------


def mev_run(capacity: float) -> tuple[Simulation, dict[str, float], np.ndarray]:
    sc = load_scenario("mev-congestion")
    sc = dataclasses.replace(sc, mev=dataclasses.replace(sc.mev, block_capacity=capacity))
    sim = Simulation(sc, accounts=1000)
    notional = sim.account_values()["notional"]
    return sim, run_totals(sim), notional


def test_mev_congestion_big_first_small_wait_then_bad_debt() -> None:
    sc = load_scenario("mev-congestion")
    sim, got, notional = mev_run(sc.mev.block_capacity)
    assert got["queued"] > 0
    small = notional <= np.quantile(notional, 0.25)
    large = notional >= np.quantile(notional, 0.75)

    def served(sim: Simulation, group: np.ndarray) -> float:
        """Share of the group's unsafe accounts that a liquidator reached."""
        ready = (sim.waited > 0) | (sim.liquidated > 0)
        return float((sim.liquidated[group & ready] > 0).mean())

    # The big liquidations land; the small underwater accounts wait, and most
    # of them are never reached before settlement finds them bankrupt.
    assert served(sim, large) > 3 * served(sim, small)
    assert got["bankruptcies"] > 0 and got["bad_debt_usd"] > 0
    # What liquidators took, split, beside what the protocol recovered.
    assert got["liquidator_rewards_usd"] == pytest.approx(
        got["priority_fees_usd"] + got["liquidator_gas_usd"] + got["liquidator_profit_usd"])
    assert got["priority_fees_usd"] > got["liquidator_profit_usd"] > 0
    assert got["protocol_recovered_usd"] > 0
    # Capacity raised: no queue, every unsafe account reached, and the bad debt
    # the queue caused is gone (what is left: accounts too small to pay for gas).
    roomy, free, _ = mev_run(0.01)
    assert free["queued"] == 0
    assert served(roomy, small) == served(roomy, large) == 1.0
    assert free["bad_debt_usd"] < 0.05 * got["bad_debt_usd"]


def test_block_space_fills_from_the_most_rewarding() -> None:
    from zksolv.engine.simulator import fill_block_space

    reward = np.array([5.0, 1.0, 9.0, 7.0, 3.0, 7.0])
    act = np.array([True, True, True, False, True, True])
    assert fill_block_space(reward, act, 2).tolist() == [False, False, True, False, False,
                                                         True]
    assert fill_block_space(reward, act, 3).tolist() == [True, False, True, False, False, True]
    assert fill_block_space(reward, act, 10).tolist() == act.tolist()
    # End to end: never more liquidations in a step than the block space holds.
    sc = load_scenario("mev-congestion")
    sim = Simulation(sc, accounts=1000, epochs=8)
    for r in sim.run():
        assert r.metrics["liquidations"] <= sim.block_capacity * sc.steps_per_epoch
    assert sim.block_capacity == int(sc.mev.block_capacity * 1000 * 300 / sc.mev.block_seconds)


# -- cross-chain collateral: bridge risk and finality latency -----------------------------


def bridge_run(finality_minutes: float) -> tuple[Simulation, dict[str, float], np.ndarray]:
    sc = load_scenario("bridge-finality")
    sc = dataclasses.replace(sc, bridge=dataclasses.replace(sc.bridge,
                                                            finality_minutes=finality_minutes))
    sim = Simulation(sc, accounts=1000)
    start = np.abs(sim.position).copy()
    totals = run_totals(sim)
    liquidated = np.any(np.abs(sim.position) < start - 1e-12, axis=1)
    return sim, totals, liquidated


def test_bridge_drop_inside_finality_window_liquidates_collateral_in_flight() -> None:
    sim, got, liquidated = bridge_run(load_scenario("bridge-finality").bridge.finality_minutes)
    assert got["bridge_sent"] > 50 and got["bridge_arrived"] == got["bridge_sent"]
    assert got["inflight_liquidations"] > 0
    assert (sim.bridged & liquidated).sum() > 0.8 * sim.bridged.sum()
    # Zero finality delay: the same top-ups land at the next step and protect.
    now, instant, liquidated_now = bridge_run(0.0)
    assert instant["inflight_liquidations"] == 0
    assert (now.bridged & liquidated_now).sum() < 0.2 * (sim.bridged & liquidated).sum()
    assert instant["liquidations"] < got["liquidations"]
    assert instant["bad_debt_usd"] < got["bad_debt_usd"]


def test_bridged_collateral_counts_only_after_finality() -> None:
    sc = load_scenario("bridge-finality")
    sc = dataclasses.replace(sc, bridge=dataclasses.replace(sc.bridge, finality_minutes=30.0))
    sim = Simulation(sc, accounts=300, epochs=1)
    assert sim.finality_steps == 6
    counters = dict.fromkeys(("liquidatable", "liquidations", "full_liquidations",
                              "liquidated_notional_usd", "penalties_usd", "stalled", "paused",
                              "breaker_steps") + sim.mechanism_counters(), 0.0)
    i = int(np.flatnonzero(sim.remote > 0)[0])
    sim.position[i] *= 40.0  # push account i under 1.5x maintenance: it sends its ETH
    vault0 = sim.vault.copy()
    sim.step(counters)
    assert sim.inflight[i] > 0 and sim.remote[i] == 0 and sim.arrival[i] == 1 + 1 + 6
    held = sim.collateral[i].copy()
    for _ in range(6):
        sim.step(counters)
        assert sim.inflight[i] > 0 and np.array_equal(sim.collateral[i], held)
    sim.step(counters)  # step 8 = 1 + 1 + 6: lands
    assert sim.inflight[i] == 0
    assert sim.collateral[i, sim.bridge_asset] > held[sim.bridge_asset]
    assert sim.vault[sim.bridge_asset] > vault0[sim.bridge_asset]
    assert all(x == 0 for x in sim.identity_residuals())


# -- identity every epoch, with every mechanism -------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    accounts=st.integers(5, 120),
    base=st.sampled_from(MECHANISM_SCENARIOS),
    drop=st.floats(-0.5, 0.8),
    auction_mode=st.booleans(),
    vamm=st.booleans(),
    mev=st.booleans(),
    bridge=st.booleans(),
    finality=st.floats(0.0, 120.0),
    capacity=st.floats(1e-4, 0.05),
    mode=st.sampled_from(("haircut", "adl", "none")),
)
def test_identity_every_epoch_with_mechanisms(seed: int, accounts: int, base: str, drop: float,
                                              auction_mode: bool, vamm: bool, mev: bool,
                                              bridge: bool, finality: float, capacity: float,
                                              mode: str) -> None:
    sc = load_scenario(base)
    risky = tuple(a.symbol for a in sc.assets if not a.quote)
    sc = dataclasses.replace(
        sc,
        steps_per_epoch=4,
        prices=dataclasses.replace(sc.prices, shocks=sc.prices.shocks + (
            Shock(1.0, 2.0, drop, risky),)),
        liquidation=dataclasses.replace(sc.liquidation,
                                        mode="auction" if auction_mode else "fixed",
                                        execution="vamm" if vamm else "oracle"),
        mev=dataclasses.replace(sc.mev, enabled=mev, block_capacity=capacity),
        bridge=dataclasses.replace(sc.bridge, enabled=bridge, asset=risky[0],
                                   finality_minutes=finality, share=0.5, size=1.0),
        insurance=dataclasses.replace(sc.insurance, socialisation=mode),
        population=dataclasses.replace(sc.population, borrow_probability=0.5)
        if auction_mode else sc.population,
    )
    sim = Simulation(sc, accounts=accounts, epochs=5, seed=seed)
    for result in sim.run():
        check_identity(sim, result.credits)


# -- determinism, snapshots, scenario files -----------------------------------------------


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("name", MECHANISM_SCENARIOS)
def test_same_seed_same_bytes(tmp_path: Path, name: str) -> None:
    sc = load_scenario(name)

    def run(out: str, seed: int) -> dict[str, bytes]:
        output.write_run(tmp_path / out, Simulation(sc, accounts=150, epochs=3, seed=seed))
        return tree_bytes(tmp_path / out)

    a, b = run("a", 11), run("b", 11)
    assert a == b
    assert "epoch-000003/accounts.csv" in a and "metrics.png" in a
    snap = open_snapshot(tmp_path / "a" / "epoch-000003")
    assert snap.validate() == 150
    assert run("c", 12)["metrics.csv"] != a["metrics.csv"]


def test_mechanism_columns_only_when_switched_on() -> None:
    calm = Simulation(load_scenario("calm"), accounts=50, epochs=1).run_epoch(1).metrics
    assert not any(k.startswith(("auction", "bridge", "vamm", "priority")) for k in calm)
    auc = Simulation(load_scenario("auction-2020-03"), accounts=50, epochs=1).run_epoch(1)
    assert "auction_zero_bids" in auc.metrics and "auctions_open" in auc.metrics
    vamm = Simulation(load_scenario("vamm-up-down"), accounts=50, epochs=1).run_epoch(1)
    assert "vamm_price_ETH" in vamm.metrics


def scenario_text(name: str) -> str:
    from importlib import resources

    return resources.files("zksolv.engine").joinpath("scenarios", f"{name}.toml").read_text()


@pytest.mark.parametrize(
    ("name", "edit", "field", "why"),
    [
        ("auction-2020-03", ('mode = "auction"', 'mode = "dutch"'), "liquidation.mode",
         "must be one of fixed, auction"),
        ("auction-2020-03", ("keepers = 20", "keepers = 2.5"), "auction.keepers",
         "must be an integer"),
        ("auction-2020-03", ("reset_below = 0.0", "reset_below = 1.5"), "auction.reset_below",
         "must be a number <= 1"),
        ("auction-2020-03", ('source = "White', 'sauce = "White'), "published[0].source",
         "missing"),
        ("vamm-up-down", ('execution = "vamm"', 'execution = "amm"'), "liquidation.execution",
         "must be one of oracle, vamm"),
        ("vamm-up-down", ("depth = 0.02", "depth = 0"), "vamm.depth", "must be a number > 0"),
        ("contagion-isolated", ('margin = "isolated"', 'margin = "walled"'), "assets[3].margin",
         "must be one of cross, isolated"),
        ("contagion-isolated", ('perp = false\nmargin = "isolated"',
                                'perp = true\nmargin = "isolated"'), "assets[3].margin",
         "cannot also be a perp market"),
        ("mev-congestion", ("block_capacity = 0.0002", "block_capacity = 0"),
         "mev.block_capacity", "must be a number > 0"),
        ("mev-congestion", ("enabled = true", "enabled = 1"), "mev.enabled", "true or false"),
        ("bridge-finality", ('asset = "ETH"', 'asset = "USDC"'), "bridge.asset",
         "must be one of ETH"),
        ("bridge-finality", ("trigger = 1.5", "trigger = 0.5"), "bridge.trigger",
         "must be a number >= 1"),
        ("contagion-isolated", ("[circuit_breaker]", '[bridge]\nenabled = true\nasset = "ALT"\n'
                                '[circuit_breaker]'), "bridge.asset", "is isolated"),
    ],
)
def test_bad_mechanism_fields_name_file_and_field(tmp_path: Path, name: str,
                                                  edit: tuple[str, str], field: str,
                                                  why: str) -> None:
    text = scenario_text(name)
    assert edit[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(InputError) as info:
        load_scenario(str(bad))
    assert info.value.where == f"{bad}: {field}"
    assert why in info.value.reason


def test_borrowers_stay_within_utilisation() -> None:
    sc = load_scenario("auction-2020-03")
    sim = Simulation(sc, accounts=2000, epochs=1)
    deposits = int(np.maximum(sim.cash, 0).sum())
    loans = int(np.maximum(-sim.cash, 0).sum())
    assert 0 < loans <= sc.population.max_utilisation * deposits
    assert sim.vault_quote > 0
    assert not sim.position.any()  # position_probability 0: nobody trades
    v = sim.account_values()
    assert (v["margin_value"] >= 0).all()  # nobody starts unsafe


def test_parse_minimal_auction_scenario() -> None:
    sc = parse_scenario(
        'name = "tiny"\n[[assets]]\nsymbol = "USD"\ndecimals = 2\nquote = true\n'
        '[[assets]]\nsymbol = "X"\ndecimals = 3\nprice = 10.0\nperp = true\nhaircut = 0.3\n'
        '[population]\ncollateral_mix = { USD = 0.5, X = 0.5 }\nposition_probability = '
        '{ X = 0.0 }\nborrow_probability = 1.0\n[liquidation]\nmode = "auction"\n'
        '[[prices.shocks]]\nstart_hour = 0\nduration_hours = 1\ndrop = 0.6\n')
    sim = Simulation(sc, accounts=60, epochs=3)
    totals = run_totals(sim)
    assert totals["auctions_started"] > 0


@pytest.mark.parametrize("name", ["contagion-isolated", "vamm-down-up"])
def test_vectorised_valuation_matches_reference(name: str) -> None:
    from zksolv.engine import reference

    sim = Simulation(load_scenario(name), accounts=200, epochs=8, seed=4)
    counters = dict.fromkeys(("liquidatable", "liquidations", "full_liquidations",
                              "liquidated_notional_usd", "penalties_usd", "stalled", "paused",
                              "breaker_steps") + sim.mechanism_counters(), 0.0)
    for _ in range(70):  # into the moves: closes, skewed vAMM, unrealised PnL
        sim.step(counters)
    fast = sim.account_values()
    marks = sim.mark_prices()
    if sim.vamm is not None:
        assert not np.allclose(marks, sim.oracle[sim.market_assets])
    for i in range(sim.n):
        ref = reference.account_values(
            int(sim.cash[i]), sim.collateral[i].tolist(), sim.position[i].tolist(),
            sim.entry[i].tolist(), sim.oracle.tolist(), sim.weights.tolist(),
            sim.units.tolist(), sim.quote_units, sim.market_assets, sim.mmf.tolist(),
            sim.margin_multiplier().tolist(), cross=sim.cross.tolist(), marks=marks.tolist())
        for key, value in ref.items():
            assert fast[key][i] == pytest.approx(value, rel=1e-12, abs=1e-6)


def test_bench_engine_mechanisms_quick_json() -> None:
    res = CliRunner().invoke(cli, ["bench", "engine", "--accounts", "200", "--epochs", "2",
                                   "--memory-accounts", "0", "--no-write", "--mechanisms",
                                   "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    for mechanism in ("auction", "vamm", "isolated", "mev", "bridge"):
        assert data[f"{mechanism}_simulate_seconds"] > 0
        assert data[f"{mechanism}_off_simulate_seconds"] > 0
        assert data[f"{mechanism}_cost_ratio"] > 0


@pytest.mark.parametrize("mechanism", ["auction", "vamm", "isolated", "mev", "bridge"])
def test_without_mechanism_switches_it_off(mechanism: str) -> None:
    from zksolv.engine.scenario import MECHANISM_SCENARIOS, without_mechanism

    name = dict(MECHANISM_SCENARIOS)[mechanism]
    off = Simulation(without_mechanism(load_scenario(name), mechanism), accounts=50, epochs=1)
    assert not off.mechanism_counters()
    assert off.vamm is None and not off.auction_mode and off.cross.all()
