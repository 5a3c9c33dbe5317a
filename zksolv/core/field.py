"""The scalar field GF(r) of BLS12-381 and its canonical encoding.

r is the order of the prime-order subgroup of G1 (and G2):

    r = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001

Scalars are plain Python ``int`` in [0, r) on the hot paths: a 255-bit
modular multiplication costs a fraction of a microsecond, less than any
per-element cost of a NumPy object array. ``galois`` gives the same field as a
vectorised type for property tests and independent cross-checks; it is built
with the known primitive element 7 and ``verify=False`` so construction takes
milliseconds instead of the ~90 s primality and primitivity proof.

Encoding: 32 bytes, little-endian, value < r. Anything else is a
``FormatError`` (no silent reduction).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from typing import Any

from zksolv.errors import FormatError

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
SCALAR_BYTES = 32
PRIMITIVE_ELEMENT = 7


def scalar_to_bytes(k: int) -> bytes:
    """Canonical 32-byte little-endian encoding of a scalar in [0, r)."""
    if not 0 <= k < R:
        raise ValueError("scalar out of range [0, r)")
    return k.to_bytes(SCALAR_BYTES, "little")


def scalar_from_bytes(data: bytes, *, what: str = "scalar", allow_zero: bool = True) -> int:
    """Strictly decode a canonical scalar: exactly 32 bytes, value < r."""
    if len(data) != SCALAR_BYTES:
        raise FormatError(f"{what}: expected {SCALAR_BYTES} bytes, got {len(data)}")
    k = int.from_bytes(data, "little")
    if k >= R:
        raise FormatError(f"{what}: non-canonical scalar (>= r)")
    if not allow_zero and k == 0:
        raise FormatError(f"{what}: zero scalar not allowed here")
    return k


def random_scalar(rng: secrets.SystemRandom | None = None) -> int:
    """A uniform nonzero scalar. ``rng`` (anything with ``randrange``) is for
    deterministic tests; by default the OS CSPRNG through ``secrets``."""
    while True:
        k = rng.randrange(R) if rng is not None else secrets.randbelow(R)
        if k:
            return k


def random_scalars(count: int, rng: secrets.SystemRandom | None = None) -> list[int]:
    """``count`` uniform nonzero scalars. From the OS CSPRNG in one read:
    64 bytes reduced mod r each (statistical distance < 2^-256 from
    uniform). With ``rng`` (tests), exactly ``count`` calls of
    ``random_scalar(rng)``, so seeded proofs do not change."""
    if rng is not None:
        return [random_scalar(rng) for _ in range(count)]
    raw = secrets.token_bytes(64 * count)
    out = [int.from_bytes(raw[64 * i : 64 * (i + 1)], "little") % R for i in range(count)]
    return [k if k else random_scalar() for k in out]


def inv(k: int) -> int:
    """Multiplicative inverse mod r; k must be nonzero."""
    if k % R == 0:
        raise ZeroDivisionError("inverse of zero scalar")
    return pow(k, -1, R)


def batch_inv(values: Sequence[int]) -> list[int]:
    """Montgomery's trick: n inverses for one exponentiation and 3n products."""
    prefix = []
    acc = 1
    for v in values:
        if v % R == 0:
            raise ZeroDivisionError("inverse of zero scalar")
        prefix.append(acc)
        acc = acc * v % R
    inv_acc = pow(acc, -1, R)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = prefix[i] * inv_acc % R
        inv_acc = inv_acc * values[i] % R
    return out


def powers(base: int, count: int) -> list[int]:
    """[1, base, base^2, ..., base^(count-1)] mod r."""
    out = [0] * count
    acc = 1
    for i in range(count):
        out[i] = acc
        acc = acc * base % R
    return out


def inner_product(a: Sequence[int], b: Sequence[int]) -> int:
    """<a, b> mod r (one reduction at the end)."""
    return sum(x * y for x, y in zip(a, b, strict=True)) % R


@functools.cache
def galois_field() -> Any:
    """GF(r) as a ``galois`` field class, built without the 90 s verification."""
    import galois

    return galois.GF(R, primitive_element=PRIMITIVE_ELEMENT, verify=False)
