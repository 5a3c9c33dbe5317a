"""The engine's debts: borrowers' loans written as debts beside their
collateral as credits, nothing netted; a debt written only as far as the
account's collateral backs it in the prover's own terms (proof units,
rounding, weights), the rest a loss; the engine's verdict is the prover's;
losses said covered are covered to the base unit (no dust); the margin, the
summary and the chart say the same thing."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_mechanisms import flat_auction_scenario, one_vault

from zksolv import units
from zksolv.cli.simulate import insolvency_lines
from zksolv.engine import output, solvency
from zksolv.engine.population import Population
from zksolv.engine.scenario import builtin_names, load_scenario
from zksolv.engine.simulator import EpochResult, Simulation, _pro_rata
from zksolv.snapshot import Asset, SnapshotHeader, open_snapshot


def run(name: str, accounts: int, epochs: int | None = None, seed: int | None = None,
        **replace: Any) -> tuple[Simulation, list[EpochResult]]:
    sc = load_scenario(name)
    if replace:
        sc = dataclasses.replace(sc, **replace)
    sim = Simulation(sc, accounts=accounts, epochs=epochs, seed=seed)
    return sim, list(sim.run())


# -- what is written -------------------------------------------------------------------


def test_borrowers_loans_are_debts_and_their_collateral_credits(tmp_path: Path) -> None:
    """auction-2020-03, calm epochs: every loan is written whole in DAI.debt,
    every ETH in full as a credit, lenders' DAI as credits; the snapshot is
    version 2 and reads back as written."""
    sim = Simulation(load_scenario("auction-2020-03"), accounts=80, epochs=3)
    results: list[EpochResult] = []
    output.write_run(tmp_path / "run", sim, lambda it: (results.append(r) or r for r in it))
    loans0 = None
    for r in results:
        assert r.header.version == 2
        assert r.header.columns == ("DAI", "DAI.debt", "ETH")
        assert [a.borrowable for a in r.header.assets] == [True, False]
        snap = open_snapshot(tmp_path / "run" / f"epoch-{r.epoch:06d}")
        assert snap.header == r.header
        rows = np.array([a for _, a in snap.iter_accounts()])
        assert np.array_equal(rows, r.amounts)
    # after the last epoch: the engine's state is what the last snapshot says
    last = rows
    assert np.array_equal(last[:, 0], np.maximum(sim.cash, 0))
    assert np.array_equal(last[:, 1], np.maximum(-sim.cash, 0))  # all backed in a calm epoch
    assert np.array_equal(last[:, 2], sim.collateral[:, 0])
    loans0 = int(last[:, 1].sum())
    assert loans0 > 0 and int(((last[:, 1] > 0) & (last[:, 2] > 0)).sum()) > 10
    m = results[-1].metrics
    assert m["unbacked_debt_usd"] == 0 and m["insolvent"] == 0
    assert m["debts_usd"] == pytest.approx(loans0 / 1e6)
    # nothing netted: every ETH the vault holds is owed to its account
    assert int(last[:, 2].sum()) == results[-1].header.assets[1].reserves


def test_scenarios_without_loans_stay_version_1() -> None:
    sim, results = run("calm", 30, epochs=2)
    assert not sim.borrowable
    for r in results:
        assert r.header.version == 1 and r.header.columns == ("USDC", "ETH", "BTC")
        assert r.amounts is r.credits and not r.debts.any()


def test_underwater_debt_is_written_up_to_its_collateral_the_rest_is_a_loss() -> None:
    """1 ETH at 2000 against 2500 of debt, nobody bidding: the snapshot
    states 2000 of debt (exactly what the ETH backs at the snapshot's price
    and haircut, to the base unit), and 500 is the protocol's loss, counted
    against the insurance fund in the DAI statement."""
    sc = flat_auction_scenario(keeper_gas_limit_gwei=1e-6)  # gas above every bot's ceiling
    sim = Simulation(sc, epochs=1, population=one_vault(2500.0, 1.0))
    r = sim.run_epoch(1)
    assert sim.in_auction[0] and sim.collateral[0, 0] == 10**9  # kicked, not sold
    qi = sc.quote_index
    assert r.debts[0, qi] == 2_000_000_000 and r.credits[0].tolist() == [0, 10**9, 0]
    assert r.metrics["unbacked_debt_usd"] == pytest.approx(500.0)
    row = r.credits[0].tolist(), r.debts[0].tolist()
    assert solvency.health_margin(*row, r.header) == 0  # exactly covered
    more = r.debts[0].copy()
    more[qi] += 1
    assert solvency.health_margin(row[0], more.tolist(), r.header) < 0  # one unit more fails
    verdict = solvency.judge(r.header, r.credits, r.debts)
    assert verdict.asset_margins[qi] == sim.fund - 500_000_000
    assert r.metrics["insolvent"] == 0  # the fund covers the loss
    # the same vault with a fund too small for the loss: refused, for 500 less the fund
    poor = dataclasses.replace(sc, insurance=dataclasses.replace(sc.insurance,
                                                                 initial_fraction=0.0001))
    sim = Simulation(poor, epochs=1, population=one_vault(2500.0, 1.0))
    r = sim.run_epoch(1)
    assert r.metrics["insolvent"] == 1 and r.metrics["assets_short"] == 1
    assert r.metrics["asset_shortfall_usd"] == pytest.approx(500.0 - sim.fund / 1e6)
    assert r.metrics["insolvent_dust"] == 0


def test_isolated_collateral_backs_no_debt() -> None:
    """Only cross collateral backs a debt: isolated BTC worth four times the
    debt backs nothing, so nothing is written and all of it is a loss (no
    fund to absorb it here)."""
    sc = flat_auction_scenario(keeper_gas_limit_gwei=1e-6)
    sc = dataclasses.replace(sc, assets=tuple(
        dataclasses.replace(a, margin_mode="isolated", perp=False) if a.symbol == "BTC" else a
        for a in sc.assets), insurance=dataclasses.replace(sc.insurance, initial_fraction=0.0))
    # 0.1 BTC (4000 USD) isolated against 1000 of debt; one lender
    pop = Population(cash=np.array([-1_000_000_000, 10**12], dtype=np.int64),
                     collateral=np.array([[0, 10**7], [0, 0]], dtype=np.int64),
                     position=np.zeros((2, 1)), entry=np.full((2, 1), 2000.0))
    sim = Simulation(sc, epochs=1, population=pop)
    r = sim.run_epoch(1)
    assert r.debts[0].sum() == 0 and r.credits[0, 2] == 10**7
    assert r.metrics["unbacked_debt_usd"] == pytest.approx(1000.0)
    assert r.metrics["insolvent"] == 1 and r.metrics["asset_shortfall_usd"] == pytest.approx(1000.0)


@st.composite
def headers_and_books(draw: st.DrawFn) -> tuple[SnapshotHeader, np.ndarray, np.ndarray, int]:
    k = draw(st.integers(2, 4))
    assets = []
    for j in range(k):
        decimals = draw(st.integers(0, 18))
        assets.append(Asset(
            symbol=f"A{j}", decimals=decimals,
            price=draw(st.one_of(st.integers(0, 10**12), st.integers(1, 10**19))),
            haircut_bps=draw(st.integers(0, 10_000)), reserves=0,
            proof_decimals=draw(st.one_of(st.none(), st.integers(0, decimals))),
            borrowable=j == 0))
    header = SnapshotHeader(1, 1, draw(st.integers(0, 10)), tuple(assets), 1)
    n = draw(st.integers(1, 12))
    credits = np.array([[draw(st.integers(0, 10**15)) for _ in range(k)] for _ in range(n)],
                       dtype=np.int64)
    credits[:, 0] = 0  # a debtor holds no credit in the asset it owes
    owed = []
    for i in range(n):  # debts at, around and far from what the credits back
        most = solvency.backed_debt_reference(10**18, credits[i].tolist(), header, 0,
                                              [True] * k)
        near = draw(st.integers(-3, 3)) * assets[0].scale + draw(st.integers(-2, 2))
        owed.append(draw(st.sampled_from([max(0, min(most + near, 10**18)), 0,
                                          draw(st.integers(0, 10**18))])))
    return header, credits, np.array(owed, dtype=np.int64), k


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers_and_books())
def test_backed_debt_fast_path_equals_reference_and_keeps_health(
        case: tuple[SnapshotHeader, np.ndarray, np.ndarray, int]) -> None:
    """Differential: the vectorised backed debt equals the exact per-account
    reference; each written debt keeps [H1] (credits up, debts down, the
    valued statement's weights), and is the largest that does (or the
    whole debt)."""
    header, credits, owed, k = case
    fast = solvency.backed_debt(owed, credits, header, 0, [True] * k)
    for i in range(owed.size):
        ref = solvency.backed_debt_reference(int(owed[i]), credits[i].tolist(), header, 0,
                                             [True] * k)
        assert int(fast[i]) == ref
        debts = [ref] + [0] * (k - 1)
        assert solvency.health_margin(credits[i].tolist(), debts, header) >= 0
        if ref < owed[i]:
            debts[0] = ref + 1
            assert solvency.health_margin(credits[i].tolist(), debts, header) < 0


def _health_by_hand(credits: list[int], debts: list[int], header: SnapshotHeader) -> Fraction:
    """[H1] in rational quote units: sum price*haircut*ceil(credit) - price*floor(debt)."""
    total = Fraction(0)
    for a, c, d in zip(header.assets, credits, debts, strict=True):
        pd = a.proven_decimals
        price = Fraction(a.price, 10**header.price_decimals)
        total += price * Fraction(a.haircut_bps, 10_000) * Fraction(
            units.liability_units(c, a.scale), 10**pd)
        total -= price * Fraction(units.receivable_units(d, a.scale), 10**pd)
    return total


@pytest.mark.parametrize("name", ["auction-2020-03", "auction-liquidity", "auction-traders"])
def test_every_written_debt_keeps_margin_health(name: str) -> None:
    """Every account of every epoch of the scenarios with loans (and the
    auction scenario with the engine's liquidity haircuts in its snapshots,
    where a debt is backed only by haircut collateral): its written debt is
    covered, by a computation independent of the engine's."""
    if name == "auction-liquidity":
        sim, results = run("auction-2020-03", 60, snapshot_haircuts="liquidity")
    elif name == "auction-traders":  # positions too: their losses are loans as well
        sc = load_scenario("auction-2020-03")
        sim, results = run("auction-2020-03", 60, population=dataclasses.replace(
            sc.population, position_probability=(("ETH", 0.5),), leverage_median=2.0,
            max_leverage=3.0))
    else:
        sim, results = run(name, 60)
    assert sim.borrowable
    written = unbacked = 0
    for r in results:
        for i in np.flatnonzero(r.debts.any(axis=1)):
            assert _health_by_hand(r.credits[i].tolist(), r.debts[i].tolist(), r.header) >= 0
            written += 1
        unbacked += r.metrics["unbacked_debt_usd"] > 0
    assert written > 0
    assert unbacked > 0  # the crash leaves vaults underwater: capped debts were met


