"""Every account's inclusion proof in one pass over the private database.

``export_directory`` reads the database once: the signed manifest (checked),
every tree node level by level (one query per level), then the account
leaves in index order, split into ranges among worker processes. Instead of
running the holder's check per proof (a path fold, ~2 ms each: ~35 min at
2^20 accounts), it checks the whole tree once, which implies every holder's
check passes:

1. the manifest is the signed, canonical manifest of ``bundle_hash`` and
   names the database's epoch, depth, asset count and root;
2. [tree-hash] every stored node hash is H(NODE_TAG || children), up to the
   manifest's root hash, and the stored root commitments are the manifest's:
   every sibling and leaf commitment byte on every path is the bundle's
   (whose tree the verifier recomputed with [tree-sum] before it was signed);
3. [leaf-hash] each account's stored leaf hash is H(epoch, id, salt);
4. each opening (v_j, gamma_j) commits to the stored leaf commitment, in
   batches (``commit_many``).

Each document's bytes are assembled from the parts every document shares
and the account's own (``_DocumentBytes``). As a differential check against
that fast path, the first and last leaf and ``SAMPLE`` others chosen at
random are also built through the reference path (``InclusionDocument``),
compared byte for byte, and run through the holder's own check
(``verify_inclusion``).

File names. One file per account, ``NN/NAME.json`` with NAME the first 32
hex digits of SHA-256("zksolv/proof-file/v1" || salt) and NN its first two
digits (256 sub-directories: a flat directory of 10^6 files is slow to
list and to copy). The salt is the account's per-epoch secret (HKDF of the
operator's master key, epoch and id), so whoever holds the database or the
master key finds a holder's file from the id (``locate``), while the names
reveal no id to anyone else, and differ every epoch. The directory is built
under a hidden temporary name (0700, sub-directories 0700, files 0600,
created exclusively), flushed to disk, then renamed into place: a run that
fails halfway leaves no directory at DIR.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import msgspec

from zksolv import units
from zksolv.circuits import epoch as circ
from zksolv.circuits.inclusion import (
    DOCUMENT_VERSION,
    INCLUSION_FORMAT,
    INCLUSION_VERSION,
    MAGIC,
    InclusionProof,
)
from zksolv.core.field import scalar_from_bytes
from zksolv.core.group import POINT_BYTES, Backend, get_backend
from zksolv.core.pedersen import commit_many
from zksolv.errors import FormatError, InputError, ProverFault, VerificationError
from zksolv.executors import die_with_parent
from zksolv.progress import Progress, no_progress
from zksolv.safeio import fsync_dir, make_private_dirs
from zksolv.verifier.bundle import check_manifest
from zksolv.verifier.inclusion import InclusionDocument, Readable, verify_inclusion

from .inclusion_db import InclusionDB

FILE_NAME_TAG = b"zksolv/proof-file/v1"
# Files go in 256 sub-directories named by their first two hex digits, as a
# directory of 10^6 entries is slow to list and to copy with common tools
# (and, on an ext4 without a journal that had just deleted many files,
# measured 2-4x slower to fill than 256 smaller ones).
FANOUT_DIGITS = 2
SAMPLE = 16
BATCH = 4096
# Leaves per task of the worker processes (progress advances per task).
TASK_LEAVES = 1 << 14
MAX_ID = circ.MAX_ID_BYTES



def proof_file_path(salt: bytes) -> str:
    """Where an account's proof goes in an ``export --all`` directory, as a
    relative path ``NN/NAME.json`` (see the module docstring)."""
    name = hashlib.sha256(FILE_NAME_TAG + salt).hexdigest()[:32]
    return f"{name[:FANOUT_DIGITS]}/{name}.json"


def fanout_directories() -> list[str]:
    """The sub-directories of an export directory: 00 .. ff."""
    return [f"{i:0{FANOUT_DIGITS}x}" for i in range(16**FANOUT_DIGITS)]


def locate(db: InclusionDB, account_id: str) -> str:
    """The path of ``account_id``'s proof inside an ``export --all`` directory."""
    rows = db._query("SELECT salt FROM leaves WHERE account_id = ?", (account_id,))
    if not rows:
        raise InputError("--account", f"no account {account_id!r} in this epoch")
    return proof_file_path(db._blob(rows[0][0], circ.SALT_BYTES, "salt"))


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    accounts: int
    epoch: int
    bundle_hash: bytes
    sampled: int  # documents also built the reference way and checked as a holder would


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
    bar = progress or no_progress
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
    if (parsed.bundle_hash, h.epoch, h.depth, h.m) != (bundle_hash, epoch, depth, k):
        raise db._bad("meta disagrees with the signed manifest")
    cpart = k * POINT_BYTES
    levels = _levels(db, depth, cpart + circ.HASH_BYTES, bar)
    _check_tree(db, levels, cpart, parsed.root_hash, b"".join(parsed.root_commitments))
    return _Tree(k, depth, epoch, accounts, bundle_hash, signature, manifest, levels,
                 h.assets, parsed.root_hash)


