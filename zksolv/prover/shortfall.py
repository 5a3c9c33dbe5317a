"""From a snapshot header to the terms the statements use, and the
insolvency report people read: each asset's shortfall in tokens, in the
quote currency and in base units, and the valued shortfall.

All figures are the ones the proofs would check: liabilities rounded up,
debts and reserves rounded down to each asset's proof units
(``zksolv.units``). A proven debt counts beside the reserves of its asset,
at full price in the valued statement (docs/epoch.md, *Margin accounts*).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from zksolv import units
from zksolv.circuits import epoch as circ
from zksolv.snapshot import SnapshotHeader


def asset_terms(header: SnapshotHeader) -> tuple[circ.AssetTerms, ...]:
    """The header's assets as the epoch statements take them."""
    return tuple(
        circ.AssetTerms(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves,
                        a.proof_decimals)
        for a in header.assets
    )


def _quote(amount: Fraction) -> str:
    cents = round(amount * 100)
    if cents == 0 and amount > 0:
        return "less than 0.01"
    return units.format_grouped(int(cents), 2)


def shortfalls(assets: Sequence[circ.AssetTerms], totals: Sequence[int],
               price_decimals: int, debts: Sequence[int] | None = None) -> list[str]:
    """One line per short asset, and one for the valued statement if it is
    short; empty if the epoch is solvent. ``totals`` are the liabilities
    L_j in proof units (rounded up), ``debts`` the proven debts D_j in proof
    units (rounded down; None: no debts), counted beside the reserves:
    per asset reserves_j + D_j >= L_j, valued sum_j price_j*(haircut_j *
    reserves_j + D_j - L_j) >= 0."""
    lines = []
    quote_scale = 10**price_decimals
    valued_gap = Fraction(0)
    owing = [0] * len(assets) if debts is None else list(debts)
    for a, owed, debt in zip(assets, totals, owing, strict=True):
        pd = a.proven_decimals
        held = a.proven_reserves
        price = Fraction(a.price, quote_scale)
        valued_gap += price * Fraction(
            (owed - debt) * 10_000 - held * a.haircut_bps, 10_000 * 10**pd)
        if owed <= held + debt:
            continue
        short = owed - held - debt
        rounding = (f" after rounding to {pd} proof decimals (liabilities up, reserves "
                    f"{'and debts ' if debt else ''}down)" if a.scale > 1 else "")
        owed_to = (f", owed to it {units.format_tokens(debt, pd)}" if debt else "")
        lines.append(
            f"{a.symbol} short by {units.format_tokens(short, pd)} {a.symbol} = "
            f"{_quote(price * Fraction(short, 10**pd))} in the quote currency "
            f"({short * a.scale} base units; reserves "
            f"{units.format_tokens(held, pd)}{owed_to}, owed {units.format_tokens(owed, pd)} "
            f"{a.symbol}{rounding})"
        )
    if valued_gap > 0:
        lines.append(
            f"valued (priced, haircut) reserves short by {_quote(valued_gap)} in the quote "
            "currency"
        )
    return lines
