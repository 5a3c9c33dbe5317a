"""The shard soak: prove shards on the fast core for as long as asked, check
every result on the reference path, and keep a reproducer of any mismatch.

Why: a 2^20-account epoch once had one shard proof (of 4,096) that failed the
bundle's self-check. A fault that rare hides from every unit test, and a
proof system must not have an unexplained wrong result, so this runs the
epoch's own shard code (``shards.prove_shard_once``) on many shards and
compares each step with an independent computation.

A case is one shard job, entirely determined by (seed, case index): the
header, the values (zero, tiny, single bits, 2^64 - 1 and uniform 64-bit
values in a fixed mix), the blindings, the leaf hashes and the prover's own
randomness (``rangeproof.prove(rng=...)``). So a reproducer is the seed and
the index; the inputs are written beside them to check nothing drifted.

Checks, each named in a fault (``CHECKS``):

``commitment``   each leaf commitment v*g + gamma*h recomputed on the reference
                 backend, one leaf at a time, and compared by encoding (with
                 ``margin``, each leaf's margin-health commitment too);
``subtree``      the shard's subtree levels recomputed on the reference backend
                 from those commitments and the leaf hashes;
``proof-self``   the shard's equation on the fast backend as the worker's own
                 check computes it (``shards.self_check``: proofs parsed from
                 their bytes, commitments decoded from their encodings), raw:
                 before any confirmation on the reference path;
``proof-reference``  the proof verified on the reference backend (in a batch
                 of the task's cases; a failed batch is settled case by case);
``proof-batch``  the task's proofs checked together on the fast backend, as
                 the bundle's self-check batches shards;
``error``        proving or checking the case raised (an encoding that does not
                 decode is a ``proof-*`` failure, not this); ``worker-died``
                 (reported by the command) when a worker process ended mid-task,
                 as a crash in the C library ends it.

On a mismatch the case is run again at once in the same process (does the
fault repeat with the same inputs?), and proven on the reference backend with
the same randomness to name the first proof element that differs (A, S, T1,
T2, then L_k / R_k of inner-product round k: which operation went wrong).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.field import R
from zksolv.core.generators import generators
from zksolv.core.group import BACKENDS, Backend, get_backend
from zksolv.core.pedersen import commit
from zksolv.errors import FormatError
from zksolv.prover.shards import Pairs, ShardJob, ShardResult, as_published, prove_shard_once

# Domain separation of the case derivation (a test tool's, never a secret's).
CASE_LABEL = b"zksolv/soak/case/v1"
REPRODUCER_FORMAT = "zksolv-soak-fault/v1"
CHECKS = ("commitment", "subtree", "proof-self", "proof-reference", "proof-batch", "error",
          "worker-died")
MAX_CASE = (1 << 63) - 1
TREE_DEPTH = 20


@dataclass(frozen=True)
class SoakSpec:
    """What every case of one soak shares."""

    seed: bytes
    assets: int = 1
    leaves: int = 256
    fast: str = "mcl"
    reference: str = "arkworks"
    # lending shards: the last asset is borrowable, so each shard also has a
    # debt range proof and a 128-bit margin-health proof (bundle version 5)
    margin: bool = False

    def __post_init__(self) -> None:
        for name in (self.fast, self.reference):
            if name not in BACKENDS:
                raise ValueError(f"unknown backend {name!r} (choose one of {', '.join(BACKENDS)})")
        if not 1 <= self.assets <= 8:
            raise ValueError("assets must be in [1, 8]")
        if self.margin and self.assets < 2:
            raise ValueError("a margin shard needs 2 assets or more (collateral, borrowable)")
        if self.leaves < 2 or self.leaves & (self.leaves - 1) or self.leaves > 1 << 12:
            raise ValueError("leaves must be a power of two in [2, 4096]")


@dataclass(frozen=True)
class Fault:
    """What disagreed in a case (or in a task's batch), and what is known
    about it: ``check`` and ``detail`` are the first finding, ``also`` the
    other checks that failed for it."""

    case: int
    check: str
    detail: str
    also: tuple[str, ...] = ()
    # cases the finding spans from ``case``: 1, or a task's whole batch when
    # its batch equation failed and no case alone did
    span: int = 1
    repeated: bool | None = None          # the same inputs run again: the same check fails?
    first_difference: str | None = None   # first element unlike the reference's, in the faulty run


@dataclass
class TaskReport:
    """What one task (a few cases on one worker) found and how long it took."""

    first: int
    count: int
    pid: int
    faults: list[Fault] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def case_rng(spec: SoakSpec, case: int) -> random.Random:
    """Python's ``random.Random`` (MT19937) seeded with the 32-byte digest
    SHA-256(CASE_LABEL || seed || case as 8 bytes big-endian)."""
    return random.Random(hashlib.sha256(CASE_LABEL + spec.seed + case.to_bytes(8, "big")).digest())


def _value(rng: random.Random) -> int:
    kind = rng.randrange(8)
    if kind == 0:
        return 0
    if kind == 1:
        return (1 << 64) - 1
    if kind == 2:
        return 1 << rng.randrange(64)
    if kind == 3:
        return rng.randrange(1 << 16)
    return rng.randrange(1 << 64)


def case_job(spec: SoakSpec, case: int) -> tuple[ShardJob, random.Random]:
    """The shard job of ``case`` and the generator that then supplies the
    prover's randomness (its state continues from the inputs')."""
    rng = case_rng(spec, case)
    last = spec.assets - 1
    assets = tuple(
        circ.AssetTerms(f"A{i}", 6, 10**8, 8_000 if i < last else 10_000, 10**18,
                        borrowable=spec.margin and i == last)
        for i in range(spec.assets)
    )
    header = circ.EpochHeader(
        epoch=1 + case, timestamp=1_700_000_000 + case, price_decimals=8, assets=assets,
        prev_bundle_hash=None, prev_epoch=None, depth=TREE_DEPTH,
        shard_leaves=spec.leaves, reveal_totals=False, operator=rng.randbytes(32),
    )
    count = spec.leaves * header.m
    values = tuple(_value(rng) for _ in range(count))
    if spec.margin:
        values = _healthy(header, values, rng)
    blindings = tuple(rng.randrange(1, R) for _ in range(count))
    hashes = tuple(rng.randbytes(32) for _ in range(spec.leaves))
    shard = case % ((1 << TREE_DEPTH) // spec.leaves)
    job = ShardJob(spec.fast, header, header.digest(), shard, values, blindings, hashes)
    return job, rng


def _healthy(header: circ.EpochHeader, values: tuple[int, ...],
             rng: random.Random) -> tuple[int, ...]:
    """Each leaf's debt cut to what its credits cover (margin health >= 0,
    else no margin-health proof exists). One leaf in 8 sits at health exactly
    0: its only credit is in the borrowable asset, and it owes as much (that
    asset's reserve and liability coefficients are equal: no haircut)."""
    coef = circ.valued_coefficients(header.assets, header.depth)
    m = header.m
    columns = header.columns
    out = list(values)
    for leaf in range(len(values) // m):
        row = out[leaf * m : (leaf + 1) * m]
        edge = rng.randrange(8) == 0
        for col, (j, debt) in enumerate(columns):
            if not debt:
                continue
            credit = columns.index((j, False))
            if edge:
                row = [0] * m
                row[credit] = row[col] = values[leaf * m + credit]
                continue
            row[col] = 0
            cap = min(circ.health_value(header, coef, row) // coef.liability[j], (1 << 64) - 1)
            row[col] = min(values[leaf * m + col], cap)
        out[leaf * m : (leaf + 1) * m] = row
    return tuple(out)


def inputs_digest(job: ShardJob) -> str:
    h = hashlib.sha256(job.digest + job.shard.to_bytes(8, "big"))
    for v in (*job.values, *job.blindings):
        h.update(v.to_bytes(32, "big"))
    for leaf_hash in job.hashes:
        h.update(leaf_hash)
    return h.hexdigest()


def _prove(spec: SoakSpec, case: int) -> tuple[ShardJob, ShardResult, Pairs]:
    job, rng = case_job(spec, case)
    result, pairs = prove_shard_once(get_backend(spec.fast), job, rng=rng)
    return job, result, as_published(pairs)


def _first_mismatch(ours: bytes, theirs: bytes, size: int, what: str) -> str | None:
    for i in range(0, max(len(ours), len(theirs)), size):
        if ours[i : i + size] != theirs[i : i + size]:
            return f"{what} {i // size} differs"
    return None


def check_structure(ref: Backend, job: ShardJob, result: ShardResult,
                    pairs: Pairs) -> tuple[str, str] | None:
    """(check, detail) for the first commitment (a leaf's; with margin also
    the margin-health commitments the health proof states) or subtree node
    the fast backend got wrong, recomputed on ``ref``; None when all agree."""
    k = job.header.m
    points = [commit(ref, v, g) for v, g in zip(job.values, job.blindings, strict=True)]
    encoded = [ref.encode(p) for p in points]
    S = len(job.hashes)
    leaf_enc = [b"".join(encoded[i * k : (i + 1) * k]) for i in range(S)]
    records = b"".join(c + h for c, h in zip(leaf_enc, job.hashes, strict=True))
    node = k * 48 + 32
    bad = _first_mismatch(result.leaf_records, records, node, "leaf")
    if bad is not None:
        return "commitment", bad
    if job.header.margin:
        coef = circ.valued_coefficients(job.header.assets, job.header.depth)
        leaves = [points[i * k : (i + 1) * k] for i in range(S)]
        health = [ref.encode(p) for p in circ.health_commitments(ref, job.header, coef, leaves)]
        bad = _first_mismatch(b"".join(pairs[2][0].commitments), b"".join(health), 48,
                              "margin-health commitment")
        if bad is not None:
            return "commitment", bad
    level = ([points[i * k : (i + 1) * k] for i in range(S)], leaf_enc, list(job.hashes))
    for depth, (_, enc, hashes) in enumerate(circ.tree_levels(ref, k, level), start=1):
        want = b"".join(c + h for c, h in zip(enc, hashes, strict=True))
        bad = _first_mismatch(b"".join(result.levels[depth - 1]), want, node, "node")
        if bad is not None:
            return "subtree", f"level {depth}: {bad}"
    return None


def first_difference(ours: rangeproof.RangeProof, theirs: rangeproof.RangeProof) -> str | None:
    """The first element, in proving order, where two proofs of the same
    inputs and randomness differ: the operation that produced it is the
    suspect."""
    for name in ("A", "S", "T1", "T2", "t_hat", "tau_x", "mu"):
        if getattr(ours, name) != getattr(theirs, name):
            return name
    for k, (lo, ro, lt, rt) in enumerate(zip(ours.L, ours.R, theirs.L, theirs.R, strict=True)):
        if lo != lt:
            return f"L[{k}] (inner-product round {k})"
        if ro != rt:
            return f"R[{k}] (inner-product round {k})"
    for name in ("a", "b"):
        if getattr(ours, name) != getattr(theirs, name):
            return name
    return None


def _hold(backend: Backend, pairs: Pairs) -> bool:
    try:
        return rangeproof.equations_hold(pairs, backend=backend)
    except FormatError:  # an encoding that does not decode: a fault like any other
        return False


Finding = tuple[str, str]  # (check, detail)


SELF_FAILED = "the proof's equation failed on the fast backend"
REFERENCE_FAILED = "the proof does not verify on the reference backend"


def _findings(fast: Backend, ref: Backend, job: ShardJob, result: ShardResult,
              pairs: Pairs, *, reference: bool = False) -> list[Finding]:
    """The checks of one case: ``commitment``, ``subtree``, ``proof-self``,
    and with ``reference`` its own ``proof-reference`` (a task checks that
    in one batch for all its cases: an arkworks verification costs a third
    of an mcl proof)."""
    out = []
    bad = check_structure(ref, job, result, pairs)
    if bad is not None:
        out.append(bad)
    if not _hold(fast, pairs):
        out.append(("proof-self", SELF_FAILED))
    if reference and not _hold(ref, pairs):
        out.append(("proof-reference", REFERENCE_FAILED))
    return out


def _where(pairs: Pairs, ref_pairs: Pairs) -> str | None:
    """The first statement commitment, then proof element, of the faulty
    run unlike the reference run's. A commitment goes into the transcript
    before the proof: a wrong one changes every challenge after it, so it is
    named first (else the blame would fall on T1, the first element after y
    and z)."""
    many = len(pairs) > 1
    for (st, ours), (ref_st, theirs) in zip(pairs, ref_pairs, strict=True):
        label = f"{st.statement_id.decode()}: " if many else ""
        for j, (c, d) in enumerate(zip(st.commitments, ref_st.commitments, strict=True)):
            if c != d:
                return f"{label}statement commitment {j}"
        diff = first_difference(ours, theirs)
        if diff is not None:
            return label + diff
    return None


def explain(spec: SoakSpec, case: int, findings: list[Finding],
            pairs: Pairs | None) -> Fault:
    """What is known about a faulty case: whether the same check fails when
    the case is run again here, and where the faulty run's statements and
    proofs (``pairs``, None when proving raised) part from a proof of the
    same inputs and randomness on the reference backend."""
    (check, detail), *rest = findings
    fast, ref = get_backend(spec.fast), get_backend(spec.reference)
    try:
        job, result, again_pairs = _prove(spec, case)
        again = _findings(fast, ref, job, result, again_pairs, reference=True)
        repeated = check in {c for c, _ in again}
    except Exception as exc:  # noqa: BLE001 - failing again is the answer
        repeated = check == "error"
        detail += f"; run again it raised {type(exc).__name__}: {exc}"
    where = None
    if pairs is not None:
        try:
            ref_job, rng = case_job(spec, case)
            _, ref_pairs = prove_shard_once(
                ref, dataclasses.replace(ref_job, backend=spec.reference), rng=rng)
            where = _where(pairs, as_published(ref_pairs))
        except Exception as exc:  # noqa: BLE001 - the diagnosis failed, not the case
            where = f"not found: the reference proof raised {type(exc).__name__}: {exc}"
    return Fault(case, check, detail, also=tuple(c for c, _ in rest), repeated=repeated,
                 first_difference=where)


def _explain_batch(spec: SoakSpec, first: int, count: int, check: str, detail: str) -> Fault:
    """A batch equation that failed while every case alone held: whether
    the whole batch fails again."""
    backend = get_backend(spec.fast if check == "proof-batch" else spec.reference)
    try:
        pairs = [p for case in range(first, first + count) for p in _prove(spec, case)[2]]
        repeated = not _hold(backend, pairs)
    except Exception as exc:  # noqa: BLE001
        repeated = True
        detail += f"; run again it raised {type(exc).__name__}: {exc}"
    return Fault(first, check, detail, span=count, repeated=repeated)


def run_cases(spec: SoakSpec, first: int, count: int) -> TaskReport:
    """Prove cases [first, first + count) on the fast backend and check each
    (``CHECKS``). Runs in a worker process."""
    fast, ref = get_backend(spec.fast), get_backend(spec.reference)
    report = TaskReport(first, count, os.getpid())
    spent = dict.fromkeys(("prove", "checks", "batch"), 0.0)
    found: dict[int, list[Finding]] = {}
    kept: dict[int, Pairs] = {}
    for case in range(first, first + count):
        t0 = time.perf_counter()
        try:
            job, result, pairs = _prove(spec, case)
        except Exception as exc:  # noqa: BLE001 - any error of the computation is a finding
            found[case] = [("error", f"{type(exc).__name__}: {exc}")]
            continue
        t1 = time.perf_counter()
        kept[case] = pairs
        try:
            findings = _findings(fast, ref, job, result, pairs)
        except Exception as exc:  # noqa: BLE001
            findings = [("error", f"checking raised {type(exc).__name__}: {exc}")]
        spent["prove"] += t1 - t0
        spent["checks"] += time.perf_counter() - t1
        if findings:
            found[case] = findings
    t0 = time.perf_counter()
    batch: list[Fault] = []
    for check, backend, alone in (("proof-reference", ref, REFERENCE_FAILED),
                                  ("proof-batch", fast, SELF_FAILED)):
        # the cases with no finding yet, in one equation (on the fast
        # backend as the bundle's self-check batches shards); if it fails,
        # case by case, and a batch whose every case holds is a finding too
        clean = [case for case in kept if case not in found]
        together = [p for case in clean for p in kept[case]]
        if not together or _hold(backend, together):
            continue
        culprits = [case for case in clean if not _hold(backend, kept[case])]
        for case in culprits:
            found[case] = [(check, alone if check == "proof-reference"
                            else "the proof failed on the fast backend in its batch")]
        if not culprits:
            batch.append(_explain_batch(
                spec, first, count, check, f"the batch equation of cases {first}.."
                f"{first + count - 1} failed on the {backend.name} backend; each case alone "
                "holds"))
    spent["batch"] = time.perf_counter() - t0
    report.seconds = spent
    report.faults = [explain(spec, case, findings, kept.get(case))
                     for case, findings in sorted(found.items())] + batch
    return report


def warm(spec: SoakSpec) -> None:
    """Generators for both backends, made before workers fork."""
    n = max(64 * spec.leaves * spec.assets, 128 * spec.leaves if spec.margin else 0)
    n = 1 << (n - 1).bit_length()
    for name in (spec.fast, spec.reference):
        generators(get_backend(name)).vectors(n)


def reproducer(spec: SoakSpec, fault: Fault, conditions: dict[str, Any]) -> dict[str, Any]:
    """The JSON object a fault is kept as."""
    job, _ = case_job(spec, fault.case)
    return {
        "format": REPRODUCER_FORMAT,
        "seed": spec.seed.hex(),
        "case": fault.case,
        "assets": spec.assets,
        "leaves": spec.leaves,
        "margin": spec.margin,
        "fast": spec.fast,
        "reference": spec.reference,
        "cases": fault.span,
        "check": fault.check,
        "detail": fault.detail,
        "also": list(fault.also),
        "repeated": fault.repeated,
        "first_difference": fault.first_difference,
        "conditions": conditions,
        "inputs_sha256": inputs_digest(job),
        "shard": job.shard,
        "values": list(job.values),
        "blindings": [f"{b:064x}" for b in job.blindings],
        "hashes": [h.hex() for h in job.hashes],
    }


def replay(spec: SoakSpec, case: int, times: int, span: int = 1) -> list[Fault]:
    """Run cases [case, case + span) ``times`` times, as one task each time,
    with every check; the faults seen."""
    out: list[Fault] = []
    for _ in range(times):
        out += run_cases(spec, case, span).faults
    return out


def summarize(cases: int, faults: Sequence[Fault], seconds: float) -> dict[str, Any]:
    return {"cases": cases, "faults": len(faults), "seconds": round(seconds, 1),
            "rate": (len(faults) / cases) if cases else None}
