"""Verify an epoch bundle, or a chain of bundles, with public data only.

Imports core, circuits, errors, safeio, executors and progress only
(import-linter contract in ``pyproject.toml``); Ed25519 comes from
``cryptography``, the manifest schema (``circuits/bundle.py``) is decoded
with msgspec. Every failure is a
``VerificationError`` whose ``check`` is one of the stable tags below
(``docs/epoch.md``); checks run in this order and the first failure is
reported:

==================  ======================================================
tag                 what is checked
==================  ======================================================
manifest-missing    manifest.json is a regular file of at most 1 MiB
manifest-format     manifest is UTF-8 JSON of exactly the schema's types
                    (``layout.Manifest``), asset symbols distinct, and
                    prev_epoch is null exactly when prev_bundle_hash is,
                    and below epoch
manifest-canonical  manifest bytes are exactly the canonical serialisation
suite-mismatch      suite and statement ids are the ones this verifier speaks
signature           the operator key the manifest names is a canonical,
                    not small-order Ed25519 point, and manifest.sig (S < L)
                    is its signature of the manifest (``core/ed25519.py``)
operator-mismatch   (``--operator``) that key is the pinned one
bundle-shape        depth, shard size, file sizes agree with each other
manifest-hash       every data file is a regular file with the listed size
                    and SHA-256
epoch-mismatch      the epoch is the one the caller expected
chain-epoch         (no gaps allowed) the header declares no gap: prev_epoch
                    is null or epoch - 1
leaf-encoding       every leaf commitment decodes (curve, subgroup, not identity)
tree-root           recomputing [tree-sum] and [tree-hash] from the leaves
                    gives the published root hash and root commitments
solvency-bounds     the valued coefficients cannot wrap mod r (version 5:
                    checked before the shards, whose health weights they are)
totals-opening      (--reveal-totals only) C_root_j = L_j*g + gamma_j*h
leaf-range          every shard's 64-bit range proof (batch-verified)
debt-range          (version 5) every shard's 64-bit debt range proof
margin-health       (version 5) every leaf's margin health, one 128-bit
                    aggregated proof per shard (``verifier.margin``)
solvency-asset      reserves_j*g - C_root_j (+ C_root_debt_j) is in [0, 2^128)
                    for every j
solvency-valued     the valued margin (debts counted) is in [0, 2^128)
chain-operator      every bundle of a chain is signed by the same key
chain-epoch         chained bundles have increasing epochs (consecutive
                    unless gaps are allowed: epochs not proven solvent)
chain-link          each bundle records the previous bundle's hash and
                    epoch
==================  ======================================================
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core import ed25519, rangeproof
from zksolv.core.field import scalar_from_bytes
from zksolv.core.generators import generators
from zksolv.core.group import POINT_BYTES, Backend, Point, get_backend
from zksolv.core.pedersen import commit
from zksolv.errors import FormatError, InputError, VerificationError
from zksolv.executors import Executor, die_with_parent
from zksolv.progress import Progress, derive_progress, no_progress
from zksolv.reserves_format import EvidenceJSON, evidence_digest
from zksolv.safeio import FileReadError, decode_json, read_bounded

from . import margin as margin_check
from . import reserves as reserves_check

# Proofs per multi-scalar multiplication: bounds memory, not soundness.
BATCH_PROOFS = 64
_HEX32 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BundleReport:
    path: str
    epoch: int
    bundle_hash: bytes
    prev_bundle_hash: bytes | None
    prev_epoch: int | None
    operator: bytes
    operator_pinned: bool
    price_decimals: int
    assets: tuple[circ.AssetTerms, ...]
    depth: int
    leaves: int
    shards: int
    shard_leaves: int
    root_hash: bytes
    root_commitments: tuple[bytes, ...]
    reveal_totals: bool
    checks: tuple[str, ...]
    seconds: float
    # the header's timestamp: the state the epoch proves (seconds, UTC)
    timestamp: int = 0
    # what the reserves rest on: asserted (versions 4, 5) or the chain (6)
    reserves: reserves_check.ReservesReport | None = None
    version: int = layout.BUNDLE_VERSION

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(a.symbol for a in self.assets)

    @property
    def gap(self) -> tuple[int, int] | None:
        """The epochs this bundle's signed header declares were not proven
        solvent (between prev_epoch and epoch), inclusive, or None."""
        return circ.declared_gap(self.epoch, self.prev_epoch)

    def shard_of_leaf(self, leaf: int) -> int:
        return leaf // self.shard_leaves

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "epoch": self.epoch,
            "timestamp": self.timestamp,
            "time_utc": circ.utc_text(self.timestamp),
            "bundle_hash": self.bundle_hash.hex(),
            "prev_bundle_hash": self.prev_bundle_hash.hex() if self.prev_bundle_hash else None,
            "prev_epoch": self.prev_epoch,
            "gap": None if self.gap is None else {"first": self.gap[0], "last": self.gap[1]},
            "operator": self.operator.hex(),
            "operator_pinned": self.operator_pinned,
            "assets": assets_json(self.assets, self.price_decimals),
            "depth": self.depth,
            "leaves": self.leaves,
            "shards": self.shards,
            "root_hash": self.root_hash.hex(),
            "checks": list(self.checks),
            "seconds": round(self.seconds, 3),
            "version": self.version,
            "reserves": (self.reserves or reserves_check.asserted(self.assets)).to_json(),
        }


def assets_json(assets: Sequence[circ.AssetTerms], price_decimals: int) -> list[dict[str, Any]]:
    """Each asset's public terms, as the header the proofs are bound to states
    them: reserves in base units (the operator's assertion) and, as the
    statements use them, rounded down to proof units (``proven_reserves``)."""
    return [
        {"symbol": a.symbol, "decimals": a.decimals, "proof_decimals": a.proven_decimals,
         "price": a.price, "price_decimals": price_decimals, "haircut_bps": a.haircut_bps,
         "reserves": a.reserves, "proven_reserves": a.proven_reserves,
         "rounding": circ.ROUNDING_ID_MARGIN if any(b.borrowable for b in assets)
         else circ.ROUNDING_ID,
         **({"borrowable": True} if a.borrowable else {})}
        for a in assets
    ]


def _fail(check: str, detail: str) -> VerificationError:
    return VerificationError(check, detail)


_SQLITE_MAGIC = b"SQLite format 3\x00"
_EPOCH_DIR = re.compile(r"epoch-[0-9]{6}")


def what_it_is(path: Path) -> str | None:
    """What a path that is not a bundle looks like, to say so (None: a
    bundle, or nothing recognisable). Reads at most 16 bytes of a regular
    file, lists at most 10^4 entries of a directory."""
    if path.is_dir():
        if any((path / n).exists() or (path / n).is_symlink()
               for n in (layout.MANIFEST_FILE, layout.SIGNATURE_FILE, *layout.DATA_FILES)):
            return None
        names = []
        with os.scandir(path) as it:
            for n, entry in enumerate(it):
                if n >= 10_000:
                    break
                names.append(entry.name)
        if "header.json" in names and "accounts.csv" in names:
            return (f"a snapshot, not a bundle: prove it first (zksolv prove {path} --out "
                    "BUNDLE), then verify BUNDLE")
        epochs = sorted(n for n in names if _EPOCH_DIR.fullmatch(n))
        if epochs:
            return (f"a simulator run holding snapshots ({epochs[0]} ...), not a bundle: prove "
                    f"an epoch (zksolv prove {path / epochs[0]} --out BUNDLE)")
        bundles = sorted(n for n in names if (path / n / layout.MANIFEST_FILE).is_file())
        if bundles:
            return (f"a folder of bundles ({', '.join(bundles[:3])}"
                    f"{' ...' if len(bundles) > 3 else ''}), not a bundle: verify one "
                    f"(zksolv verify {path / bundles[0]}) or all of them as a chain "
                    f"(zksolv verify {path})")
        return "not a bundle: a bundle directory holds manifest.json, manifest.sig and data files"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, 16)
    finally:
        os.close(fd)
    if head.startswith(_SQLITE_MAGIC):
        return ("a SQLite file: if it is an inclusion database it is PRIVATE (every balance, "
                "blinding and salt; never publish it); verify the bundle directory instead")
    if head.lstrip().startswith(b"{"):
        return ("a file, not a bundle directory: an inclusion proof is checked with "
                "zksolv inclusion verify PROOF --account ID --bundle BUNDLE")
    return None


def _read_manifest_files(root: Path) -> tuple[bytes, bytes]:
    """(manifest.json bytes, manifest.sig bytes), each a bounded regular file.
    A path that holds no bundle file at all is unusable input (exit 2), told
    apart from a bundle whose manifest is missing (exit 1)."""
    if not root.is_dir():
        looks = what_it_is(root) if root.exists() else None
        raise InputError(str(root), looks or "not a bundle directory")
    looks = what_it_is(root)
    if looks is not None:
        raise InputError(str(root), looks)
    try:
        raw, _ = read_bounded(root / layout.MANIFEST_FILE, layout.MAX_MANIFEST_BYTES,
                              what="manifest")
    except FileReadError as exc:
        raise _fail("manifest-missing", str(exc)) from exc
    try:
        sig, _ = read_bounded(root / layout.SIGNATURE_FILE, layout.SIGNATURE_BYTES,
                              what="manifest signature", exact=layout.SIGNATURE_BYTES)
    except FileReadError as exc:
        raise _fail("signature", str(exc)) from exc
    return raw, sig


def decode_manifest(raw: bytes) -> layout.Manifest:
    """Decode manifest bytes into exact types [manifest-format] and require
    them to be the canonical serialisation [manifest-canonical]."""
    m = decode_json(raw, layout.Manifest,
                    fail=lambda why: _fail("manifest-format", f"manifest.json: {why}"))
    if layout.manifest_bytes(m) != raw:
        raise _fail("manifest-canonical", "manifest.json is not in canonical form")
    return m


def load_manifest(path: str | os.PathLike[str]) -> tuple[layout.Manifest, bytes]:
    """Read and decode a bundle's manifest.json strictly; return (manifest, raw bytes)."""
    raw, _ = _read_manifest_files(Path(path))
    return decode_manifest(raw), raw


def parse_operator_key(text: str, where: str = "--operator") -> bytes:
    """An operator public key given as 64 hex digits (lowercase or not): a
    canonical encoding of an Ed25519 point not of small order."""
    s = text.strip().lower()
    if not _HEX32.fullmatch(s):
        raise InputError(where, "an operator public key is 64 hex digits (32 bytes)")
    key = bytes.fromhex(s)
    try:
        ed25519.check_public_key(key)
    except FormatError as exc:
        raise InputError(where, f"not a usable operator public key: {exc}") from exc
    return key


def check_signature(raw: bytes, signature: bytes, operator: bytes) -> None:
    """[signature] Ed25519 over SIGNATURE_TAG || SHA-256(manifest) by
    ``operator``, a key that is canonical and not of small order, with a
    signature whose S is below L (``core/ed25519.py``)."""
    try:
        ed25519.check_public_key(operator)
    except FormatError as exc:
        raise _fail("signature", f"manifest.operator is not a usable Ed25519 key: {exc}") from exc
    try:
        ed25519.check_signature_encoding(signature)
    except FormatError as exc:
        raise _fail("signature", f"manifest.sig: {exc}") from exc
    try:
        key = Ed25519PublicKey.from_public_bytes(operator)
        key.verify(signature, layout.signature_message(layout.bundle_hash(raw)))
    except (InvalidSignature, ValueError) as exc:
        raise _fail("signature", "manifest.sig is not the operator key's signature of "
                                 "this manifest") from exc


@dataclass(frozen=True)
class _Parsed:
    header: circ.EpochHeader
    root_hash: bytes
    root_commitments: tuple[bytes, ...]
    totals: tuple[tuple[int, int], ...] | None
    files: layout.Files
    bundle_hash: bytes
    chain_reserves: EvidenceJSON | None = None


def check_manifest(raw: bytes, signature: bytes, *,
                   expect_operator: bytes | None = None) -> _Parsed:
    """Everything about a manifest that needs no data file: exact types,
    canonical bytes, suite, the operator's signature (and pinned key),
    distinct symbols, and the tree shape the circuit fixes."""
    m = decode_manifest(raw)
    margin = m.margin
    if m.suite != layout.suite_ids() or m.statements != layout.statement_ids(margin):
        raise _fail("suite-mismatch", "suite or statement ids differ from this verifier's")
    operator = bytes.fromhex(m.operator)
    check_signature(raw, signature, operator)
    if expect_operator is not None and operator != expect_operator:
        raise _fail("operator-mismatch", f"bundle is signed by operator {m.operator}, "
                                         f"not the pinned {expect_operator.hex()}")
    symbols = [a.symbol for a in m.assets]
    for i, s in enumerate(symbols):
        if s in symbols[:i]:
            raise _fail("manifest-format", f"manifest.assets[{i}].symbol: duplicate asset {s!r}")
    k = len(t_cols := circ.column_layout(
        [circ.AssetTerms(a.symbol, 0, 0, 0, 0, None, a.borrowable) for a in m.assets]))
    t = m.tree
    if t.shard_leaves != circ.shard_leaves_for(t.depth, k):
        raise _fail("bundle-shape", "shard size is not the one the circuit fixes")
    if t.leaves != 1 << t.depth:
        raise _fail("bundle-shape", "leaves != 2^depth")
    if t.shards != t.leaves // t.shard_leaves:
        raise _fail("bundle-shape", "shards != leaves / shard_leaves")
    if len(t.root_commitments) != len(t_cols):
        raise _fail("bundle-shape", "one root commitment per column expected")
    totals = None
    if m.reveal_totals:
        if m.totals is None or len(m.totals) != k:
            raise _fail("manifest-format", "manifest.totals: one entry per asset expected")
        tl = []
        for j, entry in enumerate(m.totals):
            try:
                gamma = scalar_from_bytes(bytes.fromhex(entry.root_blinding))
            except FormatError as exc:
                raise _fail("manifest-format",
                            f"manifest.totals[{j}].root_blinding: {exc}") from exc
            tl.append((entry.liabilities, gamma))
        totals = tuple(tl)
    elif m.totals is not None:
        raise _fail("manifest-format", "manifest.totals present but reveal_totals is false")
    header = circ.EpochHeader(
        epoch=m.epoch, timestamp=m.timestamp, price_decimals=m.price_decimals,
        assets=tuple(circ.AssetTerms(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves,
                                     a.proof_decimals, a.borrowable)
                     for a in m.assets),
        prev_bundle_hash=None if m.prev_bundle_hash is None else bytes.fromhex(m.prev_bundle_hash),
        prev_epoch=m.prev_epoch, depth=t.depth, shard_leaves=t.shard_leaves,
        reveal_totals=m.reveal_totals, operator=operator,
        reserves_evidence=None if m.chain_reserves is None
        else evidence_digest(m.chain_reserves),
    )
    return _Parsed(header, bytes.fromhex(t.root_hash),
                   tuple(bytes.fromhex(c) for c in t.root_commitments), totals, m.files,
                   layout.bundle_hash(raw), m.chain_reserves)


def _expected_sizes(header: circ.EpochHeader) -> dict[str, int]:
    asset_len, valued_len = layout.solvency_sizes(header.k)
    sizes = {
        layout.LEAVES_FILE: header.leaves * layout.leaf_record_size(header.m),
        layout.RANGE_FILE: header.shards * layout.leaf_proof_size(header.shard_leaves, header.k),
        layout.SOLVENCY_FILE: asset_len + valued_len,
    }
    if header.margin:
        sizes[layout.MARGIN_FILE] = margin_check.file_size(header)
    return sizes


def _read_files(root: Path, parsed: _Parsed) -> dict[str, bytes]:
    """Each data file: a regular file of exactly the size the manifest lists
    and the SHA-256 it lists [manifest-hash]; and the listed sizes are the
    ones the header's shape fixes [bundle-shape]. No file is read beyond the
    listed size."""
    out = {}
    expected = _expected_sizes(parsed.header)
    for name in parsed.files.names():
        if parsed.files.get(name).bytes != expected[name]:
            raise _fail("bundle-shape", f"{name}: the manifest lists {parsed.files.get(name).bytes}"
                                        f" bytes, the header's shape needs {expected[name]}")
    for name in parsed.files.names():
        entry = parsed.files.get(name)
        try:
            data, _ = read_bounded(root / name, entry.bytes, what=name, exact=entry.bytes)
        except FileReadError as exc:
            raise _fail("manifest-hash", str(exc)) from exc
        if hashlib.sha256(data).digest() != bytes.fromhex(entry.sha256):
            raise _fail("manifest-hash", f"{name}: SHA-256 differs from the manifest")
        out[name] = data
    return out


def _decode(backend: Backend, data: bytes, check: str, what: str) -> Point:
    try:
        return backend.decode(data, what=what)
    except FormatError as exc:
        raise _fail(check, str(exc)) from exc


def recompute_root(backend: Backend, k: int, leaf_points: Sequence[Sequence[Point]],
                   leaf_commitments: Sequence[bytes], leaf_hashes: Sequence[bytes]
                   ) -> tuple[list[Point], bytes]:
    """Fold the leaves with [tree-sum] and [tree-hash]; return (C_root, h_root)."""
    level: circ.Level = ([list(p) for p in leaf_points], list(leaf_commitments),
                         list(leaf_hashes))
    root = circ.tree_root(backend, k, level)
    return list(root[0][0]), root[2][0]


def _parse_proof(data: bytes, check: str, what: str) -> rangeproof.RangeProof:
    try:
        return rangeproof.RangeProof.from_bytes(data)
    except FormatError as exc:
        raise _fail(check, f"{what}: {exc}") from exc


@dataclass(frozen=True)
class _ShardChunk:
    """The shards [first, first + count) of a bundle: their leaf records and
    range proofs, checked together in one worker."""

    backend: str
    header: circ.EpochHeader
    digest: bytes
    first: int
    leaves: bytes
    proofs: bytes
    margin: bytes = b""            # version 5: the shards' margin.bin records


@dataclass(frozen=True)
class _ChunkResult:
    roots: tuple[bytes, ...]       # per shard: its subtree root, m*48 + 32 bytes
    encoding_error: str | None     # first leaf that does not decode
    range_error: str | None        # first shard whose range proof fails
    range_check: str = "leaf-range"  # the check that failed: leaf-, debt-range, margin-health


def _check_shards(chunk: _ShardChunk) -> _ChunkResult:
    """Decode the chunk's leaves [leaf-encoding], fold each shard's subtree
    [tree-sum] [tree-hash] and batch-verify its range proofs [leaf-range],
    reusing the decoded leaf commitments as the proofs' V; in version 5 also
    each shard's [debt-range] and [margin-health] proofs (``verifier.margin``)."""
    backend = get_backend(chunk.backend)
    header = chunk.header
    k, S = header.m, header.shard_leaves
    rec = layout.leaf_record_size(k)
    cpart = k * POINT_BYTES
    proof_len = layout.leaf_proof_size(S, header.k)
    count = len(chunk.proofs) // proof_len
    roots: list[bytes] = []
    decoded: dict[bytes, Point] = {}
    pairs: list[tuple[rangeproof.RangeStatement, rangeproof.RangeProof]] = []
    tags: list[str] = []
    range_error = None
    range_check = "leaf-range"
    coef = circ.valued_coefficients(header.assets, header.depth) if header.margin else None
    mrec = margin_check.record_size(header) if header.margin else 0
    for n in range(count):
        shard = chunk.first + n
        base = n * S * rec
        enc = [chunk.leaves[base + i * rec : base + i * rec + cpart] for i in range(S)]
        hashes = [chunk.leaves[base + i * rec + cpart : base + (i + 1) * rec] for i in range(S)]
        commits = [e[j * POINT_BYTES : (j + 1) * POINT_BYTES] for e in enc for j in range(k)]
        try:
            flat = [
                backend.decode(c, what=f"leaf {shard * S + i // k} asset {i % k}")
                for i, c in enumerate(commits)
            ]
        except FormatError as exc:
            return _ChunkResult(tuple(roots), str(exc), None)
        decoded.update(zip(commits, flat, strict=True))
        leaf_pts = [flat[i * k : (i + 1) * k] for i in range(S)]
        level: circ.Level = (leaf_pts, enc, hashes)
        root = circ.tree_root(backend, k, level)
        roots.append(root[1][0] + root[2][0])
        if range_error is not None:
            continue
        try:
            pf = rangeproof.RangeProof.from_bytes(chunk.proofs[n * proof_len : (n + 1) * proof_len])
        except FormatError as exc:
            range_error = f"shard {shard}: {exc}"
            continue
        pairs.append((circ.leaf_statement(header, chunk.digest, shard, commits), pf))
        tags.append(f"leaf-range|shard {shard}")
        if coef is not None:
            try:
                items = margin_check.shard_items(
                    backend, header, chunk.digest, shard, coef, commits, leaf_pts,
                    chunk.margin[n * mrec : (n + 1) * mrec], decoded)
            except FormatError as exc:
                range_check, _, why = str(exc).partition(": ")
                range_error = why
                continue
            for item in items:
                pairs.append((item.statement, item.proof))
                tags.append(f"{item.check}|shard {shard}")
    if range_error is None and pairs:
        try:
            bad = rangeproof.batch_find_invalid(pairs, backend=backend, decoded=decoded)
        except FormatError:
            bad = rangeproof.find_invalid(pairs, backend=backend)
        if bad is not None:
            range_check, _, where = tags[bad].partition("|")
            what = {"leaf-range": "range proof", "debt-range": "debt range proof",
                    "margin-health": "margin-health proof"}[range_check]
            range_error = f"{where}: {what} does not verify"
    return _ChunkResult(tuple(roots), None, range_error, range_check)


def _shard_chunks(backend: Backend, header: circ.EpochHeader, digest: bytes, leaves: bytes,
                  proofs: bytes, margin: bytes = b"") -> list[_ShardChunk]:
    rec = layout.leaf_record_size(header.m)
    proof_len = layout.leaf_proof_size(header.shard_leaves, header.k)
    mrec = margin_check.record_size(header) if header.margin else 0
    per = header.shard_leaves * rec
    chunks = []
    for first in range(0, header.shards, BATCH_PROOFS):
        last = min(first + BATCH_PROOFS, header.shards)
        chunks.append(_ShardChunk(backend.name, header, digest, first,
                                  leaves[first * per : last * per],
                                  proofs[first * proof_len : last * proof_len],
                                  margin[first * mrec : last * mrec]))
    return chunks


def _run_chunks(backend: Backend, chunks: list[_ShardChunk], jobs: int,
                bar: Progress, executor: Executor | None = None) -> list[_ChunkResult]:
    """Every chunk's result, on ``executor`` (a Dask cluster) if given, else in
    worker processes when ``jobs`` > 1; stops at the first undecodable leaf
    (the first check to report)."""
    if chunks:
        # every generator this bundle needs (leaf shards and the solvency
        # proofs) derived once, here (a bar if the cache lacks them), before
        # any fork, so workers inherit them
        h = chunks[0].header
        need = max(circ.LEAF_BITS * (1 << (h.shard_leaves * h.m - 1).bit_length()),
                   circ.HEALTH_BITS * h.shard_leaves if h.margin else 0,
                   circ.MARGIN_BITS * (1 << (h.k - 1).bit_length()))
        generators(backend).vectors(need, on_derive=derive_progress(bar))
    if executor is not None and len(chunks) > 1:
        by_index: dict[int, _ChunkResult] = {}
        for i, res in bar(executor.map_unordered(_check_shards, chunks), len(chunks), "shards"):
            by_index[i] = res
        return [by_index[i] for i in range(len(chunks))]
    if jobs > 1 and len(chunks) > 1:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=ctx,
                                 initializer=die_with_parent) as pool:
            return list(bar(pool.map(_check_shards, chunks), len(chunks), "shards"))
    results = []
    for chunk in bar(chunks, len(chunks), "shards"):
        results.append(_check_shards(chunk))
        if results[-1].encoding_error:
            break
    return results


