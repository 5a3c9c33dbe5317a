"""Plain reference implementations of the engine's vectorised valuations.

One account at a time, in plain Python floats and ints, written to read like
the equations in ``simulator.py`` (the backed debt's reference is
``solvency.backed_debt_reference``). They are slow and exist only so that a
differential test can hold the numpy path to them.
"""

from __future__ import annotations

from collections.abc import Sequence


def account_values(cash: int, collateral: Sequence[int], position: Sequence[float],
                   entry: Sequence[float], prices: Sequence[float], weights: Sequence[float],
                   units: Sequence[float], quote_units: float, market_assets: Sequence[int],
                   mmf: Sequence[float], multiplier: Sequence[float],
                   size_weight: float = 0.0, depth_1pct: Sequence[float] = (),
                   cross: Sequence[bool] = (), marks: Sequence[float] = ()
                   ) -> dict[str, float]:
    """Equity, margin value, maintenance and notional of one account (USD),
    over its cross account: isolated collateral (``cross[j]`` false) is left
    out. Positions are valued at ``marks`` (a vAMM's) if given, else at the
    oracle prices."""
    equity = cash / quote_units
    margin_value = cash / quote_units
    for j, amount in enumerate(collateral):
        if cross and not cross[j]:
            continue
        value = amount / units[j] * prices[j]
        equity += value
        margin_value += value * weights[j]
    maintenance = 0.0
    notional = 0.0
    for m, j in enumerate(market_assets):
        price = marks[m] if marks else prices[j]
        pnl = position[m] * (price - entry[m])
        equity += pnl
        margin_value += pnl
        size = abs(position[m]) * price
        requirement = size * mmf[m] * multiplier[m]
        if size_weight:
            requirement *= 1.0 + size_weight * size / depth_1pct[m]
        maintenance += requirement
        notional += size
    return {"equity": equity, "margin_value": margin_value, "maintenance": maintenance,
            "notional": notional}


def credits(cash: int, collateral: Sequence[int], quote_index: int) -> list[int]:
    """What the protocol owes one account, per asset (quote column at
    ``quote_index``), nothing netted: a negative cash is a debt, not a
    smaller credit."""
    owed = [int(c) for c in collateral]
    owed.insert(quote_index, max(cash, 0))
    return owed
