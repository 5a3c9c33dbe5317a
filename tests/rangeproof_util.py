"""Helpers for range-proof tests: deterministic statements and proofs."""

from __future__ import annotations

import random

from zksolv.core import rangeproof as rp
from zksolv.core.field import random_scalar
from zksolv.core.group import Backend
from zksolv.core.pedersen import commit

STATEMENT_ID = b"zksolv/test/range/v1"


def make_proof(
    backend: Backend,
    values: list[int],
    bits: int,
    *,
    seed: int | None = None,
    context: bytes = b"test-context",
    statement_id: bytes = STATEMENT_ID,
) -> tuple[rp.RangeStatement, rp.RangeProof, list[int]]:
    rng = random.Random(seed) if seed is not None else None
    blindings = [random_scalar(rng) for _ in values]
    commitments = tuple(
        backend.encode(commit(backend, v, g)) for v, g in zip(values, blindings, strict=True)
    )
    statement = rp.RangeStatement(statement_id, commitments, bits, context)
    proof = rp.prove(statement, values, blindings, backend=backend, rng=rng)
    return statement, proof, blindings