def verify_bundle(path: str | os.PathLike[str], *, backend: Backend | None = None,
                  expect_epoch: int | None = None, expect_operator: bytes | None = None,
                  jobs: int = 1, progress: Progress | None = None,
                  executor: Executor | None = None, allow_gap: bool = True,
                  rpc: str | None = None) -> BundleReport:
    """Verify one bundle; raise ``VerificationError`` (exit 1) naming the first
    failing check, or ``InputError`` (exit 2) if ``path`` is not a directory.
    ``expect_operator`` pins the operator's public key (``operator-mismatch``).
    Without ``allow_gap`` a bundle whose header declares a gap (epochs not
    proven solvent before it) fails [chain-epoch]. The batches of shards run
    on ``executor`` if given (a Dask cluster), else on ``jobs`` local
    processes. With ``rpc`` (a node's JSON-RPC URL) a version 6 bundle's
    reserves are re-read from that node (``verifier/reserves.py``)."""
    t0 = time.perf_counter()
    backend = backend or get_backend()
    bar = progress or no_progress
    root = Path(path)
    raw, signature = _read_manifest_files(root)
    parsed = check_manifest(raw, signature, expect_operator=expect_operator)
    header = parsed.header
    k = header.m       # commitments per leaf and node: one per column
    data = _read_files(root, parsed)
    checks = ["manifest-format", "manifest-canonical", "suite-mismatch", "signature"]
    if expect_operator is not None:
        checks.append("operator-mismatch")
    checks += ["bundle-shape", "manifest-hash"]

    rec = layout.leaf_record_size(k)
    proof_len = layout.leaf_proof_size(header.shard_leaves, header.k)
    asset_len, valued_len = layout.solvency_sizes(header.k)
    if len(data[layout.LEAVES_FILE]) != header.leaves * rec:
        raise _fail("bundle-shape", f"{layout.LEAVES_FILE}: wrong size for 2^{header.depth} leaves")
    if len(data[layout.RANGE_FILE]) != header.shards * proof_len:
        raise _fail("bundle-shape", f"{layout.RANGE_FILE}: wrong size for {header.shards} proofs")
    if len(data[layout.SOLVENCY_FILE]) != asset_len + valued_len:
        raise _fail("bundle-shape", f"{layout.SOLVENCY_FILE}: wrong size")
    if expect_epoch is not None and header.epoch != expect_epoch:
        raise _fail("epoch-mismatch", f"bundle is epoch {header.epoch}, expected {expect_epoch}")
    if not allow_gap:
        _refuse_gap(str(root), header.epoch, header.prev_epoch)
        checks.append("chain-epoch")

    digest = header.digest()
    if header.margin:
        # the health weights are the valued coefficients: bounded before use
        try:
            circ.valued_coefficients(header.assets, header.depth)
        except circ.BoundsError as exc:
            raise _fail("solvency-bounds", str(exc)) from exc
    chunks = _shard_chunks(backend, header, digest, data[layout.LEAVES_FILE],
                           data[layout.RANGE_FILE], data.get(layout.MARGIN_FILE, b""))
    results = _run_chunks(backend, chunks, jobs, bar, executor)
    for res in results:
        if res.encoding_error:
            raise _fail("leaf-encoding", res.encoding_error)
    checks.append("leaf-encoding")

    cpart = k * POINT_BYTES
    shard_roots = [r for res in results for r in res.roots]
    top: circ.Level = (
        [[_decode(backend, r[j * POINT_BYTES : (j + 1) * POINT_BYTES], "tree-root",
                  f"shard {s} root asset {j}") for j in range(k)]
         for s, r in enumerate(shard_roots)],
        [r[:cpart] for r in shard_roots],
        [r[cpart:] for r in shard_roots],
    )
    top = circ.tree_root(backend, k, top)
    roots, root_hash = top[0][0], top[2][0]
    root_enc = tuple(top[1][0][j * POINT_BYTES : (j + 1) * POINT_BYTES] for j in range(k))
    if root_hash != parsed.root_hash:
        raise _fail("tree-root", "recomputed root hash differs from the manifest")
    if root_enc != parsed.root_commitments:
        raise _fail("tree-root", "recomputed root commitments differ from the manifest")
    checks.append("tree-root")

    try:
        coef = circ.valued_coefficients(header.assets, header.depth)
    except circ.BoundsError as exc:
        raise _fail("solvency-bounds", str(exc)) from exc
    checks.append("solvency-bounds")

    gens = generators(backend)
    if parsed.totals is not None:
        for j, ((liab, gamma), a) in enumerate(zip(parsed.totals, header.assets, strict=True)):
            if not backend.eq(commit(backend, liab, gamma), roots[j]):
                raise _fail("totals-opening", f"{a.symbol}: published total does not open C_root")
            # both in proof units: the reserves rounded down, as the statements use them
            if liab > a.proven_reserves:
                raise _fail("solvency-asset",
                            f"{a.symbol}: revealed liabilities {liab} exceed the reserves "
                            f"{a.proven_reserves} (proof units of 10^-{a.proven_decimals} "
                            f"{a.symbol})")
        checks.append("totals-opening")

    for res in results:
        if res.range_error:
            raise _fail(res.range_check, res.range_error)
    items = []
    sp = data[layout.SOLVENCY_FILE]
    margins = circ.asset_margins(backend, gens.g, header.assets, roots)
    for p in margins:
        if backend.is_identity(p):
            raise _fail("solvency-asset", "a margin commitment is the identity")
    asset_st = circ.asset_statement(digest, root_hash, [backend.encode(p) for p in margins])
    items.append(("solvency-asset", "per-asset solvency", asset_st,
                  _parse_proof(sp[:asset_len], "solvency-asset", "per-asset proof")))
    vm = circ.valued_margin(backend, gens.g, header.assets, coef, roots)
    if backend.is_identity(vm):
        raise _fail("solvency-valued", "valued margin commitment is the identity")
    valued_st = circ.valued_statement(digest, root_hash, backend.encode(vm))
    items.append(("solvency-valued", "valued solvency", valued_st,
                  _parse_proof(sp[asset_len:], "solvency-valued", "valued proof")))
    pairs = [(st, pf) for _, _, st, pf in items]
    try:
        bad = rangeproof.batch_find_invalid(pairs, backend=backend)
    except FormatError:
        bad = rangeproof.find_invalid(pairs, backend=backend)
    if bad is not None:
        tag, what = items[bad][0], items[bad][1]
        raise _fail(tag, f"{what}: range proof does not verify")
    checks += ["leaf-range", *(["debt-range", "margin-health"] if header.margin else []),
               "solvency-asset", "solvency-valued"]
    reserves = reserves_check.check_reserves(parsed.chain_reserves, header, rpc=rpc)
    checks += reserves.checks

    return BundleReport(
        path=str(root), epoch=header.epoch, bundle_hash=parsed.bundle_hash,
        prev_bundle_hash=header.prev_bundle_hash, prev_epoch=header.prev_epoch,
        operator=header.operator,
        operator_pinned=expect_operator is not None, price_decimals=header.price_decimals,
        assets=header.assets, depth=header.depth,
        leaves=header.leaves, shards=header.shards, shard_leaves=header.shard_leaves,
        root_hash=root_hash, root_commitments=root_enc, reveal_totals=header.reveal_totals,
        checks=tuple(checks), seconds=time.perf_counter() - t0, timestamp=header.timestamp,
        reserves=reserves, version=layout.BUNDLE_VERSION_CHAIN if parsed.chain_reserves
        else layout.BUNDLE_VERSION_MARGIN if header.margin else layout.BUNDLE_VERSION,
    )