# -- the verdict and the loss waterfall ------------------------------------------------------


def _covers(r: EpochResult) -> list[int]:
    """R_j + D_j - C_j per asset, in proof units, from the header and rows
    alone (the prover's rounding, computed here by hand)."""
    out = []
    for j, a in enumerate(r.header.assets):
        held = units.reserve_units(a.reserves, a.scale)
        owed = sum(units.liability_units(int(v), a.scale) for v in r.credits[:, j])
        lent = sum(units.receivable_units(int(v), a.scale) for v in r.debts[:, j])
        out.append(held + lent - owed)
    return out


@pytest.mark.parametrize("name", builtin_names())
def test_a_loss_the_engine_covers_leaves_reserves_covering_credits(name: str) -> None:
    """Every built-in scenario: in every epoch where the engine says each loss
    is covered (no unbacked debt, no uncovered bad debt), every asset's
    reserves and debts cover its credits in proof units; and no epoch is
    refused for dust."""
    sim, results = run(name, 60, epochs=min(load_scenario(name).epochs, 48))
    covered = 0
    for r in results:
        m = r.metrics
        assert m["insolvent_dust"] == 0, (name, m["epoch"], m["asset_shortfall_usd"])
        if m["unbacked_debt_usd"] == 0 and m["uncovered_bad_debt_usd"] == 0:
            covered += 1
            assert min(_covers(r)) >= 0, (name, m["epoch"], _covers(r))
            assert m["insolvent"] == 0
        else:  # an uncovered bad debt is always part of the unbacked debt
            assert m["unbacked_debt_usd"] >= m["uncovered_bad_debt_usd"] * (1 - 1e-12)
    assert covered > 0


