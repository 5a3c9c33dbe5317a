"""The initial account population.

For each account ``i``:

- equity ``e_i ~ LogNormal(log median, sigma)`` clipped to ``[min, max]`` (USD);
- its collateral split ``s_i ~ Dirichlet(concentration * mix)`` over the
  collateral assets; the quote share is held as quote cash, the rest as token
  units ``floor(e_i s_ij / P_j * 10^d_j)``;
- leverage ``l_i ~ LogNormal(log median, sigma)``, capped by ``max_leverage``
  and by the initial margin: notional <= 0.95 * W_i / max_j imf_j, with
  ``W_i`` the haircut collateral value;
- it holds a position in market ``m`` with probability ``p_m`` (at least one if
  any ``p_m > 0``; none if every ``p_m`` is 0), its notional ``l_i e_i`` split
  over its markets by a flat Dirichlet, long with probability
  ``long_fraction_m``, entry at the starting price;
- collateral of an *isolated* asset is left out of ``W_i`` (it backs nothing
  in the cross account), so positions are sized on the cross collateral only;
- with ``borrow_probability > 0`` an account borrows, with that probability,
  quote worth ``ltv_i`` of its non-quote collateral, ``ltv_i ~ LogNormal(log
  borrow_ltv_median, borrow_ltv_sigma)`` capped so the loan stays within 95 %
  of the haircut collateral left after its positions' initial margin; the
  loan leaves the protocol (``cash_i -= loan_i``). If all loans together
  exceed ``max_utilisation`` of the quote deposits they are scaled down
  pro rata, so the vault's quote never goes negative. These draws come after
  all others, so a scenario without borrowing is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zksolv.engine.scenario import Scenario


@dataclass(frozen=True)
class Population:
    """Initial state: ``cash`` in quote base units (int64, may later go
    negative), ``collateral`` token units per non-quote asset (int64),
    ``position`` signed size per perp market in whole tokens, ``entry`` price."""

    cash: np.ndarray
    collateral: np.ndarray
    position: np.ndarray
    entry: np.ndarray


def generate_population(sc: Scenario, n: int, rng: np.random.Generator) -> Population:
    pop = sc.population
    risky = [a for a in sc.assets if not a.quote]
    markets = [a for a in risky if a.perp]
    quote = sc.assets[sc.quote_index]
    symbols = [a.symbol for a in sc.assets]

    equity = np.exp(rng.normal(np.log(pop.equity_median_usd), pop.equity_sigma, n))
    equity = np.clip(equity, pop.equity_min_usd, pop.equity_max_usd)

    mix = dict(pop.collateral_mix)
    weights = np.array([mix.get(s, 0.0) for s in symbols])
    held = weights > 0
    alpha = pop.mix_concentration * weights[held] / weights[held].sum()
    shares = np.zeros((n, len(symbols)))
    shares[:, held] = rng.dirichlet(alpha, n) if held.sum() > 1 else 1.0

    cash = np.floor(equity * shares[:, sc.quote_index] * 10**quote.decimals).astype(np.int64)
    collateral = np.zeros((n, len(risky)), dtype=np.int64)
    weighted = equity * shares[:, sc.quote_index]
    for j, a in enumerate(risky):
        col = symbols.index(a.symbol)
        collateral[:, j] = np.floor(equity * shares[:, col] / a.price * 10**a.decimals)
        if a.margin_mode == "cross":
            weighted = weighted + collateral[:, j] / 10**a.decimals * a.price * (1.0 - a.haircut)

    lev = np.exp(rng.normal(np.log(pop.leverage_median), pop.leverage_sigma, n))
    lev = np.minimum(lev, pop.max_leverage)
    max_imf = max(m.initial_margin for m in markets)
    notional = np.minimum(lev * equity, 0.95 * weighted / max_imf)

    prob = dict(pop.position_probability)
    longs = dict(pop.long_fraction)
    p = np.array([prob.get(m.symbol, 1.0) for m in markets])
    has = rng.random((n, len(markets))) < p
    none = ~has.any(axis=1)
    if none.any() and p.any():  # everyone trades something: pick one market by probability
        pick = rng.choice(len(markets), size=int(none.sum()), p=(p + 1e-12) / (p + 1e-12).sum())
        has[np.flatnonzero(none), pick] = True
    split = rng.dirichlet(np.ones(len(markets)), n) * has
    split /= np.maximum(split.sum(axis=1, keepdims=True), 1e-300)
    side = np.where(rng.random((n, len(markets))) < np.array(
        [longs.get(m.symbol, 0.5) for m in markets]), 1.0, -1.0)
    p0 = np.array([m.price for m in markets])
    position = side * split * notional[:, None] / p0
    entry = np.tile(p0, (n, 1))
    if pop.borrow_probability > 0:
        cash = cash - _loans(sc, rng, collateral, weighted - np.abs(position) @ (
            p0 * np.array([m.initial_margin for m in markets])), cash)
    return Population(cash, collateral, position, entry)


def _loans(sc: Scenario, rng: np.random.Generator, collateral: np.ndarray,
           headroom_usd: np.ndarray, cash: np.ndarray) -> np.ndarray:
    """Quote loans (base units) drawn against the non-quote collateral."""
    pop = sc.population
    n = collateral.shape[0]
    risky = [a for a in sc.assets if not a.quote]
    quote = sc.assets[sc.quote_index]
    value = collateral @ np.array([a.price / 10**a.decimals for a in risky])
    borrows = rng.random(n) < pop.borrow_probability
    ltv = np.exp(rng.normal(np.log(pop.borrow_ltv_median), pop.borrow_ltv_sigma, n))
    loan_usd = np.where(borrows, np.minimum(ltv * value, 0.95 * np.maximum(headroom_usd, 0.0)),
                        0.0)
    loans = np.floor(loan_usd * 10**quote.decimals).astype(np.int64)
    limit = int(pop.max_utilisation * float(np.maximum(cash, 0).sum()))
    total = int(loans.sum())
    if total > limit:
        loans = np.floor(loans * (limit / total)).astype(np.int64)
    return loans