def verify_chain(paths: Sequence[str | os.PathLike[str]], *, backend: Backend | None = None,
                 expect_operator: bytes | None = None, jobs: int = 1,
                 progress: Progress | None = None,
                 executor: Executor | None = None,
                 allow_gaps: bool = False, rpc: str | None = None) -> list[BundleReport]:
    """Verify bundles given oldest first: each one in full, then every link:
    one operator key along the whole chain [chain-operator], increasing
    epochs, epoch_{i+1} = epoch_i + 1 [chain-epoch], and prev_hash_{i+1} =
    hash_i, prev_epoch_{i+1} = epoch_i [chain-link]. With ``allow_gaps`` a
    bundle may link to an earlier epoch than epoch - 1, as its header
    declares (epochs that were not proven solvent: see ``chain_gaps``);
    epochs must still increase and every link must hold. Without it, no
    header may declare a gap, the first bundle's included."""
    check_chain_order(paths, expect_operator=expect_operator, allow_gaps=allow_gaps)
    reports = [verify_bundle(p, backend=backend, expect_operator=expect_operator, jobs=jobs,
                             progress=progress, executor=executor, allow_gap=allow_gaps,
                             rpc=rpc)
               for p in paths]
    # again from what was verified in full (the files may have changed since)
    _check_links([_ChainEntry.of_report(r) for r in reports], allow_gaps=allow_gaps)
    return reports


