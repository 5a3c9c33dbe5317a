"""``zksolv bench page``: how long the account holder's page takes to check
an inclusion proof in a real headless Chromium.

A 2^20-leaf epoch takes hours to prove, and the page's work depends only on
the path (depth levels of k sibling commitments and a hash), so the proof
timed here is synthetic: a real leaf opening, siblings that are random
commitments with random hashes, folded with the circuit's own [tree-sum] and
[tree-hash] into a root that a manifest signed by a throwaway operator key
publishes. ``zksolv inclusion verify --bundle-hash`` accepts it (a test
checks that), and so must the page.

With ``--proofs`` it times the proof checks the page runs in its Web Worker
(checkworker.js): the holder's shard and the solvency proofs (``--sample 0``),
then with ``--sample N`` other shards, on a real bundle it proves
(``--accounts``, default 2^12) or is given (``--bundle``). A shard's proof has
the same shape in every bundle whose shards hold 256 values (2^8 leaves and
up, one asset), so the per-shard figures of a 2^12 bundle are those of a
2^20 one; what grows with the bundle is only what is fetched (with HTTP Range,
nothing). With ``--borrowable`` it proves a lending bundle (version 5: ETH
collateral, USD borrowable, so each shard also has a debt range and a
margin-health proof) and its credit-only twin, and times both, alternating,
in the same run.

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


def run_worker(page: Any, base_url: str, request: dict[str, Any],
               timeout_ms: float = 600_000) -> dict[str, Any]:
    """Open the page, start checkworker.js as a module worker, post
    ``request`` (a "check" message) and return the final message, with
    ``progress`` (the number of progress messages) and ``wall_ms`` (post to
    final message, measured in the page)."""
    page.goto(base_url)
    page.wait_for_selector("body[data-ready='1']")
    out: dict[str, Any] = page.evaluate(
        """(request) => new Promise((resolve) => {
             const worker = new Worker("checkworker.js", { type: "module" });
             let progress = 0;
             const t0 = performance.now();
             worker.onmessage = (e) => {
               if (e.data.type === "progress") { progress++; return; }
               worker.terminate();
               resolve({ ...e.data, progress, wall_ms: performance.now() - t0 });
             };
             worker.onerror = (e) => resolve({ type: "error", tag: "worker", detail: e.message });
             worker.postMessage(request);
           })""", request)
    return out


def descendants_cpu_s() -> float:
    """CPU seconds (user + system) used so far by every live descendant of
    this process (the Playwright driver and the Chromium it started), from
    /proc: on a shared machine, the figure that load does not inflate."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = int(fields[11]) + int(fields[12])
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    mine.discard(os.getpid())
    return sum(cpu.get(pid, 0) for pid in mine) / ticks


def proof_bundle(root: Path, accounts: int, *, name: str = "bundle",
                 borrowable: bool | None = None) -> tuple[Path, str]:
    """A bundle of ``accounts`` proven here (``root/site/NAME``), and one
    holder's inclusion proof (JSON text). One asset; with ``borrowable``
    given, the lending snapshot of ``zksolv bench epoch --borrowable`` (ETH
    and USD): USD borrowable (version 5) or its credit-only twin."""
    from zksolv.cli.bench_epoch import lending_snapshot, synthetic_snapshot
    from zksolv.prover.epoch import prove_epoch
    from zksolv.prover.inclusion_db import InclusionDB
    from zksolv.prover.keys import generate_master_key

    out = root / "site" / name
    if borrowable is None:
        snap = synthetic_snapshot(root / f"{name}-snapshot", accounts)
    else:
        snap = lending_snapshot(root / f"{name}-snapshot", accounts, borrowable=borrowable)
    res = prove_epoch(snap, out, master_key=generate_master_key(), jobs=os.cpu_count() or 1,
                      inclusion_db=root / "private" / f"{name}.sqlite")
    for p in out.iterdir():
        p.chmod(0o644)
    out.chmod(0o755)
    doc = InclusionDB.open(res.inclusion_db).export(f"acct-{accounts // 3:08d}")
    return out, doc.to_bytes().decode()


