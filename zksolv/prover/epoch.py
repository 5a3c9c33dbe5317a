"""Snapshot -> Merkle-sum tree -> range proofs and solvency proofs -> bundle
and inclusion database. The formulas live in ``zksolv.circuits.epoch``.

The stages (``prove_epoch`` calls them in order; each is a function that
can be run and tested alone):

1. ``check_snapshot``: read the whole snapshot once, streaming: validate
   every row and sum the liabilities L_j (and the debts D_j of borrowable
   assets). Refuse insolvent epochs, and accounts whose margin health fails
   (collateral short of debt), with exit 3 before any proving.
2. ``assign_leaves``: leaf positions (keyed shuffle), salts (HKDF),
   blindings (``secrets``); every leaf opening is stored in the private work
   area (``workarea``), from which the inclusion database is made.
3. ``prove_shards`` (``shards``): per shard of S leaves, independently, on
   an executor (``zksolv.executors``: local worker processes by default, or
   a Dask cluster): commit to the leaves, build the shard's subtree, prove
   the shard's 64-bit range proof (and, with debts, its debt range proof
   and margin-health proof, written to ``margin.bin``). Workers are not
   trusted: each result is checked against the openings sent before it is
   kept (``shardcheck``; a mismatch is a ``WorkerFault`` naming the worker,
   and the shard is proven again elsewhere). Each result is kept in the work
   area as it completes; ``write_shards`` streams them in shard order into
   ``leaves.bin`` and ``range.bin`` and the subtree nodes into the database.
4. ``build_top``: the tree above the shards, up to the root.
5. ``prove_solvency``: the per-asset and valued solvency statements on the
   root.
6. Publish: write ``manifest.json``, sign it with the operator's Ed25519 key
   (``manifest.sig``), verify the whole bundle, then rename the database,
   remove the work area and rename the bundle directory into place
   (``_publish``). Until that last rename only hidden temporary names
   exist. A run killed between the two renames leaves a finished database
   whose bundle was never published; a rerun with the same outputs
   recognises it and replaces it.

A run that stops before stage 6 (a kill, Ctrl-C, a reboot) keeps its work
area; ``prove_epoch(..., resume=True)`` (``zksolv prove --resume``) reuses
the leaf assignment and every shard already proven whose file checks
against the assignment's openings (``shardcheck.check_kept_shards``; others
are discarded and proven again).

``--prev`` must name a bundle that verifies in full, one epoch earlier,
signed by the same operator key. With ``allow_gap`` (``--allow-gap``; ``zksolv
watch`` always) it may be any earlier epoch, the last one proven solvent: the
header then names that epoch (``prev_epoch``), so the bundle itself declares
the epochs between not proven solvent.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.field import R, random_scalar, scalar_from_bytes, scalar_to_bytes
from zksolv.core.generators import generators
from zksolv.core.group import Backend, Point, get_backend
from zksolv.errors import (
    FormatError,
    InputError,
    InsolventError,
    ProverFault,
    VerificationError,
    WorkerFault,
    ZksolvError,
)
from zksolv.executors import Executor, LocalProcesses
from zksolv.progress import Progress, derive_progress, no_progress
from zksolv.reserves_format import EvidenceJSON, evidence_digest
from zksolv.safeio import fsync_dir, make_private_dirs
from zksolv.snapshot import Snapshot, open_snapshot
from zksolv.verifier.bundle import verify_bundle

from . import keys, workarea
from .inclusion_db import InclusionDB, default_location
from .reserves import sourced_snapshot
from .shardcheck import check_kept_shards
from .shards import ShardJob, ShardResult, prove_shards
from .shortfall import HealthCheck, asset_terms, shortfall_report, shortfalls


@dataclass(frozen=True)
class ProveResult:
    bundle: Path
    inclusion_db: Path
    operator: bytes
    replaced_orphan_db: bool
    epoch: int
    accounts: int
    leaves: int
    depth: int
    shards: int
    bundle_hash: bytes
    bundle_bytes: int
    seconds: float
    resumed_shards: int = 0      # shards taken from an interrupted run's work area
    # shards proven again after a proof failed the worker's own check
    shard_retries: int = 0
    # the bundle it links to, as its header names it (None: first of a chain)
    prev_epoch: int | None = None
    prev_bundle_hash: bytes | None = None
    # shard results refused (a worker's result did not match its job), each
    # naming the worker; every one was proven again elsewhere and checked
    worker_faults: tuple[str, ...] = ()
    # (shard, why) of the work area's shard files that were not this run's
    # (resume): removed and proven again
    discarded_shards: tuple[tuple[int, str], ...] = ()


class _HashedFile:
    """A file written once, sequentially, with its SHA-256 kept as it goes."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.sha.update(data)
        self.size += len(data)

    def close(self) -> dict[str, object]:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        return {"sha256": self.sha.hexdigest(), "bytes": self.size}


