"""Every account's inclusion proof in one pass over the private database.

``export_all`` reads the database once: the signed manifest (checked), every
tree node level by level (one query per level), then the account leaves in
index order. Instead of running the holder's check per proof (a path fold,
~2 ms each: ~35 min at 2^20 accounts), it checks the whole tree once, which
implies every holder's check passes:

1. the manifest is the signed, canonical manifest of ``bundle_hash`` and
   names the database's epoch, depth, asset count and root;
2. [tree-hash] every stored node hash is H(NODE_TAG || children), up to the
   manifest's root hash, and the stored root commitments are the manifest's:
   every sibling and leaf commitment byte on every path is the bundle's
   (whose tree the verifier recomputed with [tree-sum] before it was signed);
3. [leaf-hash] each account's stored leaf hash is H(epoch, id, salt);
4. each opening (v_j, gamma_j) commits to the stored leaf commitment, in
   batches (``commit_many``).

As a differential check against that fast path, the first and last proof and
``SAMPLE`` others chosen at random are also run through the holder's own
check (``verify_inclusion``).

File names. One file per account, ``NAME.json`` with NAME the first 32 hex
digits of SHA-256("zksolv/proof-file/v1" || salt): the salt is the account's
per-epoch secret (HKDF of the operator's master key, epoch and id), so
whoever holds the database or the master key finds a holder's file from the
id (``locate``), while the names reveal no id to anyone else, and differ
every epoch. The directory is built under a hidden temporary name (0700,
files 0600, created exclusively), flushed to disk, then renamed into place:
a run that fails halfway leaves no directory at DIR.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import secrets
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zksolv.circuits import epoch as circ
from zksolv.circuits.inclusion import InclusionProof, PathStep
from zksolv.core.field import scalar_from_bytes
from zksolv.core.group import POINT_BYTES, Backend, get_backend
from zksolv.core.pedersen import commit_many
from zksolv.errors import FormatError, InputError, VerificationError
from zksolv.verifier.bundle import check_manifest
from zksolv.verifier.inclusion import InclusionDocument, Readable, verify_inclusion

from .inclusion_db import InclusionDB

FILE_NAME_TAG = b"zksolv/proof-file/v1"
SAMPLE = 16
BATCH = 4096
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def _no_progress(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
    return items


def proof_file_name(salt: bytes) -> str:
    """The file an account's proof is exported to (see the module docstring)."""
    return hashlib.sha256(FILE_NAME_TAG + salt).hexdigest()[:32] + ".json"


def locate(db: InclusionDB, account_id: str) -> str:
    """The file name of ``account_id``'s proof in an ``export --all`` directory."""
    rows = db._query("SELECT salt FROM leaves WHERE account_id = ?", (account_id,))
    if not rows:
        raise InputError("--account", f"no account {account_id!r} in this epoch")
    return proof_file_name(db._blob(rows[0][0], circ.SALT_BYTES, "salt"))


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    accounts: int
    epoch: int
    bundle_hash: bytes
    sampled: int


def _levels(db: InclusionDB, depth: int, node_size: int,
            bar: Progress) -> list[list[bytes]]:
    """Every node, level 0 (leaves) to depth (root), each level complete."""
    levels = []
    for level in bar(range(depth + 1), depth + 1, "read tree"):
        rows = db._query("SELECT idx, data FROM nodes WHERE level = ? ORDER BY idx", (level,))
        want = 1 << (depth - level)
        if len(rows) != want or (rows and rows[-1][0] != want - 1):
            raise db._bad(f"level {level} has {len(rows)} nodes, the tree needs {want}")
        levels.append([db._blob(data, node_size, f"node ({level}, {i})")
                       for i, (_, data) in enumerate(rows)])
    return levels


def _check_tree(db: InclusionDB, levels: list[list[bytes]], cpart: int,
                root_hash: bytes, root_commitments: bytes) -> None:
    """[tree-hash] every parent's stored hash from its stored children, up to
    the signed root."""
    for level in range(len(levels) - 1):
        below, above = levels[level], levels[level + 1]
        for i, parent in enumerate(above):
            left, right = below[2 * i], below[2 * i + 1]
            h = circ.node_hash(left[:cpart], left[cpart:], right[:cpart], right[cpart:])
            if h != parent[cpart:]:
                raise db._bad(f"node ({level + 1}, {i}) is not the hash of its children")
    top = levels[-1][0]
    if top[cpart:] != root_hash or top[:cpart] != root_commitments:
        raise db._bad("the stored root is not the signed manifest's root")


@dataclass(frozen=True)
class _Tree:
    """What every proof of the database shares, read and checked once."""

    k: int
    depth: int
    epoch: int
    accounts: int
    bundle_hash: bytes
    signature: bytes
    manifest: bytes
    levels: list[list[bytes]]
    assets: tuple[circ.AssetTerms, ...]
    root_hash: bytes


