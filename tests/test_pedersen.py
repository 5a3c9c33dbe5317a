"""Pedersen commitments: homomorphism, vector form, backend agreement."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zksolv.core.field import R
from zksolv.core.generators import generators
from zksolv.core.group import get_backend
from zksolv.core.pedersen import commit, commit_vector

ARK = get_backend("arkworks")
scalars = st.integers(min_value=0, max_value=R - 1)


@settings(max_examples=25)
@given(scalars, scalars, scalars, scalars)
def test_commitments_add(v1: int, r1: int, v2: int, r2: int) -> None:
    total = ARK.add(commit(ARK, v1, r1), commit(ARK, v2, r2))
    assert ARK.eq(total, commit(ARK, (v1 + v2) % R, (r1 + r2) % R))


@settings(max_examples=10)
@given(scalars, scalars)
def test_commitment_is_value_times_g_plus_blinding_times_h(v: int, r: int) -> None:
    gens = generators(ARK)
    expected = ARK.add(ARK.mul(gens.g, v), ARK.mul(gens.h, r))
    assert ARK.encode(commit(ARK, v, r)) == ARK.encode(expected)


def test_same_value_different_blinding_hides() -> None:
    assert ARK.encode(commit(ARK, 5, 1)) != ARK.encode(commit(ARK, 5, 2))


def test_vector_commitment_matches_its_definition() -> None:
    a, b, r = [1, 2, 3, 4], [5, 6, 7, R - 1], 99
    gens = generators(ARK)
    G, H = gens.vectors(4)
    acc = ARK.mul(gens.h, r)
    for i in range(4):
        acc = ARK.add(acc, ARK.add(ARK.mul(G[i], a[i]), ARK.mul(H[i], b[i])))
    assert ARK.eq(commit_vector(ARK, a, b, r), acc)


def test_commitments_identical_on_both_backends() -> None:
    ref = get_backend("py_ecc")
    for v, r in [(0, 1), (2**64 - 1, 12345), (R - 1, R - 2)]:
        assert ARK.encode(commit(ARK, v, r)) == ref.encode(commit(ref, v, r))
    assert ARK.encode(commit_vector(ARK, [1, 2], [3, 4], 5)) == ref.encode(
        commit_vector(ref, [1, 2], [3, 4], 5)
    )
