"""Margin-account fixtures shared by the tests and the vector generator: a
lending snapshot (ETH collateral, DAI borrowable), and a prover that lies
about one account's margin health, the way only a cheating operator would."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

from test_epoch_support import make_snapshot

from zksolv.circuits import epoch as circ
from zksolv.core import rangeproof
from zksolv.prover import epoch as prover
from zksolv.prover import shards, shortfall
from zksolv.snapshot import Asset

ETH = 10**18
DAI = 10**18
# ETH at 2500.00 with an 80 % haircut; DAI at 1.00, lent to borrowers.
MARGIN_ASSETS = (
    Asset("ETH", 18, 250_000, 8_000, 10 * ETH, proof_decimals=9),
    Asset("DAI", 18, 100, 10_000, 1_000 * DAI, proof_decimals=6, borrowable=True),
)
# columns ETH, DAI, DAI.debt: a borrower (2 ETH, owes 2500 DAI: covers up
# to 4000), savers owed DAI, an ETH holder, an account that owes nothing
MARGIN_ROWS: list[tuple[str, tuple[int, ...]]] = [
    ("borrower", (2 * ETH, 0, 2_500 * DAI)),
    ("saver", (0, 3_000 * DAI, 0)),
    ("holder", (ETH + 1, 0, 0)),
    ("small", (0, 7, 3)),
]


def margin_snapshot(path: Path, rows: Sequence[tuple[str, Sequence[int]]] = MARGIN_ROWS, *,
                    epoch: int = 1, assets: tuple[Asset, ...] = MARGIN_ASSETS) -> Path:
    return make_snapshot(path, rows, epoch=epoch, assets=assets)


@contextlib.contextmanager
def lying_about_health() -> Iterator[None]:
    """The prover with its honesty removed: an unhealthy account is not
    refused, its margin-health value is proven as if it were its absolute
    value (no valid proof exists for the true one), the worker's check of
    its own proofs is skipped, and so is the bundle's self-check."""
    real_add = shortfall.HealthCheck.add
    real_value = circ.health_value
    real_verify = prover.verify_bundle
    real_rp = shards.rangeproof

    def add(self: shortfall.HealthCheck, account: str, values: Sequence[int]) -> None:
        pass

    def value(header: circ.EpochHeader, coef: circ.ValuedCoefficients,
              values: Sequence[int]) -> int:
        return abs(real_value(header, coef, values))

    fake_rp = types.SimpleNamespace(prove=rangeproof.prove,
                                    batch_verify=lambda *a, **k: None,
                                    RangeStatement=rangeproof.RangeStatement,
                                    RangeProof=rangeproof.RangeProof)
    shortfall.HealthCheck.add = add  # type: ignore[method-assign]
    circ.health_value = value  # type: ignore[assignment]
    prover.verify_bundle = lambda *a, **k: None  # type: ignore[assignment]
    shards.rangeproof = fake_rp  # type: ignore[assignment]
    try:
        yield
    finally:
        shortfall.HealthCheck.add = real_add  # type: ignore[method-assign]
        circ.health_value = real_value
        prover.verify_bundle = real_verify
        shards.rangeproof = real_rp
