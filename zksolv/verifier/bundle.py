"""Verify an epoch bundle, or a chain of bundles, with public data only.

Imports core, circuits and errors only (import-linter contract in
``pyproject.toml``). Every failure is a ``VerificationError`` whose ``check``
is one of the stable tags below (``docs/epoch.md``); checks run in this
order and the first failure is reported:

==================  ======================================================
tag                 what is checked
==================  ======================================================
manifest-missing    manifest.json exists and is readable
manifest-format     manifest is UTF-8 JSON of the expected shape and types
manifest-canonical  manifest bytes are exactly the canonical serialisation
suite-mismatch      suite and statement ids are the ones this verifier speaks
manifest-hash       every data file exists with the listed size and SHA-256
bundle-shape        depth, shard size, file sizes agree with each other
epoch-mismatch      the epoch is the one the caller expected
leaf-encoding       every leaf commitment decodes (curve, subgroup, not identity)
tree-root           recomputing [tree-sum] and [tree-hash] from the leaves
                    gives the published root hash and root commitments
solvency-bounds     the valued coefficients cannot wrap mod r
totals-opening      (--reveal-totals only) C_root_j = L_j*g + gamma_j*h
leaf-range          every shard's 64-bit range proof (batch-verified)
solvency-asset      reserves_j*g - C_root_j is in [0, 2^128) for every j
solvency-valued     the valued margin is in [0, 2^128)
chain-epoch         chained bundles have consecutive epochs
chain-link          each bundle records the previous bundle's hash
==================  ======================================================
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.core.field import scalar_from_bytes
from zksolv.core.generators import generators
from zksolv.core.group import POINT_BYTES, Backend, Point, get_backend
from zksolv.core.pedersen import commit
from zksolv.errors import FormatError, InputError, VerificationError

Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def _no_progress(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
    return items


# Proofs per multi-scalar multiplication: bounds memory, not soundness.
BATCH_PROOFS = 64
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_HEX48 = re.compile(r"^[0-9a-f]{96}$")


@dataclass(frozen=True)
class BundleReport:
    path: str
    epoch: int
    bundle_hash: bytes
    prev_bundle_hash: bytes | None
    symbols: tuple[str, ...]
    depth: int
    leaves: int
    shards: int
    shard_leaves: int
    root_hash: bytes
    root_commitments: tuple[bytes, ...]
    reveal_totals: bool
    checks: tuple[str, ...]
    seconds: float

    def shard_of_leaf(self, leaf: int) -> int:
        return leaf // self.shard_leaves

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "epoch": self.epoch,
            "bundle_hash": self.bundle_hash.hex(),
            "prev_bundle_hash": self.prev_bundle_hash.hex() if self.prev_bundle_hash else None,
            "assets": list(self.symbols),
            "depth": self.depth,
            "leaves": self.leaves,
            "shards": self.shards,
            "root_hash": self.root_hash.hex(),
            "checks": list(self.checks),
            "seconds": round(self.seconds, 3),
        }


def _fail(check: str, detail: str) -> VerificationError:
    return VerificationError(check, detail)


def load_manifest(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """Read and parse manifest.json strictly; return (object, raw bytes)."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(str(root), "not a bundle directory")
    mp = root / layout.MANIFEST_FILE
    try:
        raw = mp.read_bytes()
    except OSError as exc:
        raise _fail("manifest-missing", f"{mp}: {exc.strerror or exc}") from exc
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail("manifest-format", f"{mp}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise _fail("manifest-format", "manifest is not a JSON object")
    if layout.canonical_json(obj) != raw:
        raise _fail("manifest-canonical", "manifest.json is not in canonical form")
    return obj, raw


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _fail("manifest-format", f"{where}: missing {key!r}")
    v = obj[key]
    if isinstance(v, bool) and kind is not bool:
        raise _fail("manifest-format", f"{where}.{key}: wrong type")
    if not isinstance(v, kind):
        raise _fail("manifest-format", f"{where}.{key}: wrong type")
    return v


def _uint(obj: Any, key: str, where: str, bits: int) -> int:
    v = _get(obj, key, int, where)
    if not 0 <= v < 1 << bits:
        raise _fail("manifest-format", f"{where}.{key}: out of range")
    return int(v)


def _hex(v: Any, pattern: re.Pattern[str], where: str) -> bytes:
    if not isinstance(v, str) or not pattern.match(v):
        raise _fail("manifest-format", f"{where}: expected lowercase hex")
    return bytes.fromhex(v)


@dataclass(frozen=True)
class _Parsed:
    header: circ.EpochHeader
    root_hash: bytes
    root_commitments: tuple[bytes, ...]
    totals: tuple[tuple[int, int], ...] | None
    files: dict[str, tuple[int, bytes]]


def parse_manifest(m: dict[str, Any]) -> _Parsed:
    if m.get("format") != layout.BUNDLE_FORMAT or m.get("version") != layout.BUNDLE_VERSION:
        raise _fail("manifest-format", "not a zksolv bundle of a version this verifier reads")
    expected_keys = {
        "format", "version", "suite", "statements", "epoch", "timestamp", "prev_bundle_hash",
        "price_decimals", "assets", "tree", "reveal_totals", "totals", "files",
    }
    if set(m) != expected_keys:
        raise _fail("manifest-format", f"unexpected key set {sorted(set(m) ^ expected_keys)}")
    if m["suite"] != layout.suite_ids() or m["statements"] != layout.statement_ids():
        raise _fail("suite-mismatch", "suite or statement ids differ from this verifier's")
    epoch = _uint(m, "epoch", "manifest", 63)
    timestamp = _uint(m, "timestamp", "manifest", 63)
    price_decimals = _uint(m, "price_decimals", "manifest", 8)
    prev_raw = m["prev_bundle_hash"]
    prev = None if prev_raw is None else _hex(prev_raw, _HEX32, "manifest.prev_bundle_hash")
    assets_raw = _get(m, "assets", list, "manifest")
    if not 1 <= len(assets_raw) <= 255:
        raise _fail("manifest-format", "manifest.assets: need 1..255 assets")
    assets = []
    for i, a in enumerate(assets_raw):
        w = f"manifest.assets[{i}]"
        if not isinstance(a, dict) or set(a) != {
            "symbol", "decimals", "price", "haircut_bps", "reserves"
        }:
            raise _fail("manifest-format", f"{w}: wrong fields")
        sym = _get(a, "symbol", str, w)
        if not 1 <= len(sym.encode("utf-8")) <= 255:
            raise _fail("manifest-format", f"{w}.symbol: bad length")
        haircut = _uint(a, "haircut_bps", w, 16)
        if haircut > circ.HAIRCUT_SCALE:
            raise _fail("manifest-format", f"{w}.haircut_bps: above {circ.HAIRCUT_SCALE}")
        assets.append(circ.AssetTerms(
            sym, _uint(a, "decimals", w, 8), _uint(a, "price", w, 64), haircut,
            _uint(a, "reserves", w, 64),
        ))
    k = len(assets)
    tree = _get(m, "tree", dict, "manifest")
    if set(tree) != {"depth", "leaves", "shard_leaves", "shards", "root_hash", "root_commitments"}:
        raise _fail("manifest-format", "manifest.tree: wrong fields")
    depth = _uint(tree, "depth", "manifest.tree", 8)
    if not circ.MIN_DEPTH <= depth <= circ.MAX_DEPTH:
        raise _fail("bundle-shape", f"depth {depth} outside [{circ.MIN_DEPTH}, {circ.MAX_DEPTH}]")
    shard_leaves = _uint(tree, "shard_leaves", "manifest.tree", 32)
    if shard_leaves != circ.shard_leaves_for(depth, k):
        raise _fail("bundle-shape", "shard size is not the one the circuit fixes")
    if _uint(tree, "leaves", "manifest.tree", 64) != 1 << depth:
        raise _fail("bundle-shape", "leaves != 2^depth")
    if _uint(tree, "shards", "manifest.tree", 64) != (1 << depth) // shard_leaves:
        raise _fail("bundle-shape", "shards != leaves / shard_leaves")
    root_hash = _hex(tree["root_hash"], _HEX32, "manifest.tree.root_hash")
    rc = _get(tree, "root_commitments", list, "manifest.tree")
    if len(rc) != k:
        raise _fail("bundle-shape", "one root commitment per asset expected")
    root_commitments = tuple(
        _hex(c, _HEX48, f"manifest.tree.root_commitments[{j}]") for j, c in enumerate(rc)
    )
    reveal = _get(m, "reveal_totals", bool, "manifest")
    totals = None
    if reveal:
        traw = _get(m, "totals", list, "manifest")
        if len(traw) != k:
            raise _fail("manifest-format", "manifest.totals: one entry per asset expected")
        tl = []
        for j, t in enumerate(traw):
            w = f"manifest.totals[{j}]"
            if not isinstance(t, dict) or set(t) != {"liabilities", "root_blinding"}:
                raise _fail("manifest-format", f"{w}: wrong fields")
            liab = _uint(t, "liabilities", w, 128)
            try:
                gamma = scalar_from_bytes(_hex(t["root_blinding"], _HEX32, w))
            except FormatError as exc:
                raise _fail("manifest-format", f"{w}.root_blinding: {exc}") from exc
            tl.append((liab, gamma))
        totals = tuple(tl)
    elif m["totals"] is not None:
        raise _fail("manifest-format", "manifest.totals present but reveal_totals is false")
    files_raw = _get(m, "files", dict, "manifest")
    if set(files_raw) != set(layout.DATA_FILES):
        raise _fail("manifest-format", f"manifest.files must list exactly {layout.DATA_FILES}")
    files = {}
    for name, entry in files_raw.items():
        w = f"manifest.files[{name}]"
        if not isinstance(entry, dict) or set(entry) != {"sha256", "bytes"}:
            raise _fail("manifest-format", f"{w}: wrong fields")
        files[name] = (_uint(entry, "bytes", w, 63), _hex(entry["sha256"], _HEX32, w))
    header = circ.EpochHeader(
        epoch=epoch, timestamp=timestamp, price_decimals=price_decimals, assets=tuple(assets),
        prev_bundle_hash=prev, depth=depth, shard_leaves=shard_leaves, reveal_totals=reveal,
    )
    return _Parsed(header, root_hash, root_commitments, totals, files)


def _read_files(root: Path, parsed: _Parsed) -> dict[str, bytes]:
    out = {}
    for name in layout.DATA_FILES:
        size, sha = parsed.files[name]
        p = root / name
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise _fail("manifest-hash", f"{name}: cannot read ({exc.strerror or exc})") from exc
        if len(data) != size:
            raise _fail("manifest-hash", f"{name}: {len(data)} bytes, manifest says {size}")
        if hashlib.sha256(data).digest() != sha:
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


@dataclass(frozen=True)
class _ChunkResult:
    roots: tuple[bytes, ...]       # per shard: its subtree root, k*48 + 32 bytes
    encoding_error: str | None     # first leaf that does not decode
    range_error: str | None        # first shard whose range proof fails


def _check_shards(chunk: _ShardChunk) -> _ChunkResult:
    """Decode the chunk's leaves [leaf-encoding], fold each shard's subtree
    [tree-sum] [tree-hash] and batch-verify its range proofs [leaf-range],
    reusing the decoded leaf commitments as the proofs' V."""
    backend = get_backend(chunk.backend)
    header = chunk.header
    k, S = header.k, header.shard_leaves
    rec = layout.leaf_record_size(k)
    cpart = k * POINT_BYTES
    proof_len = layout.leaf_proof_size(S, k)
    count = len(chunk.proofs) // proof_len
    roots: list[bytes] = []
    decoded: dict[bytes, Point] = {}
    pairs: list[tuple[rangeproof.RangeStatement, rangeproof.RangeProof]] = []
    range_error = None
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
        level: circ.Level = ([flat[i * k : (i + 1) * k] for i in range(S)], enc, hashes)
        root = circ.tree_root(backend, k, level)
        roots.append(root[1][0] + root[2][0])
        try:
            pf = rangeproof.RangeProof.from_bytes(chunk.proofs[n * proof_len : (n + 1) * proof_len])
        except FormatError as exc:
            range_error = range_error or f"shard {shard}: {exc}"
            continue
        pairs.append((circ.leaf_statement(header, chunk.digest, shard, commits), pf))
    if range_error is None and pairs:
        try:
            rangeproof.batch_verify(pairs, backend=backend, decoded=decoded)
        except (VerificationError, FormatError):
            bad = rangeproof.find_invalid(pairs, backend=backend)
            where = f"shard {chunk.first + bad}" if bad is not None else (
                f"shards {chunk.first}..{chunk.first + count - 1}")
            range_error = f"{where}: range proof does not verify"
    return _ChunkResult(tuple(roots), None, range_error)


def _shard_chunks(backend: Backend, header: circ.EpochHeader, digest: bytes, leaves: bytes,
                  proofs: bytes) -> list[_ShardChunk]:
    rec = layout.leaf_record_size(header.k)
    proof_len = layout.leaf_proof_size(header.shard_leaves, header.k)
    per = header.shard_leaves * rec
    chunks = []
    for first in range(0, header.shards, BATCH_PROOFS):
        last = min(first + BATCH_PROOFS, header.shards)
        chunks.append(_ShardChunk(backend.name, header, digest, first,
                                  leaves[first * per : last * per],
                                  proofs[first * proof_len : last * proof_len]))
    return chunks


def _run_chunks(backend: Backend, chunks: list[_ShardChunk], jobs: int,
                bar: Progress) -> list[_ChunkResult]:
    """Every chunk's result, in worker processes when ``jobs`` > 1; stops at
    the first undecodable leaf (the first check to report)."""
    if jobs > 1 and len(chunks) > 1:
        # derive every generator once, before the fork, so workers inherit them
        proof_bits = circ.LEAF_BITS * (1 << (chunks[0].header.shard_leaves
                                             * chunks[0].header.k - 1).bit_length())
        generators(backend).vectors(proof_bits)
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=ctx) as pool:
            return list(bar(pool.map(_check_shards, chunks), len(chunks), "shards"))
    results = []
    for chunk in bar(chunks, len(chunks), "shards"):
        results.append(_check_shards(chunk))
        if results[-1].encoding_error:
            break
    return results


