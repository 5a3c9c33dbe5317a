"""The snapshot's statements as the prover judges them, judged by the engine.

Pure integer arithmetic on a snapshot header and per-account amounts: no
proof, no commitment (the engine knows nothing of proofs). Everything is in
proof units (``zksolv.units``), with the prover's rounding::

    credit  (owed to an account)      ceil(amount / scale_j)      [round-up]
    debt    (owed by an account)      floor(amount / scale_j)     [round-down]
    reserves                          floor(reserves_j / scale_j) [round-down]

and the valued statement's integer weights (docs/epoch.md, "Valued
solvency"), with ``D_max`` the largest proof_decimals::

    a_j = price_j * 10^(D_max - proof_decimals_j)
    c_j = a_j * haircut_bps_j        (reserves, and collateral backing a debt)
    b_j = a_j * 10000                (credits and debts at full price)

[H1] margin health, per account i:   sum_j c_j credit_ij - sum_j b_j debt_ij >= 0
[S1] per asset j:                    R_j + D_j - C_j >= 0
[S2] valued:                         sum_j c_j R_j + sum_j b_j D_j - sum_j b_j C_j >= 0

with C_j, D_j the sums of every account's credit and debt. The engine writes
each debt no larger than [H1] admits (:func:`backed_debt`): the uncovered
part of an underwater account is the protocol's loss, never a receivable. An
epoch is solvent when [S1] holds for every asset and [S2] holds
(:func:`judge`); that is the prover's verdict on the same snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zksolv import units
from zksolv.snapshot import HAIRCUT_SCALE, SnapshotHeader

# A refusal for less than this (in the quote currency) is a rounding residue,
# not a hole: the chart and the summary tell the two apart.
DUST_QUOTE = 0.01
# The float estimate of what collateral backs is trusted only this far from
# the boundary; nearer, the exact integers decide.
_FLOAT_MARGIN = 1e-9


@dataclass(frozen=True)
class Weights:
    """The valued statement's weights of one header: ``haircut[j]`` = c_j,
    ``full[j]`` = b_j; a sum of weighted proof units divided by ``per_quote``
    is in the quote currency."""

    haircut: tuple[int, ...]
    full: tuple[int, ...]
    scales: tuple[int, ...]
    proof_decimals: tuple[int, ...]
    per_quote: int

    @classmethod
    def of(cls, header: SnapshotHeader) -> Weights:
        top = max(a.proven_decimals for a in header.assets)
        a = [x.price * 10 ** (top - x.proven_decimals) for x in header.assets]
        return cls(
            haircut=tuple(w * x.haircut_bps for w, x in zip(a, header.assets, strict=True)),
            full=tuple(w * HAIRCUT_SCALE for w in a),
            scales=tuple(x.scale for x in header.assets),
            proof_decimals=tuple(x.proven_decimals for x in header.assets),
            per_quote=HAIRCUT_SCALE * 10**top * 10**header.price_decimals,
        )


def exact_sum(column: np.ndarray) -> int:
    """The exact sum of a non-negative int64 column of fewer than 2^32 rows
    (int64 would overflow at 10^6 rows of 10^16): high and low 32 bits
    summed apart."""
    col = column.astype(np.int64, copy=False)
    return (int((col >> 32).sum()) << 32) + int((col & 0xFFFF_FFFF).sum())


def credit_units(amounts: np.ndarray, scale: int) -> np.ndarray:
    """[round-up] base units to proof units, vectorised."""
    return amounts if scale == 1 else -(-amounts // scale)


def debt_units(amounts: np.ndarray, scale: int) -> np.ndarray:
    """[round-down] base units to proof units, vectorised."""
    return amounts if scale == 1 else amounts // scale


def backed_debt(owed: np.ndarray, credits: np.ndarray, header: SnapshotHeader, asset: int,
                backing: Sequence[bool]) -> np.ndarray:
    """The debt the snapshot may state, per account, in base units of
    ``asset``: ``min(owed_i, the largest debt that keeps [H1])``, counting
    only the credits of the assets marked in ``backing`` (collateral that
    can repay the debt) and no other debt of the account.

    ``owed`` (n,) int64 >= 0, ``credits`` (n, k) int64 in base units. A debt
    d satisfies [H1] iff floor(d / scale) <= m_i = floor(sum c_j credit_ij /
    b_asset), so the largest is (m_i + 1) * scale - 1. Fast path: a float
    estimate of m_i decides the accounts far from the boundary; the rest
    (underwater or nearly) go through :func:`backed_debt_reference`."""
    w = Weights.of(header)
    if not w.full[asset]:  # a debt priced at 0 weighs nothing in [H1]
        return owed.copy()
    out = np.zeros_like(owed)
    idx = np.flatnonzero(owed > 0)
    if idx.size == 0:
        return out
    scale = w.scales[asset]
    cover = np.zeros(idx.size)
    for j, back in enumerate(backing):
        if back and w.haircut[j]:
            cover += credit_units(credits[idx, j], w.scales[j]) * (w.haircut[j] / w.full[asset])
    need = debt_units(owed[idx], scale).astype(np.float64)
    clear = need <= cover * (1.0 - _FLOAT_MARGIN) - 1.0
    out[idx[clear]] = owed[idx[clear]]
    for i in idx[~clear]:
        out[i] = backed_debt_reference(int(owed[i]), [int(x) for x in credits[i]], header,
                                       asset, backing)
    return out


def backed_debt_reference(owed: int, credits: Sequence[int], header: SnapshotHeader, asset: int,
                          backing: Sequence[bool]) -> int:
    """:func:`backed_debt` for one account, in exact integers."""
    w = Weights.of(header)
    if not w.full[asset]:
        return owed
    weighted = sum(w.haircut[j] * units.liability_units(c, w.scales[j])
                   for j, c in enumerate(credits) if backing[j])
    most = weighted // w.full[asset]
    scale = w.scales[asset]
    return min(owed, (most + 1) * scale - 1)


def health_margin(credits: Sequence[int], debts: Sequence[int], header: SnapshotHeader) -> int:
    """[H1] for one account, as the prover forms it (credits rounded up,
    debts down); >= 0 when the account's margin health holds."""
    w = Weights.of(header)
    return sum(w.haircut[j] * units.liability_units(c, w.scales[j])
               - w.full[j] * units.receivable_units(d, w.scales[j])
               for j, (c, d) in enumerate(zip(credits, debts, strict=True)))