def read_tree(db: InclusionDB, *, progress: Progress | None = None) -> _Tree:
    """Steps 1 and 2: the signed manifest, and every node checked up to its root."""
    bar = progress or _no_progress
    k = db._uint("k", 1, 255)
    depth = db._uint("depth", circ.MIN_DEPTH, circ.MAX_DEPTH)
    epoch = db._uint("epoch", 0, (1 << 63) - 1)
    accounts = db._uint("accounts", 1, 1 << circ.MAX_DEPTH)
    bundle_hash = db._hex("bundle_hash", 32)
    signature = db._hex("signature", 64)
    manifest = db.meta("manifest").encode("utf-8")
    try:
        parsed = check_manifest(manifest, signature)
    except VerificationError as exc:
        raise db._bad(f"the stored manifest does not check ({exc})") from exc
    h = parsed.header
    if (parsed.bundle_hash, h.epoch, h.depth, h.k) != (bundle_hash, epoch, depth, k):
        raise db._bad("meta disagrees with the signed manifest")
    cpart = k * POINT_BYTES
    levels = _levels(db, depth, cpart + circ.HASH_BYTES, bar)
    _check_tree(db, levels, cpart, parsed.root_hash, b"".join(parsed.root_commitments))
    return _Tree(k, depth, epoch, accounts, bundle_hash, signature, manifest, levels,
                 h.assets, parsed.root_hash)