@pytest.mark.parametrize("name", [n for n in builtin_names()
                                  if load_scenario(n).liquidation.mode != "auction"])
def test_without_loans_a_debt_left_after_settlement_is_a_loss(name: str) -> None:
    """Where the quote asset is not borrowable, settlement repays every debt
    from collateral: a debt left has no cross collateral to back it, so
    writing none loses no receivable."""
    sim = Simulation(load_scenario(name), accounts=120, epochs=24, seed=3)
    assert not sim.borrowable
    for r in sim.run():
        cross = sim.collateral[:, sim.cross].sum(axis=1)
        assert not ((sim.cash < 0) & (cross > 0)).any(), r.epoch


def test_cascade_socialised_loss_leaves_no_dust() -> None:
    """cascade, 300 accounts: the fund runs dry at epoch 9 and the rest is
    socialised in epochs 9 and 10. Epochs 10-12 were refused for 0.000024,
    0.000012 and 0.000008 USDC: the pro-rata haircut floored every account's
    share and left the residue uncovered. It is now taken to the unit."""
    _, results = run("cascade", 300, epochs=12)
    rows = [r.metrics for r in results]
    assert [m["epoch"] for m in rows if m["insolvent"]] == [9]
    assert rows[8]["asset_shortfall_usd"] > 100_000  # a hole, not dust
    assert rows[9]["socialised_loss_usd"] > 0
    for m in rows[9:]:
        assert m["uncovered_bad_debt_usd"] == 0 and m["unbacked_debt_usd"] == 0
        assert m["asset_shortfall_usd"] == 0 and m["solvency_margin_usd"] >= 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=40), st.integers(0, 10**15))