@dataclass(frozen=True)
class PrevBundle:
    """The bundle a new one links to: its hash and epoch (into the header)."""

    bundle_hash: bytes
    epoch: int


class PrevBundleError(InputError):
    """``--prev`` is unusable (does not verify, another operator, not an
    earlier epoch): a fault of the chain's last bundle, not of the snapshot."""


def check_prev_bundle(prev: Path, operator: bytes, epoch: int, *, backend: Backend,
                      jobs: int, allow_gap: bool = False,
                      progress: Progress | None = None) -> PrevBundle:
    """The previous bundle's hash and epoch. It must verify in full, be epoch
    ``epoch - 1`` (or, with ``allow_gap``, any earlier epoch: the last one
    proven solvent, the epochs between then declared not proven solvent) and
    be signed by ``operator`` (one key along a chain)."""
    try:
        report = verify_bundle(prev, backend=backend, jobs=jobs, progress=progress)
    except VerificationError as exc:
        raise PrevBundleError(str(prev), f"previous bundle does not verify ({exc})") from exc
    except InputError as exc:
        raise PrevBundleError(str(prev), f"previous bundle unusable: {exc.reason}") from exc
    if report.operator != operator:
        raise PrevBundleError(str(prev), f"previous bundle is signed by operator "
                                    f"{report.operator.hex()}, this key is {operator.hex()}: "
                                    "a chain has one operator key")
    if report.epoch >= epoch:
        raise PrevBundleError(
            str(prev), f"previous bundle is epoch {report.epoch}; this snapshot is epoch {epoch}: "
                       "a chain's epochs increase"
        )
    gap = circ.declared_gap(epoch, report.epoch)
    if not allow_gap and gap is not None:
        raise PrevBundleError(
            str(prev), f"previous bundle is epoch {report.epoch}; this snapshot is epoch {epoch}. "
                       f"To continue the chain after {circ.epochs_text(*gap)} (refused or never "
                       f"proven), give --allow-gap: the new bundle then states in its header "
                       f"that {circ.gap_text(*gap)} NOT proven solvent"
        )
    return PrevBundle(report.bundle_hash, report.epoch)


def _orphan_database(db_path: Path, out_path: Path) -> bool:
    """True if ``db_path`` is a finished inclusion database whose bundle was
    never renamed to ``out_path`` (a run killed between the two renames)."""
    if out_path.exists() or out_path.is_symlink():
        return False
    try:
        db = InclusionDB.open(db_path)
    except ZksolvError:
        return False
    try:
        return db.is_finished()
    finally:
        db.close()


def default_db_path(out: Path) -> Path:
    """Never beside the bundle (a folder of bundles gets published): see
    ``inclusion_db.default_location``."""
    return default_location(out)


@dataclass(frozen=True)
class CheckedSnapshot:
    """Stage 1's result: a snapshot read in full, every row valid, the epoch
    solvent in every asset and in value."""

    snap: Snapshot
    assets: tuple[circ.AssetTerms, ...]
    totals: list[int]          # per committed column (m): credits, and debts
    count: int
    depth: int
    coef: circ.ValuedCoefficients
    valued: int
    accounts_digest: bytes     # SHA-256 of the accounts as read
    # the evidence of sourced reserves (header's reserve_sources), or None
    evidence: EvidenceJSON | None = None