@dataclass
class _Timed:
    """One bundle the proof bench checks, and its worker results by sample size."""

    label: str
    bundle: Path
    inclusion: str | None
    prove_s: float
    rows: dict[int, list[dict[str, Any]]]

    @property
    def manifest(self) -> str:
        return (self.bundle / layout.MANIFEST_FILE).read_text()

    @property
    def shard(self) -> int:
        if self.inclusion is None:
            return 0
        tree = msgspec.json.decode(self.manifest)["tree"]
        proof = bytes.fromhex(msgspec.json.decode(self.inclusion)["proof"])
        leaf = InclusionProof.from_bytes(proof)
        return int(leaf.leaf_index // tree["shard_leaves"])

    def summary(self, sample: int) -> dict[str, Any]:
        rows = self.rows

        def med(n: int, key: str) -> float:
            return statistics.median(r[key] if key in r else r["timings"][key] for r in rows[n])

        m = msgspec.json.decode(self.manifest)
        tree = m["tree"]
        per_shard = (med(sample, "elapsedMs") - med(0, "elapsedMs")) / sample if sample else None
        return {
            "bundle": self.label, "version": m["version"],
            "assets": len(m["assets"]), "columns": len(tree["root_commitments"]),
            "leaves": 1 << tree["depth"], "shards": tree["shards"],
            "shard_leaves": tree["shard_leaves"], "prove_s": self.prove_s,
            "own_and_solvency_ms_median": med(0, "elapsedMs"),
            "own_and_solvency_wall_ms_median": med(0, "wall_ms"),
            "own_and_solvency_cpu_ms_median": med(0, "cpu_ms"),
            "stages_ms_median": {k: med(0, k) for k in rows[0][0]["timings"]},
            "sample": sample, "with_sample_ms_median": med(sample, "elapsedMs") if sample else None,
            "per_sampled_shard_ms": per_shard,
            "per_sampled_shard_cpu_ms": ((med(sample, "cpu_ms") - med(0, "cpu_ms")) / sample
                                         if sample else None),
            "bound_to_root": rows[0][0]["ownShard"]["boundToRoot"],
            "margin_checked": rows[0][0].get("margin"),
        }


def _echo_summary(out: dict[str, Any]) -> None:
    margin = " (debt range and margin health checked)" if out["margin_checked"] else ""
    click.echo(f"  {out['bundle']}: version {out['version']}, {out['leaves']} leaves, "
               f"{out['columns']} columns, {out['shards']} shards of {out['shard_leaves']}"
               f"{margin}")
    click.echo(f"    own shard + solvency     {out['own_and_solvency_ms_median']:.0f} ms in the "
               f"worker, {out['own_and_solvency_wall_ms_median']:.0f} ms post to result, "
               f"{out['own_and_solvency_cpu_ms_median']:.0f} ms of Chromium CPU")
    click.echo("    stages                   " + ", ".join(
        f"{k[:-2]} {v:.0f} ms" for k, v in out["stages_ms_median"].items()))
    if out["sample"]:
        click.echo(f"    with {out['sample']} sampled shards  "
                   f"{out['with_sample_ms_median']:.0f} ms: "
                   f"{out['per_sampled_shard_ms']:.0f} ms per sampled shard "
                   f"({out['per_sampled_shard_cpu_ms']:.0f} ms of CPU)")


def _bench_proofs(bundle: Path | None, inclusion: str | None, accounts: int, sample: int,
                  runs: int, chromium: str, as_json: bool, borrowable: bool = False) -> None:
    """Time the worker on one bundle (given, or proven), or with
    ``borrowable`` on a lending bundle (version 5) and its credit-only twin,
    the two alternating in one browser so load falls on both alike."""
    from playwright.sync_api import sync_playwright

    from zksolv.cli.site import generator_table
    from zksolv.site import serving

    with tempfile.TemporaryDirectory(prefix="zksolv-bench-proofs-") as tmp:
        timed: list[_Timed] = []
        if bundle is not None:
            timed.append(_Timed("given", bundle, inclusion, 0.0, {}))
        elif not borrowable:
            t0 = time.perf_counter()
            b, doc = proof_bundle(Path(tmp), accounts)
            timed.append(_Timed("one asset", b, doc, time.perf_counter() - t0, {}))
        else:
            for label, flag in (("credit only", False), ("borrowable", True)):
                t0 = time.perf_counter()
                b, doc = proof_bundle(Path(tmp), accounts, name=label.replace(" ", "-"),
                                      borrowable=flag)
                timed.append(_Timed(label, b, doc, time.perf_counter() - t0, {}))
        site = timed[0].bundle.parent
        if any(t.bundle.parent != site for t in timed):
            raise InputError("bench page", "the bundles must lie in one folder")
        for t in timed:
            t.rows = {0: [], sample: []}
        with serving(site, extra=generator_table()) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                tab = browser.new_page()
                for _ in range(runs):
                    for t in timed:
                        for n in sorted(t.rows):
                            cpu0 = descendants_cpu_s()
                            res = run_worker(tab, url, {
                                "type": "check", "bundleUrl": t.bundle.name,
                                "manifest": t.manifest, "shard": t.shard, "sample": n,
                                "inclusion": t.inclusion})
                            res["cpu_ms"] = (descendants_cpu_s() - cpu0) * 1000
                            if res.get("type") != "result" or res["failures"]:
                                raise InputError("bench page", f"the worker did not accept "
                                                               f"{t.label}: {res}")
                            t.rows[n].append(res)
                version = browser.version
            finally:
                browser.close()
        summaries = [t.summary(sample) for t in timed]

    common = {"chromium": version, "runs": runs, "load_average": os.getloadavg()[0],
              "cores": os.cpu_count()}
    if not borrowable:
        out = {**common, **summaries[0]}
    else:
        plain, lend = summaries
        out = {**common, "credit_only": plain, "borrowable": lend,
               "ratio_own_and_solvency": (lend["own_and_solvency_ms_median"]
                                          / plain["own_and_solvency_ms_median"]),
               "ratio_own_and_solvency_cpu": (lend["own_and_solvency_cpu_ms_median"]
                                              / plain["own_and_solvency_cpu_ms_median"]),
               "ratio_per_sampled_shard": (lend["per_sampled_shard_ms"]
                                           / plain["per_sampled_shard_ms"]
                                           if sample else None)}
    if as_json:
        echo_json(out)
        return
    click.echo(f"holder's page proof checks, Chromium {version}, {runs} runs (medians), "
               f"load average {common['load_average']:.1f} on {common['cores']} cores")
    for summary in summaries:
        _echo_summary(summary)
    if borrowable:
        click.echo(f"  borrowable / credit only: own shard + solvency "
                   f"{out['ratio_own_and_solvency']:.2f}x "
                   f"({out['ratio_own_and_solvency_cpu']:.2f}x CPU)"
                   + (f", per sampled shard {out['ratio_per_sampled_shard']:.2f}x"
                      if sample else ""))


@click.command("page")
@click.option("--depth", type=click.IntRange(circ.MIN_DEPTH, circ.MAX_DEPTH), default=20,
              show_default=True, help="Tree depth of the proof (2^depth leaves).")
@click.option("--assets", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=7, show_default=True,
              help="Checks to time (the figure is their median).")
@click.option("--chromium", type=click.Path(dir_okay=False), default=CHROMIUM,
              show_default=True, help="The Chromium executable.")
@click.option("--proofs", is_flag=True,
              help="Time the Web Worker's proof checks on a real bundle instead.")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False, exists=True),
              default=None, help="With --proofs: a bundle to check (else one is proven).")
