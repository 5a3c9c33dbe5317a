"""Generator folding for the inner-product prover.

Round k of the inner-product argument replaces the generator vectors by

    G'_j = G_lo_j + u^-1 * G_hi_j          H'_j = H_lo_j + u * H_hi_j

(with H'_i = w_i^-1 H_i carrying the constraint weights). The prover keeps
them in a scaled form so that every point multiplication is as cheap as the
group library allows:

    G'_j = sigma * Ghat_j                  H'_j = eta * tau_j * Hhat_j

where ``tau_j`` is the weight vector's tensor over the bits not yet folded
(the prefix ``tau[:n']`` of its initial value) and ``sigma``, ``eta`` are
common scalars. Two folders produce the same G', H' (and so byte-identical
proofs, see tests/test_fold.py):

- ``GenericFolder`` (any backend; the reference): 128-bit multiplications
  only, which is what arkworks is cheapest at (cost grows with scalar
  width): ``Ghat' = u*Ghat_lo + Ghat_hi`` (sigma /= u) and
  ``Hhat' = y_k*Hhat_lo + u*Hhat_hi`` (eta /= y_k).
- ``MclFolder`` (arkworks backend, when ``pymcl`` is installed): folds in
  mcl, whose G1 multiplication costs about the same for any scalar width
  and less than arkworks' 128-bit one, so H takes one full-width
  multiplication: ``Hhat' = Hhat_lo + (u/y_k)*Hhat_hi`` (eta unchanged).
  Points cross to arkworks (affine x, y; on-curve checked) only for the
  round's multi-scalar multiplications, which arkworks does best.

``ZKSOLV_FOLDER=generic`` forces the reference folder.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from typing import Any

from zksolv.core.field import R
from zksolv.core.group import Backend, Point

FOLDER_ENV = "ZKSOLV_FOLDER"


class GenericFolder:
    """Reference folder: the backend's own multiplication and addition."""

    def __init__(self, backend: Backend, G: Sequence[Point], H: Sequence[Point]) -> None:
        self.backend = backend
        self.G = list(G)
        self.H = list(H)
        self.sigma = 1
        self.eta = 1

    def current(self) -> tuple[list[Point], list[Point]]:
        return self.G, self.H

    def fold(self, u: int, u_inv: int, y_k: int, y_k_inv: int) -> None:
        h = len(self.G) // 2
        mul, add = self.backend.mul, self.backend.add
        G, H = self.G, self.H
        self.G = [add(mul(G[j], u), G[h + j]) for j in range(h)]
        self.H = [add(mul(H[j], y_k), mul(H[h + j], u)) for j in range(h)]
        self.sigma = self.sigma * u_inv % R
        self.eta = self.eta * y_k_inv % R


@functools.cache
def _pymcl() -> Any:
    try:
        import pymcl
    except ImportError:
        return None
    return pymcl


_MCL_CACHE: dict[int, list[Any]] = {}
_MCL_LOCK = threading.Lock()


def _to_mcl(pymcl: Any, ark_points: Sequence[Point]) -> list[Any]:
    out = []
    for p in ark_points:
        xy = bytes(p.to_xy_bytes_be())
        if not any(xy):  # the identity encodes as 96 zero bytes
            out.append(pymcl.G1())
            continue
        x, y = int.from_bytes(xy[:48], "big"), int.from_bytes(xy[48:], "big")
        out.append(pymcl.G1(f"1 {x} {y}", 10))
    return out


def _mcl_generators(pymcl: Any, points: Sequence[Point]) -> list[Any]:
    """mcl copies of (a prefix of) a generator vector, converted once per
    process (~0.1 ms a point) and kept, keyed by the list's identity."""
    key = id(points)
    with _MCL_LOCK:
        have = _MCL_CACHE.setdefault(key, [])
        if len(have) < len(points):
            have.extend(_to_mcl(pymcl, points[len(have) :]))
        return have


class MclFolder:
    """Folds in mcl; hands arkworks points to the multi-scalar multiplications."""

    def __init__(
        self,
        backend: Backend,
        G: Sequence[Point],
        H: Sequence[Point],
        G_all: Sequence[Point],
        H_all: Sequence[Point],
    ) -> None:
        pymcl = _pymcl()
        self._pymcl = pymcl
        self._from_xy = backend._G1.from_xy_bytes_unchecked_be  # type: ignore[attr-defined]
        self._identity = backend.identity()
        n = len(G)
        self._Gm = _mcl_generators(pymcl, G_all)[:n]
        self._Hm = _mcl_generators(pymcl, H_all)[:n]
        self._ark: tuple[list[Point], list[Point]] | None = (list(G), list(H))
        self.sigma = 1
        self.eta = 1

    def _to_ark(self, p: Any) -> Point:
        parts = str(p).split()
        if parts[0] == "0":
            return self._identity
        x, y = int(parts[1]), int(parts[2])
        return self._from_xy(x.to_bytes(48, "big") + y.to_bytes(48, "big"))

    def current(self) -> tuple[list[Point], list[Point]]:
        if self._ark is None:
            conv = self._to_ark
            self._ark = ([conv(p) for p in self._Gm], [conv(p) for p in self._Hm])
        return self._ark

    def fold(self, u: int, u_inv: int, y_k: int, y_k_inv: int) -> None:
        Fr = self._pymcl.Fr
        h = len(self._Gm) // 2
        G, H = self._Gm, self._Hm
        su = Fr(str(u))
        sc = Fr(str(u * y_k_inv % R))
        self._Gm = [G[j] * su + G[h + j] for j in range(h)]
        self._Hm = [H[j] + H[h + j] * sc for j in range(h)]
        self._ark = None
        self.sigma = self.sigma * u_inv % R


Folder = GenericFolder | MclFolder


def prepare(backend: Backend, G_all: Sequence[Point], H_all: Sequence[Point]) -> None:
    """Copy the generator vectors into the fast folder now (~0.1 ms a point),
    e.g. before forking worker processes, which then inherit the copies."""
    if os.environ.get(FOLDER_ENV, "auto") != "generic" and backend.name == "arkworks":
        pymcl = _pymcl()
        if pymcl is not None:
            _mcl_generators(pymcl, G_all)
            _mcl_generators(pymcl, H_all)


def make_folder(
    backend: Backend,
    G: Sequence[Point],
    H: Sequence[Point],
    G_all: Sequence[Point],
    H_all: Sequence[Point],
) -> Folder:
    """The fastest folder available for ``backend``."""
    choice = os.environ.get(FOLDER_ENV, "auto")
    if choice != "generic" and backend.name == "arkworks" and _pymcl() is not None:
        return MclFolder(backend, G, H, G_all, H_all)
    return GenericFolder(backend, G, H)