def check_snapshot(snapshot_dir: str | os.PathLike[str], *, bar: Progress = no_progress,
                   prev_check: Callable[[int], PrevBundle | None] | None = None,
                   operator: bytes | None = None
                   ) -> tuple[CheckedSnapshot, PrevBundle | None]:
    """Stage 1: read the whole snapshot once, streaming: validate every row
    and sum the liabilities L_j. Refuse insolvent epochs (exit 3) before any
    proving. ``prev_check(epoch)`` checks the previous bundle (after the
    header is read, before the rows) and gives its hash and epoch. A header
    with reserve sources needs its complete evidence, signed for ``operator``
    (``prover/reserves.py``); the sourced reserves are its sums."""
    snap = open_snapshot(snapshot_dir)
    evidence = None
    if snap.header.reserve_sources is not None:
        if operator is None:
            raise InputError(str(snapshot_dir), "reserves read from the chain are signed for "
                                                "an operator key: none given")
        snap, evidence = sourced_snapshot(snap, operator)
    sh = snap.header
    assets = asset_terms(sh)
    columns = circ.column_layout(assets)
    m = len(columns)
    prev = prev_check(sh.epoch) if prev_check is not None else None
    # the weights are fixed by the header and the depth; the depth by the
    # row count, known from the header (checked against the rows below)
    try:
        coef = circ.valued_coefficients(assets, circ.depth_for(min(sh.account_count,
                                                                   1 << circ.MAX_DEPTH)))
    except circ.BoundsError as exc:
        raise InputError(f"{snap.path / 'header.json'}:assets", str(exc)) from exc
    unhealthy = HealthCheck(assets, coef, sh.price_decimals) if sh.borrowable else None

    totals = [0] * m
    count = 0
    first_pass = hashlib.sha256()
    for acc, amounts in bar(snap.iter_proof_amounts(first_pass), sh.account_count, "validate"):
        for j, v in enumerate(amounts):
            totals[j] += v
        if unhealthy is not None:
            unhealthy.add(acc, amounts)
        count += 1
    if count > 1 << circ.MAX_DEPTH:
        raise InputError(str(snap.accounts_path), f"more than 2^{circ.MAX_DEPTH} accounts")
    depth = circ.depth_for(count)
    try:
        coef = circ.valued_coefficients(assets, depth)
    except circ.BoundsError as exc:
        raise InputError(f"{snap.path / 'header.json'}:assets", str(exc)) from exc
    if unhealthy is not None:
        unhealthy.refuse(sh.epoch)
    credits = [t for t, (_, debt) in zip(totals, columns, strict=True) if not debt]
    debts = [0] * len(assets)
    for t, (j, debt) in zip(totals, columns, strict=True):
        if debt:
            debts[j] = t
    short = shortfalls(assets, credits, sh.price_decimals, debts if sh.borrowable else None)
    # sum_j c_j*reserves_j + sum_j b_j*D_j - sum_j b_j*L_j
    valued = coef.reserve_value(assets) + sum(
        (coef.liability[j] if debt else -coef.liability[j]) * t
        for t, (j, debt) in zip(totals, columns, strict=True)
    )
    if short or valued < 0:
        raise InsolventError(f"epoch {sh.epoch} is insolvent: "
                             + "; ".join(line.strip() for line in short),
                             lines=tuple(short),
                             report=shortfall_report(assets, credits, sh.price_decimals,
                                                     debts if sh.borrowable else None))
    if valued >= 1 << circ.MARGIN_BITS:
        raise InputError(f"{snap.path / 'header.json'}:assets",
                         f"the valued margin does not fit in {circ.MARGIN_BITS} bits; lower "
                         "price_decimals or an asset's proof_decimals")
    checked = CheckedSnapshot(snap, assets, totals, count, depth, coef, valued,
                              first_pass.digest(), evidence)
    return checked, prev


def epoch_header(checked: CheckedSnapshot, *, prev: PrevBundle | None, reveal_totals: bool,
                 operator: bytes) -> circ.EpochHeader:
    sh = checked.snap.header
    return circ.EpochHeader(
        epoch=sh.epoch,
        timestamp=sh.timestamp,
        price_decimals=sh.price_decimals,
        assets=checked.assets,
        prev_bundle_hash=None if prev is None else prev.bundle_hash,
        prev_epoch=None if prev is None else prev.epoch,
        depth=checked.depth,
        shard_leaves=circ.shard_leaves_for(checked.depth, len(checked.totals)),
        reveal_totals=reveal_totals,
        operator=operator,
        reserves_evidence=None if checked.evidence is None
        else evidence_digest(checked.evidence),
    )