def test_socialisation_takes_the_loss_to_the_unit(capacity: list[int], loss: int) -> None:
    cap = np.array(capacity, dtype=np.int64)
    take = _pro_rata(cap, loss)
    assert int(take.sum()) == min(loss, int(cap.sum()))
    assert (take >= 0).all() and (take <= cap).all()
    if cap.sum():
        share = np.array([Fraction(int(c) * min(loss, int(cap.sum())), int(cap.sum()))
                          for c in cap])
        assert all(abs(Fraction(int(t)) - s) < 1 for t, s in zip(take, share, strict=True))


@pytest.mark.parametrize("name", builtin_names())
def test_margin_and_shortfall_are_one_figure(name: str) -> None:
    """solvency_margin_usd is the proven valued statement's margin: never
    negative in an epoch reported solvent, its negative part is
    snapshot_shortfall_usd, and the summary's worst valued shortfall is its
    most negative value. stress_margin_usd (the engine's liquidity weights)
    is the figure that may be negative when solvent."""
    sim, results = run(name, 60, epochs=min(load_scenario(name).epochs, 48))
    rows = [r.metrics for r in results]
    for m in rows:
        assert m["snapshot_shortfall_usd"] == max(0.0, -m["solvency_margin_usd"])
        assert m["insolvent"] == int(m["assets_short"] > 0 or m["solvency_margin_usd"] < 0)
        if not m["insolvent"]:
            assert m["solvency_margin_usd"] >= 0
        assert m["net_assets_usd"] == pytest.approx(
            m["collateral_usd"] + m["debts_usd"] - m["liabilities_usd"])
    summary = output.insolvency_summary(rows)
    worst = max(0.0, -min(m["solvency_margin_usd"] for m in rows))
    assert summary["peak_snapshot_shortfall_usd"] == worst
    if worst:
        e = summary["peak_snapshot_shortfall_epoch"]
        assert rows[e - 1]["solvency_margin_usd"] == -worst


def test_oracle_lag_margin_is_not_negative_while_solvent() -> None:
    """oracle-lag epoch 1 read solvency_margin_usd -1,208,705 with insolvent
    0: the engine's liquidity weights, not the proven statement."""
    _, results = run("oracle-lag", 300, epochs=2)
    m = results[0].metrics
    assert m["insolvent"] == 0 and m["solvency_margin_usd"] >= 0
    assert m["stress_margin_usd"] < 0  # the stress figure, stated apart


# -- what people read ------------------------------------------------------------------------


