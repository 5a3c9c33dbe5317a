"""Snapshot -> Merkle-sum tree -> range proofs and solvency proofs -> bundle
and inclusion database. The formulas live in ``zksolv.circuits.epoch``.

Steps (``prove_epoch``):

1. Read the whole snapshot once, streaming: validate every row and sum the
   liabilities L_j. Refuse insolvent epochs (exit 3) before any proving.
2. Assign leaf positions (keyed shuffle), derive salts, draw blindings from
   ``secrets``; store every leaf opening in the private inclusion database.
3. Per shard of S leaves (independent, run in worker processes): commit to
   the leaves, build the shard's subtree, prove the shard's 64-bit range
   proof. The parent streams the results into ``leaves.bin`` and ``range.bin``
   and the subtree nodes into the database.
4. Build the top of the tree, prove the per-asset and valued solvency
   statements on the root, write ``manifest.json`` and sign it with the
   operator's Ed25519 key (``manifest.sig``).
5. Rename the database, then the bundle directory, into place. Until that
   last rename only hidden temporary names exist. A run killed between the
   two renames leaves a finished database whose bundle was never published;
   a rerun with the same outputs recognises it and replaces it.

``--prev`` must name a bundle that verifies in full, one epoch earlier,
signed by the same operator key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import secrets
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.field import R, random_scalar, scalar_to_bytes
from zksolv.core.generators import generators
from zksolv.core.group import Backend, get_backend
from zksolv.core.pedersen import commit_many
from zksolv.errors import (
    FormatError,
    InputError,
    InsolventError,
    ProverFault,
    VerificationError,
    ZksolvError,
)
from zksolv.snapshot import open_snapshot
from zksolv.verifier.bundle import verify_bundle

from . import keys
from .inclusion_db import InclusionDB, default_location
from .shortfall import asset_terms, shortfalls

T = TypeVar("T")
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def _no_progress(items: Iterable[T], total: int, desc: str) -> Iterable[T]:
    return items


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
    # shards proven again after a proof failed the worker's own check
    shard_retries: int = 0


@dataclass(frozen=True)
class ShardJob:
    backend: str
    header: circ.EpochHeader
    digest: bytes
    shard: int
    values: tuple[int, ...]      # S*k, leaf-major
    blindings: tuple[int, ...]
    hashes: tuple[bytes, ...]    # S


@dataclass(frozen=True)
class ShardResult:
    shard: int
    leaf_records: bytes                      # S * (k*48 + 32)
    # subtree levels above the leaves; each node k*48 + 32 bytes
    levels: tuple[tuple[bytes, ...], ...]
    proof: bytes
    attempts: int = 1


# A shard whose proof fails the prover's own check is proven again (fresh
# commitments' arithmetic, fresh randomness) at most this many times in all.
SHARD_ATTEMPTS = 3


def prove_shard(job: ShardJob) -> ShardResult:
    """Commit to one shard's leaves, build its subtree, range-prove it, and
    check the proof against the commitments before it leaves the worker.

    The check costs about a twentieth of the proof. It exists because a
    prover must never hand out a proof it has not seen verify: a fault in
    any layer (the vector core included) surfaces here, the shard is proven
    again, and only a shard that fails every attempt stops the epoch."""
    backend = get_backend(job.backend)
    for attempt in range(1, SHARD_ATTEMPTS + 1):
        result, statement, proof, decoded = _prove_shard_once(backend, job)
        try:
            rangeproof.batch_verify([(statement, proof)], backend=backend, decoded=decoded)
        except (VerificationError, FormatError):
            continue
        return dataclasses.replace(result, attempts=attempt)
    raise ProverFault(
        f"shard {job.shard}: the proof failed the prover's own check {SHARD_ATTEMPTS} times"
    )


def _prove_shard_once(
    backend: Backend, job: ShardJob
) -> tuple[ShardResult, rangeproof.RangeStatement, rangeproof.RangeProof, dict[bytes, Any]]:
    k = job.header.k
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
    statement = circ.leaf_statement(job.header, job.digest, job.shard, encoded)
    proof = rangeproof.prove(statement, job.values, job.blindings, backend=backend)
    result = ShardResult(job.shard, records, levels, proof.to_bytes())
    return result, statement, proof, dict(zip(encoded, points, strict=True))


def _run_jobs(jobs: Iterator[ShardJob], workers: int) -> Iterator[ShardResult]:
    """Results in job order; at most 2*workers jobs in flight (bounded memory)."""
    if workers <= 1:
        for job in jobs:
            yield prove_shard(job)
        return
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        window: deque[Future[ShardResult]] = deque()
        for job in jobs:
            window.append(pool.submit(prove_shard, job))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def check_prev_bundle(prev: Path, operator: bytes, epoch: int, *, backend: Backend,
                     jobs: int) -> bytes:
    """The hash of the previous bundle, which must verify in full, be epoch
    ``epoch - 1`` and be signed by ``operator`` (one key along a chain)."""
    try:
        report = verify_bundle(prev, backend=backend, jobs=jobs)
    except VerificationError as exc:
        raise InputError(str(prev), f"previous bundle does not verify ({exc})") from exc
    except InputError as exc:
        raise InputError(str(prev), f"previous bundle unusable: {exc.reason}") from exc
    if report.operator != operator:
        raise InputError(str(prev), f"previous bundle is signed by operator "
                                    f"{report.operator.hex()}, this key is {operator.hex()}: "
                                    "a chain has one operator key")
    if report.epoch + 1 != epoch:
        raise InputError(
            str(prev), f"previous bundle is epoch {report.epoch}; this snapshot is epoch {epoch}"
        )
    return report.bundle_hash


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
) -> ProveResult:
    t_start = time.perf_counter()
    backend = backend or get_backend()
    bar = progress or _no_progress
    out_path = Path(out)
    db_path = Path(inclusion_db) if inclusion_db is not None else default_db_path(out_path)
    if out_path.exists() or out_path.is_symlink():
        raise InputError(str(out_path), "exists; refusing to overwrite a bundle")
    orphan = False
    if db_path.exists() or db_path.is_symlink():
        orphan = _orphan_database(db_path, out_path)
        if not orphan:
            raise InputError(str(db_path), "exists; refusing to overwrite an inclusion database")
    if db_path.resolve().is_relative_to(out_path.resolve()):
        raise InputError(str(db_path), "the private inclusion database must be outside the bundle")

    signer = keys.signing_key(master_key)
    operator = keys.public_key_bytes(signer)
    snap = open_snapshot(snapshot_dir)
    sh = snap.header
    k = len(sh.assets)
    assets = asset_terms(sh)
    prev_hash = None
    if prev is not None:
        prev_hash = check_prev_bundle(Path(prev), operator, sh.epoch, backend=backend, jobs=jobs)

    # 1. validate everything and sum liabilities
    totals = [0] * k
    count = 0
    first_pass = hashlib.sha256()
    for _, amounts in bar(snap.iter_proof_amounts(first_pass), sh.account_count, "validate"):
        for j, v in enumerate(amounts):
            totals[j] += v
        count += 1
    if count > 1 << circ.MAX_DEPTH:
        raise InputError(str(snap.accounts_path), f"more than 2^{circ.MAX_DEPTH} accounts")
    depth = circ.depth_for(count)
    try:
        coef = circ.valued_coefficients(assets, depth)
    except circ.BoundsError as exc:
        raise InputError(f"{snap.path / 'header.json'}:assets", str(exc)) from exc
    short = shortfalls(assets, totals, sh.price_decimals)
    valued = coef.reserve_value(assets) - sum(
        b * t for b, t in zip(coef.liability, totals, strict=True)
    )
    if short or valued < 0:
        raise InsolventError(f"epoch {sh.epoch} is insolvent: " + "; ".join(short))

    header = circ.EpochHeader(
        epoch=sh.epoch,
        timestamp=sh.timestamp,
        price_decimals=sh.price_decimals,
        assets=assets,
        prev_bundle_hash=prev_hash,
        depth=depth,
        shard_leaves=circ.shard_leaves_for(depth, k),
        reveal_totals=reveal_totals,
        operator=operator,
    )
    digest = header.digest()
    L, S = header.leaves, header.shard_leaves

    # generators before any fork, so workers inherit them
    gens = generators(backend)
    gens.vectors(circ.LEAF_BITS * (1 << (S * k - 1).bit_length()))
    gens.vectors(circ.MARGIN_BITS * (1 << (k - 1).bit_length()))

    out_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.tmp-", dir=out_path.parent))
    # a public bundle is world-readable (mkdtemp makes 0700)
    os.chmod(tmp_dir, 0o755)
    fd, tmp_db_name = tempfile.mkstemp(prefix=f".{db_path.name}.tmp-", dir=db_path.parent)
    os.close(fd)
    tmp_db = Path(tmp_db_name)
    try:
        os.chmod(tmp_db, 0o600)
        db = InclusionDB.create(tmp_db, k=k, depth=depth, epoch=sh.epoch, symbols=sh.symbols)

        # 2. positions, salts, blindings
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
        if reread != totals or second_pass.digest() != first_pass.digest():
            raise changed()

        # 3. shards
        def shard_jobs() -> Iterator[ShardJob]:
            for s in range(header.shards):
                vals, blinds, hashes = db.shard_openings(s * S, S)
                yield ShardJob(backend.name, header, digest, s, vals, blinds, hashes)

        leaves_f = _HashedFile(tmp_dir / layout.LEAVES_FILE)
        range_f = _HashedFile(tmp_dir / layout.RANGE_FILE)
        shard_roots: list[bytes] = []
        retries = 0
        for res in bar(_run_jobs(shard_jobs(), jobs), header.shards, "prove shards"):
            retries += res.attempts - 1
            leaves_f.write(res.leaf_records)
            range_f.write(res.proof)
            db.insert_level(0, res.shard * S, _split(res.leaf_records, k))
            for lvl, nodes in enumerate(res.levels, start=1):
                db.insert_level(lvl, res.shard * (S >> lvl), list(nodes))
            top = res.levels[-1][0] if res.levels else res.leaf_records
            shard_roots.append(top)
        files = {layout.LEAVES_FILE: leaves_f.close(), layout.RANGE_FILE: range_f.close()}

        # 4. top of the tree
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

        # solvency
        margins = circ.asset_margins(backend, gens.g, assets, roots)
        asset_st = circ.asset_statement(digest, root_hash, [backend.encode(p) for p in margins])
        asset_pf = rangeproof.prove(
            asset_st,
            [a.proven_reserves - t for a, t in zip(assets, totals, strict=True)],
            [-g % R for g in gamma],
            backend=backend,
        )
        vmargin = circ.valued_margin(backend, gens.g, assets, coef, roots)
        valued_st = circ.valued_statement(digest, root_hash, backend.encode(vmargin))
        valued_pf = rangeproof.prove(
            valued_st,
            [valued],
            [-sum(b * g for b, g in zip(coef.liability, gamma, strict=True)) % R],
            backend=backend,
        )
        solv_f = _HashedFile(tmp_dir / layout.SOLVENCY_FILE)
        solv_f.write(asset_pf.to_bytes() + valued_pf.to_bytes())
        files[layout.SOLVENCY_FILE] = solv_f.close()

        manifest = build_manifest(
            header, root_hash, root_enc, files,
            totals=list(zip(totals, gamma, strict=True)) if reveal_totals else None,
        )
        raw = layout.manifest_bytes(manifest)
        bhash = layout.bundle_hash(raw)
        signature = signer.sign(layout.signature_message(bhash))
        for name, content in ((layout.MANIFEST_FILE, raw), (layout.SIGNATURE_FILE, signature)):
            with open(tmp_dir / name, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        for name in (layout.MANIFEST_FILE, layout.SIGNATURE_FILE, *layout.DATA_FILES):
            os.chmod(tmp_dir / name, 0o644)
        _fsync_dir(tmp_dir)
        # Self-check before anything is published: never a bundle that fails.
        verify_bundle(tmp_dir, backend=backend, expect_operator=operator, jobs=jobs,
                      progress=bar)
        db.finish(bundle_hash=bhash, root_hash=root_hash, accounts=count, manifest=raw,
                  signature=signature)
        db.close()

        # 5. publish: database first, then the bundle (the last, atomic step)
        if out_path.exists() or out_path.is_symlink():
            raise InputError(str(out_path), "appeared while proving; not overwriting")
        _publish(tmp_db, db_path, tmp_dir, out_path)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_db.unlink(missing_ok=True)
        raise
    size = sum(int(v["bytes"]) for v in files.values())  # type: ignore[call-overload]
    size += len(raw) + layout.SIGNATURE_BYTES
    return ProveResult(
        out_path, db_path, operator, orphan, sh.epoch, count, L, depth, header.shards, bhash, size,
        time.perf_counter() - t_start, retries,
    )


def _publish(tmp_db: Path, db_path: Path, tmp_dir: Path, out_path: Path) -> None:
    """Database first, then the bundle: the bundle's rename is the last,
    atomic step. (A kill between the two leaves an orphan database, which a
    rerun replaces: see ``_orphan_database``.)"""
    os.replace(tmp_db, db_path)
    _fsync_dir(db_path.parent)
    os.rename(tmp_dir, out_path)
    _fsync_dir(out_path.parent)


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
) -> layout.Manifest:
    def entry(name: str) -> layout.FileEntry:
        f = files[name]
        return layout.FileEntry(sha256=str(f["sha256"]), bytes=int(f["bytes"]))  # type: ignore[call-overload]

    return layout.Manifest(
        format=layout.BUNDLE_FORMAT,
        version=layout.BUNDLE_VERSION,
        suite=layout.suite_ids(),
        statements=layout.statement_ids(),
        operator=header.operator.hex(),
        epoch=header.epoch,
        timestamp=header.timestamp,
        prev_bundle_hash=header.prev_bundle_hash.hex() if header.prev_bundle_hash else None,
        price_decimals=header.price_decimals,
        rounding=circ.ROUNDING_ID,
        assets=[
            layout.AssetEntry(symbol=a.symbol, decimals=a.decimals,
                              proof_decimals=a.proven_decimals, price=a.price,
                              haircut_bps=a.haircut_bps, reserves=a.reserves)
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
                           solvency=entry(layout.SOLVENCY_FILE)),
    )
