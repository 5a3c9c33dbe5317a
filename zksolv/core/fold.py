"""Generator folding and cross terms for the inner-product prover.

Round k of the inner-product argument (docs/protocol.md, "Inner-product
argument") sends

    L = <a_lo, G'_hi> + <b_hi, H'_lo> + <a_lo, b_hi> w U
    R = <a_hi, G'_lo> + <b_lo, H'_hi> + <a_hi, b_lo> w U

and then replaces the generator vectors by

    G''_j = G'_lo_j + u^-1 * G'_hi_j          H''_j = H'_lo_j + u * H'_hi_j

where H'_i = w_i^-1 H_i carries the constraint weights. A folder keeps the
generators in a scaled form so that every point multiplication is as cheap as
the group library allows:

    G'_j = sigma * Ghat_j                  H'_j = eta * tau_j * Hhat_j

``tau_j`` is the weight vector's tensor over the bits not yet folded (the
prefix ``tau[:n']`` of its initial value); ``sigma`` and ``eta`` are common
scalars. Both folders produce the same L and R (so byte-identical proofs, see
tests/test_fold.py):

- ``GenericFolder`` (any backend; the reference): the backend's own
  multiplication, 128-bit scalars only: ``Ghat' = u*Ghat_lo + Ghat_hi``
  (sigma /= u) and ``Hhat' = y_k*Hhat_lo + u*Hhat_hi`` (eta /= y_k).
- ``BufferFolder`` (the ``mcl`` backend): Ghat and Hhat live in contiguous
  mcl buffers; L and R are one ``mulVec`` each, a fold is ``mulEach`` on
  halves plus point additions, with 128-bit scalars only (mcl's vectorised
  ``mulEach`` is wrong for some full-width ones): ``Ghat' = u*Ghat_lo +
  Ghat_hi`` (sigma /= u) and ``Hhat' = y_k*Hhat_lo + u*Hhat_hi`` (eta /= y_k).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Protocol

from zksolv.core.field import R
from zksolv.core.group import Backend, Point


class Folder(Protocol):
    sigma: int
    eta: int

    def cross_terms(
        self,
        a: Sequence[int],
        b: Sequence[int],
        tau: Sequence[int],
        cw: tuple[int, int],
        U: Point,
    ) -> tuple[Point, Point]:
        """(L, R) of the current round for vectors a, b of the current
        length n, weights tau[:n] and the U coefficients (c_L w, c_R w)."""
        ...

    def fold(self, u: int, u_inv: int, y_k: int, y_k_inv: int) -> None: ...


class GenericFolder:
    """Reference folder: the backend's own multiplication and addition."""

    def __init__(self, backend: Backend, G: Sequence[Point], H: Sequence[Point]) -> None:
        self.backend = backend
        self.G = list(G)
        self.H = list(H)
        self.sigma = 1
        self.eta = 1

    def cross_terms(
        self,
        a: Sequence[int],
        b: Sequence[int],
        tau: Sequence[int],
        cw: tuple[int, int],
        U: Point,
    ) -> tuple[Point, Point]:
        n = len(a)
        h = n // 2
        G, H, sigma, eta = self.G, self.H, self.sigma, self.eta
        L = self.backend.msm(
            [*G[h:n], *H[:h], U],
            [
                *(sigma * v for v in a[:h]),
                *(eta * v * tj for v, tj in zip(b[h:n], tau[:h], strict=True)),
                cw[0],
            ],
        )
        Rp = self.backend.msm(
            [*G[:h], *H[h:n], U],
            [
                *(sigma * v for v in a[h:n]),
                *(eta * v * tj for v, tj in zip(b[:h], tau[h:n], strict=True)),
                cw[1],
            ],
        )
        return L, Rp

    def fold(self, u: int, u_inv: int, y_k: int, y_k_inv: int) -> None:
        h = len(self.G) // 2
        be, G, H = self.backend, self.G, self.H
        self.G = be.add_each(be.mul_each(G[:h], [u] * h), G[h:])
        self.H = be.add_each(be.mul_each(H[:h], [y_k] * h), be.mul_each(H[h:], [u] * h))
        self.sigma = self.sigma * u_inv % R
        self.eta = self.eta * y_k_inv % R


class BufferFolder:
    """Folds in mcl buffers; L and R as single ``mulVec`` calls."""

    def __init__(self, G: Sequence[bytes], H: Sequence[bytes]) -> None:
        from zksolv.core import mcl

        self._mcl = mcl
        self.n = len(G)
        # Private copies: mulEach overwrites its input (and mulVec may
        # normalise its own, see zksolv.core.mcl).
        self.G = mcl.G1Vec.of(G)
        self.H = mcl.G1Vec.of(H)
        self.sigma = 1
        self.eta = 1

    def cross_terms(
        self,
        a: Sequence[int],
        b: Sequence[int],
        tau: Sequence[int],
        cw: tuple[int, int],
        U: Point,
    ) -> tuple[Point, Point]:
        mcl = self._mcl
        n = len(a)
        h = n // 2
        # mcl reads scalars in Montgomery form: fold the factor into the
        # common multipliers so each entry costs one product.
        sm = self.sigma * mcl.MONT % R
        em = self.eta * mcl.MONT % R
        out = []
        for g_start, h_start, a_part, b_part, tau_part, c in (
            (h, 0, a[:h], b[h:n], tau[:h], cw[0]),
            (0, h, a[h:n], b[:h], tau[h:n], cw[1]),
        ):
            scratch = mcl.G1Vec(n + 1)
            scratch.copy_in(0, self.G, g_start, h)
            scratch.copy_in(h, self.H, h_start, h)
            ctypes.memmove(scratch.at(n), U, mcl.G1_RAW)
            scalars = mcl.fr_bytes_scaled(
                [
                    *(sm * v % R for v in a_part),
                    *(em * v * tj % R for v, tj in zip(b_part, tau_part, strict=True)),
                    c * mcl.MONT % R,
                ]
            )
            res = ctypes.create_string_buffer(mcl.G1_RAW)
            mcl.msm_into(res, scratch, 0, n + 1, scalars)
            out.append(res.raw)
        return out[0], out[1]

    def fold(self, u: int, u_inv: int, y_k: int, y_k_inv: int) -> None:
        # Short (128-bit) scalars only: mcl's vectorised mulEach is wrong for
        # some full-width ones (zksolv.core.mcl.mul_each), so H folds as
        # y_k*Hhat_lo + u*Hhat_hi (eta /= y_k), not Hhat_lo + (u/y_k)*Hhat_hi.
        mcl = self._mcl
        h = self.n // 2
        mcl.mul_each_by(self.G, 0, h, u)
        mcl.add_halves(self.G, h)
        mcl.mul_each_by(self.H, 0, h, y_k)
        mcl.mul_each_by(self.H, h, h, u)
        mcl.add_halves(self.H, h)
        self.n = h
        self.sigma = self.sigma * u_inv % R
        self.eta = self.eta * y_k_inv % R


def make_folder(backend: Backend, G: Sequence[Point], H: Sequence[Point]) -> Folder:
    """The buffer folder on the mcl backend, the reference one elsewhere."""
    if backend.name == "mcl":
        return BufferFolder(G, H)
    return GenericFolder(backend, G, H)