@click.option("--inclusion", "inclusion_file", type=click.Path(dir_okay=False, exists=True),
              default=None, help="With --bundle: a holder's inclusion proof (its shard is "
                                 "checked, bound to the root).")
@click.option("--accounts", type=click.IntRange(min=1), default=4096, show_default=True,
              help="With --proofs and no --bundle: accounts of the bundle proven.")
@click.option("--sample", type=click.IntRange(min=0), default=4, show_default=True,
              help="With --proofs: other shards checked in the second measurement.")
@click.option("--borrowable", is_flag=True,
              help="With --proofs and no --bundle: prove a lending bundle (ETH and USD, USD "
                   "borrowable: version 5, debt range and margin-health proofs) and its "
                   "credit-only twin, and time both in the same run.")
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def page(depth: int, assets: int, runs: int, chromium: str, proofs: bool,
         bundle_dir: str | None, inclusion_file: str | None, accounts: int, sample: int,
         borrowable: bool, as_json: bool) -> None:
    """Time the holder's page checking a synthetic 2^DEPTH-leaf inclusion
    proof in headless Chromium: the page's own time from reading the proof
    to the verdict (manifest fetch excluded), and the wall time from click
    to verdict (fetch included). With --proofs, the Web Worker's checks of
    the holder's shard, the solvency proofs and a sample of shards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise InputError("bench page", "needs Playwright for Python: pip install playwright "
                                       "(no browser download: it uses --chromium)") from exc
    if not os.access(chromium, os.X_OK):
        raise InputError(chromium, "no Chromium executable here (Debian: apt-get install "
                                   "chromium), or give --chromium PATH")
    if borrowable and (not proofs or bundle_dir is not None):
        raise InputError("--borrowable", "goes with --proofs and without --bundle (it proves "
                                         "its own two bundles)")
    if proofs:
        _bench_proofs(None if bundle_dir is None else Path(bundle_dir),
                      None if inclusion_file is None else Path(inclusion_file).read_text(),
                      accounts, sample, runs, chromium, as_json, borrowable)
        return
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
