"""The margin engine: a vectorised cross-margin perpetual-futures protocol.

State (``n`` accounts, ``R`` non-quote assets, ``M`` perp markets):

- ``cash_i``          quote balance in base units, int64, may be negative (debt);
- ``c_ij``            collateral token units held for account ``i``, int64 >= 0;
- ``q_im``, ``e_im``  signed perp size (whole tokens) and entry price;
- vault holdings ``V_j`` per asset in base units, and insurance fund ``F``
  (quote base units, held inside the vault).

Valuation at the *oracle* price ``P`` (the engine never sees the true price):

    upnl_i  = sum_m q_im (P_m - e_im)
    E_i     = cash_i + sum_j c_ij P_j + upnl_i                (equity)
    W_i     = cash_i + sum_j c_ij P_j w_j + upnl_i            (margin value)
    MM_i    = sum_m |q_im| P_m mmf_m k_m (1 + z |q_im| P_m / d_m)   (maintenance)

``w_j = clip(1 - haircut_j - liquidity_haircut_j * H_j / D_j, 0, 1)`` is the
liquidity-adjusted collateral weight (``H_j`` vault holdings value, ``D_j`` the
book depth for a 100% move), refreshed each epoch. ``k_m`` is 1, or with
dynamic margin ``clip(sigma_hat_m / sigma_m, 1, max_multiplier)`` where
``sigma_hat`` is an EWMA of the oracle's realised volatility. The size term
(``z`` = ``size_weight``, default 0) charges concentrated positions more:
``|q| P / d_m`` is the price move, in percent, that closing the position alone
would cause (``d_m = D_m / 100``, the notional that moves the price 1%).

Each step: impact decays; the true price is the exogenous path times the impact
factor; the oracle publishes the true price from ``latency`` steps ago when it
deviates from the last published one by ``deviation`` or the heartbeat
expires; accounts with ``W_i < MM_i`` are flagged; liquidators arrive
``latency`` steps after the flag and close a fraction ``f`` (``partial_fraction``,
or 1 if ``W_i < full_below_ratio * MM_i``) of every position at the oracle
price, charging a penalty ``min(fee * f * notional_i, max(E_i, 0))`` with
``fee = clip(penalty * (1 + s * max(0, sigma_hat / sigma - 1)), penalty,
penalty_max)`` (dynamic fee). A liquidator acts only if its share of the
penalty exceeds the gas cost ``gas_gwei * 1e-9 * gas_per_liquidation *
P_gas_token``; the rest of the penalty goes to the insurance fund. The closing
flow moves the market: ``log impact_m += log(1 + flow_m / D_m)``, clipped, then
decays with the configured half-life. A circuit breaker, if enabled, pauses
liquidations in any step where an oracle price diverges from the market by
more than ``divergence``.

Positions trade against an external venue; the vault carries the mirror
hedge, so every PnL the accounts realise is paid to or by the vault. At the end
of each epoch (settlement):

1. PnL is settled at the oracle price: ``cash_i += upnl_i``, ``e_im = P_m``;
2. accounts with ``cash_i < 0`` sell collateral (vault sells on the market,
   with slippage) until the debt is repaid or the collateral is gone;
3. accounts still with ``E_i < 0`` are bankrupt: the backstop closes their
   positions and their debt is bad debt;
4. the insurance fund absorbs bad debt; what it cannot absorb is socialised by
   the configured mode (``haircut``: pro rata on profitable accounts' positive
   cash, capped by their cumulative profit, to the base unit; ``adl``: profitable accounts in
   order of profit x leverage, whose positions are closed; ``none``); what is
   left stays on the accounts as uncovered bad debt.

Accounting identity, exact in integer base units at the end of every epoch::

    V_j        = sum_i c_ij                     for every non-quote asset j
    V_quote    = sum_i cash_i + F

and hence, valued at oracle prices (``docs/engine.md``)::

    sum_j V_j P_j = sum_i max(E_i, 0) + F - U,    U = sum_i max(-E_i, 0)

Mechanisms a scenario may switch on (all off by default; equations and tags
in ``docs/engine.md``): Dutch collateral auctions with keepers instead of the
fixed close (``liquidation.mode = "auction"``, ``auction.py``, [A1]-[A4]);
positions marked and closed on a constant-product vAMM
(``liquidation.execution = "vamm"``, ``vamm.py``, [V1]-[V3]); isolated
collateral assets that back nothing in the cross account ([I1]); priority-fee
liquidation in limited block space (``[mev]``, [M1]-[M3]); collateral bridged
from a second chain, counted after a finality delay (``[bridge]``, [B1]-[B3]).
Every one of them moves value in the same integers on both sides of the
identity above.

The snapshot of an epoch states, nothing netted, each account's credits (quote
``max(cash_i, 0)`` and every collateral token) and, when the quote asset is
borrowable (auctions or borrowers: loans that stay open), its debt
``-cash_i`` only as far as its cross collateral backs it in the snapshot's
own margin-health terms (``solvency.py`` [H1]); the rest is the protocol's
loss (``unbacked_debt_usd``). The epoch's ``insolvent`` flag is the prover's
verdict on that snapshot ([S1], [S2]), computed in proof units.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from zksolv.engine import auction, solvency
from zksolv.engine.paths import MINUTES_PER_YEAR, gas_path, price_path
from zksolv.engine.population import Population, generate_population
from zksolv.engine.scenario import Scenario
from zksolv.engine.vamm import Vamm
from zksolv.snapshot import HAIRCUT_SCALE, MAX_AMOUNT, Asset, SnapshotHeader

MAX_IMPACT_PER_STEP = 0.5


@dataclass(frozen=True)
class EpochResult:
    """One settled epoch: its metrics row, snapshot header and, per account
    and asset (int64, shape ``(n, assets)``, columns in scenario asset
    order), what the protocol owes the account (``credits``) and the debt
    the snapshot states the account owes it (``debts``: zero but in the
    borrowable asset's column). ``amounts`` are the snapshot's rows, in
    ``header.columns`` order."""

    epoch: int
    metrics: dict[str, float | int]
    header: SnapshotHeader
    credits: np.ndarray
    debts: np.ndarray

    @property
    def amounts(self) -> np.ndarray:
        if not any(a.borrowable for a in self.header.assets):
            return self.credits
        cols = []
        for j, a in enumerate(self.header.assets):
            cols.append(self.credits[:, j])
            if a.borrowable:
                cols.append(self.debts[:, j])
        return np.column_stack(cols)


def credits_in_kind(cash: np.ndarray, collateral: np.ndarray, quote_index: int) -> np.ndarray:
    """What the protocol owes each account, per asset, nothing netted: quote
    ``max(cash_i, 0)`` and every collateral token it holds for the account.
    A negative ``cash_i`` is a debt, stated apart (``solvency.backed_debt``)."""
    n, r = collateral.shape
    out = np.empty((n, r + 1), dtype=np.int64)
    out[:, quote_index] = np.maximum(cash, 0)
    out[:, [c for c in range(r + 1) if c != quote_index]] = collateral
    return out


def _sequential_cover(amounts: np.ndarray, total: int) -> np.ndarray:
    """Split an integer ``total`` over ``amounts`` in order, each capped by
    its amount (first come, first served)."""
    if total <= 0 or amounts.size == 0:
        return np.zeros_like(amounts)
    before = np.cumsum(amounts) - amounts
    return np.clip(total - before, 0, amounts)


def _pro_rata(capacity: np.ndarray, total: int) -> np.ndarray:
    """Take exactly ``min(total, sum capacity)`` base units from ``capacity``
    (int64 >= 0), each account the same fraction of its capacity to within
    one unit: floors first, then one more unit each to the largest
    remainders (ties in account order). Floors alone left a residue of up
    to one unit per account uncovered: dust that the prover refused."""
    cap_total = int(capacity.sum())
    want = min(total, cap_total)
    if want <= 0:
        return np.zeros_like(capacity)
    exact = capacity * (want / cap_total)
    take = np.minimum(np.floor(exact).astype(np.int64), capacity)
    short = want - int(take.sum())
    if short > 0:
        room = capacity - take
        order = np.argsort(-np.where(room > 0, exact - take, -np.inf), kind="stable")
        one = np.zeros_like(take)
        one[order[:short]] = 1
        take += np.minimum(one, room)
        take[order] += _sequential_cover((capacity - take)[order], want - int(take.sum()))
    elif short < 0:  # float rounding took a unit too many somewhere
        order = np.argsort(-take, kind="stable")
        take[order] -= _sequential_cover(take[order], -short)
    return take


def fill_block_space(reward: np.ndarray, act: np.ndarray, capacity: int) -> np.ndarray:
    """Which of the willing liquidations (``act``) land when only ``capacity``
    fit: liquidators bid priority fees that grow with their reward, so the
    block fills from the most rewarding down (ties in account order)."""
    order = np.argsort(-np.where(act, reward, -np.inf), kind="stable")
    keep = np.zeros_like(act)
    keep[order[:capacity]] = True
    return keep & act


class Simulation:
    """Run a scenario epoch by epoch; ``run()`` yields :class:`EpochResult`."""

    def __init__(self, scenario: Scenario, *, accounts: int | None = None,
                 epochs: int | None = None, seed: int | None = None,
                 population: Population | None = None) -> None:
        sc = scenario
        self.scenario = sc
        self.seed = sc.seed if seed is None else seed
        self.epochs = sc.epochs if epochs is None else epochs
        self.steps_per_epoch = sc.steps_per_epoch
        self.n_steps = self.epochs * self.steps_per_epoch
        # A fourth stream (bridge holdings) leaves the first three unchanged.
        seeds = np.random.SeedSequence(self.seed).spawn(4)
        rng_price, rng_gas, rng_pop, rng_bridge = (np.random.Generator(np.random.PCG64(s))
                                                   for s in seeds)

        self.risky = [a for a in sc.assets if not a.quote]
        self.quote = sc.assets[sc.quote_index]
        self.market_assets = [j for j, a in enumerate(self.risky) if a.perp]
        self.units = np.array([10.0**a.decimals for a in self.risky])
        self.quote_units = 10.0**self.quote.decimals
        self.base_path = price_path(sc, self.n_steps, rng_price)
        self.gas_gwei = gas_path(sc, self.n_steps, rng_gas)
        gas_sym = sc.gas.token
        self.gas_token = next((j for j, a in enumerate(self.risky) if a.symbol == gas_sym), None)

        pop = population if population is not None else generate_population(
            sc, sc.accounts if accounts is None else accounts, rng_pop)
        self.n = pop.cash.shape[0]
        self.cash = pop.cash.astype(np.int64).copy()
        self.collateral = pop.collateral.astype(np.int64).copy()
        self.position = pop.position.astype(np.float64).copy()
        self.entry = pop.entry.astype(np.float64).copy()
        self.pnl = np.zeros(self.n, dtype=np.int64)  # cumulative realised PnL, quote units

        self.vault = self.collateral.sum(axis=0).astype(np.int64)
        deposits_usd = self.cash.sum() / self.quote_units + float(
            self.vault @ (self.base_path[0] / self.units))
        self.fund = int(sc.insurance.initial_fraction * deposits_usd * self.quote_units)
        self.vault_quote = int(self.cash.sum()) + self.fund

        # Book depth D_j: notional for a 100% move = book_depth * 100 * initial exposure.
        p0 = self.base_path[0]
        exposure = self.vault * p0 / self.units
        oi_usd = np.abs(self.position).sum(axis=0) * p0[self.market_assets]
        for col, j in enumerate(self.market_assets):
            exposure[j] += float(oi_usd[col])
        exposure = np.maximum(exposure, 1.0)
        self.depth = np.array([a.book_depth for a in self.risky]) * 100.0 * exposure
        self.depth_1pct_markets = self.depth[self.market_assets] / 100.0

        self.imf = np.array([self.risky[j].initial_margin for j in self.market_assets])
        self.mmf = np.array([self.risky[j].maintenance_margin for j in self.market_assets])
        self.sigma_ref = np.array([max(a.volatility, 1e-9) for a in self.risky])
        self.var_hat = self.sigma_ref**2
        hl_steps = sc.margin.vol_halflife_hours * 60.0 / sc.step_minutes
        self.ewma = math.exp(-math.log(2.0) / max(hl_steps, 1e-9))
        self.impact_decay = math.exp(-math.log(2.0) * sc.step_minutes / 60.0
                                     / sc.liquidation.impact_halflife_hours)
        self.oracle_latency = int(round(sc.oracle.latency_minutes / sc.step_minutes))
        self.heartbeat = max(1, int(round(sc.oracle.heartbeat_minutes / sc.step_minutes)))
        self.liq_latency = int(round(sc.liquidation.latency_minutes / sc.step_minutes))

        self.impact_log = np.zeros(len(self.risky))
        self.true_hist = np.zeros((self.n_steps + 1, len(self.risky)))
        self.true_hist[0] = p0
        self.oracle = p0.copy()
        self.oracle_updated = np.zeros(len(self.risky), dtype=np.int64)
        self.flagged_at = np.full(self.n, -1, dtype=np.int64)
        self.uncovered_prev = 0
        self.t = 0
        # Isolated assets back nothing in the cross account (docs/engine.md, isolated margin).
        self.cross = np.array([a.margin_mode == "cross" for a in self.risky])
        self.cross_value = self.cross.astype(np.float64)
        self.weights = self._collateral_weights()
        self.waited = np.zeros(self.n, dtype=np.int64)  # steps ready but not liquidated
        self.liquidated = np.zeros(self.n, dtype=np.int64)  # liquidations per account
        self._init_mechanisms(rng_bridge)

    def _init_mechanisms(self, rng_bridge: np.random.Generator) -> None:
        sc = self.scenario
        self.auction_mode = sc.liquidation.mode == "auction"
        # Loans stay open across epochs only with auctions (settlement
        # auto-repays otherwise) or borrowers: then the quote asset is
        # borrowable and its debts are written (docs/engine.md).
        self.borrowable = self.auction_mode or sc.population.borrow_probability > 0
        if self.auction_mode:
            self.keeper_gas, self.keeper_discount = auction.keeper_book(sc.auction)
            self.in_auction = np.zeros(self.n, dtype=bool)
            self.auction_start = np.zeros(self.n, dtype=np.int64)
            self.auction_top = np.zeros((self.n, len(self.risky)))
            self.auction_tab = np.zeros(self.n, dtype=np.int64)
            self.auction_debt = np.zeros(self.n, dtype=np.int64)
        self.vamm: Vamm | None = None
        if sc.liquidation.execution == "vamm":
            p0 = self.base_path[0][self.market_assets]
            oi_usd = np.abs(self.position).sum(axis=0) * p0
            hl = sc.vamm.arbitrage_halflife_hours * 60.0 / sc.step_minutes
            self.vamm = Vamm(p0, sc.vamm.depth * np.maximum(oi_usd, 1.0), hl)
        self.block_capacity = 0
        if sc.mev.enabled:
            blocks = sc.step_minutes * 60.0 / sc.mev.block_seconds
            per_step = sc.mev.block_capacity * self.n * blocks
            self.block_capacity = max(1, int(per_step))
        self.bridge_asset: int | None = None
        if sc.bridge.enabled:
            b = sc.bridge
            self.bridge_asset = next(j for j, a in enumerate(self.risky) if a.symbol == b.asset)
            j = self.bridge_asset
            equity = self.account_values()["equity"]
            holds = rng_bridge.random(self.n) < b.share
            self.remote = np.where(holds, np.floor(np.maximum(equity, 0.0) * b.size
                                                   / self.oracle[j] * self.units[j]),
                                   0).astype(np.int64)
            self.inflight = np.zeros(self.n, dtype=np.int64)
            self.arrival = np.full(self.n, -1, dtype=np.int64)
            self.bridged = np.zeros(self.n, dtype=bool)  # sent collateral at some point
            self.finality_steps = int(round(b.finality_minutes / sc.step_minutes))

    # -- valuation -----------------------------------------------------------------

    def _collateral_weights(self) -> np.ndarray:
        held = self.vault * self.oracle / self.units
        base = np.array([a.haircut for a in self.risky])
        liq = np.array([a.liquidity_haircut for a in self.risky])
        return np.clip(1.0 - base - liq * held / self.depth, 0.0, 1.0)

    def vol_ratio(self) -> np.ndarray:
        return np.sqrt(self.var_hat) / self.sigma_ref

    def margin_multiplier(self) -> np.ndarray:
        if not self.scenario.margin.dynamic:
            return np.ones(len(self.market_assets))
        ratio = self.vol_ratio()[self.market_assets]
        return np.clip(ratio, 1.0, self.scenario.margin.max_multiplier)

    def liquidation_fee(self) -> float:
        lq = self.scenario.liquidation
        stress = float(np.max(np.maximum(self.vol_ratio()[self.cross] - 1.0, 0.0), initial=0.0))
        return float(np.clip(lq.penalty * (1.0 + lq.penalty_vol_scaling * stress),
                             lq.penalty, lq.penalty_max))

    def mark_prices(self) -> np.ndarray:
        """Where positions are valued: the oracle, or the vAMM's mark."""
        if self.vamm is not None:
            return self.vamm.mark()
        return self.oracle[self.market_assets]

    def account_values(self) -> dict[str, np.ndarray]:
        """Equity, margin value, maintenance and notional per account (USD),
        over the cross account (isolated collateral left out)."""
        pm = self.mark_prices()
        upnl = (self.position * (pm - self.entry)).sum(axis=1)
        cash_usd = self.cash / self.quote_units
        coll = self.collateral @ (self.oracle * self.cross_value / self.units)
        coll_w = self.collateral @ (self.oracle * self.weights * self.cross_value / self.units)
        notional = np.abs(self.position) * pm
        requirement = notional * (self.mmf * self.margin_multiplier())
        size_weight = self.scenario.margin.size_weight
        if size_weight:
            requirement *= 1.0 + size_weight * notional / self.depth_1pct_markets
        return {
            "equity": cash_usd + coll + upnl,
            "margin_value": cash_usd + coll_w + upnl,
            "maintenance": requirement.sum(axis=1),
            "notional": notional.sum(axis=1),
        }

    def gas_cost_usd(self, t: int) -> float:
        # Gas paid in the quote asset (gas_token None) costs its face value.
        price = 1.0 if self.gas_token is None else float(self.true_hist[t, self.gas_token])
        return self.gas_gwei[t] * 1e-9 * self.scenario.gas.gas_per_liquidation * price

    # -- one step ------------------------------------------------------------------

    def _advance_prices(self) -> None:
        self.t += 1
        t = self.t
        self.impact_log *= self.impact_decay
        self.true_hist[t] = self.base_path[t] * np.exp(self.impact_log)
        observed = self.true_hist[max(0, t - self.oracle_latency)]
        dev = np.abs(observed / self.oracle - 1.0)
        update = (dev >= self.scenario.oracle.deviation) | (
            t - self.oracle_updated >= self.heartbeat)
        prev = self.oracle.copy()
        self.oracle = np.where(update, observed, self.oracle)
        self.oracle_updated = np.where(update, t, self.oracle_updated)
        ret = np.log(self.oracle / prev)
        dt = self.scenario.step_minutes / MINUTES_PER_YEAR
        self.var_hat = self.ewma * self.var_hat + (1.0 - self.ewma) * ret**2 / dt

    def _apply_impact(self, flow_units: np.ndarray) -> None:
        """``flow_units`` signed token flow per risky asset (+ buy, - sell)."""
        frac = flow_units * self.true_hist[self.t] / self.depth
        frac = np.clip(frac, -MAX_IMPACT_PER_STEP, MAX_IMPACT_PER_STEP)
        self.impact_log += np.log1p(frac)
        self.true_hist[self.t] = self.base_path[self.t] * np.exp(self.impact_log)

    def _close(self, idx: np.ndarray, frac: np.ndarray, fee_units: np.ndarray,
               liquidator_units: np.ndarray) -> np.ndarray:
        """Close ``frac`` of every position of accounts ``idx`` at the oracle
        price (or, with a vAMM, at the curve's fill); return the signed token
        flow the close sends to the spot market, per risky asset."""
        closed = self.position[idx] * frac[:, None]
        if self.vamm is not None:
            price = self.vamm.execute(-closed.sum(axis=0))  # closing a long sells base
        else:
            price = self.oracle[self.market_assets]
        realised = np.rint((closed * (price - self.entry[idx])).sum(axis=1)
                           * self.quote_units).astype(np.int64)
        self.position[idx] -= closed
        self.cash[idx] += realised - fee_units
        self.pnl[idx] += realised - fee_units
        self.vault_quote += int(realised.sum()) - int(liquidator_units.sum())
        self.fund += int(fee_units.sum()) - int(liquidator_units.sum())
        flow = np.zeros(len(self.risky))
        if self.vamm is None:  # a vAMM absorbs the flow on its own curve
            flow[self.market_assets] = -closed.sum(axis=0)
        return flow

    def step(self, counters: dict[str, float]) -> None:
        """One step: prices and oracle, bridge arrivals, vAMM arbitrage,
        valuation, liquidation (fixed or auction kicks), auction bids, bridge
        top-ups."""
        self._advance_prices()
        if self.bridge_asset is not None:
            self._bridge_arrivals(counters)
        if self.vamm is not None:
            self.vamm.arbitrage(self.true_hist[self.t][self.market_assets])
        v = self.account_values()
        self._liquidate(v, counters)
        if self.auction_mode:
            self._auction_bids(counters)
        if self.bridge_asset is not None:
            self._bridge_topups(v, counters)

    def _liquidate(self, v: dict[str, np.ndarray], counters: dict[str, float]) -> None:
        t = self.t
        lq = self.scenario.liquidation
        if self.auction_mode:  # a collateral-debt account is unsafe with no position too
            debt = self.cash < 0
            liquidatable = ((v["maintenance"] > 0) | debt) & (
                v["margin_value"] < v["maintenance"]) & ~self.in_auction
        else:
            liquidatable = (v["maintenance"] > 0) & (v["margin_value"] < v["maintenance"])
        self.flagged_at = np.where(liquidatable,
                                   np.where(self.flagged_at < 0, t, self.flagged_at), -1)
        counters["liquidatable"] += int(liquidatable.sum())
        ready = liquidatable & (t - self.flagged_at >= self.liq_latency)
        if not ready.any():
            return
        if self.scenario.breaker.enabled:
            divergence = np.max(np.abs(self.oracle / self.true_hist[t] - 1.0))
            if divergence > self.scenario.breaker.divergence:
                counters["breaker_steps"] += 1
                counters["paused"] += int(ready.sum())
                self.waited[ready] += 1
                return
        if self.auction_mode:
            self._auction_kick(np.flatnonzero(ready), counters)
            return
        idx = np.flatnonzero(ready)
        frac = np.where(v["margin_value"][idx] < lq.full_below_ratio * v["maintenance"][idx],
                        1.0, lq.partial_fraction)
        fee_usd = np.minimum(self.liquidation_fee() * frac * v["notional"][idx],
                             np.maximum(v["equity"][idx], 0.0))
        reward = lq.liquidator_share * fee_usd
        gas = self.gas_cost_usd(t)
        act = reward > gas
        counters["stalled"] += int((~act).sum())
        capacity = self.block_capacity or lq.max_per_step
        if capacity and act.sum() > capacity:
            keep = fill_block_space(reward, act, capacity)
            queued = act & ~keep
            counters["stalled"] += int(queued.sum())
            if self.block_capacity:
                counters["queued"] += int(queued.sum())
            act = keep
        self.waited[idx[~act]] += 1
        if not act.any():
            return
        idx, frac, fee_usd = idx[act], frac[act], fee_usd[act]
        self.liquidated[idx] += 1
        fee_units = np.floor(fee_usd * self.quote_units).astype(np.int64)
        liq_units = np.floor(fee_units * lq.liquidator_share).astype(np.int64)
        counters["liquidations"] += int(idx.size)
        counters["full_liquidations"] += int((frac >= 1.0).sum())
        counters["liquidated_notional_usd"] += float((frac * v["notional"][idx]).sum())
        counters["penalties_usd"] += float(fee_units.sum()) / self.quote_units
        if self.block_capacity:
            rewards = liq_units / self.quote_units
            priority = self.scenario.mev.bid_share * np.maximum(rewards - gas, 0.0)
            counters["liquidator_rewards_usd"] += float(rewards.sum())
            counters["priority_fees_usd"] += float(priority.sum())
            counters["liquidator_gas_usd"] += gas * idx.size
            counters["liquidator_profit_usd"] += float((rewards - gas - priority).sum())
            counters["protocol_recovered_usd"] += float((fee_units - liq_units).sum()
                                                        ) / self.quote_units
        if self.bridge_asset is not None:
            counters["inflight_liquidations"] += int((self.inflight[idx] > 0).sum())
        self._apply_impact(self._close(idx, frac, fee_units, liq_units))
        self.flagged_at[idx[frac >= 1.0]] = -1

    # -- auctions (liquidation.mode = "auction"; zksolv/engine/auction.py) --------------

    def _auction_kick(self, idx: np.ndarray, counters: dict[str, float]) -> None:
        """[A1] close the positions, seize the collateral, open the auction."""
        zeros = np.zeros(idx.size, dtype=np.int64)
        if self.position[idx].any():
            self._apply_impact(self._close(idx, np.ones(idx.size), zeros, zeros))
        debt = np.maximum(-self.cash[idx], 0)
        has_lot = (debt > 0) & (self.collateral[idx].sum(axis=1) > 0)
        self.flagged_at[idx] = -1
        idx, debt = idx[has_lot], debt[has_lot]
        if idx.size == 0:
            return
        self.in_auction[idx] = True
        self.auction_start[idx] = self.t
        self.auction_top[idx] = self.oracle * self.scenario.auction.start_premium
        self.auction_debt[idx] = debt
        self.auction_tab[idx] = debt + np.floor(debt * self.scenario.auction.penalty
                                                ).astype(np.int64)
        counters["auctions_started"] += int(idx.size)
        self.liquidated[idx] += 1
        counters["liquidations"] += int(idx.size)  # a kick is a full liquidation
        counters["full_liquidations"] += int(idx.size)
        counters["auction_debt_usd"] += float(debt.sum()) / self.quote_units
        if self.bridge_asset is not None:
            counters["inflight_liquidations"] += int((self.inflight[idx] > 0).sum())

    def _auction_bids(self, counters: dict[str, float]) -> None:
        """[A2]-[A4] prices fall; the best active keeper buys when it pays."""
        idx = np.flatnonzero(self.in_auction)
        if idx.size == 0:
            return
        sc = self.scenario
        t = self.t
        factor = auction.price_factor((t - self.auction_start[idx]) * sc.step_minutes,
                                      sc.auction.duration_minutes)
        if sc.auction.reset_below > 0:
            reset = factor < sc.auction.reset_below
            if reset.any():
                self.auction_start[idx[reset]] = t
                self.auction_top[idx[reset]] = self.oracle * sc.auction.start_premium
                factor[reset] = 1.0
                counters["auction_resets"] += int(reset.sum())
        discount = auction.best_discount(float(self.gas_gwei[t]), self.keeper_gas,
                                         self.keeper_discount)
        if discount is None:
            return
        tokens = self.collateral[idx] / self.units
        ask = (tokens * self.auction_top[idx]).sum(axis=1) * factor
        worth = tokens @ self.true_hist[t]
        tab = self.auction_tab[idx] / self.quote_units
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(ask > 0, np.minimum(1.0, tab / ask), 1.0)
        take = (ask <= (1.0 - discount) * worth) & (x * (worth - ask) > self.gas_cost_usd(t))
        if not take.any():
            return
        idx, x, ask, worth = idx[take], x[take], ask[take], worth[take]
        bought = np.where((x >= 1.0)[:, None], self.collateral[idx],
                          np.floor(self.collateral[idx] * x[:, None])).astype(np.int64)
        paid = np.minimum(np.floor(x * ask * self.quote_units).astype(np.int64),
                          self.auction_tab[idx])
        self.collateral[idx] -= bought
        self.vault -= bought.sum(axis=0)
        self.cash[idx] += paid
        self.vault_quote += int(paid.sum())
        chop = np.clip(self.cash[idx], 0, self.auction_tab[idx] - self.auction_debt[idx])
        self.cash[idx] -= chop
        self.fund += int(chop.sum())
        self.in_auction[idx] = False
        sold_worth = x * worth
        zero = paid / self.quote_units <= auction.NEAR_ZERO_BID * sold_worth
        counters["auctions_cleared"] += int(idx.size)
        counters["auction_collateral_usd"] += float(sold_worth.sum())
        counters["auction_proceeds_usd"] += float(paid.sum()) / self.quote_units
        counters["auction_penalties_usd"] += float(chop.sum()) / self.quote_units
        counters["auction_zero_bids"] += int(zero.sum())
        counters["auction_zero_bid_collateral_usd"] += float(sold_worth[zero].sum())
        counters["keeper_profit_usd"] += float((sold_worth - paid / self.quote_units).sum()
                                               - self.gas_cost_usd(t) * idx.size)

    # -- cross-chain collateral (bridge) ----------------------------------------------------

    def _bridge_arrivals(self, counters: dict[str, float]) -> None:
        """Collateral whose finality delay has passed lands in the vault."""
        j = self.bridge_asset
        assert j is not None
        land = (self.inflight > 0) & (self.arrival <= self.t)
        if not land.any():
            return
        amount = self.inflight[land]
        self.collateral[land, j] += amount
        self.vault[j] += int(amount.sum())
        self.inflight[land] = 0
        self.arrival[land] = -1
        counters["bridge_arrived"] += int(land.sum())

    def _bridge_topups(self, v: dict[str, np.ndarray], counters: dict[str, float]) -> None:
        """Accounts near maintenance send their second-chain collateral; it
        counts from step ``t + 1 + finality``."""
        trigger = self.scenario.bridge.trigger
        send = (self.remote > 0) & (v["maintenance"] > 0) & (
            v["margin_value"] < trigger * v["maintenance"])
        if not send.any():
            return
        self.inflight[send] = self.remote[send]
        self.remote[send] = 0
        self.arrival[send] = self.t + 1 + self.finality_steps
        self.bridged |= send
        counters["bridge_sent"] += int(send.sum())

    # -- settlement ----------------------------------------------------------------

    def _settle(self, counters: dict[str, float]) -> None:
        pm = self.mark_prices()
        upnl = np.rint((self.position * (pm - self.entry)).sum(axis=1)
                       * self.quote_units).astype(np.int64)
        self.cash += upnl
        self.pnl += upnl
        self.vault_quote += int(upnl.sum())
        self.entry[:] = pm

        # Auto-repay: sell collateral of accounts in debt, asset by asset (cross
        # assets only). With auctions, a debt is a loan: collateral is sold only
        # by an auction.
        flow = np.zeros(len(self.risky))
        for j in range(len(self.risky)):
            if self.auction_mode or not self.cross[j]:
                continue
            debtor = np.flatnonzero((self.cash < 0) & (self.collateral[:, j] > 0))
            if debtor.size == 0:
                continue
            price = self.oracle[j]
            debt_usd = -self.cash[debtor] / self.quote_units
            want = np.minimum(debt_usd, self.collateral[debtor, j] / self.units[j] * price)
            slip = min(0.5, 0.5 * float(want.sum()) / self.depth[j])
            exec_price = price * (1.0 - slip)
            need = np.ceil(debt_usd / exec_price * self.units[j]).astype(np.int64)
            sold = np.minimum(self.collateral[debtor, j], need)
            proceeds = np.floor(sold / self.units[j] * exec_price
                                * self.quote_units).astype(np.int64)
            self.collateral[debtor, j] -= sold
            self.cash[debtor] += proceeds
            self.vault[j] -= int(sold.sum())
            self.vault_quote += int(proceeds.sum())
            flow[j] -= float(sold.sum()) / self.units[j]
            counters["collateral_sold_usd"] += float(proceeds.sum()) / self.quote_units

        # Bankruptcy: the backstop closes what is left of a bankrupt account's book.
        equity = self.cash / self.quote_units + self.collateral @ (
            self.oracle * self.cross_value / self.units)
        bankrupt = np.flatnonzero((equity < 0) & np.any(self.position != 0, axis=1))
        if bankrupt.size:
            counters["bankruptcies"] += int(bankrupt.size)
            zeros = np.zeros(bankrupt.size, dtype=np.int64)
            flow += self._close(bankrupt, np.ones(bankrupt.size), zeros, zeros)
        if np.any(flow):
            self._apply_impact(flow)

        # Losses: insurance fund first, then socialisation, the rest uncovered.
        cross_held = self.collateral[:, self.cross].sum(axis=1)
        debtors = np.flatnonzero((self.cash < 0) & (cross_held == 0))
        debts = -self.cash[debtors]
        total = int(debts.sum())
        counters["bad_debt_usd"] += max(0, total - self.uncovered_prev) / self.quote_units
        absorbed = min(self.fund, total)
        if absorbed:
            cover = _sequential_cover(debts, absorbed)
            self.cash[debtors] += cover
            self.fund -= absorbed
            debts = debts - cover
            counters["insurance_absorbed_usd"] += absorbed / self.quote_units
        remaining = int(debts.sum())
        mode = self.scenario.insurance.socialisation
        if remaining and mode != "none":
            capacity = np.minimum(np.maximum(self.cash, 0), np.maximum(self.pnl, 0))
            if mode == "haircut":
                take = _pro_rata(capacity, remaining)
            else:  # adl: most profitable and most leveraged first
                eq = np.maximum(self.cash / self.quote_units
                                + self.collateral @ (self.oracle / self.units), 1e-9)
                notional = np.abs(self.position) @ pm
                score = np.where(capacity > 0,
                                 (self.pnl / self.quote_units / eq) * (1.0 + notional / eq),
                                 -np.inf)
                order = np.argsort(-score, kind="stable")
                take = np.zeros_like(capacity)
                take[order] = _sequential_cover(capacity[order], remaining)
                hit = np.flatnonzero(take > 0)
                if hit.size:
                    self.position[hit] = 0.0  # deleveraged against the bankrupt book
                    counters["adl_accounts"] += int(hit.size)
            taken = int(take.sum())
            if taken:
                self.cash -= take
                self.pnl -= take
                cover = _sequential_cover(debts, taken)
                self.cash[debtors] += cover
                debts = debts - cover
                counters["socialised_loss_usd"] += taken / self.quote_units
        self.uncovered_prev = int(debts.sum())

    # -- epochs --------------------------------------------------------------------

    def identity_residuals(self) -> tuple[int, ...]:
        """Per-asset residual of the accounting identity in base units (all
        zero when it holds): ``V_j - sum c_ij`` and ``V_q - sum cash - F``."""
        risky = self.vault - self.collateral.sum(axis=0)
        quote = self.vault_quote - int(self.cash.sum()) - self.fund
        out = [int(x) for x in risky]
        out.insert(self.scenario.quote_index, int(quote))
        return tuple(out)

    def mechanism_counters(self) -> tuple[str, ...]:
        """Per-epoch counters of the mechanisms this scenario turns on (their
        metrics columns appear only then)."""
        keys: tuple[str, ...] = ()
        if self.auction_mode:
            keys += ("auctions_started", "auction_debt_usd", "auctions_cleared",
                     "auction_resets", "auction_collateral_usd", "auction_proceeds_usd",
                     "auction_penalties_usd", "auction_zero_bids",
                     "auction_zero_bid_collateral_usd", "keeper_profit_usd")
        if self.block_capacity:
            keys += ("queued", "liquidator_rewards_usd", "priority_fees_usd",
                     "liquidator_gas_usd", "liquidator_profit_usd", "protocol_recovered_usd")
        if self.bridge_asset is not None:
            keys += ("bridge_sent", "bridge_arrived", "inflight_liquidations")
        return keys

    def run(self) -> Iterator[EpochResult]:
        for epoch in range(1, self.epochs + 1):
            yield self.run_epoch(epoch)

    def run_epoch(self, epoch: int) -> EpochResult:
        keys = ("liquidatable", "liquidations", "full_liquidations", "liquidated_notional_usd",
                "penalties_usd", "stalled", "paused", "breaker_steps", "collateral_sold_usd",
                "bankruptcies", "bad_debt_usd", "insurance_absorbed_usd",
                "socialised_loss_usd", "adl_accounts")
        counters: dict[str, float] = dict.fromkeys(keys + self.mechanism_counters(), 0)
        self.weights = self._collateral_weights()
        for _ in range(self.steps_per_epoch):
            self.step(counters)
        self._settle(counters)
        return self._epoch_result(epoch, counters)

    def _epoch_result(self, epoch: int, counters: dict[str, float]) -> EpochResult:
        sc = self.scenario
        qi = sc.quote_index
        credits = credits_in_kind(self.cash, self.collateral, qi)
        prices_all = np.insert(self.oracle, qi, 1.0)
        units_all = np.insert(self.units, qi, self.quote_units)
        weights_all = np.insert(self._collateral_weights(), qi, 1.0)
        snapshot_weights = (weights_all if sc.snapshot_haircuts == "liquidity"
                            else np.ones_like(weights_all))
        reserves = np.insert(self.vault, qi, self.vault_quote)
        reserves_usd = reserves / units_all * prices_all
        equity = self.cash / self.quote_units + self.collateral @ (self.oracle / self.units)
        uncovered = float(np.maximum(-equity, 0).sum())
        identity_gap = float(reserves_usd.sum() - (np.maximum(equity, 0).sum()
                                                   + self.fund / self.quote_units - uncovered))
        pm = self.oracle[self.market_assets]
        timestamp = int(sc.start_timestamp + round(epoch * sc.epoch_minutes * 60))
        scale = 10**sc.price_decimals
        assets = tuple(
            Asset(symbol=a.symbol, decimals=a.decimals,
                  price=min(MAX_AMOUNT, int(round(prices_all[j] * scale))),
                  haircut_bps=int(round(snapshot_weights[j] * HAIRCUT_SCALE)),
                  reserves=min(MAX_AMOUNT, max(0, int(reserves[j]))),
                  borrowable=self.borrowable and j == qi)
            for j, a in enumerate(sc.assets))
        header = SnapshotHeader(epoch=epoch, timestamp=timestamp,
                                price_decimals=sc.price_decimals, assets=assets,
                                account_count=self.n)
        # What each account owes: a debt the snapshot states only as far as
        # the account's cross collateral backs it ([H1], solvency.py); the
        # rest is the protocol's loss, never a receivable.
        owed = np.maximum(-self.cash, 0)
        debts = np.zeros_like(credits)
        if self.borrowable:
            backing = np.insert(self.cross, qi, False).tolist()
            debts[:, qi] = solvency.backed_debt(owed, credits, header, qi, backing)
        verdict = solvency.judge(header, credits, debts)
        liabilities_usd = float(sum(solvency.exact_sum(credits[:, j]) / units_all[j]
                                    * prices_all[j] for j in range(len(sc.assets))))
        debts_usd = solvency.exact_sum(debts[:, qi]) / self.quote_units
        unbacked_usd = (solvency.exact_sum(owed) - solvency.exact_sum(debts[:, qi])
                        ) / self.quote_units
        metrics: dict[str, float | int] = {"epoch": epoch, "timestamp": timestamp}
        for j, a in enumerate(self.risky):
            metrics[f"oracle_price_{a.symbol}"] = float(self.oracle[j])
            metrics[f"market_price_{a.symbol}"] = float(self.true_hist[self.t, j])
        if self.vamm is not None:
            for col, j in enumerate(self.market_assets):
                metrics[f"vamm_price_{self.risky[j].symbol}"] = float(self.vamm.mark()[col])
        metrics["gas_gwei"] = float(self.gas_gwei[self.t])
        metrics["liquidation_fee"] = self.liquidation_fee()
        metrics["margin_multiplier_max"] = float(np.max(self.margin_multiplier()))
        for k, val in counters.items():
            metrics[k] = float(val) if k.endswith("_usd") else int(val)
        metrics["uncovered_bad_debt_usd"] = self.uncovered_prev / self.quote_units
        metrics["insurance_fund_usd"] = self.fund / self.quote_units
        metrics["open_interest_usd"] = float((np.abs(self.position) @ pm).sum())
        # Reserves as the snapshot states them: what the vaults hold, never
        # negative. A quote vault driven below zero (paid out against debts
        # nobody repaid) holds 0; the hole shows as liabilities above reserves.
        held_usd = np.maximum(reserves, 0) / units_all * prices_all
        metrics["collateral_usd"] = float(held_usd.sum())
        metrics["haircut_collateral_usd"] = float((held_usd * weights_all).sum())
        metrics["liabilities_usd"] = liabilities_usd
        metrics["debts_usd"] = debts_usd
        metrics["unbacked_debt_usd"] = unbacked_usd
        metrics["net_assets_usd"] = float(held_usd.sum()) + debts_usd - liabilities_usd
        metrics["solvency_margin_usd"] = verdict.valued_margin_quote
        metrics["stress_margin_usd"] = (float((held_usd * weights_all).sum()) + debts_usd
                                        - liabilities_usd)
        metrics["assets_short"] = verdict.assets_short
        metrics["asset_shortfall_usd"] = verdict.asset_shortfall_quote
        metrics["snapshot_shortfall_usd"] = max(0.0, -verdict.valued_margin_quote)
        metrics["insolvent"] = int(not verdict.solvent)
        metrics["insolvent_dust"] = int(verdict.dust)
        if self.auction_mode:
            metrics["auctions_open"] = int(self.in_auction.sum())
        if self.bridge_asset is not None:
            j = self.bridge_asset
            metrics["bridge_inflight_usd"] = float(self.inflight.sum() / self.units[j]
                                                   * self.oracle[j])
        metrics["identity_residual_units"] = int(max(abs(x) for x in self.identity_residuals()))
        metrics["identity_gap_usd"] = identity_gap
        return EpochResult(epoch, metrics, header, credits, debts)
