"""``zksolv bench epoch``: one whole epoch on a synthetic snapshot (one asset,
amounts up to 64 bits): prove and verify wall time, inclusion-proof size and
verification time, bundle size, peak memory (getrusage maxrss of this process
and of its worker processes)."""

from __future__ import annotations

import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import click

from zksolv.cli.common import backend_of, echo_json, reports_errors
from zksolv.snapshot import Asset, SnapshotHeader, write_snapshot


def synthetic_snapshot(out: Path, accounts: int, *, epoch: int = 1, seed: int = 1) -> Path:
    """One asset; amounts uniform below (2^64-1)/accounts so reserves fit 64 bits."""
    rng = random.Random(seed)
    cap = ((1 << 64) - 1) // max(accounts, 1)
    rows = [(f"acct-{i:08d}", (rng.randrange(cap),)) for i in range(accounts)]
    header = SnapshotHeader(
        epoch=epoch, timestamp=1_700_000_000 + epoch, price_decimals=2,
        assets=(Asset("USD", 6, 100, 10_000, (1 << 64) - 1),), account_count=accounts,
    )
    return write_snapshot(out, header, rows)


def _dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.iterdir())


@click.command()
@click.option("--accounts", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Inclusion proofs to time.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@reports_errors
def epoch(ctx: click.Context, accounts: int, jobs: int | None, samples: int,
          as_json: bool) -> None:
    """Prove, verify and check inclusion for a synthetic epoch of N accounts."""
    from zksolv.prover.epoch import prove_epoch
    from zksolv.prover.inclusion_db import InclusionDB
    from zksolv.prover.keys import generate_master_key
    from zksolv.verifier import verify_bundle
    from zksolv.verifier.inclusion import verify_inclusion

    backend = backend_of(ctx)
    jobs = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="zksolv-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        snap = synthetic_snapshot(root / "snapshot", accounts)
        t_snap = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = prove_epoch(snap, root / "bundle", master_key=generate_master_key(), jobs=jobs,
                          backend=backend)
        t_prove = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = verify_bundle(root / "bundle", backend=backend, jobs=jobs)
        t_verify = time.perf_counter() - t0
        db = InclusionDB.open(res.inclusion_db)
        rng = random.Random(2)
        times, sizes = [], []
        for i in rng.sample(range(accounts), min(samples, accounts)):
            doc = db.export(f"acct-{i:08d}")
            sizes.append(len(doc.to_bytes()))
            t0 = time.perf_counter()
            verify_inclusion(doc, account_id=doc.proof.account_id,
                             bundle_hash=report.bundle_hash, backend=backend)
            times.append((time.perf_counter() - t0) * 1e3)
        raw_size = len(doc.proof.to_bytes())
        db.close()
        out = {
            "accounts": accounts,
            "leaves": res.leaves,
            "shards": res.shards,
            "jobs": jobs,
            "backend": backend.name,
            "snapshot_s": round(t_snap, 3),
            "prove_s": round(t_prove, 3),
            "verify_s": round(t_verify, 3),
            "shard_retries": res.shard_retries,
            "inclusion_verify_ms": round(statistics.median(times), 3),
            "bundle_bytes": _dir_bytes(root / "bundle"),
            "inclusion_db_bytes": res.inclusion_db.stat().st_size,
            "inclusion_proof_json_bytes": max(sizes),
            "inclusion_proof_raw_bytes": raw_size,
            "peak_rss_self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_children_mb": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            ),
        }
    if as_json:
        echo_json(out)
        return
    width = max(len(k) for k in out)
    for k, v in out.items():
        click.echo(f"{k:<{width}}  {v}")