def _summary(**over: Any) -> dict[str, Any]:
    base = {"epochs": 12, "insolvent_epochs": [], "first_insolvent_epoch": None,
            "insolvent_dust_epochs": [], "peak_snapshot_shortfall_usd": 0.0,
            "peak_snapshot_shortfall_epoch": None, "peak_asset_shortfall_usd": 0.0,
            "peak_asset_shortfall_epoch": None, "peak_unbacked_debt_usd": 0.0,
            "peak_unbacked_debt_epoch": None, "insurance_exhausted_epoch": None,
            "first_stalled_epoch": None}
    return {**base, **over}


def test_summary_lines_tell_dust_from_holes_and_engine_failures_from_refusals() -> None:
    lines = insolvency_lines(_summary())
    assert lines == ["insolvent epochs  none: every snapshot is provable",
                     "engine failures   none"]
    lines = insolvency_lines(_summary(
        insolvent_epochs=[9, 10], first_insolvent_epoch=9, insolvent_dust_epochs=[10],
        peak_asset_shortfall_usd=425_000.0, peak_asset_shortfall_epoch=9,
        insurance_exhausted_epoch=9, first_stalled_epoch=8))
    text = "\n".join(lines)
    assert "2 of 12, first 9 (prove refuses them, exit 3): 9, 10" in text
    assert "worst per-asset shortfall 425,000.00 USD at epoch 9" in text
    assert "short in some asset only: in value, reserves covered liabilities" in text
    assert "epoch None" not in text
    assert "of which dust   10: short by less than 0.01 USD, a rounding residue" in text
    assert ("engine failures   insurance fund exhausted at epoch 9; first stalled liquidation "
            "at epoch 8") in text
    lines = insolvency_lines(_summary(final_debts_usd=1.5e6, peak_unbacked_debt_usd=2e3,
                                      peak_unbacked_debt_epoch=7))
    assert any("1,500,000.00 USD owed by borrowers" in ln and "peak 2,000.00 USD at epoch 7" in ln
               for ln in lines)


def test_simulate_prints_debts_and_engine_failures(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from zksolv.cli.main import cli

    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "auction-2020-03", "--accounts",
                                   "40", "--out", str(out), "--no-snapshots"])
    assert res.exit_code == 0, res.output
    run_ = json.loads((out / "metrics.json").read_text())["run"]
    assert run_["final_debts_usd"] > 0 and run_["first_insolvent_epoch"] == 48
    assert run_["insurance_exhausted_epoch"] == 48 and run_["peak_unbacked_debt_epoch"]
    assert "USD owed by borrowers and backed by their collateral at the end" in res.output
    assert "engine failures   insurance fund exhausted at epoch 48" in res.output


def _chart_rows() -> list[dict[str, Any]]:
    _, results = run("cascade", 300, epochs=12)
    rows = [dict(r.metrics) for r in results]
    rows[10]["insolvent"] = rows[10]["insolvent_dust"] = 1  # a residue, for the hatch
    rows[10]["asset_shortfall_usd"] = 0.000024
    return rows


def test_chart_marks_engine_failures_apart_and_keeps_legends_off_the_data() -> None:
    import matplotlib.pyplot as plt

    rows = _chart_rows()
    fig = output.metrics_figure(rows, "cascade")
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        panels = [ax.get_window_extent(renderer) for ax in fig.axes]
        legends = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes]
        legends += [lg.get_window_extent(renderer) for lg in fig.legends]
        for box in legends:
            assert not any(box.overlaps(panel) for panel in panels), box
        keys = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
        assert "insolvent: prove refuses (exit 3): a hole" in keys
        assert any("rounding residue" in k and "dust, not a hole" in k for k in keys)
        assert "engine: insurance fund exhausted (epoch 9)" in keys
        assert "engine: first stalled liquidation (epoch 9)" in keys
        for ax in fig.axes:
            spans = {(round(p.get_x() + p.get_width() / 2), p.get_hatch())
                     for p in ax.patches if p.get_width() == pytest.approx(1.0)
                     and p.get_facecolor()[3] < 0.5}
            assert (9, None) in spans and (11, "///") in spans
            marks = {(line.get_xdata()[0], line.get_linestyle()) for line in ax.get_lines()
                     if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]}
            assert (9, "-.") in marks and (9, ":") in marks
    finally:
        plt.close(fig)
