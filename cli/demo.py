"""``zksolv demo``: the whole pipeline on a built-in synthetic epoch.

Writes a snapshot of a few thousand accounts (two assets) into a temporary
directory, proves it with a throw-away operator key, verifies the bundle,
exports and checks one account's inclusion proof, and prints a summary.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

import click
from zksolv.cli.common import backend_of, progress, reports_errors

from zksolv.snapshot import Asset, SnapshotHeader, write_snapshot


def demo_snapshot(out: Path, accounts: int, *, seed: int = 2024) -> Path:
    """Two assets; amounts skewed like real books (many small, a few large);
    reserves 120% of what is owed."""
    rng = random.Random(seed)
    rows = []
    totals = [0, 0]
    for i in range(accounts):
        usdc = int(rng.paretovariate(1.3) * 50) * 10**6 if rng.random() < 0.9 else 0
        btc = int(rng.expovariate(1 / 2_000_000)) if rng.random() < 0.4 else 0
        totals[0] += usdc
        totals[1] += btc
        rows.append((f"account-{i:06d}", (usdc, btc)))
    header = SnapshotHeader(
        epoch=1, timestamp=int(time.time()), price_decimals=2,
        assets=(
            Asset("USDC", 6, 100, 10_000, totals[0] * 6 // 5),
            Asset("BTC", 8, 6_500_000, 9_000, totals[1] * 6 // 5),
        ),
        account_count=accounts,
    )
    return write_snapshot(out, header, rows)


@click.command()
@click.option("--accounts", type=click.IntRange(min=1, max=1 << 20), default=2000,
              show_default=True, help="Synthetic accounts to generate.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--keep", type=click.Path(), default=None,
              help="Keep snapshot, bundle and inclusion data in this new directory.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@reports_errors
def demo(ctx: click.Context, accounts: int, jobs: int | None, keep: str | None,
         quiet: bool) -> None:
    """Generate an epoch, prove it solvent, verify it, check one inclusion proof."""
    from zksolv.prover.epoch import prove_epoch
    from zksolv.prover.inclusion_db import InclusionDB
    from zksolv.prover.keys import generate_master_key
    from zksolv.verifier import verify_bundle
    from zksolv.verifier.inclusion import InclusionDocument, verify_inclusion

    backend = backend_of(ctx)
    with tempfile.TemporaryDirectory(prefix="zksolv-demo-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        if keep:
            root.mkdir(parents=True, exist_ok=False)

        def bar(items, total, desc):  # type: ignore[no-untyped-def]
            return progress(items, total=total, desc=desc, quiet=quiet)

        snap = demo_snapshot(root / "snapshot", accounts)
        click.echo(f"snapshot   {accounts} accounts, assets USDC and BTC  ({snap})")
        res = prove_epoch(
            snap, root / "bundle", master_key=generate_master_key(),
            jobs=jobs or os.cpu_count() or 1, backend=backend, progress=bar,
        )
        click.echo(
            f"prove      {res.seconds:.1f} s: 2^{res.depth} leaves, {res.shards} aggregated "
            f"range proofs, bundle {res.bundle_bytes / 1024:.0f} KiB"
        )
        report = verify_bundle(res.bundle, backend=backend)
        click.echo(f"verify     {report.seconds:.1f} s: {len(report.checks)} checks passed, "
                   f"root {report.root_hash.hex()[:16]}…")
        pick = f"account-{random.Random().randrange(accounts):06d}"
        db = InclusionDB.open(res.inclusion_db)
        try:
            import json as _json

            doc = InclusionDocument(db.export(pick), tuple(_json.loads(db.meta("symbols"))))
        finally:
            db.close()
        size = len(_json.dumps(doc.to_json(), separators=(",", ":")))
        t0 = time.perf_counter()
        inc = verify_inclusion(doc, root_hash=report.root_hash, backend=backend)
        t_inc = (time.perf_counter() - t0) * 1e3
        owed = ", ".join(f"{s}={v}" for s, v in inc.amounts.items())
        click.echo(f"inclusion  {pick} ({owed}): proof {size} bytes, checked in {t_inc:.1f} ms")
        click.echo(
            "result     solvent: reserves cover liabilities in every asset and in value; "
            "no balance or total revealed"
        )
        if keep:
            click.echo(f"kept in    {root}")
