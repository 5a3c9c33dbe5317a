"""Prove the epochs of a simulator run one at a time, as one chain, and
record which ones the prover refused: the point where a margin engine's
failure becomes visible to the public (``zksolv simulate --prove``, which
proves each epoch as soon as its snapshot is written).

``ChainProver.prove(epoch)`` proves ``RUN/epoch-NNNNNN`` to
``RUN/bundles/epoch-NNNNNN`` (public, world-readable), with its inclusion
database and its work area in ``RUN/private/`` (0700; never in
``RUN/bundles/``, the folder to publish; RUN itself holds the snapshots and
is never published). Each bundle links to the last bundle proven (``prove --prev LAST
--allow-gap``). An insolvent epoch is refused (exit 3 of ``zksolv prove``):
no bundle. The next bundle then links to the last epoch proven solvent, and
its signed header says so (``prev_epoch``): the chain goes on, and every
verifier of it, or of that bundle alone, lists the epochs between as NOT
proven solvent (``zksolv verify RUN/bundles``; ``--no-gaps`` makes that a
failure). Epochs refused before the first bundle precede the chain; the
summary names them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zksolv.circuits.epoch import declared_gap
from zksolv.core.group import Backend
from zksolv.errors import InsolventError

from .epoch import Progress, prove_epoch

BUNDLES_DIR = "bundles"
PRIVATE_DIR = "private"


@dataclass(frozen=True)
class EpochProof:
    epoch: int
    refused: bool
    reason: str             # the shortfall when refused
    bundle: Path | None
    prev_epoch: int | None  # the epoch its bundle links to (None: first of the chain)
    seconds: float

    @property
    def chained(self) -> bool:
        """The bundle links to an earlier bundle of the chain."""
        return self.prev_epoch is not None

    @property
    def gap(self) -> tuple[int, int] | None:
        """The epochs (first, last) this bundle's header declares NOT proven
        solvent: those between the bundle it links to and itself."""
        return declared_gap(self.epoch, self.prev_epoch)


@dataclass
class ChainProver:
    """Proves ``run``'s epochs in the order given (increasing), each linked
    to the last bundle proven; see the module docstring. Bad input (exit 2)
    and a bundle that fails its own check (exit 1) raise; an insolvent epoch
    is recorded and the chain goes on."""

    run: Path
    master_key: bytes
    backend: Backend | None = None
    jobs: int = 1
    progress: Progress | None = None
    records: list[EpochProof] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run = Path(self.run)

    @property
    def bundles(self) -> Path:
        return self.run / BUNDLES_DIR

    @property
    def private(self) -> Path:
        return self.run / PRIVATE_DIR

    @property
    def last_bundle(self) -> EpochProof | None:
        return next((r for r in reversed(self.records) if not r.refused), None)

    def paths(self, epoch: int) -> dict[str, Path]:
        """Where epoch ``epoch``'s snapshot, bundle, inclusion database and
        (while it is being proven) work area are."""
        name = f"epoch-{epoch:06d}"
        return {"snapshot": self.run / name, "bundle": self.bundles / name,
                "inclusion_db": self.private / f"{name}.inclusion.sqlite",
                "work_dir": self.private / f"{name}.work"}

    def prove(self, epoch: int, snapshot: Path | None = None) -> EpochProof:
        """Prove ``epoch`` from ``snapshot`` (default ``RUN/epoch-NNNNNN``),
        linked to the last bundle proven, or record its refusal."""
        last = self.last_bundle
        if self.records and epoch <= self.records[-1].epoch:
            raise ValueError(f"epoch {epoch} after epoch {self.records[-1].epoch}: "
                             "a chain's epochs increase")
        p = self.paths(epoch)
        self.bundles.mkdir(exist_ok=True)
        self.private.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.private, 0o700)
        try:
            res = prove_epoch(snapshot or p["snapshot"], p["bundle"], master_key=self.master_key,
                              prev=None if last is None else last.bundle, allow_gap=True,
                              jobs=self.jobs, inclusion_db=p["inclusion_db"],
                              work_dir=p["work_dir"], backend=self.backend,
                              progress=self.progress)
        except InsolventError as exc:
            rec = EpochProof(epoch, True, str(exc), None, None, 0.0)
        else:
            rec = EpochProof(epoch, False, "", res.bundle, res.prev_epoch, res.seconds)
        self.records.append(rec)
        return rec

    def summary(self) -> dict[str, Any]:
        """What the prover did, for the run summary (``metrics.json`` ``run``):
        the refused epochs, the first of them, how many were proven, the
        gaps the chain declares ({first, last}, as ``zksolv verify --json``
        lists them), the epoch the chain starts at and where the bundles are."""
        refused = [r.epoch for r in self.records if r.refused]
        proven = [r for r in self.records if not r.refused]
        return {
            "proof_refused_epochs": refused,
            "first_refused_epoch": refused[0] if refused else None,
            "proven_epochs": len(proven),
            "proof_gaps": [{"first": g[0], "last": g[1]}
                           for r in proven if (g := r.gap) is not None],
            "chain_first_epoch": proven[0].epoch if proven else None,
            "bundles": str(self.bundles),
        }


def row_columns(rec: EpochProof) -> dict[str, int]:
    """The metrics columns of one epoch: ``proof_refused`` (1: no bundle),
    ``proof_chained`` (1: its bundle links to an earlier one) and
    ``proof_gap_epochs`` (how many epochs before it that link skips, each
    declared NOT proven solvent by the bundle's header)."""
    gap = rec.gap
    return {"proof_refused": int(rec.refused), "proof_chained": int(rec.chained),
            "proof_gap_epochs": 0 if gap is None else gap[1] - gap[0] + 1}