def verify_bundle(path: str | os.PathLike[str], *, backend: Backend | None = None,
                  expect_epoch: int | None = None, jobs: int = 1,
                  progress: Progress | None = None) -> BundleReport:
    """Verify one bundle; raise ``VerificationError`` (exit 1) naming the first
    failing check, or ``InputError`` (exit 2) if ``path`` is not a directory."""
    t0 = time.perf_counter()
    backend = backend or get_backend()
    bar = progress or _no_progress
    root = Path(path)
    manifest, raw = load_manifest(root)
    parsed = parse_manifest(manifest)
    header = parsed.header
    k = header.k
    data = _read_files(root, parsed)
    checks = ["manifest-format", "manifest-canonical", "suite-mismatch", "manifest-hash"]

    rec = layout.leaf_record_size(k)
    proof_len = layout.leaf_proof_size(header.shard_leaves, k)
    asset_len, valued_len = layout.solvency_sizes(k)
    if len(data[layout.LEAVES_FILE]) != header.leaves * rec:
        raise _fail("bundle-shape", f"{layout.LEAVES_FILE}: wrong size for 2^{header.depth} leaves")
    if len(data[layout.RANGE_FILE]) != header.shards * proof_len:
        raise _fail("bundle-shape", f"{layout.RANGE_FILE}: wrong size for {header.shards} proofs")
    if len(data[layout.SOLVENCY_FILE]) != asset_len + valued_len:
        raise _fail("bundle-shape", f"{layout.SOLVENCY_FILE}: wrong size")
    checks.append("bundle-shape")
    if expect_epoch is not None and header.epoch != expect_epoch:
        raise _fail("epoch-mismatch", f"bundle is epoch {header.epoch}, expected {expect_epoch}")

    digest = header.digest()
    chunks = _shard_chunks(backend, header, digest, data[layout.LEAVES_FILE],
                           data[layout.RANGE_FILE])
    results = _run_chunks(backend, chunks, jobs, bar)
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
            if liab > a.reserves:
                raise _fail("solvency-asset", f"{a.symbol}: revealed liabilities exceed reserves")
        checks.append("totals-opening")

    for res in results:
        if res.range_error:
            raise _fail("leaf-range", res.range_error)
    items = []
    sp = data[layout.SOLVENCY_FILE]
    margins = circ.asset_margins(backend, gens.g, header.assets, roots)
    asset_st = circ.asset_statement(digest, root_hash, [backend.encode(p) for p in margins])
    items.append(("solvency-asset", "per-asset solvency", asset_st,
                  _parse_proof(sp[:asset_len], "solvency-asset", "per-asset proof")))
    vm = circ.valued_margin(backend, gens.g, header.assets, coef, roots)
    if backend.is_identity(vm):
        raise _fail("solvency-valued", "valued margin commitment is the identity")
    valued_st = circ.valued_statement(digest, root_hash, backend.encode(vm))
    items.append(("solvency-valued", "valued solvency", valued_st,
                  _parse_proof(sp[asset_len:], "solvency-valued", "valued proof")))
    for p in margins:
        if backend.is_identity(p):
            raise _fail("solvency-asset", "a margin commitment is the identity")
    try:
        rangeproof.batch_verify([(st, pf) for _, _, st, pf in items], backend=backend)
    except (VerificationError, FormatError):
        bad = rangeproof.find_invalid([(st, pf) for _, _, st, pf in items], backend=backend)
        tag, what = items[bad or 0][0], items[bad or 0][1]
        raise _fail(tag, f"{what}: range proof does not verify") from None
    checks += ["leaf-range", "solvency-asset", "solvency-valued"]

    return BundleReport(
        path=str(root), epoch=header.epoch, bundle_hash=layout.bundle_hash(raw),
        prev_bundle_hash=header.prev_bundle_hash,
        symbols=tuple(a.symbol for a in header.assets), depth=header.depth,
        leaves=header.leaves, shards=header.shards, shard_leaves=header.shard_leaves,
        root_hash=root_hash, root_commitments=root_enc, reveal_totals=header.reveal_totals,
        checks=tuple(checks), seconds=time.perf_counter() - t0,
    )


def verify_chain(paths: Sequence[str | os.PathLike[str]], *, backend: Backend | None = None,
                 jobs: int = 1, progress: Progress | None = None) -> list[BundleReport]:
    """Verify bundles given oldest first: each one in full, then every link:
    epoch_{i+1} = epoch_i + 1 [chain-epoch], prev_hash_{i+1} = hash_i [chain-link]."""
    reports: list[BundleReport] = []
    for p in paths:
        r = verify_bundle(p, backend=backend, jobs=jobs, progress=progress)
        if reports:
            before = reports[-1]
            if r.epoch != before.epoch + 1:
                raise _fail("chain-epoch",
                            f"{r.path} is epoch {r.epoch}, after epoch {before.epoch}")
            if r.prev_bundle_hash != before.bundle_hash:
                raise _fail("chain-link", f"{r.path} does not link to {before.path}")
        reports.append(r)
    return reports
