"""The buffer folder (mcl) and the reference folder (backend lists) give the
same cross terms, the same folded generators and byte-identical proofs."""

from __future__ import annotations

import random

import pytest
from rangeproof_util import make_proof

from zksolv.core import fold, mcl
from zksolv.core import rangeproof as rp
from zksolv.core.field import R
from zksolv.core.generators import generators
from zksolv.core.group import get_backend

pytestmark = pytest.mark.skipif(not mcl.available(), reason="mcl not loadable here")


def _scalars(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(R) for _ in range(n)]


@pytest.mark.parametrize("n", [2, 8, 32])
def test_cross_terms_and_folds_agree_round_by_round(n: int) -> None:
    ark, fast = get_backend("arkworks"), get_backend("mcl")
    G_a, H_a = (v[:n] for v in generators(ark).vectors(n))
    G_m, H_m = (v[:n] for v in generators(fast).vectors(n))
    ref = fold.GenericFolder(ark, G_a, H_a)
    buf = fold.make_folder(fast, G_m, H_m)
    assert isinstance(buf, fold.BufferFolder)
    rng = random.Random(n)
    tau = _scalars(rng, n)
    U_a, U_m = generators(ark).u, generators(fast).u
    size = n
    while size > 1:
        a, b = _scalars(rng, size), _scalars(rng, size)
        cw = (rng.randrange(R), rng.randrange(R))
        La, Ra = ref.cross_terms(a, b, tau[:size], cw, U_a)
        Lm, Rm = buf.cross_terms(a, b, tau[:size], cw, U_m)
        assert ark.encode(La) == fast.encode(Lm)
        assert ark.encode(Ra) == fast.encode(Rm)
        u, y = rng.getrandbits(128) | 1, rng.getrandbits(128) | 1
        ref.fold(u, pow(u, -1, R), y, pow(y, -1, R))
        buf.fold(u, pow(u, -1, R), y, pow(y, -1, R))
        size //= 2
        # Same generators once the scale factors are applied.
        tau_h = tau[:size]
        for j in range(size):
            g_ref = ark.mul(ref.G[j], ref.sigma)
            g_buf = fast.mul(buf.G.point(j), buf.sigma)
            assert ark.encode(g_ref) == fast.encode(g_buf)
            h_ref = ark.mul(ref.H[j], ref.eta * tau_h[j])
            h_buf = fast.mul(buf.H.point(j), buf.eta * tau_h[j])
            assert ark.encode(h_ref) == fast.encode(h_buf)


CASES = [([5], 8), ([1, 2, 3], 16), ([7] * 8, 64), ([1 << 90], 128)]


@pytest.mark.parametrize("values,bits", CASES)
def test_seeded_proofs_are_byte_identical_on_the_fast_and_reference_paths(
    values: list[int], bits: int
) -> None:
    proofs = {}
    for name in ("mcl", "arkworks"):
        backend = get_backend(name)
        statement, proof, _ = make_proof(backend, values, bits, seed=1234)
        proofs[name] = proof.to_bytes()
        for checker in ("mcl", "arkworks"):
            rp.verify(statement, proof, backend=get_backend(checker))
    assert proofs["mcl"] == proofs["arkworks"]


def test_reference_backends_use_the_reference_folder() -> None:
    for name in ("arkworks", "py_ecc"):
        be = get_backend(name)
        g = be.identity()
        assert type(fold.make_folder(be, [g], [g])) is fold.GenericFolder
