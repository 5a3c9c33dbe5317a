"""Continuous proving: every new epoch snapshot in a folder, in epoch order.

``watch_once`` looks at SNAPSHOTS_DIR once: every sub-folder that is a
snapshot (not hidden: writers build under hidden names, then rename) and
that the status file does not list yet is proven in epoch order into
``BUNDLES_DIR/epoch-NNNNNN`` (its inclusion database and work area in the
private data directory, never in BUNDLES_DIR: ``prove_epoch``'s defaults),
chained to the last bundle proven (``--prev --allow-gap``): after a refused
epoch the next bundle links to the last epoch proven solvent, and its signed
header says so (``prev_epoch``), so ``zksolv verify`` of that bundle alone,
or of the chain, lists the epochs between as not proven solvent.

An epoch that is refused (insolvent: exit 3; malformed: exit 2; a bundle
that does not verify: exit 1) is recorded, never skipped silently: a log
line and an entry in the status file (0600, private: it names shortfalls
and refused rows; ``status_location``: in the private data directory, never
in BUNDLES_DIR; one an earlier version left in BUNDLES_DIR is moved there),
then the next epoch goes on. A snapshot whose epoch is not after the last
one handled is recorded as ``out-of-order``.

A fault that is not the epoch's (the chain's last bundle no longer verifies
or was made by another zksolv version; the epoch's work area belongs to
another run) stops the watch with exit 2 and records nothing: once the
cause is fixed, the same command proves that epoch.

Restarting resumes: epochs in the status file are done; an epoch that was
being proven continues from its work area (``prove --resume``); a bundle
published just before a stop is recognised and recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from zksolv.circuits.epoch import declared_gap, epochs_text
from zksolv.errors import InputError, InsolventError, VerificationError, ZksolvError
from zksolv.executors import Executor
from zksolv.safeio import decode_json, read_bounded, write_private
from zksolv.snapshot import open_snapshot
from zksolv.verifier.bundle import verify_bundle

from . import keys
from .epoch import PrevBundleError, Progress, prove_epoch
from .inclusion_db import location_name, private_data_folder
from .workarea import ResumeRefused

STATUS_FILE = "watch-status.json"
FORMAT = "zksolv-watch-status"
VERSION = 1
MAX_STATUS_BYTES = 64 << 20


class EpochStatus(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    snapshot: str                    # folder name under SNAPSHOTS_DIR
    epoch: int | None                # None if the header could not be read
    status: str                      # proven | insolvent | malformed | invalid | out-of-order
    exit_code: int
    reason: str | None = None
    bundle: str | None = None
    bundle_hash: str | None = None
    prev_epoch: int | None = None    # the epoch this bundle links to (its header's prev_epoch)
    seconds: float | None = None


class WatchStatus(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    version: int
    epochs: list[EpochStatus]


def status_location(bundles: Path) -> Path:
    """The status file of the watch that proves into ``bundles``:
    ``DATA_DIR/watch/NAME.HASH.watch-status.json`` (NAME.HASH from the
    folder's absolute path, as for inclusion databases), never in the
    folder of bundles."""
    return private_data_folder("watch") / f"{location_name(bundles)}.{STATUS_FILE}"


@dataclass
class Watcher:
    snapshots: Path
    bundles: Path
    master_key: bytes
    jobs: int = 1
    executor: Executor | None = None
    backend: Any = None
    progress: Progress | None = None
    log: Callable[[str], None] = print

    @property
    def status_path(self) -> Path:
        return status_location(self.bundles)

    def load(self) -> WatchStatus:
        legacy = self.bundles / STATUS_FILE
        if not self.status_path.exists() and legacy.is_file() and not legacy.is_symlink():
            # an earlier version kept it in BUNDLES_DIR, a folder to publish
            st = self._read(legacy)
            self.save(st)
            legacy.unlink()
            self.log(f"moved {legacy} (private: it names shortfalls) to {self.status_path}")
            return st
        if not self.status_path.exists():
            return WatchStatus(FORMAT, VERSION, [])
        return self._read(self.status_path)

    def _read(self, path: Path) -> WatchStatus:
        raw, _ = read_bounded(path, MAX_STATUS_BYTES, what="watch status")

        def fail(reason: str) -> InputError:
            return InputError(str(path), f"not a zksolv watch status: {reason}")

        st = decode_json(raw, WatchStatus, fail=fail)
        if st.format != FORMAT or st.version != VERSION:
            raise fail(f"format {st.format!r} version {st.version}")
        return st

    def save(self, st: WatchStatus) -> None:
        self.bundles.mkdir(parents=True, exist_ok=True)
        write_private(self.status_path, msgspec.json.format(msgspec.json.encode(st)) + b"\n")

    def _candidates(self, done: set[str]) -> list[tuple[int | None, str, str | None]]:
        """(epoch, name, error) of every new snapshot folder, epoch order;
        unreadable headers first (epoch None)."""
        out: list[tuple[int | None, str, str | None]] = []
        for entry in sorted(os.scandir(self.snapshots), key=lambda e: e.name):
            if entry.name.startswith(".") or entry.name in done or not entry.is_dir():
                continue
            try:
                out.append((open_snapshot(entry.path).header.epoch, entry.name, None))
            except ZksolvError as exc:
                out.append((None, entry.name, str(exc)))
        return sorted(out, key=lambda c: (-1 if c[0] is None else c[0], c[1]))

    def once(self) -> list[EpochStatus]:
        """Prove every new snapshot once; return what was recorded."""
        st = self.load()
        done = {e.snapshot for e in st.epochs}
        recorded: list[EpochStatus] = []
        for epoch, name, error in self._candidates(done):
            if epoch is None:
                entry = EpochStatus(name, None, "malformed", 2, reason=error)
            else:
                entry = self._prove(st, epoch, name)
            st.epochs.append(entry)
            self.save(st)
            recorded.append(entry)
            self._log(entry)
        return recorded

    def _log(self, e: EpochStatus) -> None:
        if e.status == "proven":
            link = "" if e.prev_epoch is None else f", linked to epoch {e.prev_epoch}"
            if e.epoch is not None and (gap := declared_gap(e.epoch, e.prev_epoch)) is not None:
                link += f"; its header declares {epochs_text(*gap)} NOT proven solvent"
            self.log(f"epoch {e.epoch}: proven solvent -> {e.bundle} (hash {e.bundle_hash}"
                     f"{link}, {e.seconds:.1f} s)")
        else:
            self.log(f"epoch {e.epoch if e.epoch is not None else '?'} ({e.snapshot}): "
                     f"REFUSED, {e.status} (exit {e.exit_code}): {e.reason}")

    def _prove(self, st: WatchStatus, epoch: int, name: str) -> EpochStatus:
        handled = [e.epoch for e in st.epochs if e.epoch is not None]
        if handled and epoch <= max(handled):
            return EpochStatus(name, epoch, "out-of-order", 2,
                               reason=f"epoch {epoch} is not after epoch {max(handled)}, "
                                      "already handled")
        proven = [e for e in st.epochs if e.status == "proven"]
        prev = proven[-1] if proven else None
        out = self.bundles / f"epoch-{epoch:06d}"
        t0 = time.perf_counter()
        if out.exists():
            # published just before a stop, not yet recorded: adopted only if
            # it is this epoch's, this operator's, and links where we would
            operator = keys.public_key_bytes(keys.signing_key(self.master_key))
            try:
                report = verify_bundle(out, backend=self.backend, jobs=self.jobs,
                                       expect_epoch=epoch, expect_operator=operator)
            except ZksolvError as exc:
                return EpochStatus(name, epoch, "invalid", exc.exit_code,
                                   reason=f"{out} exists and does not verify: {exc}")
            want = (None, None) if prev is None else (prev.bundle_hash, prev.epoch)
            got = (None if report.prev_bundle_hash is None else report.prev_bundle_hash.hex(),
                   report.prev_epoch)
            if got != want:
                return EpochStatus(name, epoch, "invalid", 1, reason=(
                    f"{out} exists but does not link to "
                    + ("nothing (first of the chain)" if prev is None else
                       f"epoch {prev.epoch}'s bundle {prev.bundle}") + ": not adopted"))
            return EpochStatus(name, epoch, "proven", 0, bundle=out.name,
                               bundle_hash=report.bundle_hash.hex(),
                               prev_epoch=report.prev_epoch,
                               seconds=time.perf_counter() - t0)
        try:
            res = prove_epoch(
                self.snapshots / name, out, master_key=self.master_key,
                prev=None if prev is None or prev.bundle is None else self.bundles / prev.bundle,
                jobs=self.jobs, backend=self.backend, progress=self.progress,
                executor=self.executor, resume=True, allow_gap=True,
            )
        except (PrevBundleError, ResumeRefused):
            raise  # not this epoch's fault: stop, record nothing
        except InsolventError as exc:
            return EpochStatus(name, epoch, "insolvent", exc.exit_code, reason=str(exc))
        except VerificationError as exc:
            return EpochStatus(name, epoch, "invalid", exc.exit_code, reason=str(exc))
        except ZksolvError as exc:
            return EpochStatus(name, epoch, "malformed", exc.exit_code, reason=str(exc))
        return EpochStatus(name, epoch, "proven", 0, bundle=out.name,
                           bundle_hash=res.bundle_hash.hex(), prev_epoch=res.prev_epoch,
                           seconds=res.seconds)

    def run(self, *, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Look every ``interval`` seconds until ``stop()`` (or Ctrl-C)."""
        while not stop():
            self.once()
            time.sleep(interval)
