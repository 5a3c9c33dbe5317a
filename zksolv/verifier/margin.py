"""The margin statements of a version 5 bundle (an asset borrowable), checked
with public data only: each shard's debt range proof [debt-range] and its
margin-health proof [margin-health] (relations: ``zksolv.circuits.epoch``;
notes: docs/epoch.md, *Margin accounts*; bytes: docs/bundle-format.md).

A shard's record in ``margin.bin`` is its debt range proof (S*b values,
64-bit) followed by its margin-health proof (S values, 128-bit). The
verifier never reads a health commitment from the bundle: it forms

    C_health_i = sum_j c_j*C_leaf_credit_ij - sum_{j borrowable} b_j*C_leaf_debt_ij

itself from leaf i's published column commitments, so a proof can only be
about the leaves the tree sums. Imports core and circuits only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.group import Backend, Point
from zksolv.errors import FormatError

DEBT_RANGE = "debt-range"
MARGIN_HEALTH = "margin-health"


@dataclass(frozen=True)
class ShardItem:
    """One range proof of a shard to batch-verify, with the check tag that
    reports it when it fails."""

    check: str
    statement: rangeproof.RangeStatement
    proof: rangeproof.RangeProof


def record_size(header: circ.EpochHeader) -> int:
    """Bytes of one shard's record in margin.bin."""
    return sum(layout.margin_proof_sizes(header.shard_leaves, header.m - header.k))


def file_size(header: circ.EpochHeader) -> int:
    """Bytes of margin.bin: one record per shard."""
    return header.shards * record_size(header)


def shard_items(backend: Backend, header: circ.EpochHeader, digest: bytes, shard: int,
                coef: circ.ValuedCoefficients, commitments: Sequence[bytes],
                leaf_points: Sequence[Sequence[Point]], record: bytes,
                decoded: dict[bytes, Point]) -> list[ShardItem]:
    """The debt range and margin-health statements of ``shard`` and their
    proofs parsed from its ``record``. ``commitments`` are the shard's leaf
    commitments (m per leaf, leaf-major), ``leaf_points`` the same decoded,
    one list per leaf; ``decoded`` gains the health commitments so the batch
    check does not decode them again. A proof that does not parse raises
    ``FormatError`` whose message names the check."""
    debt_len, _ = layout.margin_proof_sizes(header.shard_leaves, header.m - header.k)
    debt_st = circ.debt_statement(header, digest, shard, commitments)
    try:
        debt_pf = rangeproof.RangeProof.from_bytes(record[:debt_len])
    except FormatError as exc:
        raise FormatError(f"{DEBT_RANGE}: shard {shard}: {exc}") from exc
    health_pts = circ.health_commitments(backend, header, coef, leaf_points)
    health_enc = backend.encode_many(health_pts)
    decoded.update(zip(health_enc, health_pts, strict=True))
    health_st = circ.health_statement(header, digest, shard, health_enc)
    try:
        health_pf = rangeproof.RangeProof.from_bytes(record[debt_len:])
    except FormatError as exc:
        raise FormatError(f"{MARGIN_HEALTH}: shard {shard}: {exc}") from exc
    return [ShardItem(DEBT_RANGE, debt_st, debt_pf), ShardItem(MARGIN_HEALTH, health_st, health_pf)]
