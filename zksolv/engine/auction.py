"""Descending-price (Dutch) collateral auctions and the keepers who bid in them.

Used when ``liquidation.mode = "auction"`` (a collateral-debt protocol: an
unsafe account's collateral is seized and sold for its debt). Equations, tags
as in ``docs/engine.md``:

[A1] kick: an account with ``W_i < MM_i`` and debt ``D_i = max(-cash_i, 0) > 0``
     has its positions closed at the mark (no penalty) and its whole
     collateral put up for sale; the auction owes the tab
     ``T_i = D_i (1 + chop)`` and starts at ``top_ij = P_j * start_premium``.
[A2] price: ``p_ij(tau) = top_ij * max(0, 1 - tau / duration)``, tau the time
     since the kick (linear decrease to zero); if ``1 - tau / duration <
     reset_below`` the auction restarts from the current oracle price (a reset).
[A3] keepers: ``K`` keepers; keeper k has a gas ceiling ``g_k`` (its bot stops
     landing bids above it) and a required discount ``delta_k``, both at
     log-normal quantiles, paired in opposite order (the bots that keep bidding
     through a gas spike demand the deepest discount). At step t the active
     keepers are ``{k : g_k >= gas_t}`` and the best (smallest) active discount
     is ``delta*_t``.
[A4] bid: with ask ``a_i = sum_j c_ij p_ij`` and market worth
     ``m_i = sum_j c_ij S_j`` (S the market price), a keeper buys the fraction
     ``x_i = min(1, T_i / a_i)`` (1 if ``a_i = 0``) of every collateral when
     ``a_i <= (1 - delta*_t) m_i`` and ``x_i (m_i - a_i) > gas cost``; it pays
     ``x_i a_i``. The payment repays the debt first; what exceeds the debt, up
     to the penalty ``chop * D_i``, goes to the insurance fund. Collateral not
     needed for the tab stays with the account. A sale of the whole lot that
     does not cover the debt leaves bad debt (``cash_i < 0`` with no
     collateral), which settlement hands to the loss waterfall.

A clearing is a *near-zero bid* when the payment is at most
``NEAR_ZERO_BID`` of the market worth of the collateral sold.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from zksolv.engine.scenario import AuctionSpec

NEAR_ZERO_BID = 0.05


def keeper_book(spec: AuctionSpec) -> tuple[np.ndarray, np.ndarray]:
    """Gas ceilings (gwei) and required discounts of the keepers [A3]:
    ``g_k = g exp(s_g z_k)``, ``delta_k = min(0.99, delta exp(-s_d z_k))`` with
    ``z_k = Phi^-1((k + 1/2) / K)``. Deterministic: no randomness."""
    k = spec.keepers
    if k == 0:
        return np.zeros(0), np.zeros(0)
    z = np.array([NormalDist().inv_cdf((i + 0.5) / k) for i in range(k)])
    gas = spec.keeper_gas_limit_gwei * np.exp(spec.keeper_gas_sigma * z)
    discount = np.minimum(0.99, spec.keeper_discount * np.exp(-spec.keeper_discount_sigma * z))
    return gas, discount


def best_discount(gas_gwei: float, keeper_gas: np.ndarray,
                  keeper_discount: np.ndarray) -> float | None:
    """The smallest discount among keepers whose bots land bids at this gas
    price, or None when every keeper has dropped out [A3]."""
    active = keeper_gas >= gas_gwei
    if not active.any():
        return None
    return float(keeper_discount[active].min())


def price_factor(elapsed_minutes: np.ndarray, duration_minutes: float) -> np.ndarray:
    """``max(0, 1 - tau / duration)`` [A2]."""
    return np.maximum(0.0, 1.0 - elapsed_minutes / duration_minutes)