def assign_leaves(checked: CheckedSnapshot, header: circ.EpochHeader, master_key: bytes,
                  db: InclusionDB, *, bar: Progress = no_progress) -> list[int]:
    """Stage 2: positions (keyed shuffle), salts (HKDF), blindings (from
    ``secrets``) for every leaf, stored in ``db``; the snapshot is read a
    second time and must be what stage 1 read. Returns the per-asset sums
    of the blindings (the root blindings gamma_j)."""
    snap, count, totals = checked.snap, checked.count, checked.totals
    sh = snap.header
    k, L = header.m, header.leaves     # one value and blinding per committed column
    prk = keys.hkdf_extract(master_key)
    perm = keys.keyed_permutation(keys.shuffle_key(prk, sh.epoch), L)
    gamma = [0] * k
    reread = [0] * k

    second_pass = hashlib.sha256()

    def changed(why: str = "the two reads differ") -> InputError:
        return InputError(str(snap.accounts_path),
                          f"changed while being proven ({why}); nothing written")

    def second_read() -> Iterator[tuple[str, tuple[int, ...]]]:
        try:
            yield from snap.iter_proof_amounts(second_pass)
        except InputError as exc:
            raise changed(f"{exc.where}: {exc.reason}") from exc

    def leaf_rows() -> Iterator[tuple[Any, ...]]:
        i = 0
        for acc, amounts in second_read():
            if i >= count:
                raise changed()
            salt = keys.account_salt(prk, sh.epoch, acc)
            blinds = [random_scalar() for _ in range(k)]
            for j in range(k):
                gamma[j] += blinds[j]
                reread[j] += amounts[j]
            yield (perm[i], acc, amounts, blinds, salt, circ.leaf_hash(sh.epoch, acc, salt))
            i += 1
        for p in range(i, L):
            blinds = [random_scalar() for _ in range(k)]
            for j in range(k):
                gamma[j] += blinds[j]
            yield (perm[p], None, (0,) * k, blinds, None, secrets.token_bytes(circ.HASH_BYTES))

    db.insert_leaves(bar(leaf_rows(), L, "leaves"))
    gamma = [g % R for g in gamma]
    if reread != totals or second_pass.digest() != checked.accounts_digest:
        raise changed()
    return gamma


def shard_jobs(db: InclusionDB, header: circ.EpochHeader, backend: Backend,
               shards: Iterable[int]) -> Iterator[ShardJob]:
    """Stage 3's input: one job per shard, holding only that shard's openings."""
    S = header.shard_leaves
    digest = header.digest()
    for s in shards:
        vals, blinds, hashes = db.shard_openings(s * S, S)
        yield ShardJob(backend.name, header, digest, s, vals, blinds, hashes)


def write_shards(results: Iterable[ShardResult], header: circ.EpochHeader, db: InclusionDB,
                 tmp_dir: Path) -> tuple[list[bytes], dict[str, dict[str, object]], int]:
    """Stream shard results (in shard order) into ``leaves.bin`` and
    ``range.bin`` (and ``margin.bin``) and their subtree nodes into the
    database; return each shard's subtree root, the files' hashes and sizes,
    and how many shard proofs were made again after failing the worker's
    own check."""
    k, S = header.m, header.shard_leaves
    leaves_f = _HashedFile(tmp_dir / layout.LEAVES_FILE)
    range_f = _HashedFile(tmp_dir / layout.RANGE_FILE)
    margin_f = _HashedFile(tmp_dir / layout.MARGIN_FILE) if header.margin else None
    shard_roots: list[bytes] = []
    retries = 0
    for res in results:
        retries += res.attempts - 1
        leaves_f.write(res.leaf_records)
        range_f.write(res.proof)
        if margin_f is not None:
            margin_f.write(res.margin_proof)
        db.insert_level(0, res.shard * S, _split(res.leaf_records, k))
        for lvl, nodes in enumerate(res.levels, start=1):
            db.insert_level(lvl, res.shard * (S >> lvl), list(nodes))
        shard_roots.append(res.top())
    files = {layout.LEAVES_FILE: leaves_f.close(), layout.RANGE_FILE: range_f.close()}
    if margin_f is not None:
        files[layout.MARGIN_FILE] = margin_f.close()
    return shard_roots, files, retries


