"""``zksolv bench scale``: the same synthetic epoch proven on local worker
processes and on a Dask cluster, alternating in one run (the machine is
shared: only ratios measured side by side mean anything), with the bytes
each shard's task ships to a worker and what comes back."""

from __future__ import annotations

import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from zksolv.cli.bench_epoch import synthetic_snapshot
from zksolv.cli.common import backend_of, echo_json, reports_errors


def _shipped_bytes(snapshot: Path, backend: Any, key: bytes, tmp: Path) -> dict[str, int]:
    """Pickled size of shard 0's job (what travels to a worker) and of its
    result (what comes back)."""
    from zksolv.prover import epoch as prover
    from zksolv.prover.inclusion_db import InclusionDB
    from zksolv.prover.shards import prove_shard

    checked, _ = prover.check_snapshot(snapshot)
    header = prover.epoch_header(checked, prev=None, reveal_totals=False,
                                 operator=b"\x00" * 32)
    db = InclusionDB.create(tmp / "ship.sqlite", k=header.k, depth=header.depth,
                            epoch=header.epoch, symbols=checked.snap.header.symbols)
    prover.assign_leaves(checked, header, key, db)
    job = next(prover.shard_jobs(db, header, backend, [0]))
    db.close()
    result = prove_shard(job)
    return {"job_bytes": len(pickle.dumps(job, protocol=5)),
            "result_bytes": len(pickle.dumps(result, protocol=5)),
            "shard_values": len(job.values)}


@click.command()
@click.option("--accounts", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option("--scheduler", default="local:2", show_default=True,
              help="Dask scheduler to compare with (tcp://HOST:PORT or local:N).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: all cores).")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pairs (local, Dask) to run, alternating.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@reports_errors
def scale(ctx: click.Context, accounts: int, scheduler: str, jobs: int | None, repeat: int,
          as_json: bool) -> None:
    """Prove one synthetic epoch on local processes and on Dask, alternating."""
    from zksolv.executors import make_executor
    from zksolv.prover.epoch import prove_epoch
    from zksolv.prover.keys import generate_master_key

    backend = backend_of(ctx)
    jobs = jobs or os.cpu_count() or 1
    key = generate_master_key()
    local_s: list[float] = []
    dask_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="zksolv-bench-") as tmp:
        root = Path(tmp)
        snap = synthetic_snapshot(root / "snapshot", accounts)
        shipped = _shipped_bytes(snap, backend, key, root)
        t0 = time.perf_counter()
        executor = make_executor(scheduler, jobs)
        startup = time.perf_counter() - t0
        try:
            for r in range(repeat):
                t0 = time.perf_counter()
                res = prove_epoch(snap, root / f"local-{r}", master_key=key, jobs=jobs,
                                  backend=backend)
                local_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                prove_epoch(snap, root / f"dask-{r}", master_key=key, jobs=jobs,
                            backend=backend, executor=executor)
                dask_s.append(time.perf_counter() - t0)
        finally:
            executor.close()
    out = {
        "accounts": accounts, "leaves": res.leaves, "shards": res.shards, "jobs": jobs,
        "scheduler": scheduler, "backend": backend.name, "pairs": repeat,
        "cluster_start_s": round(startup, 2),
        "local_prove_s": [round(x, 2) for x in local_s],
        "dask_prove_s": [round(x, 2) for x in dask_s],
        "local_median_s": round(statistics.median(local_s), 2),
        "dask_median_s": round(statistics.median(dask_s), 2),
        "dask_over_local": round(statistics.median(d / ll for d, ll in
                                                   zip(dask_s, local_s, strict=True)), 3),
        **{f"shipped_{k}": v for k, v in shipped.items()},
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if as_json:
        echo_json(out)
        return
    width = max(len(k) for k in out)
    for k, v in out.items():
        click.echo(f"{k:<{width}}  {v}")
