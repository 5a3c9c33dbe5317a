"""Prove every epoch of a simulator run, chained, and record which ones the
prover refused: the point where a margin engine's failure becomes visible
to the public (``zksolv simulate --prove``).

For each ``RUN/epoch-NNNNNN`` in order: ``prove_epoch`` to
``RUN/bundles/epoch-NNNNNN`` (public, world-readable) with its inclusion
database in ``RUN/private/`` (0700; never beside the bundles), chained to
the previous epoch's bundle. An insolvent epoch is refused (no bundle): the
chain has a gap there, and the next provable epoch starts a new chain
(``prev`` none), which a verifier of the chain sees as a break.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zksolv.core.group import Backend
from zksolv.errors import InsolventError

from .epoch import Progress, prove_epoch

BUNDLES_DIR = "bundles"
PRIVATE_DIR = "private"


@dataclass(frozen=True)
class EpochProof:
    epoch: int
    refused: bool
    reason: str            # the shortfall when refused
    bundle: Path | None
    chained: bool          # linked to the previous epoch's bundle
    seconds: float


def prove_run(run: str | os.PathLike[str], epochs: Iterable[int], *, master_key: bytes,
              backend: Backend | None = None, jobs: int = 1, progress: Progress | None = None,
              each: Callable[[EpochProof], Any] | None = None) -> list[EpochProof]:
    """Prove ``run``'s snapshots of ``epochs`` in order (see the module
    docstring); ``each`` is called after every epoch. Bad input (exit 2)
    stops the run; an insolvent epoch does not."""
    root = Path(run)
    bundles = root / BUNDLES_DIR
    private = root / PRIVATE_DIR
    bundles.mkdir(exist_ok=True)
    private.mkdir(mode=0o700, exist_ok=True)
    out: list[EpochProof] = []
    prev: Path | None = None
    for epoch in epochs:
        name = f"epoch-{epoch:06d}"
        try:
            res = prove_epoch(root / name, bundles / name, master_key=master_key, prev=prev,
                              jobs=jobs, inclusion_db=private / f"{name}.inclusion.sqlite",
                              backend=backend, progress=progress)
        except InsolventError as exc:
            rec = EpochProof(epoch, True, str(exc), None, False, 0.0)
            prev = None
        else:
            rec = EpochProof(epoch, False, "", res.bundle, prev is not None, res.seconds)
            prev = res.bundle
        out.append(rec)
        if each is not None:
            each(rec)
    return out
