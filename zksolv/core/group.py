"""BLS12-381 G1 behind one small interface, with two interchangeable backends.

- ``mcl``: mcl through its C API on contiguous buffers
  (``zksolv.core.mcl``). The default where it loads (x86_64, CPython with a
  pymcl wheel): the prover, the verifier and the tree run their vector work
  there.
- ``arkworks``: py-arkworks-bls12381 (Rust). The default elsewhere, and the
  first reference path for the fast one.
- ``py_ecc``: py_ecc's optimized_bls12_381 (pure Python). The second
  reference: slow, but an independent implementation.

A proof made with one backend verifies with every other, and seeded proofs
are byte-identical on all three (tests/test_rangeproof.py).

Points are opaque backend objects; scalars are Python ints (reduced mod r
here). Both backends use the same canonical bytes:

- points: 48-byte compressed, ZCash format. The top three bits of byte 0 are
  flags: 0x80 compressed (must be set), 0x40 point at infinity, 0x20 the
  larger of the two y (y > (p-1)/2). x is big-endian in the remaining 381
  bits and must be < p. The identity is 0xc0 followed by 47 zero bytes.
- scalars: 32 bytes little-endian, < r (``zksolv.core.field``).

``decode`` validates everything: length, flags, x < p, on-curve, in the
prime-order subgroup, and refuses the identity unless ``allow_identity``.
Every failure is a ``FormatError``.

Choose a backend with ``get_backend(name)``; ``name=None`` reads the
``ZKSOLV_BACKEND`` environment variable and falls back to ``mcl`` where it
loads, else ``arkworks``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from zksolv.core.field import R
from zksolv.errors import FormatError

POINT_BYTES = 48
# Base field modulus p of BLS12-381.
P = int(
    "1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB",
    16,
)
IDENTITY_BYTES = bytes([0xC0]) + bytes(47)
BACKENDS = ("mcl", "arkworks", "py_ecc")
BACKEND_ENV = "ZKSOLV_BACKEND"

Point = Any


def _off_curve_or_subgroup(data: bytes, what: str) -> FormatError:
    """The error for a non-identity encoding (flags and x < p checked) that a
    backend refused: whether x^3 + 4 is a square mod p (Euler's criterion)
    tells off the curve from outside the subgroup, so every backend and the
    holder's page (bls12381.js) say the same words for the same bytes."""
    x = int.from_bytes(bytes([data[0] & 0x1F]) + data[1:], "big")
    if pow((x * x * x + 4) % P, (P - 1) // 2, P) not in (0, 1):
        return FormatError(f"{what}: not on the curve")
    return FormatError(f"{what}: not in the prime-order subgroup")


def _check_compressed_flags(data: bytes, what: str) -> None:
    """Flag and range checks common to both backends (ZCash serialisation)."""
    if len(data) != POINT_BYTES:
        raise FormatError(f"{what}: expected {POINT_BYTES} bytes, got {len(data)}")
    flags = data[0] & 0xE0
    if not flags & 0x80:
        raise FormatError(f"{what}: compression flag not set")
    x = int.from_bytes(bytes([data[0] & 0x1F]) + data[1:], "big")
    if flags & 0x40:
        if flags & 0x20 or x != 0:
            raise FormatError(f"{what}: non-canonical encoding of the identity")
    elif x >= P:
        raise FormatError(f"{what}: x coordinate not below the field modulus")


class Backend:
    """The group interface. Subclasses implement it for one library."""

    name: str = ""

    def identity(self) -> Point:
        raise NotImplementedError

    def add(self, p: Point, q: Point) -> Point:
        raise NotImplementedError

    def neg(self, p: Point) -> Point:
        raise NotImplementedError

    def mul(self, p: Point, k: int) -> Point:
        raise NotImplementedError

    def msm(self, points: Sequence[Point], scalars: Sequence[int]) -> Point:
        """sum_i scalars[i] * points[i]. Scalars are ints, any sign."""
        raise NotImplementedError

    def to_affine(self, points: Sequence[Point]) -> list[tuple[int, int]]:
        """(x, y) of each point (none the identity)."""
        raise NotImplementedError

    def from_affine_unchecked(self, coords: Sequence[tuple[int, int]]) -> list[Point]:
        """Points from affine (x, y) the caller has already checked (on the
        curve and pinned, as ``zksolv.core.generators`` does)."""
        raise NotImplementedError

    def mul_each(self, points: Sequence[Point], scalars: Sequence[int]) -> list[Point]:
        """[scalars[i] * points[i]] (backends may batch the work)."""
        out = []
        for p, k in zip(points, scalars, strict=True):
            out.append(self.mul(p, k))
        return out

    def add_each(self, a: Sequence[Point], b: Sequence[Point]) -> list[Point]:
        """[a[i] + b[i]]."""
        out = []
        for p, q in zip(a, b, strict=True):
            out.append(self.add(p, q))
        return out

    def msm_is_identity(self, points: Sequence[Point], scalars: Sequence[int]) -> bool:
        """Whether sum_i scalars[i] * points[i] is the identity (a verifier's
        check; backends may skip work a common nonzero factor cannot change)."""
        return self.is_identity(self.msm(points, scalars))

    def sum(self, points: Sequence[Point]) -> Point:
        acc = self.identity()
        for p in points:
            acc = self.add(acc, p)
        return acc

    def eq(self, p: Point, q: Point) -> bool:
        raise NotImplementedError

    def is_identity(self, p: Point) -> bool:
        return self.eq(p, self.identity())

    def encode(self, p: Point) -> bytes:
        raise NotImplementedError

    def encode_many(self, points: Sequence[Point]) -> list[bytes]:
        """``encode`` of every point (backends may batch the affine step)."""
        return [self.encode(p) for p in points]

    def decode(self, data: bytes, *, allow_identity: bool = False, what: str = "point") -> Point:
        """Strictly decode a compressed point (all checks of the module doc)."""
        data = bytes(data)
        _check_compressed_flags(data, what)
        if data == IDENTITY_BYTES:
            if not allow_identity:
                raise FormatError(f"{what}: identity point not allowed here")
            return self.identity()
        return self._decode_point(data, what)

    def _decode_point(self, data: bytes, what: str) -> Point:
        """Decode a non-identity encoding whose flags and x range are checked:
        on-curve, subgroup and canonical checks are the backend's."""
        raise NotImplementedError

    def hash_to_curve(self, msg: bytes, dst: bytes) -> Point:
        """RFC 9380 suite BLS12381G1_XMD:SHA-256_SSWU_RO_."""
        raise NotImplementedError


class ArkworksBackend(Backend):
    name = "arkworks"

    def __init__(self) -> None:
        import py_arkworks_bls12381 as ark

        self._G1 = ark.G1Point
        self._Scalar = ark.Scalar
        self._identity = ark.G1Point.identity()

    def scalar(self, k: int) -> Any:
        # from_le_bytes costs ~0.3 us; Scalar(int) goes through a decimal string (~7 us).
        return self._Scalar.from_le_bytes((k % R).to_bytes(32, "little"))

    def identity(self) -> Point:
        return self._identity

    def add(self, p: Point, q: Point) -> Point:
        return p + q

    def neg(self, p: Point) -> Point:
        return -p

    def mul(self, p: Point, k: int) -> Point:
        return p * self._Scalar.from_le_bytes((k % R).to_bytes(32, "little"))

    def msm(self, points: Sequence[Point], scalars: Sequence[int]) -> Point:
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        if not points:
            return self._identity
        from_le = self._Scalar.from_le_bytes
        return self._G1.multiexp_unchecked(
            list(points), [from_le((k % R).to_bytes(32, "little")) for k in scalars]
        )

    def sum(self, points: Sequence[Point]) -> Point:
        acc = self._identity
        for p in points:
            acc = acc + p
        return acc

    def eq(self, p: Point, q: Point) -> bool:
        return bool(p == q)

    def encode(self, p: Point) -> bytes:
        return bytes(p.to_compressed_bytes())

    def to_affine(self, points: Sequence[Point]) -> list[tuple[int, int]]:
        out = []
        for p in points:
            xy = bytes(p.to_xy_bytes_be())
            out.append((int.from_bytes(xy[:48], "big"), int.from_bytes(xy[48:], "big")))
        return out

    def from_affine_unchecked(self, coords: Sequence[tuple[int, int]]) -> list[Point]:
        make = self._G1.from_xy_bytes_unchecked_be
        return [make(x.to_bytes(48, "big") + y.to_bytes(48, "big")) for x, y in coords]

    def _decode_point(self, data: bytes, what: str) -> Point:
        try:
            p = self._G1.from_compressed_bytes(data)
        except Exception as exc:  # the binding raises ValueError with Rust text
            raise _off_curve_or_subgroup(data, what) from exc
        # Belt and braces: the only accepted encoding is the canonical one.
        if bytes(p.to_compressed_bytes()) != data:
            raise FormatError(f"{what}: non-canonical point encoding")
        return p

    def hash_to_curve(self, msg: bytes, dst: bytes) -> Point:
        return self._G1.hash_to_curve(msg, dst)


class PyEccBackend(Backend):
    """Reference backend on py_ecc's optimized_bls12_381 (Jacobian tuples)."""

    name = "py_ecc"

    def __init__(self) -> None:
        from py_ecc import optimized_bls12_381 as bls
        from py_ecc.bls import point_compression as pc
        from py_ecc.bls.hash_to_curve import hash_to_G1

        self._bls = bls
        self._pc = pc
        self._hash_to_G1 = hash_to_G1

    def identity(self) -> Point:
        return self._bls.Z1

    def add(self, p: Point, q: Point) -> Point:
        return self._bls.add(p, q)

    def neg(self, p: Point) -> Point:
        return self._bls.neg(p)

    def mul(self, p: Point, k: int) -> Point:
        # py_ecc's multiply does not reduce the scalar mod r: do it here.
        return self._bls.multiply(p, k % R)

    def msm(self, points: Sequence[Point], scalars: Sequence[int]) -> Point:
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        acc = self._bls.Z1
        for p, k in zip(points, scalars, strict=True):
            k %= R
            if k:
                acc = self._bls.add(acc, self._bls.multiply(p, k))
        return acc

    def eq(self, p: Point, q: Point) -> bool:
        return bool(self._bls.eq(p, q))

    def is_identity(self, p: Point) -> bool:
        return bool(self._bls.is_inf(p))

    def encode(self, p: Point) -> bytes:
        return self._pc.compress_G1(p).to_bytes(POINT_BYTES, "big")

    def to_affine(self, points: Sequence[Point]) -> list[tuple[int, int]]:
        out = []
        for p in points:
            x, y = self._bls.normalize(p)
            out.append((int(x), int(y)))
        return out

    def from_affine_unchecked(self, coords: Sequence[tuple[int, int]]) -> list[Point]:
        FQ = self._bls.FQ
        return [(FQ(x), FQ(y), FQ.one()) for x, y in coords]

    def _decode_point(self, data: bytes, what: str) -> Point:
        try:
            p = self._pc.decompress_G1(int.from_bytes(data, "big"))  # type: ignore[arg-type]
        except ValueError as exc:
            raise FormatError(f"{what}: not on the curve") from exc
        # py_ecc's decompression does not check the subgroup: [r]P must be O.
        if not self._bls.is_inf(self._bls.multiply(p, R)):
            raise FormatError(f"{what}: not in the prime-order subgroup")
        return p

    def hash_to_curve(self, msg: bytes, dst: bytes) -> Point:
        return self._hash_to_G1(msg, dst, hashlib.sha256)  # type: ignore[arg-type]


@functools.cache
def _make(name: str) -> Backend:
    if name == "arkworks":
        return ArkworksBackend()
    if name == "py_ecc":
        return PyEccBackend()
    if name == "mcl":
        from zksolv.core.mcl import MclBackend, available, library

        if not available():
            library()  # raises MclUnavailable with the reason
        return MclBackend()
    raise ValueError(f"unknown backend {name!r} (choose one of {', '.join(BACKENDS)})")


def default_backend_name() -> str:
    """mcl where it loads, else arkworks."""
    from zksolv.core.mcl import available

    return "mcl" if available() else "arkworks"


def get_backend(name: str | None = None) -> Backend:
    """The backend called ``name``, or the one ``ZKSOLV_BACKEND`` names, or
    the default (``default_backend_name``)."""
    chosen = name or os.environ.get(BACKEND_ENV) or default_backend_name()
    return _make(chosen)
