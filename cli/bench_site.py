"""``zksolv bench page``: how long the account holder's page takes to check
an inclusion proof in a real headless Chromium.

A 2^20-leaf epoch takes hours to prove, and the page's work depends only on
the path (depth levels of k sibling commitments and a hash), so the proof
timed here is synthetic: a real leaf opening, siblings that are random
commitments with random hashes, folded with the circuit's own [tree-sum] and
[tree-hash] into a root that a manifest signed by a throwaway operator key
publishes. ``zksolv inclusion verify --bundle-hash`` accepts it (a test
checks that), and so must the page.

Needs Playwright for Python (``pip install playwright``) and a Chromium
(``--chromium``, default /usr/bin/chromium); it downloads no browser.
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import msgspec

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.circuits.inclusion import InclusionProof, PathStep
from zksolv.cli.common import echo_json, reports_errors
from zksolv.core.field import R
from zksolv.core.group import Backend, get_backend
from zksolv.core.pedersen import commit
from zksolv.errors import InputError

CHROMIUM = "/usr/bin/chromium"
# Flags for a quiet, offline headless Chromium (no first-run, sync, updates).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@dataclass(frozen=True)
class SyntheticInclusion:
    document: bytes    # the inclusion JSON, as `inclusion export` writes it
    manifest: bytes    # manifest.json
    signature: bytes   # manifest.sig
    bundle_hash: bytes
    operator: bytes
    account_id: str
    amounts: tuple[int, ...]

    def write_bundle(self, path: Path) -> Path:
        """manifest.json and manifest.sig (all the page reads of a bundle)."""
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)  # public, like the files: `serve` serves no private folder
        for name, data in ((layout.MANIFEST_FILE, self.manifest),
                           (layout.SIGNATURE_FILE, self.signature)):
            (path / name).write_bytes(data)
            (path / name).chmod(0o644)  # public, so `serve` serves it under any umask
        return path


def synthetic_inclusion(
    depth: int, *, amounts: tuple[int, ...] = (1_250_000,), epoch: int = 7,
    account_id: str = "holder-1", leaf_index: int | None = None,
    backend: Backend | None = None, rng: random.Random | None = None,
    manifest_bytes: Callable[[dict[str, Any]], bytes] | None = None,
) -> SyntheticInclusion:
    """An inclusion proof of ``account_id`` at depth ``depth`` and a signed
    manifest whose root it reaches (see the module docstring).
    ``manifest_bytes`` (tests) turns the manifest's JSON object into the bytes
    to sign and publish instead of its canonical serialisation."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from zksolv.prover.keys import public_key_bytes
    from zksolv.verifier.inclusion import InclusionDocument

    backend = backend or get_backend()
    rng = rng or random.Random(secrets.randbits(64))
    k = len(amounts)
    if leaf_index is None:
        leaf_index = rng.randrange(1 << depth)
    blindings = tuple(rng.randrange(1, R) for _ in range(k))
    salt = rng.randbytes(circ.SALT_BYTES)
    cur = [commit(backend, v, b) for v, b in zip(amounts, blindings, strict=True)]
    cur_enc = circ.encode_points(backend, cur)
    cur_hash = circ.leaf_hash(epoch, account_id, salt)
    path = []
    for level in range(depth):
        sib = [commit(backend, rng.randrange(1 << 40) << level, rng.randrange(1, R))
               for _ in range(k)]
        sib_enc = circ.encode_points(backend, sib)
        sib_hash = rng.randbytes(circ.HASH_BYTES)
        path.append(PathStep(sib_enc, sib_hash))
        if (leaf_index >> level) & 1:
            cur = circ.node_commitments(backend, sib, cur)
            cur_hash = circ.node_hash(sib_enc, sib_hash, cur_enc, cur_hash)
        else:
            cur = circ.node_commitments(backend, cur, sib)
            cur_hash = circ.node_hash(cur_enc, cur_hash, sib_enc, sib_hash)
        cur_enc = circ.encode_points(backend, cur)
    key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    operator = public_key_bytes(key)
    assets = [layout.AssetEntry(symbol=f"A{j}" if k > 1 else "USD", decimals=6,
                                proof_decimals=6, price=100, haircut_bps=10_000,
                                reserves=(1 << 64) - 1) for j in range(k)]
    shard_leaves = circ.shard_leaves_for(depth, k)
    asset_len, valued_len = layout.solvency_sizes(k)
    sizes = {
        layout.LEAVES_FILE: (1 << depth) * layout.leaf_record_size(k),
        layout.RANGE_FILE: ((1 << depth) // shard_leaves)
        * layout.leaf_proof_size(shard_leaves, k),
        layout.SOLVENCY_FILE: asset_len + valued_len,
    }
    files = {name: layout.FileEntry(sha256=rng.randbytes(32).hex(), bytes=size)
             for name, size in sizes.items()}
    manifest = layout.Manifest(
        format=layout.BUNDLE_FORMAT, version=layout.BUNDLE_VERSION,
        suite=layout.suite_ids(), statements=layout.statement_ids(),
        operator=operator.hex(), epoch=epoch, timestamp=1_700_000_000 + epoch,
        prev_bundle_hash=None, prev_epoch=None, price_decimals=2, rounding=circ.ROUNDING_ID,
        assets=assets,
        tree=layout.TreeEntry(depth=depth, leaves=1 << depth, shard_leaves=shard_leaves,
                              shards=(1 << depth) // shard_leaves, root_hash=cur_hash.hex(),
                              root_commitments=[backend.encode(p).hex() for p in cur]),
        reveal_totals=False, totals=None,
        files=layout.Files(leaves=files[layout.LEAVES_FILE], range=files[layout.RANGE_FILE],
                           solvency=files[layout.SOLVENCY_FILE]),
    )
    raw = (layout.manifest_bytes(manifest) if manifest_bytes is None
           else manifest_bytes(msgspec.to_builtins(manifest)))
    bundle_hash = layout.bundle_hash(raw)
    signature = key.sign(layout.signature_message(bundle_hash))
    proof = InclusionProof(epoch, bundle_hash, leaf_index, account_id, tuple(amounts),
                           blindings, salt, tuple(path))
    doc = InclusionDocument(proof, raw, signature).to_bytes()
    return SyntheticInclusion(doc, raw, signature, bundle_hash, operator, account_id,
                              tuple(amounts))


def check_in_page(page: Any, base_url: str, *, document: str, account_id: str,
                  bundle: str = "", bundle_hash: str = "", operator: str = "",
                  timeout_ms: float = 60_000) -> dict[str, str]:
    """Open the page, fill the form, submit, and return the result's
    state, failed check, verdict, reason, what was checked, the next steps,
    the report and the page's own timing (once the verdict is final: after
    the data-file check too)."""
    query = f"?bundle={bundle}" if bundle else ""
    page.goto(base_url + query)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#proof-text", document)
    page.fill("#account", account_id)
    if bundle_hash:
        page.fill("#bundle-hash", bundle_hash)
    if operator:
        page.fill("#operator", operator)
    page.click("#verify")
    page.wait_for_function(
        "() => ['valid', 'unconfirmed', 'invalid', 'error'].includes("
        "document.getElementById('result')"
        ".dataset.state)", timeout=timeout_ms)
    out: dict[str, str] = page.evaluate(
        """() => { const r = document.getElementById('result');
                   return {state: r.dataset.state, check: r.dataset.check || '',
                           verdict: document.getElementById('verdict').textContent,
                           reason: document.getElementById('reason').textContent,
                           report: document.getElementById('report').innerText,
                           checked: document.getElementById('checked').innerText,
                           next: document.getElementById('next').innerText,
                           elapsed_ms: r.dataset.elapsedMs || ''}; }""")
    return out


@click.command("page")
@click.option("--depth", type=click.IntRange(circ.MIN_DEPTH, circ.MAX_DEPTH), default=20,
              show_default=True, help="Tree depth of the proof (2^depth leaves).")
@click.option("--assets", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=7, show_default=True,
              help="Checks to time (the figure is their median).")
@click.option("--chromium", type=click.Path(dir_okay=False), default=CHROMIUM,
              show_default=True, help="The Chromium executable.")
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def page(depth: int, assets: int, runs: int, chromium: str, as_json: bool) -> None:
    """Time the holder's page checking a synthetic 2^DEPTH-leaf inclusion
    proof in headless Chromium: the page's own time from reading the proof
    to the verdict (manifest fetch excluded), and the wall time from click
    to verdict (fetch included)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise InputError("bench page", "needs Playwright for Python: pip install playwright "
                                       "(no browser download: it uses --chromium)") from exc
    if not os.access(chromium, os.X_OK):
        raise InputError(chromium, "no Chromium executable here (Debian: apt-get install "
                                   "chromium), or give --chromium PATH")
    from zksolv.site import serving

    syn = synthetic_inclusion(depth, amounts=tuple(1_000_000 * (j + 1) for j in range(assets)),
                              rng=random.Random(depth))
    page_ms, wall_ms = [], []
    with tempfile.TemporaryDirectory(prefix="zksolv-bench-page-") as tmp:
        syn.write_bundle(Path(tmp) / "bundle")
        with serving(tmp) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                tab = browser.new_page()
                for _ in range(runs):
                    t0 = time.perf_counter()
                    res = check_in_page(tab, url, document=syn.document.decode(),
                                        account_id=syn.account_id, bundle="bundle")
                    wall_ms.append((time.perf_counter() - t0) * 1000)
                    if res["state"] != "valid":
                        raise InputError("bench page", f"the page did not accept the proof: "
                                                       f"{res['verdict']} {res['reason']}")
                    page_ms.append(float(res["elapsed_ms"]))
                version = browser.version
            finally:
                browser.close()
    out = {
        "depth": depth, "assets": assets, "runs": runs, "chromium": version,
        "page_check_ms_median": statistics.median(page_ms),
        "page_check_ms_min": min(page_ms),
        "wall_ms_median": statistics.median(wall_ms),
        "document_bytes": len(syn.document),
    }
    if as_json:
        echo_json(out)
        return
    click.echo(f"holder's page, Chromium {version}, depth {depth} (2^{depth} leaves), "
               f"{assets} asset(s), {runs} runs, proof {len(syn.document)} bytes")
    click.echo(f"  check in the page (median / min)   {out['page_check_ms_median']:.0f} / "
               f"{out['page_check_ms_min']:.0f} ms")
    click.echo(f"  click to verdict, with page load   {out['wall_ms_median']:.0f} ms (median)")