class _DocumentBytes:
    """``InclusionDocument.to_bytes()`` of every account of one tree, built
    from the parts all documents share (manifest, signature, labels, the
    sibling records) and the account's own: the proof's path is the stored
    sibling nodes as they are, since a node record (k*48 commitment bytes ||
    32-byte hash) is exactly a path step's encoding. The reference path,
    ``InclusionDocument``, builds the same bytes from objects; the sampled
    accounts are built both ways and compared (and the tests compare all)."""

    def __init__(self, tree: _Tree) -> None:
        enc = msgspec.json.encode
        self.tree = tree
        self.head = (b'{"format":' + enc(INCLUSION_FORMAT) + b',"version":' + enc(DOCUMENT_VERSION)
                     + b',"epoch":' + enc(tree.epoch) + b',"account_id":')
        self.middle = (b',"manifest":' + enc(tree.manifest.decode("utf-8")) + b',"signature":'
                       + enc(tree.signature.hex()) + b',"proof":"')
        self.labels = (b'","bundle_hash":' + enc(tree.bundle_hash.hex()) + b',"root_hash":'
                       + enc(tree.root_hash.hex()) + b',"amounts":')
        self.proof_head = (MAGIC + struct.pack(">BQ", INCLUSION_VERSION, tree.epoch)
                           + tree.bundle_hash)
        self.shape = struct.pack(">BB", tree.k, tree.depth)
        self.terms = [(name, tree.assets[j].decimals, tree.assets[j].proven_decimals)
                      for name, (j, _) in zip(circ.column_names(tree.assets),
                                              circ.column_layout(tree.assets), strict=True)]
        self.siblings = tree.levels[:-1]

    def proof(self, idx: int, ident: bytes, amounts: bytes, blindings: bytes,
              salt: bytes) -> bytes:
        """``InclusionProof.to_bytes()`` (circuits/inclusion.py's layout)."""
        return b"".join([
            self.proof_head, self.shape, struct.pack(">IH", idx, len(ident)), ident, amounts,
            blindings, salt, *[level[(idx >> i) ^ 1] for i, level in enumerate(self.siblings)],
        ])

    def document(self, account_id: str, proof: bytes, values: Sequence[int]) -> bytes:
        amounts = [{"symbol": s, "decimals": d, "proof_decimals": p, "proof_units": v,
                    "tokens": units.format_tokens(v, p)}
                   for (s, d, p), v in zip(self.terms, values, strict=True)]
        return b"".join([self.head, msgspec.json.encode(account_id), self.middle,
                         proof.hex().encode("ascii"), self.labels,
                         msgspec.json.encode(amounts), b"}\n"])

    def reference(self, proof: bytes) -> InclusionDocument:
        """The same document through the reference path (objects)."""
        p = InclusionProof.from_bytes(proof)
        return InclusionDocument(p, self.tree.manifest, self.tree.signature,
                                 Readable.of(p, self.tree.assets, self.tree.root_hash))