@dataclass(frozen=True)
class _ChainEntry:
    """What the chain checks read of one bundle (its signed manifest)."""

    path: str
    epoch: int
    bundle_hash: bytes
    prev_bundle_hash: bytes | None
    prev_epoch: int | None
    operator: bytes

    @classmethod
    def of_report(cls, r: BundleReport) -> _ChainEntry:
        return cls(r.path, r.epoch, r.bundle_hash, r.prev_bundle_hash, r.prev_epoch, r.operator)


def _refuse_gap(path: str, epoch: int, prev_epoch: int | None) -> None:
    """[chain-epoch] with no gaps allowed: the header declares none."""
    gap = circ.declared_gap(epoch, prev_epoch)
    if gap is not None:
        raise _fail("chain-epoch", f"{path} is epoch {epoch} and links to epoch {prev_epoch}: "
                                   f"its header declares {circ.epochs_text(*gap)} NOT proven "
                                   "solvent")


def _check_links(entries: Sequence[_ChainEntry], *, allow_gaps: bool) -> None:
    """[chain-operator] [chain-epoch] [chain-link] over bundles oldest first."""
    for i, cur in enumerate(entries):
        if i > 0:
            first, before = entries[0], entries[i - 1]
            if cur.operator != first.operator:
                raise _fail("chain-operator",
                            f"{cur.path} is signed by operator {cur.operator.hex()}, "
                            f"{first.path} by {first.operator.hex()}")
            if cur.epoch <= before.epoch:
                raise _fail("chain-epoch", f"{cur.path} is epoch {cur.epoch}, after epoch "
                                           f"{before.epoch} (give the bundles oldest first: "
                                           "--chain OLDEST ... then the newest)")
            skipped = circ.declared_gap(cur.epoch, before.epoch)
            if not allow_gaps and skipped is not None:
                raise _fail("chain-epoch", f"{cur.path} is epoch {cur.epoch}, after epoch "
                                           f"{before.epoch}: {circ.epochs_text(*skipped)} NOT "
                                           "proven solvent")
            if cur.prev_bundle_hash != before.bundle_hash:
                raise _fail("chain-link", f"{cur.path} does not link to {before.path}")
            if cur.prev_epoch != before.epoch:
                raise _fail("chain-link", f"{cur.path} links to {before.path} by hash, but its "
                                          f"header names epoch {cur.prev_epoch} as the one it "
                                          f"links to; that bundle is epoch {before.epoch}")
        if not allow_gaps:
            _refuse_gap(cur.path, cur.epoch, cur.prev_epoch)


def check_chain_order(paths: Sequence[str | os.PathLike[str]], *,
                      expect_operator: bytes | None = None, allow_gaps: bool = False) -> None:
    """The chain's links from the signed manifests alone, before any bundle is
    verified in full (milliseconds, not the seconds of the range proofs): a
    misordered or broken chain fails at once with the tag the full check
    would give [chain-operator] [chain-epoch] [chain-link]."""
    entries = []
    for p in paths:
        raw, sig = _read_manifest_files(Path(p))
        parsed = check_manifest(raw, sig, expect_operator=expect_operator)
        h = parsed.header
        entries.append(_ChainEntry(str(p), h.epoch, parsed.bundle_hash, h.prev_bundle_hash,
                                   h.prev_epoch, h.operator))
    _check_links(entries, allow_gaps=allow_gaps)


def chain_gaps(reports: Sequence[BundleReport]) -> list[tuple[int, int]]:
    """The epochs a verified chain skips, as inclusive ranges (first, last),
    as each bundle's signed header declares them (prev_epoch below epoch -
    1): epochs that were never proven solvent. In a verified chain these
    are the ranges between consecutive bundles; the first bundle's own gap,
    before the oldest bundle given, is listed too."""
    return [r.gap for r in reports if r.gap is not None]