def _documents(db: InclusionDB, tree: _Tree, lo: int, hi: int, backend: Backend,
               sampled: set[int], bar: Progress) -> Iterator[InclusionDocument]:
    """Steps 3 and 4 for the account leaves with index in [lo, hi)."""
    k, depth, epoch = tree.k, tree.depth, tree.epoch
    cpart = k * POINT_BYTES
    leaves = tree.levels[0]
    try:
        cursor = db.conn.execute(
            "SELECT idx, account_id, amounts, blindings, salt, leaf_hash FROM leaves "
            "WHERE account_id IS NOT NULL AND idx >= ? AND idx < ? ORDER BY idx", (lo, hi))
    except sqlite3.Error as exc:
        raise db._bad(str(exc)) from exc
    rows_iter = iter(lambda: cursor.fetchmany(BATCH), [])
    for batch in bar(rows_iter, -(-tree.accounts // BATCH), "export"):
        proofs = []
        values: list[int] = []
        blinds: list[int] = []
        for idx, acc, amounts, bl, salt, stored_hash in batch:
            if not isinstance(idx, int) or not 0 <= idx < 1 << depth:
                raise db._bad("leaf index out of range")
            if not isinstance(acc, str) or not 1 <= len(acc.encode("utf-8")) <= circ.MAX_ID_BYTES:
                raise db._bad(f"leaf {idx}: bad account id")
            amounts = db._blob(amounts, 8 * k, "amounts")
            bl = db._blob(bl, 32 * k, "blindings")
            salt = db._blob(salt, circ.SALT_BYTES, "salt")
            lh = circ.leaf_hash(epoch, acc, salt)
            if lh != stored_hash or lh != leaves[idx][cpart:]:
                raise db._bad(f"leaf {idx}: leaf hash is not H(epoch, id, salt)")
            try:
                blindings = tuple(scalar_from_bytes(bl[i : i + 32]) for i in range(0, 32 * k, 32))
            except FormatError as exc:
                raise db._bad(str(exc)) from exc
            vals = tuple(v for (v,) in struct.iter_unpack(">Q", amounts))
            values += vals
            blinds += blindings
            path = []
            for level in range(depth):
                sib = tree.levels[level][(idx >> level) ^ 1]
                path.append(PathStep(sib[:cpart], sib[cpart:]))
            proofs.append(InclusionProof(epoch, tree.bundle_hash, idx, acc, vals, blindings,
                                         salt, tuple(path)))
        encoded = b"".join(backend.encode_many(commit_many(backend, values, blinds)))
        for i, proof in enumerate(proofs):
            if encoded[i * cpart : (i + 1) * cpart] != leaves[proof.leaf_index][:cpart]:
                raise db._bad(f"leaf {proof.leaf_index}: the opening does not match its "
                              "commitment")
            doc = InclusionDocument(proof, tree.manifest, tree.signature,
                                    Readable.of(proof, tree.assets, tree.root_hash))
            if proof.leaf_index in sampled:
                try:
                    verify_inclusion(doc, account_id=proof.account_id,
                                     bundle_hash=tree.bundle_hash, backend=backend)
                except VerificationError as exc:
                    raise db._bad(f"the exported proof does not verify ({exc})") from exc
            yield doc


def _sample(tree: _Tree, rng: random.Random | None) -> set[int]:
    """Leaf indices whose proofs also run the holder's check: the first and
    last leaf and SAMPLE random ones (not every index holds an account)."""
    r = rng or random.Random(secrets.randbits(64))
    top = (1 << tree.depth) - 1
    return {0, top, *(r.randrange(top + 1) for _ in range(SAMPLE))}


def export_all(db: InclusionDB, *, backend: Backend | None = None,
               progress: Progress | None = None,
               rng: random.Random | None = None) -> Iterator[InclusionDocument]:
    """Every account's inclusion document, in leaf order, checked as the
    module docstring says; a corrupt database raises ``InputError`` naming it."""
    backend = backend or get_backend()
    tree = read_tree(db, progress=progress)
    n = 0
    for doc in _documents(db, tree, 0, 1 << tree.depth, backend, _sample(tree, rng),
                          progress or _no_progress):
        n += 1
        yield doc
    if n != tree.accounts:
        raise db._bad(f"{n} account leaves, meta says {tree.accounts}")


# Set in the parent before the workers fork: (database path, tree, backend
# name, sample, directory fd path).
_FORK_STATE: tuple[Path, _Tree, str, set[int], Path] | None = None


def _export_range(bounds: tuple[int, int]) -> int:
    """Worker: check and write the proofs of leaves [lo, hi); return the count."""
    assert _FORK_STATE is not None
    db_path, tree, backend_name, sampled, tmp = _FORK_STATE
    db = InclusionDB.open(db_path)
    try:
        docs = _documents(db, tree, bounds[0], bounds[1], get_backend(backend_name), sampled,
                          _no_progress)
        return _write_files(docs, tmp)
    finally:
        db.close()


def _write_files(docs: Iterable[InclusionDocument], folder: Path) -> int:
    """Each document to ``folder/NAME.json``, 0600, created exclusively."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    count = 0
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for doc in docs:
            fd = os.open(proof_file_name(doc.proof.salt), flags, 0o600, dir_fd=dfd)
            try:
                data = memoryview(doc.to_bytes())
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
            count += 1
    finally:
        os.close(dfd)
    return count


def export_directory(db_path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                     backend: Backend | None = None, jobs: int = 1,
                     progress: Progress | None = None) -> ExportResult:
    """``inclusion export --all``: every proof into the new directory ``out``,
    the leaves split into ``jobs`` ranges checked and written by worker
    processes (each reads its own rows; the tree is read once, before the
    fork)."""
    global _FORK_STATE
    backend = backend or get_backend()
    bar = progress or _no_progress
    db = InclusionDB.open(Path(db_path))
    try:
        tree = read_tree(db, progress=progress)
    finally:
        db.close()
    sampled = _sample(tree, None)
    leaves = 1 << tree.depth
    parts = max(1, min(jobs * 8, leaves // BATCH or 1))
    step = -(-leaves // parts)
    ranges = [(lo, min(lo + step, leaves)) for lo in range(0, leaves, step)]

    def build(tmp: Path) -> int:
        global _FORK_STATE
        _FORK_STATE = (Path(db_path), tree, backend.name, sampled, tmp)
        if jobs <= 1:
            count = sum(bar(map(_export_range, ranges), len(ranges), "export"))
        else:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                count = sum(bar(pool.map(_export_range, ranges), len(ranges), "export"))
        if count != tree.accounts:
            raise InputError(str(db_path), "corrupt or tampered inclusion database: "
                                           f"{count} account leaves, meta says {tree.accounts}")
        return count

    try:
        count = _publish_directory(out, build)
    finally:
        _FORK_STATE = None
    return ExportResult(Path(out), count, tree.epoch, tree.bundle_hash, len(sampled))


def _publish_directory(out: str | os.PathLike[str], build: Callable[[Path], int]) -> int:
    """Run ``build(tmp)`` on a fresh hidden directory (0700) beside ``out``,
    flush everything to disk, then rename it to ``out``; on any failure
    remove it. Returns what ``build`` returns."""
    dest = Path(out)
    if dest.exists() or dest.is_symlink():
        raise InputError(str(dest), "exists; refusing to overwrite an export directory")
    parent = dest.parent if str(dest.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=parent))  # mode 0700
    try:
        count = build(tmp)
        # one flush for every file (an fsync per file costs ~ms each)
        os.sync()
        if dest.exists() or dest.is_symlink():
            raise InputError(str(dest), "appeared while exporting; not overwriting")
        os.rename(tmp, dest)
        pfd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(pfd)
        finally:
            os.close(pfd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def write_all(docs: Iterable[InclusionDocument], out: str | os.PathLike[str]) -> int:
    """Write each document to ``out/NAME.json`` (0600, exclusive), building
    ``out`` (0700) under a temporary name renamed into place at the end.
    Returns the number of files written."""
    return _publish_directory(out, lambda tmp: _write_files(docs, tmp))
