"""``zksolv demo``: the main job on a built-in default."""

from __future__ import annotations

import time

import click
from zksolv.cli.common import backend_of, reports_errors

from zksolv.core import rangeproof
from zksolv.core.field import random_scalar
from zksolv.core.pedersen import commit

DEMO_BALANCES = (1_250_000, 0, 87_500_000_000, 3, 42_000_000)


@click.command()
@click.option("--bits", default=64, show_default=True, help="Range-proof bit width.")
@click.pass_context
@reports_errors
def demo(ctx: click.Context, bits: int) -> None:
    """Commit to a handful of balances, prove them all in [0, 2^bits) with one
    aggregated range proof, and verify it."""
    backend = backend_of(ctx)
    blindings = [random_scalar() for _ in DEMO_BALANCES]
    t0 = time.perf_counter()
    commitments = tuple(
        backend.encode(commit(backend, v, r)) for v, r in zip(DEMO_BALANCES, blindings, strict=True)
    )
    statement = rangeproof.RangeStatement(b"zksolv/demo/v1", commitments, bits, b"demo")
    proof = rangeproof.prove(statement, DEMO_BALANCES, blindings, backend=backend)
    t1 = time.perf_counter()
    rangeproof.verify(statement, proof, backend=backend)
    t2 = time.perf_counter()
    click.echo(f"backend         {backend.name}")
    click.echo(f"balances        {len(DEMO_BALANCES)} (hidden in Pedersen commitments)")
    click.echo(f"range proof     {len(proof.to_bytes())} bytes, {bits}-bit, aggregated")
    click.echo(f"prove           {(t1 - t0) * 1e3:.1f} ms")
    click.echo(f"verify          {(t2 - t1) * 1e3:.1f} ms")
    click.echo("result          valid: every balance is in range")
