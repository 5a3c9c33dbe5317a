"""Nothing-up-my-sleeve generators, derived by hash-to-curve.

Every generator is ``hash_to_curve(msg, GENERATOR_DST)`` with the RFC 9380
suite BLS12381G1_XMD:SHA-256_SSWU_RO_ and our own domain-separation tag, so
anyone can recompute them and nobody knows a discrete-log relation between
them. The messages are fixed:

=============  ===============================  ==================================
name           message                          role
=============  ===============================  ==================================
``g``          ``b"value"``                     value base of Pedersen commitments
``h``          ``b"blinding"``                  blinding base
``u``          ``b"ipa"``                       inner-product argument base
``G[i]``       ``b"G" || i as u32 big-endian``  vector bases for l(x) / a_L
``H[i]``       ``b"H" || i as u32 big-endian``  vector bases for r(x) / a_R
=============  ===============================  ==================================

``GENERATOR_SET_ID`` names this set; it is absorbed into every transcript so
a proof made against other generators never verifies here.

Deriving one generator costs ~50 us on mcl, ~0.4 ms on arkworks and ~9 ms
on py_ecc; the vectors are extended lazily to the largest size asked for and
kept for the life of the process.

A verified cache makes the derivation vanish from a normal run without
trusting the cache. The vectors are cut into chunks of ``CHUNK`` pairs
(G[i], H[i]); ``PINNED_CHUNK_DIGESTS[c]`` is SHA-256 over the compressed
encodings G[i] || H[i] of chunk c, computed once by hash-to-curve and kept
here, in the source (tests re-derive every chunk and compare). A cache file
holds each point's affine (x, y); a chunk is used only if every (x, y) lies
on the curve y^2 = x^3 + 4 and the compressed encodings they give hash to
the pinned digest: then each cached point *is* the derived one (x and the
sign of y are pinned, y is the root on the curve), and so in the subgroup.
Anything else is ignored and the chunk derived again. The core does no I/O:
where chunks are kept is a ``ChunkStore`` set from outside
(``zksolv.gencache``, which the command line installs).

Growing the vectors takes every chunk the cache has first; what it lacks is
derived chunk by chunk, and ``vectors(n, on_derive=...)`` reports that work
(seconds on a cold cache: a caller shows a progress bar) without the core
printing anything.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from zksolv.core.group import Backend, P, Point

GENERATOR_DST = b"ZKSOLV-V1-GENERATORS-BLS12381G1_XMD:SHA-256_SSWU_RO_"
GENERATOR_SET_ID = b"zksolv/generators/bls12381g1-sswu-ro/v1"


def vector_message(kind: bytes, index: int) -> bytes:
    return kind + struct.pack(">I", index)


CHUNK = 1024
CHUNK_BYTES = 2 * CHUNK * 96  # chunk c: CHUNK x (G x||y, H x||y), big-endian
# SHA-256 of G[i] || H[i] (compressed) for i in [CHUNK*c, CHUNK*(c+1)).
# Regenerate with ``python -m zksolv.core.generators``; tests/test_generators.py
# re-derives every chunk.
PINNED_CHUNK_DIGESTS: tuple[str, ...] = (
    "6d0c3d2f9637edcd929e6363fb482f9ac446ff23325d1ea1b99f1fd1ae069c33",
    "026d472a54373e3496de83dd18e088d65ebcbb7e49669b5322abd06bc8dfddb2",
    "114c1ae739771ec96c50f92108d5c08ac3b2fcb5dc5dca2256d99efa34ce62c7",
    "6fb1e6ea922c981127f29cdf1316ccac5d40a6e0002c8fb9ec0cc9551e27b1d7",
    "92e76fe4d1d27142e30cb20b0ff1e523c6fc8b40ae1e9c441116d7fce10df473",
    "3115f3398bf33498d57d2e07ba9644e27f75f52c6b02d3e2be2606b388ccc6cb",
    "a048fb6e818c90170ea7d522b66c84080b47862784f269b8eadf21b19fa8cc7d",
    "935134ff977409a100560dd5f6472d6e30c97cf594727eb1c020dd3e32729eff",
    "ebad27da53fcb342eb10830d8a19bf484d2574ff66da0dca75f0a1ebe8fd8bd0",
    "de4b07dd3c4dbe38772ada6986e87a963deec0f4bd420ef9aae233513b4f3e55",
    "ae0cd55794aa34f798c5f9b48f342c9bd23b4b7ae7b0639673aff531ee319797",
    "be359c6560f85a6e650d668c122d881b34d15e1ded7b6c319cd77969d5b31f8f",
    "9d4f2a4e5714a2a8a24306e57dddb5022f802587f5d90d7fcab0a9c2958cb272",
    "4e4fa99d8af40df274ec8361e3cb7160996bd76d5fc2cda88afbcdbcfa960bdb",
    "d1e6705f9634090e88e962ae9225dfbc72920fdbecb4881d867aca527438bf46",
    "fa36379acae060c6bfeea9127106b329bd66b08e803fa26d2c128c331e4d7332",
    "d8604e5f4df8dcc814e63e88bc022e31b6b3ab87653233eb13b03ad25fc84ffd",
    "372d964e7b477cd650db579306e1577a89dfc152772b6608753c4c2838dd72a0",
    "2909e0455213280a564a36f3a376a69f33693c504c039a8feccfabdfae4085bc",
    "64e10bf4aae1b6d3d0589f26cf7dc750adb3dc3568b693f4ef821cd43df1728d",
    "e71e622a724bac685c07bc1251e0143e6307e021da0ec7c2db27fb436287c611",
    "b29987081ae27537339da06855e8a1f607681f47336dfbbb00595773d096a08a",
    "d9d71161f7033b33bef6d35b81581f1806509a5761fb73c4c7b036cf27582aa0",
    "4572d4fa32e0a407eb0369063f3a2cd6818bf6f132f1f57ea1023a46b143d43c",
    "1576c301229a07650575a38086734bf65e34f801d2be00c0ac926c9c52ad7616",
    "560f1e6ee312bd1e63e3e9863d737b969ae686dd9577d40a4b004a72ae5d686c",
    "b7d8358798d661df2c8d2fbbbbe4d82b997cc38734267bd4330657a7e3aee69f",
    "5720aed26e234bd18e7ce361b7e4e3f2dbec12990cd671258b2a1faa67e89edf",
    "79a28024a5df58419d7a81576695188e8bd8665d94aedd4b295eb75601ad1599",
    "4caf9ece0a5d0ab17e60c7f2a39a4272be687fede9a109c0649d91b18aea9f83",
    "1c78cfd45b2610364622201268e05eecf04e2d08a1e7a5d5f0d1773ed6a62d66",
    "6d969ecd6bbbf43e24c493bda2dae48479c4791b7bf9f541e665f7737d6735b9",
)


class ChunkStore(Protocol):
    """Where cached chunks live (``zksolv.gencache`` keeps them in files).
    The core never trusts what ``load`` returns: ``parse_chunk`` checks it."""

    def load(self, chunk: int) -> bytes | None: ...

    def store(self, chunk: int, data: bytes) -> None: ...


_STORE: list[ChunkStore | None] = [None]


def set_chunk_store(store: ChunkStore | None) -> None:
    """Use ``store`` for cached generator chunks from now on (None: none)."""
    _STORE[0] = store


def has_chunk_store() -> bool:
    """Whether derived chunks are kept for later runs."""
    return _STORE[0] is not None


# on_derive(done, total): chunks derived so far, of those the cache lacked
DeriveProgress = Callable[[int, int], None]


def compressed_from_affine(x: int, y: int) -> bytes:
    """ZCash compressed encoding of the affine point (x, y) (not the identity)."""
    flags = 0x80 | (0x20 if y > (P - 1) // 2 else 0)
    enc = bytearray(x.to_bytes(48, "big"))
    enc[0] |= flags
    return bytes(enc)


def parse_chunk(c: int, raw: bytes) -> list[tuple[int, int]] | None:
    """Chunk c's 2*CHUNK affine points (G0, H0, G1, H1, ...) if ``raw`` is
    exactly the pinned chunk (every point on the curve, encodings hashing to
    the pinned digest), else None."""
    if c >= len(PINNED_CHUNK_DIGESTS) or len(raw) != CHUNK_BYTES:
        return None
    points = []
    sha = hashlib.sha256()
    for i in range(2 * CHUNK):
        x = int.from_bytes(raw[i * 96 : i * 96 + 48], "big")
        y = int.from_bytes(raw[i * 96 + 48 : (i + 1) * 96], "big")
        if not (0 <= x < P and 0 < y < P) or (y * y - x * x * x - 4) % P:
            return None
        sha.update(compressed_from_affine(x, y))
        points.append((x, y))
    if sha.hexdigest() != PINNED_CHUNK_DIGESTS[c]:
        return None
    return points


def chunk_bytes(points: list[tuple[int, int]]) -> bytes:
    return b"".join(x.to_bytes(48, "big") + y.to_bytes(48, "big") for x, y in points)


def _load_chunk(c: int) -> list[tuple[int, int]] | None:
    store = _STORE[0]
    if store is None or c >= len(PINNED_CHUNK_DIGESTS):
        return None
    raw = store.load(c)
    return None if raw is None else parse_chunk(c, raw)


@dataclass
class GeneratorSet:
    """The generators for one backend; vectors grow on demand."""

    backend: Backend
    g: Point = field(init=False)
    h: Point = field(init=False)
    u: Point = field(init=False)
    _G: list[Point] = field(init=False, default_factory=list)
    _H: list[Point] = field(init=False, default_factory=list)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        h2c = self.backend.hash_to_curve
        self.g = h2c(b"value", GENERATOR_DST)
        self.h = h2c(b"blinding", GENERATOR_DST)
        self.u = h2c(b"ipa", GENERATOR_DST)

    def vectors(self, n: int, on_derive: DeriveProgress | None = None
                ) -> tuple[list[Point], list[Point]]:
        """The first n of G and of H (the lists may be longer: slice them).
        Chunks come from the verified cache where it has them; if any must be
        derived, ``on_derive(done, total)`` is told: with 0 before the first
        of the ``total`` chunks still to add, then after each."""
        if len(self._G) < n:
            with self._lock:
                while len(self._G) < n and self._take_cached():
                    pass
                if len(self._G) < n:
                    total = (n - 1) // CHUNK - len(self._G) // CHUNK + 1
                    done = 0
                    if on_derive is not None:
                        on_derive(done, total)
                    while len(self._G) < n:
                        # the first chunk is known missing; a later one may be cached
                        if not (done and self._take_cached()):
                            self._derive(n)
                        done += 1
                        if on_derive is not None:
                            on_derive(done, total)
        return self._G, self._H

    def _take_cached(self) -> bool:
        """Add the next whole chunk from the verified cache, if it has it."""
        c, offset = divmod(len(self._G), CHUNK)
        cached = _load_chunk(c) if offset == 0 else None
        if cached is None:
            return False
        pts = self.backend.from_affine_unchecked(cached)
        self._G.extend(pts[0::2])
        self._H.extend(pts[1::2])
        return True

    def _derive(self, n: int) -> None:
        """Derive up to n (at most to the chunk's end); a whole derived chunk
        is offered to the cache."""
        start = len(self._G)
        c, offset = divmod(start, CHUNK)
        h2c = self.backend.hash_to_curve
        for i in range(start, min(n, (c + 1) * CHUNK)):
            self._G.append(h2c(vector_message(b"G", i), GENERATOR_DST))
            self._H.append(h2c(vector_message(b"H", i), GENERATOR_DST))
        if offset == 0 and len(self._G) == start + CHUNK and c < len(PINNED_CHUNK_DIGESTS):
            chunk = [p for i in range(start, start + CHUNK) for p in (self._G[i], self._H[i])]
            affine = self.backend.to_affine(chunk)
            sha = hashlib.sha256(b"".join(compressed_from_affine(x, y) for x, y in affine))
            store = _STORE[0]
            if sha.hexdigest() == PINNED_CHUNK_DIGESTS[c] and store is not None:
                store.store(c, chunk_bytes(affine))


def chunk_digests(backend: Backend, chunks: int) -> list[str]:
    """The pinned digests, computed from scratch by hash-to-curve."""
    out = []
    for c in range(chunks):
        sha = hashlib.sha256()
        for i in range(c * CHUNK, (c + 1) * CHUNK):
            for kind in (b"G", b"H"):
                sha.update(backend.encode(backend.hash_to_curve(vector_message(kind, i),
                                                                GENERATOR_DST)))
        out.append(sha.hexdigest())
    return out


_SETS: dict[str, GeneratorSet] = {}
_SETS_LOCK = threading.Lock()


def generators(backend: Backend) -> GeneratorSet:
    """The process-wide generator set of ``backend``."""
    with _SETS_LOCK:
        gens = _SETS.get(backend.name)
        if gens is None:
            gens = _SETS[backend.name] = GeneratorSet(backend)
        return gens


if __name__ == "__main__":  # print the pinned digests (a new generator set only)
    from zksolv.core.group import get_backend

    for d in chunk_digests(get_backend(), 32):
        print(f'    "{d}",')
