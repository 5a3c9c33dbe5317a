"""From a snapshot header to the terms the statements use, and the
insolvency report people read: each asset's shortfall in tokens, in the
quote currency and in base units, and the valued shortfall broken down per
asset (haircut reserves against valued liabilities), as text and as numbers
(``shortfall_report``).

The quote currency is the one header.json's prices are in; the snapshot
does not name it, so it is called "quote units" with the header's
``price_decimals``: valued figures are integers in 10^-price_decimals quote
units, liabilities rounded up and reserves down.

All figures are the ones the proofs would check: liabilities rounded up,
debts and reserves rounded down to each asset's proof units
(``zksolv.units``). A proven debt counts beside the reserves of its asset,
at full price in the valued statement (docs/epoch.md, *Margin accounts*).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from zksolv import units
from zksolv.circuits import epoch as circ
from zksolv.errors import InputError, InsolventError
from zksolv.snapshot import SnapshotHeader


def asset_terms(header: SnapshotHeader) -> tuple[circ.AssetTerms, ...]:
    """The header's assets as the epoch statements take them."""
    return tuple(
        circ.AssetTerms(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves,
                        a.proof_decimals, a.borrowable)
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
        lines += shortfall_report(assets, totals, price_decimals, debts).valued_lines()
    return lines


@dataclass(frozen=True)
class AssetShortfall:
    """One asset as the statements see it. Amounts in proof units; valued
    figures in 10^-price_decimals quote units: ``valued_liabilities`` =
    price x (owed - debt) rounded up (``debt``: what accounts owe the
    protocol in this asset, proven, rounded down), ``haircut_reserves`` =
    price x haircut x reserves rounded down."""

    asset: circ.AssetTerms
    owed: int
    valued_liabilities: int
    haircut_reserves: int
    debt: int = 0

    @property
    def reserves(self) -> int:
        return self.asset.proven_reserves

    @property
    def short(self) -> int:
        """Proof units the reserves lack in this asset (0 when covered)."""
        return max(0, self.owed - self.debt - self.reserves)

    def to_json(self) -> dict[str, Any]:
        a = self.asset
        pd = a.proven_decimals
        return {
            "symbol": a.symbol, "proof_decimals": pd, "owed_proof_units": self.owed,
            "reserves_proof_units": self.reserves, "debt_proof_units": self.debt,
            "short_proof_units": self.short,
            "short_base_units": self.short * a.scale,
            "short_tokens": units.format_tokens(self.short, pd),
            "price": a.price, "haircut_bps": a.haircut_bps,
            "valued_liabilities": self.valued_liabilities,
            "haircut_reserves": self.haircut_reserves,
        }


@dataclass(frozen=True)
class ShortfallReport:
    """Every figure of an epoch's solvency check, per asset and valued.
    ``valued_short`` is the exact valued gap rounded up (0 when covered), in
    10^-price_decimals quote units; the valued totals are the exact sums
    rounded (liabilities up, reserves down), so they may differ by a unit
    from the sums of the per-asset figures."""

    price_decimals: int
    assets: tuple[AssetShortfall, ...]
    valued_liabilities: int
    haircut_reserves: int
    valued_short: int

    @property
    def solvent(self) -> bool:
        return self.valued_short == 0 and not any(a.short for a in self.assets)

    @property
    def quote_unit(self) -> str:
        return (f"quote units (the currency header.json's prices are in, price_decimals "
                f"{self.price_decimals}; the snapshot does not name it)")

    def _q(self, value: int) -> str:
        return units.format_grouped(value, self.price_decimals)

    def valued_lines(self) -> list[str]:
        """The valued shortfall and, per asset, haircut reserves against
        valued liabilities; empty when the valued statement holds."""
        if not self.valued_short:
            return []
        lines = [
            f"valued (priced, haircut) reserves short by {self._q(self.valued_short)} "
            f"{self.quote_unit}: haircut reserves {self._q(self.haircut_reserves)} against "
            f"valued liabilities {self._q(self.valued_liabilities)}"
        ]
        for s in self.assets:
            a = s.asset
            pd = a.proven_decimals
            price = units.format_grouped(a.price, self.price_decimals, self.price_decimals)
            margin = s.haircut_reserves - s.valued_liabilities
            lines.append(
                f"  {a.symbol}: haircut reserves {self._q(s.haircut_reserves)} (reserves "
                f"{units.format_tokens(s.reserves, pd)} {a.symbol} x price {price} x haircut "
                f"{units.format_grouped(a.haircut_bps, 2)}%) against valued liabilities "
                f"{self._q(s.valued_liabilities)} (owed {units.format_tokens(s.owed, pd)} "
                + (f"less debts {units.format_tokens(s.debt, pd)} " if s.debt else "")
                + f"{a.symbol} x price {price}): "
                + (f"short {self._q(-margin)}" if margin < 0 else f"covers {self._q(margin)}")
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "solvent": self.solvent,
            "quote": {"name": None, "unit": "quote units", "decimals": self.price_decimals},
            "assets": [s.to_json() for s in self.assets],
            "valued": {"valued_liabilities": self.valued_liabilities,
                       "haircut_reserves": self.haircut_reserves,
                       "short": self.valued_short},
        }


def shortfall_report(assets: Sequence[circ.AssetTerms], totals: Sequence[int],
                     price_decimals: int, debts: Sequence[int] | None = None
                     ) -> ShortfallReport:
    """The figures behind ``shortfalls``, as numbers. ``totals`` are the
    liabilities in proof units (rounded up), ``debts`` the proven debts
    (rounded down; None: no debts), counted beside the reserves."""
    rows = []
    owed_value = Fraction(0)
    held_value = Fraction(0)
    owing = [0] * len(assets) if debts is None else list(debts)
    for a, owed, debt in zip(assets, totals, owing, strict=True):
        unit = 10**a.proven_decimals
        owed_v = Fraction(a.price * (owed - debt), unit)
        held_v = Fraction(a.price * a.proven_reserves * a.haircut_bps, unit * 10_000)
        owed_value += owed_v
        held_value += held_v
        rows.append(AssetShortfall(a, owed, math.ceil(owed_v), math.floor(held_v), debt))
    gap = owed_value - held_value
    return ShortfallReport(price_decimals, tuple(rows), math.ceil(owed_value),
                           math.floor(held_value), max(0, math.ceil(gap)))


class HealthCheck:
    """Every account's margin health, as the margin-health statement proves
    it (docs/epoch.md, *Margin accounts*): in proof units (credits rounded
    up, debts down), sum_j c_j*credit_j - sum_j b_j*debt_j >= 0 with the
    valued statement's weights. Collects the accounts that fail, to refuse
    the epoch with their ids and shortfalls (exit 3) before any proving,
    and refuses a margin too wide for the 128-bit proof (exit 2)."""

    SHOWN = 5

    def __init__(self, assets: Sequence[circ.AssetTerms], coef: circ.ValuedCoefficients,
                 price_decimals: int) -> None:
        self.assets = tuple(assets)
        self.columns = circ.column_layout(assets)
        self.weights = [(-coef.liability[j] if debt else coef.reserve[j])
                        for j, debt in self.columns]
        self.price_decimals = price_decimals
        self.failed: list[tuple[str, Fraction]] = []
        self.count = 0

    def add(self, account: str, values: Sequence[int]) -> None:
        """One account's values in proof units, in column order."""
        health = sum(w * v for w, v in zip(self.weights, values, strict=True))
        if health >= 0:
            if health >= 1 << circ.HEALTH_BITS:
                raise InputError(account, f"margin health {health} does not fit in "
                                 f"{circ.HEALTH_BITS} bits; lower price_decimals or an asset's "
                                 "proof_decimals")
            return
        self.count += 1
        if len(self.failed) < self.SHOWN:
            self.failed.append((account, self.shortfall(values)))

    def shortfall(self, values: Sequence[int]) -> Fraction:
        """How far the account's debts exceed its haircut collateral, in the
        quote currency: sum_j price_j*(debt_j - haircut_j*credit_j)."""
        gap = Fraction(0)
        for (j, debt), v in zip(self.columns, values, strict=True):
            a = self.assets[j]
            unit = Fraction(a.price, 10 ** (self.price_decimals + a.proven_decimals))
            gap += unit * v if debt else -unit * v * Fraction(a.haircut_bps, 10_000)
        return gap

    def refuse(self, epoch: int) -> None:
        """Raise ``InsolventError`` if any account failed."""
        if not self.count:
            return
        shown = "; ".join(f"account {acc!r} short by {_quote(gap)} in the quote currency"
                          for acc, gap in self.failed)
        hidden = self.count - len(self.failed)
        more = f" (and {hidden} more)" if hidden else ""
        raise InsolventError(
            f"epoch {epoch}: {self.count} account(s) whose collateral does not cover their "
            f"debt (margin health, haircut collateral against debts at full price): {shown}"
            f"{more}. Write the uncovered part as the protocol's loss (reduce the debt to what "
            "the collateral covers), never as a receivable")