def _files(db: InclusionDB, tree: _Tree, lo: int, hi: int, backend: Backend,
           sampled: set[int]) -> Iterator[tuple[str, bytes, bool]]:
    """Steps 3 and 4 for the account leaves with index in [lo, hi): each
    account's (file path, document bytes, whether it was sampled)."""
    k, depth, epoch = tree.k, tree.depth, tree.epoch
    cpart = k * POINT_BYTES
    leaves = tree.levels[0]
    docs = _DocumentBytes(tree)
    try:
        cursor = db.conn.execute(
            "SELECT idx, account_id, amounts, blindings, salt, leaf_hash FROM leaves "
            "WHERE account_id IS NOT NULL AND idx >= ? AND idx < ? ORDER BY idx", (lo, hi))
    except sqlite3.Error as exc:
        raise db._bad(str(exc)) from exc
    for batch in iter(lambda: cursor.fetchmany(BATCH), []):
        accounts = []
        values: list[int] = []
        blinds: list[int] = []
        for idx, acc, amounts, bl, salt, stored_hash in batch:
            if not isinstance(idx, int) or not 0 <= idx < 1 << depth:
                raise db._bad("leaf index out of range")
            if not isinstance(acc, str) or not 1 <= len(ident := acc.encode("utf-8")) <= MAX_ID:
                raise db._bad(f"leaf {idx}: bad account id")
            amounts = db._blob(amounts, 8 * k, "amounts")
            bl = db._blob(bl, 32 * k, "blindings")
            salt = db._blob(salt, circ.SALT_BYTES, "salt")
            lh = circ.leaf_hash(epoch, acc, salt)
            if lh != stored_hash or lh != leaves[idx][cpart:]:
                raise db._bad(f"leaf {idx}: leaf hash is not H(epoch, id, salt)")
            try:
                blinds += [scalar_from_bytes(bl[i : i + 32]) for i in range(0, 32 * k, 32)]
            except FormatError as exc:
                raise db._bad(str(exc)) from exc
            vals = [v for (v,) in struct.iter_unpack(">Q", amounts)]
            values += vals
            accounts.append((idx, acc, vals, docs.proof(idx, ident, amounts, bl, salt), salt))
        encoded = b"".join(backend.encode_many(commit_many(backend, values, blinds)))
        for i, (idx, acc, vals, proof, salt) in enumerate(accounts):
            if encoded[i * cpart : (i + 1) * cpart] != leaves[idx][:cpart]:
                raise db._bad(f"leaf {idx}: the opening does not match its commitment")
            data = docs.document(acc, proof, vals)
            if idx in sampled:
                _check_sample(db, docs.reference(proof), data, tree, backend)
            yield proof_file_path(salt), data, idx in sampled


def _check_sample(db: InclusionDB, doc: InclusionDocument, data: bytes, tree: _Tree,
                  backend: Backend) -> None:
    """A sampled account: the fast bytes are the reference document's, and
    that document passes the holder's own check."""
    if doc.to_bytes() != data:
        raise ProverFault(f"export: leaf {doc.proof.leaf_index}: the fast document encoding "
                          "differs from the reference one (a fault in zksolv, not the database)")
    try:
        verify_inclusion(doc, account_id=doc.proof.account_id, bundle_hash=tree.bundle_hash,
                         backend=backend)
    except VerificationError as exc:
        raise db._bad(f"the exported proof does not verify ({exc})") from exc


def _sample(db: InclusionDB, rng: random.Random | None) -> set[int]:
    """Leaf indices of the accounts whose documents are also built through
    the reference path and run the holder's check: the first and last
    account and, for SAMPLE random indices, the first account at or after
    each."""
    r = rng or random.Random(secrets.randbits(64))
    q = "SELECT idx FROM leaves WHERE account_id IS NOT NULL "
    picks = db._query(q + "ORDER BY idx LIMIT 1", ())
    picks += db._query(q + "ORDER BY idx DESC LIMIT 1", ())
    top = picks[-1][0] if picks else 0
    for _ in range(SAMPLE):
        picks += db._query(q + "AND idx >= ? ORDER BY idx LIMIT 1", (r.randrange(top + 1),))
    return {row[0] for row in picks}


