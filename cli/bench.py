"""``zksolv bench``: speed and memory figures, as a table or ``--json``.

Each benchmark lives in its own module (``bench_range``, ``bench_epoch``,
``bench_engine``, ``bench_export``) and is imported only when run.
"""

from __future__ import annotations

import click

from zksolv.cli.common import LazyGroup

BENCHES = {
    "range": ("bench_range", "range_", "Range proofs: prove, verify, batch-verify."),
    "epoch": ("bench_epoch", "epoch", "A whole epoch: prove, verify, inclusion."),
    "engine": ("bench_engine", "engine", "The margin-engine simulator."),
    "export": ("bench_export", "export", "Bulk export of every inclusion proof."),
    "page": ("bench_site", "page", "The account holder's page in headless Chromium."),
    "scale": ("bench_scale", "scale", "An epoch on local processes vs a Dask cluster."),
    "reserves": ("bench_reserves", "reserves", "Chain reserves: fetch, sign, check on a node."),
    "soak": ("bench_soak", "soak_cmd", "Prove shards for hours; check each on the reference path."),
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench() -> None:
    """Benchmarks. Figures are medians of repeated runs; use --json for a
    machine-readable object."""
