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
    pts: list[Sequence[Point]] = list(leaf_points)
    enc = list(leaf_commitments)
    hs = list(leaf_hashes)
    while len(pts) > 1:
        nxt_pts: list[Sequence[Point]] = []
        nxt_enc, nxt_hs = [], []
        for i in range(0, len(pts), 2):
            c = circ.node_commitments(backend, pts[i], pts[i + 1])
            nxt_pts.append(c)
            nxt_enc.append(circ.encode_points(backend, c))
            nxt_hs.append(circ.node_hash(enc[i], hs[i], enc[i + 1], hs[i + 1]))
        pts, enc, hs = nxt_pts, nxt_enc, nxt_hs
    return list(pts[0]), hs[0]


def _parse_proof(data: bytes, check: str, what: str) -> rangeproof.RangeProof:
    try:
        return rangeproof.RangeProof.from_bytes(data)
    except FormatError as exc:
        raise _fail(check, f"{what}: {exc}") from exc


def _check_chunk(job: tuple[str, list[tuple[rangeproof.RangeStatement, rangeproof.RangeProof]]]
                 ) -> int | None:
    """None if the chunk batch-verifies, else the index of its first bad proof
    (-1 if only the batch as a whole fails)."""
    backend_name, pairs = job
    backend = get_backend(backend_name)
    try:
        rangeproof.batch_verify(pairs, backend=backend)
        return None
    except (VerificationError, FormatError):
        bad = rangeproof.find_invalid(pairs, backend=backend)
        return -1 if bad is None else bad


def _batch(backend: Backend, items: list[tuple[str, str, rangeproof.RangeStatement,
                                               rangeproof.RangeProof]], jobs: int = 1,
           bar: Progress | None = None) -> None:
    """Batch-verify in chunks of BATCH_PROOFS (in ``jobs`` worker processes
    when there are several chunks); name the first bad proof on failure."""
    bar = bar or _no_progress
    chunks = [items[i : i + BATCH_PROOFS] for i in range(0, len(items), BATCH_PROOFS)]
    work = [(backend.name, [(st, pf) for _, _, st, pf in chunk]) for chunk in chunks]
    if jobs > 1 and len(chunks) > 1:
        # derive every generator once, before the fork, so workers inherit them
        generators(backend).vectors(max(st.bits * (1 << (st.m - 1).bit_length())
                                        for _, _, st, _ in items))
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=ctx) as pool:
            results = list(bar(pool.map(_check_chunk, work), len(work), "range proofs"))
    else:
        results = []
        for job in bar(work, len(work), "range proofs"):
            results.append(_check_chunk(job))
            if results[-1] is not None:
                break
    for chunk, bad in zip(chunks, results, strict=False):
        if bad is not None:
            tag, what = chunk[max(bad, 0)][0], chunk[max(bad, 0)][1]
            raise _fail(tag, f"{what}: range proof does not verify")


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

    leaves = data[layout.LEAVES_FILE]
    cpart = k * POINT_BYTES
    leaf_enc = [leaves[i * rec : i * rec + cpart] for i in range(header.leaves)]
    leaf_hashes = [leaves[i * rec + cpart : (i + 1) * rec] for i in range(header.leaves)]
    leaf_pts = [
        [_decode(backend, leaf_enc[i][j * POINT_BYTES : (j + 1) * POINT_BYTES], "leaf-encoding",
                 f"leaf {i} asset {j}") for j in range(k)]
        for i in bar(range(header.leaves), header.leaves, "decode leaves")
    ]
    checks.append("leaf-encoding")

    roots, root_hash = recompute_root(backend, k, leaf_pts, leaf_enc, leaf_hashes)
    root_enc = tuple(backend.encode(p) for p in roots)
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

    digest = header.digest()
    items = []
    rp = data[layout.RANGE_FILE]
    for s in range(header.shards):
        pf = _parse_proof(rp[s * proof_len : (s + 1) * proof_len], "leaf-range", f"shard {s}")
        commits = [
            leaf_enc[i][j * POINT_BYTES : (j + 1) * POINT_BYTES]
            for i in range(s * header.shard_leaves, (s + 1) * header.shard_leaves)
            for j in range(k)
        ]
        items.append(("leaf-range", f"shard {s}",
                      circ.leaf_statement(header, digest, s, commits), pf))
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
    _batch(backend, items, jobs, bar)
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