def build_top(backend: Backend, header: circ.EpochHeader, shard_roots: list[bytes],
              db: InclusionDB) -> tuple[list[Point], bytes, list[bytes]]:
    """Stage 4: the tree above the shards, stored in the database; returns
    the root commitments (points), the root hash and the encoded roots."""
    k, S = header.m, header.shard_leaves
    cpart = k * 48
    level_enc = [r[:cpart] for r in shard_roots]
    level_hash = [r[cpart:] for r in shard_roots]
    level: circ.Level = (
        [
            [backend.decode(e[j * 48 : (j + 1) * 48], what="node") for j in range(k)]
            for e in level_enc
        ],
        level_enc,
        level_hash,
    )
    lvl = S.bit_length() - 1
    for level in circ.tree_levels(backend, k, level):  # noqa: B020 - walks up the tree
        lvl += 1
        db.insert_level(lvl, 0, [c + h for c, h in zip(level[1], level[2], strict=True)])
    roots = level[0][0]
    root_hash = level[2][0]
    root_enc = [backend.encode(p) for p in roots]
    return roots, root_hash, root_enc


def prove_solvency(backend: Backend, header: circ.EpochHeader, checked: CheckedSnapshot,
                   gamma: list[int], roots: list[Point], root_hash: bytes) -> bytes:
    """Stage 5: the per-asset and valued solvency proofs on the root
    (``solvency.bin``'s content)."""
    gens = generators(backend)
    assets, totals, coef = checked.assets, checked.totals, checked.coef
    digest = header.digest()
    # per asset: reserves_j - L_j + D_j, blinding -gamma_credit_j + gamma_debt_j
    margin_v = [a.proven_reserves for a in assets]
    margin_b = [0] * len(assets)
    valued_b = 0
    for (j, debt), t, g in zip(header.columns, totals, gamma, strict=True):
        sign = 1 if debt else -1
        margin_v[j] += sign * t
        margin_b[j] += sign * g
        valued_b += sign * coef.liability[j] * g
    margins = circ.asset_margins(backend, gens.g, assets, roots)
    asset_st = circ.asset_statement(digest, root_hash, [backend.encode(p) for p in margins])
    asset_pf = rangeproof.prove(asset_st, margin_v, [b % R for b in margin_b], backend=backend)
    vmargin = circ.valued_margin(backend, gens.g, assets, coef, roots)
    valued_st = circ.valued_statement(digest, root_hash, backend.encode(vmargin))
    valued_pf = rangeproof.prove(valued_st, [checked.valued], [valued_b % R], backend=backend)
    return asset_pf.to_bytes() + valued_pf.to_bytes()


def _run_state(checked: CheckedSnapshot, header: circ.EpochHeader,
               gamma: list[int] | None) -> workarea.RunState:
    snap = checked.snap
    return workarea.RunState(
        format=workarea.FORMAT, version=workarea.VERSION, epoch=header.epoch,
        snapshot_header_sha256=workarea.file_sha256(snap.path / "header.json", 1 << 20,
                                                    "snapshot header"),
        snapshot_accounts_sha256=checked.accounts_digest.hex(),
        operator=header.operator.hex(),
        prev_bundle_hash=header.prev_bundle_hash.hex() if header.prev_bundle_hash else None,
        reveal_totals=header.reveal_totals, header_digest=header.digest().hex(),
        accounts=checked.count, totals=list(checked.totals),
        root_blindings=[] if gamma is None else [scalar_to_bytes(g).hex() for g in gamma],
    )


def _recorded_gamma(state: workarea.RunState, k: int, where: Path) -> list[int]:
    try:
        if len(state.root_blindings) != k:
            raise FormatError("one root blinding per column expected")
        return [scalar_from_bytes(bytes.fromhex(g)) for g in state.root_blindings]
    except (ValueError, FormatError) as exc:
        raise InputError(str(where), f"work-area state: bad root blindings ({exc})") from exc


def _remove_stale_temporaries(out_path: Path, db_path: Path) -> None:
    """The hidden temporaries an interrupted run left (a killed process
    cannot remove them): ``.OUT.tmp-*`` and ``.DB.tmp-*``."""
    for folder, prefix in ((out_path.parent, f".{out_path.name}.tmp-"),
                           (db_path.parent, f".{db_path.name}.tmp-")):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix):
                p = folder / name
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)


