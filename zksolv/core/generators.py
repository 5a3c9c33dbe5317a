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

Deriving one generator costs ~0.4 ms on arkworks (~9 ms on py_ecc); the
vectors are extended lazily to the largest size asked for and kept for the
life of the process.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field

from zksolv.core.group import Backend, Point

GENERATOR_DST = b"ZKSOLV-V1-GENERATORS-BLS12381G1_XMD:SHA-256_SSWU_RO_"
GENERATOR_SET_ID = b"zksolv/generators/bls12381g1-sswu-ro/v1"


def vector_message(kind: bytes, index: int) -> bytes:
    return kind + struct.pack(">I", index)


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

    def vectors(self, n: int) -> tuple[list[Point], list[Point]]:
        """The first n of G and of H (the lists may be longer: slice them)."""
        if len(self._G) < n:
            with self._lock:
                h2c = self.backend.hash_to_curve
                for i in range(len(self._G), n):
                    self._G.append(h2c(vector_message(b"G", i), GENERATOR_DST))
                    self._H.append(h2c(vector_message(b"H", i), GENERATOR_DST))
        return self._G, self._H


_SETS: dict[str, GeneratorSet] = {}
_SETS_LOCK = threading.Lock()


def generators(backend: Backend) -> GeneratorSet:
    """The process-wide generator set of ``backend``."""
    with _SETS_LOCK:
        gens = _SETS.get(backend.name)
        if gens is None:
            gens = _SETS[backend.name] = GeneratorSet(backend)
        return gens
