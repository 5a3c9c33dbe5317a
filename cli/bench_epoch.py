"""``zksolv bench epoch``: one whole epoch on a synthetic snapshot (one asset,
amounts up to 64 bits): prove and verify wall time, inclusion-proof size and
verification time, bundle size, peak memory (getrusage maxrss of this process
and of its worker processes).

``--borrowable`` runs, in the same process and alternating, two epochs of
the same accounts and two assets (ETH collateral, USD): credit only, and
with USD borrowable (half the accounts borrow USD against their ETH, so each
leaf also commits to a debt and proves its margin health), and reports both
and the ratio of their prove times per account (medians over ``--repeat``)."""

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
from zksolv.core.group import Backend
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


def lending_snapshot(out: Path, accounts: int, *, borrowable: bool, seed: int = 1) -> Path:
    """ETH (18 decimals proven at 9, price 2500.00, haircut 80 %) and USD (6
    decimals). Every account holds ETH and is owed USD; with ``borrowable``
    every other account also owes USD, up to 60 % of its ETH's value (healthy),
    and the credit-only twin has the same credits and no debt column.
    Reserves: the ETH owed plus 30 % (its 80 % haircut), and the USD owed
    less what is lent (never below 0), plus 10 % of the USD owed."""
    rng = random.Random(seed)
    rows = []
    eth_total = usd_total = lent = 0
    for i in range(accounts):
        eth = rng.randrange(1, 50 * 10**18)
        usd = rng.randrange(0, 10_000 * 10**6)
        debt = 0
        if i % 2:
            debt = rng.randrange(0, eth // 10**18 * 1_500 * 10**6 + 1)
        eth_total += eth
        usd_total += usd
        lent += debt
        rows.append((f"acct-{i:08d}", (eth, usd, debt) if borrowable else (eth, usd)))
    usd_reserves = max(usd_total - (lent if borrowable else 0), 0) + usd_total // 10
    header = SnapshotHeader(
        epoch=1, timestamp=1_700_000_001, price_decimals=2,
        assets=(Asset("ETH", 18, 250_000, 8_000, eth_total * 13 // 10, proof_decimals=9),
                Asset("USD", 6, 100, 10_000, usd_reserves, borrowable=borrowable)),
        account_count=accounts,
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
@click.option("--borrowable", is_flag=True,
              help="Two assets: credit only, then with one borrowable (debts and margin "
                   "health), alternating; report both and the prove-time ratio.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --borrowable: pairs of runs (the ratio is of the medians).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@reports_errors
def epoch(ctx: click.Context, accounts: int, jobs: int | None, samples: int, borrowable: bool,
          repeat: int, as_json: bool) -> None:
    """Prove, verify and check inclusion for a synthetic epoch of N accounts."""
    backend = backend_of(ctx)
    jobs = jobs or os.cpu_count() or 1
    if not borrowable:
        out = _one_epoch(backend, accounts, jobs, samples, None)
    else:
        runs: dict[str, list[dict[str, object]]] = {"credit_only": [], "borrowable": []}
        for _ in range(repeat):
            for case in runs:
                runs[case].append(_one_epoch(backend, accounts, jobs, samples,
                                             case == "borrowable"))
        med = {case: statistics.median(float(r["prove_s"]) for r in rs)  # type: ignore[arg-type]
               for case, rs in runs.items()}
        out = {
            "accounts": accounts,
            "pairs": repeat,
            "credit_only": runs["credit_only"][-1],
            "borrowable": runs["borrowable"][-1],
            "credit_only_prove_s": [r["prove_s"] for r in runs["credit_only"]],
            "borrowable_prove_s": [r["prove_s"] for r in runs["borrowable"]],
            "prove_ratio_median": round(med["borrowable"] / med["credit_only"], 3),
            "inclusion_proof_raw_ratio": round(
                int(runs["borrowable"][-1]["inclusion_proof_raw_bytes"])  # type: ignore[call-overload]
                / int(runs["credit_only"][-1]["inclusion_proof_raw_bytes"]), 3),  # type: ignore[call-overload]
        }
    if as_json:
        echo_json(out)
        return
    width = max(len(k) for k in out)
    for k, v in out.items():
        click.echo(f"{k:<{width}}  {v}")


def _one_epoch(backend: Backend, accounts: int, jobs: int, samples: int,
               borrowable: bool | None) -> dict[str, object]:
    """One synthetic epoch proven, verified and inclusion-checked. ``borrowable``
    None: one asset; False/True: the two-asset lending snapshot."""
    from zksolv.prover.epoch import prove_epoch
    from zksolv.prover.inclusion_db import InclusionDB
    from zksolv.prover.keys import generate_master_key
    from zksolv.verifier import verify_bundle
    from zksolv.verifier.inclusion import verify_inclusion

    with tempfile.TemporaryDirectory(prefix="zksolv-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        if borrowable is None:
            snap = synthetic_snapshot(root / "snapshot", accounts)
        else:
            snap = lending_snapshot(root / "snapshot", accounts, borrowable=borrowable)
        t_snap = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = prove_epoch(snap, root / "bundle", master_key=generate_master_key(), jobs=jobs,
                          backend=backend, inclusion_db=root / "private" / "inclusion.sqlite")
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
    return out