def prove_epoch(
    snapshot_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    master_key: bytes,
    prev: str | os.PathLike[str] | None = None,
    reveal_totals: bool = False,
    jobs: int = 1,
    inclusion_db: str | os.PathLike[str] | None = None,
    backend: Backend | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    resume: bool = False,
    work_dir: str | os.PathLike[str] | None = None,
    allow_gap: bool = False,
) -> ProveResult:
    """The whole epoch, stage by stage (see the module docstring). Shards run
    on ``executor`` (default: ``jobs`` local processes). Every proven shard
    is kept in the private work area; ``resume`` continues an interrupted
    run from it."""
    t_start = time.perf_counter()
    backend = backend or get_backend()
    bar = progress or no_progress
    # the self-check runs on the caller's executor (a cluster) if one was given
    check_executor = executor
    executor = executor or LocalProcesses(jobs)
    out_path = Path(out)
    db_path = Path(inclusion_db) if inclusion_db is not None else default_db_path(out_path)
    work = workarea.WorkArea(Path(work_dir) if work_dir is not None
                             else workarea.default_work_dir(out_path))
    if out_path.exists() or out_path.is_symlink():
        raise InputError(str(out_path), "exists; refusing to overwrite a bundle")
    orphan = False
    if db_path.exists() or db_path.is_symlink():
        orphan = _orphan_database(db_path, out_path)
        if not orphan:
            raise InputError(str(db_path), "exists; refusing to overwrite an inclusion database")
    if db_path.resolve().is_relative_to(out_path.resolve()):
        raise InputError(str(db_path), "the private inclusion database must be outside the bundle")
    if workarea.exposed_by(work.path, out_path):
        raise InputError(str(work.path), "the private work area must be neither inside the "
                         "bundle nor beside it in its folder (a folder of bundles gets "
                         "published): leave --work-dir out (the private data directory) or "
                         "name a folder elsewhere")
    if work_dir is None:
        workarea.adopt_legacy(out_path, work, resume=resume)
    if work.exists() and not resume:
        raise InputError(str(work.path), "an interrupted run of this epoch left its work area "
                         "here: continue it with --resume, or remove it to start afresh")

    signer = keys.signing_key(master_key)
    operator = keys.public_key_bytes(signer)

    def prev_check(epoch: int) -> PrevBundle | None:
        if prev is None:
            return None
        return check_prev_bundle(Path(prev), operator, epoch, backend=backend, jobs=jobs,
                                 allow_gap=allow_gap, progress=progress)

    # 1. read and check the snapshot
    checked, prev_bundle = check_snapshot(snapshot_dir, bar=bar, prev_check=prev_check,
                                          operator=operator)
    sh = checked.snap.header
    if reveal_totals and sh.borrowable:
        raise InputError("--reveal-totals", "a bundle with a borrowable asset (version 5) "
                                            "reveals no totals")
    # k: committed columns per leaf (the assets, plus one per borrowable asset)
    k, count, depth = len(checked.totals), checked.count, checked.depth
    header = epoch_header(checked, prev=prev_bundle, reveal_totals=reveal_totals,
                          operator=operator)
    L, S = header.leaves, header.shard_leaves
    current = _run_state(checked, header, None)

    resumed: workarea.RunState | None = None
    fresh = not (resume and work.exists())
    if not fresh:
        work.check_private()
        resumed = work.state()
        if resumed is None:
            work.reset()
        else:
            workarea.compare(resumed, current, work.path)
    else:
        work.create()
    # ours to remove: the work area now held is this OUT's only run
    _remove_stale_temporaries(out_path, db_path)

    # generators before any fork, so workers inherit them (a bar if derived)
    generators(backend).vectors(max(circ.LEAF_BITS * (1 << (S * k - 1).bit_length()),
                                    circ.HEALTH_BITS * S,
                                    circ.MARGIN_BITS * (1 << (k - 1).bit_length())),
                                on_derive=derive_progress(progress))

    tmp_dir: Path | None = None
    tmp_db: Path | None = None
    try:
        # 2. assign leaves: positions, salts, blindings (kept in the work area)
        from_work_area = resumed is not None
        if resumed is None:
            built = work.new_leaves_path()
            leaves_db = InclusionDB.create(built, k=k, depth=depth, epoch=sh.epoch,
                                           symbols=sh.columns)
            gamma = assign_leaves(checked, header, master_key, leaves_db, bar=bar)
            leaves_db.conn.commit()
            leaves_db.close()
            resumed = _run_state(checked, header, gamma)
            work.commit_leaves(built, resumed)
        gamma = _recorded_gamma(resumed, k, work.path)

        out_path.parent.mkdir(parents=True, exist_ok=True)
        make_private_dirs(db_path.parent)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.tmp-", dir=out_path.parent))
        # a public bundle is world-readable (mkdtemp makes 0700)
        os.chmod(tmp_dir, 0o755)
        fd, tmp_db_name = tempfile.mkstemp(prefix=f".{db_path.name}.tmp-", dir=db_path.parent)
        os.close(fd)
        tmp_db = Path(tmp_db_name)
        os.chmod(tmp_db, 0o600)
        shutil.copyfile(work.leaves_path, tmp_db)
        db = InclusionDB.writable(tmp_db)
        if from_work_area and db.blinding_sums(k) != gamma:
            raise workarea.ResumeRefused(
                str(work.path), "cannot resume: the root blindings in state.json are not the "
                "sums of the blindings in leaves.sqlite (the work area mixes two runs). Remove "
                "it to start afresh")

        # 3. prove the shards (local processes or a cluster), each kept as it completes
        node_size = layout.leaf_record_size(k)
        proof_size = layout.leaf_proof_size(S, header.k)
        margin_size = sum(layout.margin_proof_sizes(S, k - header.k)) if header.margin else 0

        def read(shard: int) -> tuple[ShardResult, bytes] | None:
            return work.read_shard(shard, node_size=node_size, leaves=S, proof_size=proof_size,
                                   margin_size=margin_size)

        # a resumed run's shard files, each checked against the leaves
        # database's openings (another run's files are discarded); the file
        # read back later must be the one checked (its digest is kept)
        kept = check_kept_shards(
            backend, shard_jobs(db, header, backend, work.proven_shards(header.shards)),
            read, work.discard_shard)
        pinned = dict(kept.digests)

        def load(shard: int) -> ShardResult:
            got = read(shard)
            if got is None or got[1] != pinned.get(shard):
                raise InputError(str(work.path), f"shard {shard}'s result vanished or changed")
            return got[0]

        def save(res: ShardResult) -> None:
            pinned[res.shard] = work.save_shard(res)

        proven = sorted(kept.digests)
        todo = sorted(set(range(header.shards)) - set(proven))
        faults: list[WorkerFault] = []
        results = prove_shards(
            shard_jobs(db, header, backend, todo), executor, shards=header.shards,
            proven=proven, load=load, on_result=save, on_fault=faults.append,
        )
        shard_roots, files, retries = write_shards(
            bar(results, header.shards, "prove shards"), header, db, tmp_dir)

        # 4. top of the tree; 5. solvency
        roots, root_hash, root_enc = build_top(backend, header, shard_roots, db)
        solv_f = _HashedFile(tmp_dir / layout.SOLVENCY_FILE)
        solv_f.write(prove_solvency(backend, header, checked, gamma, roots, root_hash))
        files[layout.SOLVENCY_FILE] = solv_f.close()

        # 6. sign, check, publish
        manifest = build_manifest(
            header, root_hash, root_enc, files,
            totals=list(zip(checked.totals, gamma, strict=True)) if reveal_totals else None,
            chain_reserves=checked.evidence,
        )
        raw = layout.manifest_bytes(manifest)
        bhash = layout.bundle_hash(raw)
        signature = signer.sign(layout.signature_message(bhash))
        for name, content in ((layout.MANIFEST_FILE, raw), (layout.SIGNATURE_FILE, signature)):
            with open(tmp_dir / name, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        for name in (layout.MANIFEST_FILE, layout.SIGNATURE_FILE, *manifest.files.names()):
            os.chmod(tmp_dir / name, 0o644)
        fsync_dir(tmp_dir)
        # Self-check before anything is published: never a bundle that fails.
        verify_bundle(tmp_dir, backend=backend, expect_operator=operator, jobs=jobs,
                      progress=bar, executor=check_executor)
        db.finish(bundle_hash=bhash, root_hash=root_hash, accounts=count, manifest=raw,
                  signature=signature)
        db.close()

        if out_path.exists() or out_path.is_symlink():
            raise InputError(str(out_path), "appeared while proving; not overwriting")
        _publish(tmp_db, db_path, tmp_dir, out_path, work)
    except BaseException as exc:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        if tmp_db is not None:
            tmp_db.unlink(missing_ok=True)
        # Bad input found on a fresh run: nothing worth resuming. Anything
        # else (Ctrl-C, a lost cluster, a full disk, a worker whose result
        # was refused: every shard kept was checked) keeps the work area.
        if isinstance(exc, ZksolvError) and not isinstance(exc, ProverFault) and fresh:
            work.remove()
        raise
    size = sum(int(v["bytes"]) for v in files.values())  # type: ignore[call-overload]
    size += len(raw) + layout.SIGNATURE_BYTES
    return ProveResult(
        out_path, db_path, operator, orphan, sh.epoch, count, L, depth, header.shards, bhash, size,
        time.perf_counter() - t_start, resumed_shards=len(proven), shard_retries=retries,
        prev_epoch=header.prev_epoch, prev_bundle_hash=header.prev_bundle_hash,
        worker_faults=tuple(str(f) for f in faults), discarded_shards=kept.discarded,
    )


def _publish(tmp_db: Path, db_path: Path, tmp_dir: Path, out_path: Path,
             work: workarea.WorkArea) -> None:
    """Stage 6: database first, then the work area goes, then the bundle:
    the bundle's rename is the last, atomic step. (A kill between the two
    renames leaves an orphan database, which a rerun replaces: see
    ``_orphan_database``.)"""
    os.replace(tmp_db, db_path)
    fsync_dir(db_path.parent)
    work.remove()
    os.rename(tmp_dir, out_path)
    fsync_dir(out_path.parent)


def _split(records: bytes, k: int) -> list[bytes]:
    n = layout.leaf_record_size(k)
    return [records[i : i + n] for i in range(0, len(records), n)]


def build_manifest(
    header: circ.EpochHeader,
    root_hash: bytes,
    root_commitments: list[bytes],
    files: dict[str, dict[str, object]],
    *,
    totals: list[tuple[int, int]] | None,
    chain_reserves: EvidenceJSON | None = None,
) -> layout.Manifest:
    def entry(name: str) -> layout.FileEntry:
        f = files[name]
        return layout.FileEntry(sha256=str(f["sha256"]), bytes=int(f["bytes"]))  # type: ignore[call-overload]

    margin = header.margin
    if (chain_reserves is None) != (header.reserves_evidence is None) or (
            chain_reserves is not None and evidence_digest(chain_reserves)
            != header.reserves_evidence):
        raise ValueError("chain_reserves are not the evidence the epoch header binds")
    return layout.Manifest(
        format=layout.BUNDLE_FORMAT,
        version=(layout.BUNDLE_VERSION_CHAIN if chain_reserves is not None
                 else layout.BUNDLE_VERSION_MARGIN if margin else layout.BUNDLE_VERSION),
        suite=layout.suite_ids(),
        statements=layout.statement_ids(margin),
        operator=header.operator.hex(),
        epoch=header.epoch,
        timestamp=header.timestamp,
        prev_bundle_hash=header.prev_bundle_hash.hex() if header.prev_bundle_hash else None,
        prev_epoch=header.prev_epoch,
        price_decimals=header.price_decimals,
        rounding=circ.ROUNDING_ID_MARGIN if margin else circ.ROUNDING_ID,
        assets=[
            layout.AssetEntry(symbol=a.symbol, decimals=a.decimals,
                              proof_decimals=a.proven_decimals, price=a.price,
                              haircut_bps=a.haircut_bps, reserves=a.reserves,
                              borrowable=a.borrowable)
            for a in header.assets
        ],
        tree=layout.TreeEntry(
            depth=header.depth,
            leaves=header.leaves,
            shard_leaves=header.shard_leaves,
            shards=header.shards,
            root_hash=root_hash.hex(),
            root_commitments=[c.hex() for c in root_commitments],
        ),
        reveal_totals=header.reveal_totals,
        totals=None if totals is None else [
            layout.TotalEntry(liabilities=t, root_blinding=scalar_to_bytes(g).hex())
            for t, g in totals
        ],
        files=layout.Files(leaves=entry(layout.LEAVES_FILE), range=entry(layout.RANGE_FILE),
                           solvency=entry(layout.SOLVENCY_FILE),
                           margin=entry(layout.MARGIN_FILE) if margin else None),
        chain_reserves=chain_reserves,
    )
