"""``zksolv bench``: speed and memory figures, as a table or ``--json``.

Each benchmark lives in its own module (``bench_range``, ``bench_epoch``,
``bench_engine``) and is imported only when run.
"""

from __future__ import annotations

import importlib

import click

BENCHES = {
    "range": ("bench_range", "range_", "Range proofs: prove, verify, batch-verify."),
    "epoch": ("bench_epoch", "epoch", "A whole epoch: prove, verify, inclusion."),
    "engine": ("bench_engine", "engine", "The margin-engine simulator."),
}


class _BenchGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(BENCHES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in BENCHES:
            return None
        module, attr, _ = BENCHES[name]
        try:
            mod = importlib.import_module(f"zksolv.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"zksolv.cli.{module}":
                return None
            raise
        cmd: click.Command = getattr(mod, attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Benchmarks"):
            formatter.write_dl([(k, v[2]) for k, v in BENCHES.items()])


@click.group(cls=_BenchGroup)
def bench() -> None:
    """Benchmarks. Figures are medians of repeated runs; use --json for a
    machine-readable object."""