# Set in the parent before the workers fork: (database path, tree, backend
# name, sample, directory being built).
_FORK_STATE: tuple[Path, _Tree, str, set[int], Path] | None = None


def _export_range(bounds: tuple[int, int]) -> tuple[int, int]:
    """Worker: check and write the proofs of leaves [lo, hi); return how many
    were written and how many of them were sampled."""
    assert _FORK_STATE is not None
    db_path, tree, backend_name, sampled, tmp = _FORK_STATE
    db = InclusionDB.open(db_path)
    try:
        files = _files(db, tree, bounds[0], bounds[1], get_backend(backend_name), sampled)
        return _write_files(files, tmp)
    finally:
        db.close()


def _write_files(files: Iterable[tuple[str, bytes, bool]], folder: Path) -> tuple[int, int]:
    """Each (path, bytes, sampled) to ``folder/path``, 0600, created
    exclusively; returns (files written, sampled among them)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    count = sampled = 0
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path, data, was_sampled in files:
            fd = os.open(path, flags, 0o600, dir_fd=dfd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            count += 1
            sampled += was_sampled
    finally:
        os.close(dfd)
    return count, sampled


def export_directory(db_path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                     backend: Backend | None = None, jobs: int = 1,
                     progress: Progress | None = None) -> ExportResult:
    """``inclusion export --all``: every proof into the new directory ``out``,
    the leaves split into ranges of TASK_LEAVES checked and written by
    ``jobs`` worker processes (each reads its own rows; the tree is read and
    checked once, before the fork)."""
    global _FORK_STATE
    backend = backend or get_backend()
    bar = progress or no_progress
    db = InclusionDB.open(Path(db_path))
    try:
        tree = read_tree(db, progress=progress)
        sampled = _sample(db, None)
    finally:
        db.close()
    leaves = 1 << tree.depth
    ranges = [(lo, min(lo + TASK_LEAVES, leaves)) for lo in range(0, leaves, TASK_LEAVES)]
    compared = 0

    def build(tmp: Path) -> int:
        global _FORK_STATE
        nonlocal compared
        _FORK_STATE = (Path(db_path), tree, backend.name, sampled, tmp)
        if jobs <= 1:
            done = list(bar(map(_export_range, ranges), len(ranges), "export"))
        else:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                     initializer=die_with_parent) as pool:
                done = list(bar(pool.map(_export_range, ranges), len(ranges), "export"))
        count, compared = sum(c for c, _ in done), sum(s for _, s in done)
        if count != tree.accounts:
            raise InputError(str(db_path), "corrupt or tampered inclusion database: "
                                           f"{count} account leaves, meta says {tree.accounts}")
        return count

    try:
        count = _publish_directory(out, build)
    finally:
        _FORK_STATE = None
    return ExportResult(Path(out), count, tree.epoch, tree.bundle_hash, compared)


def _publish_directory(out: str | os.PathLike[str], build: Callable[[Path], int]) -> int:
    """Run ``build(tmp)`` on a fresh hidden directory (0700) beside ``out``,
    flush everything to disk, then rename it to ``out``; on any failure
    remove it. Returns what ``build`` returns."""
    dest = Path(out)
    if dest.exists() or dest.is_symlink():
        raise InputError(str(dest), "exists; refusing to overwrite an export directory")
    parent = dest.parent if str(dest.parent) else Path(".")
    make_private_dirs(parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=parent))  # mode 0700
    try:
        for sub in fanout_directories():
            (tmp / sub).mkdir(mode=0o700)
        count = build(tmp)
        # one flush for every file (an fsync per file costs ~ms each)
        os.sync()
        if dest.exists() or dest.is_symlink():
            raise InputError(str(dest), "appeared while exporting; not overwriting")
        os.rename(tmp, dest)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count
