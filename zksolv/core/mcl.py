"""BLS12-381 G1 in mcl, through its C API, on contiguous buffers.

pymcl (a pinned dependency) ships mcl 3.04 built with its C API exported.
We load that shared library with ctypes and never use pymcl's Python
objects: the cost of a per-point Python object, not of the curve, is what
dominated the prover before. Everything that scales with the number of
points runs in one C call on a contiguous buffer:

=====================  =============================================
operation              mcl function
=====================  =============================================
multi-scalar mult.     ``mclBnG1_mulVec`` (Pippenger; AVX-512 IFMA)
many points x scalars  ``mclBnG1_mulEach`` (in place)
batch affine form      ``mclBnG1_normalizeVec`` (one inversion)
hash to curve          ``mclBnG1_hashAndMapToWithDst`` (RFC 9380)
=====================  =============================================

Representations (mcl's own, documented in its ``include/mcl/bn.h``):

- a point is ``mclBnG1`` = Jacobian (x, y, z), each coordinate 6 x 64-bit
  limbs in Montgomery form: ``G1_RAW`` = 144 bytes. All-zero bytes (z = 0)
  is the identity.
- a scalar is ``mclBnFr`` = 4 x 64-bit limbs in Montgomery form: the
  32-byte little-endian encoding of ``k * 2^256 mod r`` (``fr_bytes``).

Global settings are made once, at load, before any concurrent use:
``mclBn_init(MCL_BLS12_381)``, ``mclBn_setETHserialization(1)`` (G1 bytes
are then exactly our ZCash compressed encoding), ``mclBn_verifyOrderG1(1)``
(deserialisation checks the prime-order subgroup) and the RFC 9380 map.

Caveats taken care of here, from mcl's source: its deserialisation accepts
a non-canonical infinity (the caller, ``zksolv.core.group``, checks flags
and x < p first, and re-encodes to compare); ``mulEach`` normalises and
overwrites its input, and ``mulVec``'s interface allows it to normalise its
input (3.04 works on a copy, but the C API promises nothing), so shared
buffers (the generators) are only ever passed as copies; all of these are
variable-time, which is fine for a prover whose timing reveals nothing
beyond the sizes. On a CPU with AVX-512 IFMA, mcl 3.04 runs ``mulVec`` of
128 points and more and ``mulEach`` on whole groups of 16 points in its
vectorised code, the rest in its generic code; ``MCL_CPU=noadx`` in the
environment turns the vectorised code off (a diagnostic: about 4x slower).
The library is loaded and its settings made once per process, under a lock.

``ZKSOLV_BACKEND=arkworks`` (or ``py_ecc``) avoids this layer entirely;
where the library cannot be loaded (another CPU architecture, a Python
pymcl has no wheel for) ``available()`` is False and the default backend
falls back to arkworks.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import threading
from collections.abc import Iterable, Sequence

from zksolv.core.field import R
from zksolv.core.group import POINT_BYTES, Backend, P, Point, _off_curve_or_subgroup
from zksolv.errors import FormatError

PYMCL_VERSION = "1.0.2"
MCL_VERSION = 0x304
G1_RAW = 144
FR_RAW = 32
COMPRESSED = 48
# mcl's constants (include/mcl/curve_type.h, include/mcl/bn.h).
_MCL_BLS12_381 = 5
_MCLBN_COMPILED_TIME_VAR = 4 * 10 + 6  # Fr units * 10 + Fp units (64-bit limbs)
_MCL_MAP_TO_MODE_HASH_TO_CURVE = 5

# A scalar k goes to mcl as its Montgomery form k * 2^256 mod r; a base
# field element x as x * 2^384 mod p.
MONT = pow(2, 256, R)
_FP_MONT = pow(2, 384, P)
_FP_MONT_INV = pow(_FP_MONT, -1, P)
_FP_ONE = _FP_MONT.to_bytes(48, "little")

_vp = ctypes.c_void_p
_sz = ctypes.c_size_t
_int = ctypes.c_int
# name -> (restype, argtypes): every symbol this module calls, checked at load.
_SYMBOLS: dict[str, tuple[object, list[object]]] = {
    "mclBn_getVersion": (_int, []),
    "mclBn_init": (_int, [_int, _int]),
    "mclBn_setETHserialization": (None, [_int]),
    "mclBn_setMapToMode": (_int, [_int]),
    "mclBn_verifyOrderG1": (None, [_int]),
    "mclBnG1_add": (None, [_vp, _vp, _vp]),
    "mclBnG1_sub": (None, [_vp, _vp, _vp]),
    "mclBnG1_neg": (None, [_vp, _vp]),
    "mclBnG1_mul": (None, [_vp, _vp, _vp]),
    "mclBnG1_isEqual": (_int, [_vp, _vp]),
    "mclBnG1_isZero": (_int, [_vp]),
    "mclBnG1_mulVec": (None, [_vp, _vp, _vp, _sz]),
    "mclBnG1_mulEach": (None, [_vp, _vp, _sz]),
    "mclBnG1_normalizeVec": (None, [_vp, _vp, _sz]),
    "mclBnG1_serialize": (_sz, [_vp, _sz, _vp]),
    "mclBnG1_deserialize": (_sz, [_vp, _vp, _sz]),
    "mclBnG1_hashAndMapToWithDst": (_int, [_vp, _vp, _sz, _vp, _sz]),
    "mclBnFr_setLittleEndian": (_int, [_vp, _vp, _sz]),
    "mclBnFr_getLittleEndian": (_sz, [_vp, _sz, _vp]),
}


class MclUnavailable(RuntimeError):
    """The mcl library could not be loaded or is not the pinned version."""


def _load() -> ctypes.CDLL:
    try:
        version = importlib.metadata.version("pymcl")
    except importlib.metadata.PackageNotFoundError:
        raise MclUnavailable("pymcl is not installed") from None
    if version != PYMCL_VERSION:
        raise MclUnavailable(f"pymcl {version} installed, {PYMCL_VERSION} required")
    spec = importlib.util.find_spec("pymcl._pymcl")
    if spec is None or spec.origin is None:
        raise MclUnavailable("pymcl's shared library not found")
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError as exc:
        raise MclUnavailable(f"cannot load {spec.origin}: {exc}") from exc
    for name, (restype, argtypes) in _SYMBOLS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise MclUnavailable(f"symbol {name} missing from {spec.origin}") from None
        fn.restype = restype
        fn.argtypes = argtypes
    if lib.mclBn_getVersion() != MCL_VERSION:
        raise MclUnavailable(f"mcl version {lib.mclBn_getVersion():#x}, {MCL_VERSION:#x} required")
    if lib.mclBn_init(_MCL_BLS12_381, _MCLBN_COMPILED_TIME_VAR) != 0:
        raise MclUnavailable("mclBn_init(BLS12_381) failed")
    lib.mclBn_setETHserialization(1)
    lib.mclBn_verifyOrderG1(1)
    if lib.mclBn_setMapToMode(_MCL_MAP_TO_MODE_HASH_TO_CURVE) != 0:
        raise MclUnavailable("mcl has no RFC 9380 map to G1")
    return lib


_LOAD_LOCK = threading.Lock()
_LOADED: list[ctypes.CDLL | Exception] = []


def _library() -> ctypes.CDLL | Exception:
    # Once per process, under a lock: ctypes drops the GIL inside
    # mclBn_init, so two threads loading at once would both make the settings.
    if not _LOADED:
        with _LOAD_LOCK:
            if not _LOADED:
                try:
                    _LOADED.append(_load())
                except MclUnavailable as exc:
                    _LOADED.append(exc)
    return _LOADED[0]


def available() -> bool:
    """True when mcl loads, is the pinned version and has every symbol."""
    return not isinstance(_library(), Exception)


def library_error() -> str:
    """Why the library cannot be used ("" when it can)."""
    lib = _library()
    return str(lib) if isinstance(lib, Exception) else ""


def library() -> ctypes.CDLL:
    """The loaded library, or ``MclUnavailable`` saying why not."""
    lib = _library()
    if isinstance(lib, Exception):
        raise lib
    return lib


def fr_bytes(scalars: Iterable[int]) -> bytes:
    """The scalars (any ints, reduced mod r) as a contiguous ``mclBnFr``
    array, in Montgomery form."""
    return b"".join([(k * MONT % R).to_bytes(FR_RAW, "little") for k in scalars])


def fr_bytes_scaled(scalars: Iterable[int]) -> bytes:
    """Scalars already in Montgomery form, in [0, r): callers that multiply
    every scalar by a common factor anyway fold ``MONT`` into it."""
    return b"".join([k.to_bytes(FR_RAW, "little") for k in scalars])


class G1Vec:
    """n points of G1 in one contiguous, mutable ``mclBnG1`` buffer."""

    __slots__ = ("buf", "n", "addr")

    def __init__(self, n: int, data: bytes | bytearray | None = None) -> None:
        self.n = n
        self.buf = (ctypes.c_char * (G1_RAW * n))()
        if data is not None:
            if len(data) != G1_RAW * n:
                raise ValueError("G1Vec: data is not n points")
            ctypes.memmove(self.buf, bytes(data), G1_RAW * n)
        self.addr = ctypes.addressof(self.buf)

    @classmethod
    def of(cls, points: Sequence[bytes]) -> G1Vec:
        """A buffer holding copies of raw points (``G1_RAW`` bytes each)."""
        return cls(len(points), b"".join(points))

    def at(self, i: int) -> int:
        """Address of point i (for the C calls)."""
        return self.addr + G1_RAW * i

    def point(self, i: int) -> bytes:
        return ctypes.string_at(self.at(i), G1_RAW)

    def points(self) -> list[bytes]:
        raw = ctypes.string_at(self.addr, G1_RAW * self.n)
        return [raw[G1_RAW * i : G1_RAW * (i + 1)] for i in range(self.n)]

    def copy_in(self, dst: int, src: G1Vec, start: int, count: int) -> None:
        """Copy ``src[start:start+count]`` to ``self[dst:dst+count]``."""
        if dst + count > self.n or start + count > src.n:
            raise IndexError("G1Vec.copy_in out of bounds")
        ctypes.memmove(self.at(dst), src.at(start), G1_RAW * count)


def msm_into(out: ctypes.Array, points: G1Vec, start: int, count: int, scalars: bytes) -> None:
    """out = sum_i scalars[i] * points[start + i]. ``points`` may be
    normalised in place (it is never a shared buffer)."""
    if len(scalars) != FR_RAW * count or start + count > points.n:
        raise ValueError("msm: points and scalars differ in length")
    library().mclBnG1_mulVec(out, points.at(start), scalars, count)


def msm(points: G1Vec, scalars: bytes) -> bytes:
    """sum_i scalars[i] * points[i] over the whole buffer, as a raw point."""
    out = ctypes.create_string_buffer(G1_RAW)
    if points.n:
        msm_into(out, points, 0, points.n, scalars)
    return out.raw


# mclBnG1_mulEach takes only scalars below this: see mul_each.
SHORT_SCALAR = 1 << 128


def mul_each(points: G1Vec, start: int, count: int, scalars: Sequence[int]) -> None:
    """points[start + i] *= scalars[i], in place, for scalars in [0, 2^128).

    mcl 3.04's vectorised mulEach (AVX-512 IFMA) returns wrong points for
    some full-width scalars: for the point and 255-bit scalar of
    tests/test_mcl.py, 16 copies multiplied at once give the right product in
    lanes 0-7 and a wrong one in lanes 8-15, every time (found by ``zksolv
    bench soak``: case 1086 of a seed, in an inner-product fold). Its
    accumulation uses an addition formula that is wrong when both operands
    are equal; with a scalar below 2^128 the GLV split's second half is 0 or
    1 and that cannot happen. So only short scalars reach it, and
    ``MclBackend.mul_each`` splits wider ones."""
    if len(scalars) != count or start + count > points.n:
        raise ValueError("mul_each: points and scalars differ in length")
    if any(not 0 <= k < SHORT_SCALAR for k in scalars):
        raise ValueError("mul_each: a scalar is not in [0, 2^128)")
    library().mclBnG1_mulEach(points.at(start), fr_bytes(scalars), count)


def mul_each_by(points: G1Vec, start: int, count: int, k: int) -> None:
    """points[start + i] *= k for i < count, in place, for one k in [0, 2^128)
    (see ``mul_each``): the scalar checked and converted once."""
    if start + count > points.n:
        raise ValueError("mul_each_by: the buffer holds fewer points")
    if not 0 <= k < SHORT_SCALAR:
        raise ValueError("mul_each_by: the scalar is not in [0, 2^128)")
    library().mclBnG1_mulEach(points.at(start), fr_bytes((k,)) * count, count)


def add_halves(points: G1Vec, h: int) -> None:
    """points[j] = points[j] + points[h + j] for j < h (one C call a point:
    mcl exports no vector addition)."""
    if 2 * h > points.n:
        raise ValueError("add_halves: buffer holds fewer than 2h points")
    add = library().mclBnG1_add
    at = points.at
    for j in range(h):
        a = at(j)
        add(a, a, at(h + j))


def normalize(points: G1Vec) -> None:
    """Affine form (z = 1) for every point, with one field inversion."""
    if points.n:
        library().mclBnG1_normalizeVec(points.addr, points.addr, points.n)


def encode_all(points: G1Vec) -> list[bytes]:
    """The 48-byte compressed encoding of every point (normalises first)."""
    lib = library()
    normalize(points)
    out = ctypes.create_string_buffer(COMPRESSED)
    ser = lib.mclBnG1_serialize
    encodings = []
    for i in range(points.n):
        if ser(out, COMPRESSED, points.at(i)) != COMPRESSED:
            raise RuntimeError("mclBnG1_serialize failed")
        encodings.append(out.raw)
    return encodings


class MclBackend(Backend):
    """The group interface on mcl. A point is its raw ``mclBnG1`` bytes
    (``G1_RAW``); the vector operations above take buffers of them."""

    name = "mcl"

    def __init__(self) -> None:
        self._lib = library()
        self._identity = bytes(G1_RAW)

    def _out(self) -> ctypes.Array:
        return ctypes.create_string_buffer(G1_RAW)

    def identity(self) -> Point:
        return self._identity

    def add(self, p: Point, q: Point) -> Point:
        out = self._out()
        self._lib.mclBnG1_add(out, p, q)
        return out.raw

    def neg(self, p: Point) -> Point:
        out = self._out()
        self._lib.mclBnG1_neg(out, p)
        return out.raw

    def mul(self, p: Point, k: int) -> Point:
        out = self._out()
        self._lib.mclBnG1_mul(out, p, fr_bytes((k,)))
        return out.raw

    def msm(self, points: Sequence[Point], scalars: Sequence[int]) -> Point:
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        return msm(G1Vec.of(points), fr_bytes(scalars))

    def to_affine(self, points: Sequence[Point]) -> list[tuple[int, int]]:
        vec = G1Vec.of(points)
        normalize(vec)
        out = []
        for raw in vec.points():
            x = int.from_bytes(raw[:48], "little") * _FP_MONT_INV % P
            y = int.from_bytes(raw[48:96], "little") * _FP_MONT_INV % P
            out.append((x, y))
        return out

    def from_affine_unchecked(self, coords: Sequence[tuple[int, int]]) -> list[Point]:
        m = _FP_MONT
        return [
            (x * m % P).to_bytes(48, "little") + (y * m % P).to_bytes(48, "little") + _FP_ONE
            for x, y in coords
        ]

    def mul_each(self, points: Sequence[Point], scalars: Sequence[int]) -> list[Point]:
        """Any scalars: k = lo + 2^128*hi is lo*P + hi*(2^128*P), every
        multiplication by a scalar below 2^128 (see ``mul_each``). Equal
        points are one point: 2^128*P is computed once for each."""
        if len(points) != len(scalars):
            raise ValueError("mul_each: points and scalars differ in length")
        n = len(points)
        ks = [k % R for k in scalars]
        if all(k < SHORT_SCALAR for k in ks):
            vec = G1Vec.of(points)
            mul_each(vec, 0, n, ks)
            return vec.points()
        # 2^128 * P once for each distinct point (commit_many passes h n times)
        distinct = list(dict.fromkeys(points))
        shifted = G1Vec.of(distinct)
        mul_each_by(shifted, 0, len(distinct), 1 << 64)
        mul_each_by(shifted, 0, len(distinct), 1 << 64)
        wide = dict(zip(distinct, shifted.points(), strict=True))
        both = G1Vec.of([*points, *(wide[p] for p in points)])
        mul_each(both, 0, n, [k % SHORT_SCALAR for k in ks])
        mul_each(both, n, n, [k // SHORT_SCALAR for k in ks])
        add_halves(both, n)
        return both.points()[:n]

    def add_each(self, a: Sequence[Point], b: Sequence[Point]) -> list[Point]:
        if len(a) != len(b):
            raise ValueError("add_each: lengths differ")
        vec = G1Vec.of([*a, *b])
        add_halves(vec, len(a))
        return vec.points()[: len(a)]

    def msm_is_identity(self, points: Sequence[Point], scalars: Sequence[int]) -> bool:
        # Scalars passed as they are: mcl reads them as k * 2^-256, and a
        # common nonzero factor does not change whether the sum is O.
        if len(points) != len(scalars):
            raise ValueError("msm: points and scalars differ in length")
        total = msm(G1Vec.of(points), fr_bytes_scaled([k % R for k in scalars]))
        return self.is_identity(total)

    def sum(self, points: Sequence[Point]) -> Point:
        acc = self._out()
        add = self._lib.mclBnG1_add
        for p in points:
            add(acc, acc, p)
        return acc.raw

    def eq(self, p: Point, q: Point) -> bool:
        return bool(self._lib.mclBnG1_isEqual(p, q))

    def is_identity(self, p: Point) -> bool:
        return bool(self._lib.mclBnG1_isZero(p))

    def encode(self, p: Point) -> bytes:
        out = ctypes.create_string_buffer(POINT_BYTES)
        if self._lib.mclBnG1_serialize(out, POINT_BYTES, p) != POINT_BYTES:
            raise RuntimeError("mclBnG1_serialize failed")
        return out.raw

    def encode_many(self, points: Sequence[Point]) -> list[bytes]:
        return encode_all(G1Vec.of(points))

    def _decode_point(self, data: bytes, what: str) -> Point:
        out = self._out()
        # Flags and x < p are checked by the caller; mcl checks the curve
        # equation and (mclBn_verifyOrderG1(1)) the subgroup.
        if self._lib.mclBnG1_deserialize(out, data, POINT_BYTES) != POINT_BYTES:
            raise _off_curve_or_subgroup(data, what)
        if self.encode(out.raw) != data:
            raise FormatError(f"{what}: non-canonical point encoding")
        return out.raw

    def hash_to_curve(self, msg: bytes, dst: bytes) -> Point:
        out = self._out()
        if self._lib.mclBnG1_hashAndMapToWithDst(out, msg, len(msg), dst, len(dst)) != 0:
            raise RuntimeError("mclBnG1_hashAndMapToWithDst failed")
        self._lib.mclBnG1_normalizeVec(out, out, 1)
        return out.raw
