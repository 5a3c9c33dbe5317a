"""Token amounts: base units, proof units, and the conservative rounding
between them. Pure functions, no I/O; shared by the snapshot reader, the
statements (``zksolv.circuits``), the verifier and the command line.

An asset has ``decimals`` (base units per whole token = 10^decimals) and
``proof_decimals`` <= ``decimals`` (default: ``decimals``). Amounts are
*proven* in proof units of 10^-proof_decimals tokens, one proof unit being
``scale = 10^(decimals - proof_decimals)`` base units. The rounding is
always in the protocol's disfavour (rounding rule ``ROUNDING_ID``)::

    liability (what an account is owed)   v = ceil(amount / scale)      [round-up]
    reserves  (what the protocol holds)    R = floor(reserves / scale)   [round-down]
    debt      (what an account owes)       d = floor(amount / scale)     [round-down-debt]

so a proof that R + sum d >= sum v implies reserves + the exact debts >=
the exact credits: rounding can only hide solvency, never insolvency (a
receivable is never overstated).
"""

from __future__ import annotations

import re
from typing import Final

ROUNDING_ID: Final = "liabilities-up/reserves-down"
# The rule of a snapshot or bundle with debts (a borrowable asset).
ROUNDING_ID_MARGIN: Final = "liabilities-up/reserves-down/debts-down"
MAX_PROVEN = (1 << 64) - 1
_TOKENS_RE = re.compile(r"([0-9]{1,60})(?:\.([0-9]{0,60}))?")


class ProofUnits:
    """``proven_decimals`` and ``scale`` of an asset record that has
    ``decimals`` and ``proof_decimals`` (None: ``decimals``): the snapshot's
    asset and the statements' asset terms state them once, here."""

    decimals: int
    proof_decimals: int | None

    @property
    def proven_decimals(self) -> int:
        """Decimals of the proof unit (``proof_decimals``, else ``decimals``)."""
        return self.decimals if self.proof_decimals is None else self.proof_decimals

    @property
    def scale(self) -> int:
        """Base units per proof unit."""
        return proof_scale(self.decimals, self.proven_decimals)


def proof_scale(decimals: int, proof_decimals: int) -> int:
    """Base units per proof unit: 10^(decimals - proof_decimals)."""
    if not 0 <= proof_decimals <= decimals:
        raise ValueError(f"proof_decimals {proof_decimals} must be in [0, decimals={decimals}]")
    return 10 ** (decimals - proof_decimals)


def liability_units(amount: int, scale: int) -> int:
    """[round-up] ceil(amount / scale): what is proven owed, never less than owed."""
    return -(-amount // scale)


def receivable_units(amount: int, scale: int) -> int:
    """[round-down-debt] floor(amount / scale): a debt (what an account owes
    the protocol) is proven as never more than owed."""
    return amount // scale


def reserve_units(reserves: int, scale: int) -> int:
    """[round-down] floor(reserves / scale): what is proven held, never more than held."""
    return reserves // scale


def fitting_proof_decimals(amount: int, decimals: int, *, up: bool) -> int | None:
    """The largest proof_decimals <= decimals at which ``amount`` (base units)
    rounds (up for a liability, down for reserves) to at most 2^64 - 1
    proof units; None if even whole tokens do not fit."""
    for pd in range(decimals, -1, -1):
        s = 10 ** (decimals - pd)
        if (liability_units(amount, s) if up else reserve_units(amount, s)) <= MAX_PROVEN:
            return pd
    return None


def format_tokens(amount: int, decimals: int) -> str:
    """Base units as a decimal number of tokens, every decimal shown:
    1250000 at 6 decimals is ``1.250000``."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if decimals == 0:
        return f"{sign}{amount}"
    whole, frac = divmod(amount, 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def format_grouped(amount: int, decimals: int, shown: int = 2) -> str:
    """A fixed-point amount for people: thousands grouped, ``shown`` decimals
    (rounded half up). 1660000012345 at 6 decimals: ``1,660,000.01``."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if decimals > shown:
        step = 10 ** (decimals - shown)
        amount = (amount + step // 2) // step
        decimals = shown
    whole, frac = divmod(amount, 10**decimals)
    return f"{sign}{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "")


def parse_tokens(text: str, decimals: int) -> int | None:
    """``"3989.744384"`` tokens as base units; None if ``text`` is not a plain
    decimal number (ASCII digits, at most one point) or has more fraction
    digits than the asset's decimals."""
    m = _TOKENS_RE.fullmatch(text)
    if not m:
        return None
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > decimals:
        return None
    return int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
