"""Stage 3 of an epoch: prove the shards.

A shard is S consecutive leaves. Its job (``ShardJob``) holds only what that
shard needs: the header, the shard index, its leaves' values, blindings and
hashes; ``prove_shard`` commits to the leaves, builds the shard's subtree and
proves its aggregated 64-bit range proof over the credits. With a borrowable
asset (``header.margin``) it also proves the shard's debt range proof (64-bit)
and its margin-health proof (128-bit, one value per leaf: C_health, see
``zksolv.circuits.epoch``). Jobs are independent: they run on
any ``zksolv.executors`` executor (local processes, or a Dask cluster).

Results arrive in completion order. Workers are not trusted: each result is
checked against the job the client kept (``zksolv.prover.shardcheck``: the
shard's identity, its leaf commitments against the openings sent, its
subtree nodes) before anything else sees it; one that does not match is a
``WorkerFault`` naming the worker, and the shard is proven again elsewhere.
Each accepted result is handed to ``on_result`` at once (the work area
persists it, so a resumed run never proves it again) and the caller
receives them in shard order, the order of the bundle's files.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.field import R
from zksolv.core.group import Backend, get_backend
from zksolv.core.pedersen import commit_many
from zksolv.errors import FormatError, ProverFault, VerificationError, WorkerFault
from zksolv.executors import Executor


@dataclass(frozen=True)
class ShardJob:
    backend: str
    header: circ.EpochHeader
    digest: bytes
    shard: int
    values: tuple[int, ...]      # S*m, leaf-major (m columns: credits, debts)
    blindings: tuple[int, ...]
    hashes: tuple[bytes, ...]    # S


@dataclass(frozen=True)
class ShardResult:
    shard: int
    leaf_records: bytes                      # S * (m*48 + 32)
    # subtree levels above the leaves; each node m*48 + 32 bytes
    levels: tuple[tuple[bytes, ...], ...]
    proof: bytes                             # leaf range proof (credits)
    attempts: int = 1
    # header.margin only: debt range proof || margin-health proof (margin.bin)
    margin_proof: bytes = b""

    def top(self) -> bytes:
        """The shard's subtree root (k*48 commitment bytes || 32-byte hash)."""
        return self.levels[-1][0] if self.levels else self.leaf_records

    def to_bytes(self) -> bytes:
        """u64 shard || u32 count || (u32 len || bytes) per part: records,
        each level's nodes (concatenated), proof, and the margin proofs if
        there are any."""
        parts = [self.leaf_records, *(b"".join(lvl) for lvl in self.levels), self.proof]
        if self.margin_proof:
            parts.append(self.margin_proof)
        out = [struct.pack(">QI", self.shard, len(parts))]
        for p in parts:
            out.append(struct.pack(">I", len(p)) + p)
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes, *, shard: int, node_size: int, leaves: int,
                   proof_size: int, margin_size: int = 0) -> ShardResult:
        """Strict inverse of ``to_bytes`` for a shard of ``leaves`` leaves
        (with margin proofs of ``margin_size`` bytes if that is not 0);
        ``ValueError`` on any mismatch."""
        if len(data) < 12:
            raise ValueError("truncated")
        got_shard, count = struct.unpack_from(">QI", data, 0)
        levels_expected = leaves.bit_length() - 1
        if got_shard != shard or count != levels_expected + 2 + (1 if margin_size else 0):
            raise ValueError("wrong shard or shape")
        pos = 12
        parts = []
        for _ in range(count):
            if pos + 4 > len(data):
                raise ValueError("truncated")
            (n,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if pos + n > len(data):
                raise ValueError("truncated")
            parts.append(data[pos : pos + n])
            pos += n
        if pos != len(data):
            raise ValueError("trailing bytes")
        margin = parts.pop() if margin_size else b""
        records, *lvls, proof = parts
        if (len(records) != leaves * node_size or len(proof) != proof_size
                or len(margin) != margin_size):
            raise ValueError("wrong sizes")
        levels = []
        for lvl, raw in enumerate(lvls, start=1):
            width = leaves >> lvl
            if len(raw) != width * node_size:
                raise ValueError("wrong level size")
            levels.append(tuple(raw[i * node_size : (i + 1) * node_size] for i in range(width)))
        return cls(shard, records, tuple(levels), proof, margin_proof=margin)


# A shard whose proof fails the prover's own check is proven again (fresh
# commitments' arithmetic, fresh randomness) at most this many times in all.
SHARD_ATTEMPTS = 3


def prove_shard(job: ShardJob) -> ShardResult:
    """Commit to one shard's leaves, build its subtree, range-prove it, and
    check the proof against the commitments before it leaves the worker.

    The check costs about a fifth of the proof (0.29 s against 1.6 s for 256
    values, docs/epoch.md *Performance*). It exists because a
    prover must never hand out a proof it has not seen verify: a fault in
    any layer (the vector core included) surfaces here, the shard is proven
    again, and only a shard that fails every attempt stops the epoch."""
    backend = get_backend(job.backend)
    for attempt in range(1, SHARD_ATTEMPTS + 1):
        result, pairs = prove_shard_once(backend, job)
        if self_check(backend, pairs):
            return dataclasses.replace(result, attempts=attempt)
    raise ProverFault(
        f"shard {job.shard}: the proof failed the prover's own check {SHARD_ATTEMPTS} times"
    )


Pairs = list[tuple[rangeproof.RangeStatement, rangeproof.RangeProof]]


def as_published(pairs: Pairs) -> Pairs:
    """Each proof as a verifier of the bundle reads it: parsed from its bytes."""
    return [(st, rangeproof.RangeProof.from_bytes(pf.to_bytes())) for st, pf in pairs]


def self_check(backend: Backend, pairs: Pairs) -> bool:
    """Whether the shard's proofs verify as a verifier of the bundle checks
    them: each parsed from its bytes, against commitments decoded from their
    encodings. Not against the points just computed: a fault in an encoding
    (a leaf's or a margin-health commitment's) would pass a check on those
    points and fail every verifier. Decoding costs about 1 % of proving."""
    try:
        rangeproof.batch_verify(as_published(pairs), backend=backend)
    except (VerificationError, FormatError):
        return False
    return True


def prove_shard_once(
    backend: Backend, job: ShardJob, *, rng: Any = None
) -> tuple[ShardResult, Pairs]:
    """One attempt at the shard, unchecked: its result and its (statement,
    proof) pairs. ``rng`` (anything with ``randrange``) makes the proofs
    deterministic (the soak, tests); by default the provers draw from
    ``secrets``."""
    k = job.header.m
    S = len(job.hashes)
    points = commit_many(backend, job.values, job.blindings)
    encoded = backend.encode_many(points)
    level_pts = [points[i * k : (i + 1) * k] for i in range(S)]
    level_enc = [b"".join(encoded[i * k : (i + 1) * k]) for i in range(S)]
    records = b"".join(c + h for c, h in zip(level_enc, job.hashes, strict=True))
    levels = tuple(
        tuple(c + h for c, h in zip(enc, hashes, strict=True))
        for _, enc, hashes in circ.tree_levels(backend, k, (level_pts, level_enc, list(job.hashes)))
    )
    header = job.header
    statement = circ.leaf_statement(header, job.digest, job.shard, encoded)
    if not header.margin:
        proof = rangeproof.prove(statement, job.values, job.blindings, backend=backend, rng=rng)
        result = ShardResult(job.shard, records, levels, proof.to_bytes())
        return result, [(statement, proof)]
    credits, debts = circ.split_columns(header, job.values)
    credit_bl, debt_bl = circ.split_columns(header, job.blindings)
    proof = rangeproof.prove(statement, credits, credit_bl, backend=backend, rng=rng)
    debt_st = circ.debt_statement(header, job.digest, job.shard, encoded)
    debt_pf = rangeproof.prove(debt_st, debts, debt_bl, backend=backend, rng=rng)
    coef = circ.valued_coefficients(header.assets, header.depth)
    weights = circ.health_weights(header, coef)
    health_pts = circ.health_commitments(backend, header, coef, level_pts)
    health_enc = backend.encode_many(health_pts)
    health_v, health_bl = [], []
    for i in range(S):
        row = slice(i * k, (i + 1) * k)
        health_v.append(circ.health_value(header, coef, job.values[row]))
        health_bl.append(sum(w * b for w, b in zip(weights, job.blindings[row], strict=True)) % R)
    health_st = circ.health_statement(header, job.digest, job.shard, health_enc)
    health_pf = rangeproof.prove(health_st, health_v, health_bl, backend=backend,
                                 rng=rng)
    result = ShardResult(job.shard, records, levels, proof.to_bytes(),
                         margin_proof=debt_pf.to_bytes() + health_pf.to_bytes())
    pairs = [(statement, proof), (debt_st, debt_pf), (health_st, health_pf)]
    return result, pairs


# Results held in memory while waiting for an earlier shard; past this they
# are dropped and read back from the work area when their turn comes.
HELD_RESULTS = 256


def prove_shards(
    jobs: Iterable[ShardJob],
    executor: Executor,
    *,
    shards: int,
    proven: Collection[int] = (),
    load: Callable[[int], ShardResult] | None = None,
    on_result: Callable[[ShardResult], None] | None = None,
    on_fault: Callable[[WorkerFault], None] | None = None,
) -> Iterator[ShardResult]:
    """All ``shards`` results in shard order. ``jobs`` are the shards still
    to prove; those in ``proven`` (a resumed run) are read with ``load``, not
    proven again. Every result is checked against its job
    (``shardcheck.check_result``) before anything sees it; one that does not
    match is a ``WorkerFault`` naming the worker: ``on_fault`` sees it, the
    shard is proven again elsewhere (``Executor.run_elsewhere``), and a
    second result that does not match either (or nowhere else to run it)
    raises that fault. ``on_result`` sees each accepted result as soon as it
    is checked (it persists it: then ``load`` can read it back later)."""
    from .shardcheck import ShardMismatch, check_result

    done = set(proven)
    ready: dict[int, ShardResult] = {}
    asked: dict[int, ShardJob] = {}    # executor's task index -> job, while in flight
    following = 0

    def tracked() -> Iterator[ShardJob]:
        for i, job in enumerate(jobs):
            asked[i] = job
            yield job

    def accepted(job: ShardJob, res: object, worker: str) -> ShardResult:
        backend = get_backend(job.backend)
        try:
            check_result(backend, job, res)
            return res  # type: ignore[return-value]
        except ShardMismatch as exc:
            fault = WorkerFault(worker, job.shard, exc.reason)
        if on_fault is not None:
            on_fault(fault)
        again = executor.run_elsewhere(prove_shard, job, worker)
        if again is None:
            raise WorkerFault(worker, job.shard, f"{fault.reason}; no other worker to prove "
                              "the shard again on")
        res, other = again
        try:
            check_result(backend, job, res)
        except ShardMismatch as exc:
            raise WorkerFault(other, job.shard, f"{exc.reason} (proven again after worker "
                              f"{worker}'s result was refused: {fault.reason})") from fault
        return res  # type: ignore[return-value]

    def flush() -> Iterator[ShardResult]:
        nonlocal following
        while following in ready or following in done:
            res = ready.pop(following, None)
            if res is None:
                if load is None:
                    raise RuntimeError(f"shard {following}: no result and nothing to load")
                res = load(following)
            done.discard(following)
            yield res
            following += 1

    yield from flush()
    for i, raw, worker in executor.map_attributed(prove_shard, tracked()):
        job = asked.pop(i, None)
        if job is None:
            raise WorkerFault(worker, None, f"returned a result for task {i}, which was never "
                              "asked or was answered already")
        res = accepted(job, raw, worker)
        if on_result is not None:
            on_result(res)
        if len(ready) < HELD_RESULTS or load is None:
            ready[res.shard] = res
        else:
            done.add(res.shard)
        yield from flush()
    if following != shards:
        raise ProverFault(f"shard {following} was never proven: {executor.name} returned no "
                          "result for it")
