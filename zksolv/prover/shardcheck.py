"""What the client checks of a shard result before it keeps it.

A worker (a forked local process, a Dask worker) is sent one shard's job:
the header, the shard index, the leaves' amounts v_i, blindings r_i and
leaf hashes (m columns per leaf: k credits, and with a borrowable asset
each borrowable asset's debt right after its credit). It returns a
``ShardResult``: the shard index, the leaf records (m commitments of 48
bytes and the 32-byte leaf hash per leaf), the subtree levels above the
leaves (every node's m commitments and hash), the shard's range proof over
the credits, with a borrowable asset its debt range proof and margin-health
proof, and how many attempts its own check took. The client
trusts none of it. Before a result is written anywhere (the work area, the
bundle, the inclusion database) ``check_result`` checks it against the job
the client kept:

=================  ==========================================================
part               checked
=================  ==========================================================
shard index        the job's (a result for another shard, or for a task never
                   asked, is refused)
shape              S leaf records of m*48 + 32 bytes, log2(S) levels of
                   S/2, S/4, ... 1 nodes of m*48 + 32 bytes, a range proof of
                   the statement's size (S*k credits) that parses strictly
                   (canonical scalars); with a borrowable asset the margin
                   proof bytes are a debt range proof (S*b values, 64-bit)
                   followed by a margin-health proof (S values, 128-bit),
                   each of its size and parsing strictly, and without one
                   they are empty; 1 <= attempts <= ``SHARD_ATTEMPTS``
leaf hashes        byte for byte the job's, in the job's order
leaf commitments   all m per leaf (credits and debts): each decodes (on the
                   curve, in the prime-order subgroup,
                   not the identity) and C_i = v_i*g + r_i*h for the job's
                   opening [worker-opening], by one random linear combination
                   (below)
subtree nodes      recomputed from the checked leaf commitments ([tree-sum],
                   [tree-hash]) and equal, byte for byte, to the returned ones
                   (the inclusion database keeps them; the top node becomes
                   the shard's root in the tree above)
range proofs       not verified here: the bundle's self-check verifies every
                   shard's proofs ([leaf-range], and [debt-range] and
                   [margin-health] with a borrowable asset) before anything
                   is published
=================  ==========================================================

The range proof is left to the self-check because verifying it costs a
tenth or more of proving it (measured in docs/epoch.md), too much for one
client to repeat for every worker of a cluster, and because a bad proof cannot hide
anything once the commitments are checked: they open to the client's own
amounts, every one of them in range, so a bad proof can only make a bundle
that fails verification, never one that verifies with other amounts. (When
the run uses a Dask cluster the self-check's batches run on that cluster.)

The combination [worker-opening]: for weights rho_i drawn from ``secrets``
after the result arrived, each uniform in [0, 2^128),

    sum_i rho_i * C_i  ==  (sum_i rho_i v_i) * g + (sum_i rho_i r_i) * h,

checked as one multi-scalar multiplication of n + 2 points being the
identity. If some C_i differs from v_i*g + r_i*h, the difference D_i is a
nonzero element of a group of prime order r > 2^254 (every C_i was decoded
into the subgroup: without that check a point with a component of order 3
would pass one time in three), and sum_i rho_i D_i = 0 holds for at most
one value of rho_i given the others: probability at most 2^-128. The
reference path (``method="direct"``) recomputes every commitment and
compares the encodings; it also names the first wrong leaf when the
combination fails. A differential test runs both.

On resume the same check runs on every shard file found in the work area,
against the openings in the work area's leaves database
(``check_kept_shards``): a file that does not match (another run's shards,
other blindings) is discarded and its shard proven again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core.field import R
from zksolv.core.generators import generators
from zksolv.core.group import POINT_BYTES, Backend, Point
from zksolv.core.pedersen import commit_many
from zksolv.core.rangeproof import RangeProof
from zksolv.errors import FormatError

from .shards import SHARD_ATTEMPTS, ShardJob, ShardResult

WEIGHT_BITS = 128
METHODS = ("combination", "direct")


class ShardMismatch(ValueError):
    """A shard result does not match its job; ``reason`` says where (never
    an amount or a blinding)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def check_result(backend: Backend, job: ShardJob, result: Any, *,
                 method: str = "combination",
                 randbits: Callable[[int], int] = secrets.randbits) -> None:
    """Raise ``ShardMismatch`` unless ``result`` is ``job``'s shard result
    (every check of the module docstring). ``method`` is ``combination``
    (the random linear combination, the default) or ``direct`` (every
    commitment recomputed: the reference); ``randbits`` draws the weights
    (``secrets.randbits``; passed in by tests only)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    k, S = job.header.m, len(job.hashes)
    _check_shape(job, result)
    rec = layout.leaf_record_size(k)
    cpart = k * POINT_BYTES
    records = result.leaf_records
    enc = [records[i * rec : i * rec + cpart] for i in range(S)]
    hashes = [records[i * rec + cpart : (i + 1) * rec] for i in range(S)]
    for i, (got, want) in enumerate(zip(hashes, job.hashes, strict=True)):
        if got != want:
            raise ShardMismatch(f"leaf {job.shard * S + i}: leaf hash is not the client's")
    commits = [e[j * POINT_BYTES : (j + 1) * POINT_BYTES] for e in enc for j in range(k)]
    if method == "direct":
        points = _direct(backend, job, commits)
    else:
        points = _combination(backend, job, commits, randbits)
    level: circ.Level = ([points[i * k : (i + 1) * k] for i in range(S)], enc, hashes)
    for lvl, (_, lenc, lhash) in enumerate(circ.tree_levels(backend, k, level), start=1):
        nodes = tuple(c + h for c, h in zip(lenc, lhash, strict=True))
        if result.levels[lvl - 1] != nodes:
            bad = next(i for i, (a, b) in enumerate(zip(result.levels[lvl - 1], nodes,
                                                        strict=True)) if a != b)
            raise ShardMismatch(f"subtree node {bad} of level {lvl} is not the sum and hash "
                                "of its children")


def _check_shape(job: ShardJob, result: Any) -> None:
    header, S = job.header, len(job.hashes)
    k = header.m
    if not isinstance(result, ShardResult):
        raise ShardMismatch(f"returned a {type(result).__name__}, not a shard result")
    if type(result.shard) is not int or result.shard != job.shard:
        raise ShardMismatch(f"returned a result for shard {result.shard!r}, not for the shard "
                            "it was sent")
    node = layout.leaf_record_size(k)
    if type(result.leaf_records) is not bytes or len(result.leaf_records) != S * node:
        raise ShardMismatch("leaf records of the wrong size")
    levels = result.levels
    if (type(levels) is not tuple or len(levels) != S.bit_length() - 1
            or any(type(lv) is not tuple or len(lv) != S >> n
                   or any(type(x) is not bytes or len(x) != node for x in lv)
                   for n, lv in enumerate(levels, start=1))):
        raise ShardMismatch("subtree levels of the wrong shape")
    if type(result.attempts) is not int or not 1 <= result.attempts <= SHARD_ATTEMPTS:
        raise ShardMismatch(f"claims {result.attempts!r} attempts")
    if (type(result.proof) is not bytes
            or len(result.proof) != layout.leaf_proof_size(S, header.k)):
        raise ShardMismatch("range proof of the wrong size")
    _parse(result.proof, "range proof")
    sizes = layout.margin_proof_sizes(S, header.m - header.k) if header.margin else (0, 0)
    margin = result.margin_proof
    if type(margin) is not bytes or len(margin) != sum(sizes):
        raise ShardMismatch("margin proofs of the wrong size")
    if header.margin:
        _parse(margin[: sizes[0]], "debt range proof")
        _parse(margin[sizes[0]:], "margin-health proof")


def _parse(proof: bytes, what: str) -> None:
    try:
        RangeProof.from_bytes(proof)
    except FormatError as exc:
        raise ShardMismatch(f"{what} does not parse ({exc})") from exc


def _where(job: ShardJob, i: int) -> str:
    header, S = job.header, len(job.hashes)
    m = header.m
    if not header.margin:
        return f"leaf {job.shard * S + i // m} asset {i % m}"
    return f"leaf {job.shard * S + i // m} column {circ.column_names(header.assets)[i % m]}"


def _direct(backend: Backend, job: ShardJob, commits: list[bytes]) -> list[Point]:
    """The reference: every C_i recomputed as v_i*g + r_i*h and compared."""
    points = commit_many(backend, job.values, job.blindings)
    for i, (got, want) in enumerate(zip(commits, backend.encode_many(points), strict=True)):
        if got != want:
            raise ShardMismatch(f"{_where(job, i)}: commitment does not open to the client's "
                                "amount and blinding [worker-opening]")
    return points


def _combination(backend: Backend, job: ShardJob, commits: list[bytes],
                 randbits: Callable[[int], int]) -> list[Point]:
    """Decode every C_i, then one MSM: sum rho_i C_i - (sum rho_i v_i) g
    - (sum rho_i r_i) h == O."""
    points = []
    for i, c in enumerate(commits):
        try:
            points.append(backend.decode(c, what=_where(job, i)))
        except FormatError as exc:
            raise ShardMismatch(f"commitment does not decode: {exc}") from exc
    gens = generators(backend)
    rho = [randbits(WEIGHT_BITS) for _ in commits]
    sv = sum(r * v for r, v in zip(rho, job.values, strict=True)) % R
    sr = sum(r * b for r, b in zip(rho, job.blindings, strict=True)) % R
    if not backend.msm_is_identity([*points, gens.g, gens.h], [*rho, -sv, -sr]):
        _direct(backend, job, commits)  # names the first wrong leaf
        raise ShardMismatch("leaf commitments do not open to the client's amounts and "
                            "blindings [worker-opening]")
    return points


@dataclass(frozen=True)
class KeptShards:
    """What a resumed run found in its work area: the shards whose files
    check (with each file's SHA-256, so the file written later is the one
    checked) and the shards whose files did not, with why."""

    digests: dict[int, bytes]
    discarded: tuple[tuple[int, str], ...]


def check_kept_shards(backend: Backend, jobs: Iterable[ShardJob],
                      read: Callable[[int], tuple[ShardResult, bytes] | None],
                      discard: Callable[[int], None]) -> KeptShards:
    """``check_result`` for the file of each job's shard (``read`` gives the
    result and the file's digest, None if absent or damaged); a file that
    does not match is ``discard``-ed."""
    digests: dict[int, bytes] = {}
    discarded = []
    for job in jobs:
        got = read(job.shard)
        if got is None:
            continue
        res, digest = got
        try:
            check_result(backend, job, res)
        except ShardMismatch as exc:
            discard(job.shard)
            discarded.append((job.shard, exc.reason))
            continue
        digests[job.shard] = digest
    return KeptShards(digests, tuple(discarded))