@dataclass(frozen=True)
class Verdict:
    """[S1] and [S2] for one snapshot, in proof units."""

    weights: Weights
    prices: tuple[int, ...]
    price_decimals: int
    reserves: tuple[int, ...]
    credits: tuple[int, ...]
    debts: tuple[int, ...]

    @property
    def asset_margins(self) -> tuple[int, ...]:
        """R_j + D_j - C_j per asset, in its proof units."""
        return tuple(r + d - c for r, d, c in zip(self.reserves, self.debts, self.credits,
                                                  strict=True))

    @property
    def valued_margin(self) -> int:
        """[S2]'s left side, in units of 1 / ``weights.per_quote`` quote."""
        w = self.weights
        return sum(ch * r + f * (d - c) for ch, f, r, d, c in zip(
            w.haircut, w.full, self.reserves, self.debts, self.credits, strict=True))

    @property
    def assets_short(self) -> int:
        return sum(1 for m in self.asset_margins if m < 0)

    @property
    def solvent(self) -> bool:
        return self.assets_short == 0 and self.valued_margin >= 0

    @property
    def valued_margin_quote(self) -> float:
        """[S2]'s margin in the quote currency: negative exactly when the
        valued statement fails."""
        return self.valued_margin / self.weights.per_quote

    @property
    def asset_shortfall_quote(self) -> float:
        """What the short assets lack, at full price, in the quote currency
        (0.0 when every asset is covered on its own)."""
        scale = 10**self.price_decimals
        return sum(-m * p / 10**pd / scale
                   for m, p, pd in zip(self.asset_margins, self.prices,
                                       self.weights.proof_decimals, strict=True) if m < 0)

    @property
    def dust(self) -> bool:
        """Insolvent for less than ``DUST_QUOTE``: a rounding residue."""
        return not self.solvent and max(self.asset_shortfall_quote,
                                        -self.valued_margin_quote) < DUST_QUOTE


def judge(header: SnapshotHeader, credits: np.ndarray, debts: np.ndarray) -> Verdict:
    """The prover's verdict on a snapshot whose per-account credits and
    debts (n, k), base units, columns in header asset order, are given."""
    w = Weights.of(header)
    return Verdict(
        weights=w,
        prices=tuple(a.price for a in header.assets),
        price_decimals=header.price_decimals,
        reserves=tuple(units.reserve_units(a.reserves, a.scale) for a in header.assets),
        credits=tuple(exact_sum(credit_units(credits[:, j], s)) for j, s in enumerate(w.scales)),
        debts=tuple(exact_sum(debt_units(debts[:, j], s)) if debts[:, j].any() else 0
                    for j, s in enumerate(w.scales)),
    )
