"""Pedersen commitments over BLS12-381 G1.

Value commitment:   C = v*g + gamma*h
Vector commitment:  C = <a, G> + <b, H> + gamma*h

Both are perfectly hiding (gamma uniform) and computationally binding under
the discrete logarithm assumption, because nobody knows log_g(h) or any
relation among the hash-to-curve generators (``zksolv.core.generators``).
Commitments are additively homomorphic: C(v1, r1) + C(v2, r2) = C(v1+v2,
r1+r2), which the Merkle-sum tree and the solvency statements rely on.
"""

from __future__ import annotations

from collections.abc import Sequence

from zksolv.core.generators import generators
from zksolv.core.group import Backend, Point


def commit(backend: Backend, value: int, blinding: int) -> Point:
    """v*g + gamma*h."""
    gens = generators(backend)
    return backend.msm([gens.g, gens.h], [value, blinding])


def commit_many(backend: Backend, values: Sequence[int], blindings: Sequence[int]) -> list[Point]:
    """[v_i*g + gamma_i*h] for many openings: two batched multiplications
    and one batched addition (one C call each on mcl but the additions)."""
    if len(values) != len(blindings):
        raise ValueError("commit_many: one blinding per value")
    gens = generators(backend)
    n = len(values)
    return backend.add_each(
        backend.mul_each([gens.g] * n, values), backend.mul_each([gens.h] * n, blindings)
    )


def commit_vector(backend: Backend, a: Sequence[int], b: Sequence[int], blinding: int) -> Point:
    """<a, G> + <b, H> + gamma*h, with G, H the first len(a) vector bases."""
    if len(a) != len(b):
        raise ValueError("commit_vector: a and b differ in length")
    gens = generators(backend)
    G, H = gens.vectors(len(a))
    n = len(a)
    return backend.msm([*G[:n], *H[:n], gens.h], [*a, *b, blinding])
