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

One watcher per BUNDLES_DIR: it holds an exclusive lock on
``BUNDLES_DIR/.zksolv-watch.lock`` while it runs (``folderlock``); a second
exits 2 naming the first.

A scan never stops on what it finds in SNAPSHOTS_DIR. An entry that cannot
be looked at now (a symlink loop, permission denied, gone since it was
listed) is skipped with one line and looked at again on the next scan; so
is a snapshot that is not yet complete. Complete means (docs/snapshot-
format.md, *Writing a snapshot in place*): both files present and
readable, header.json decodes, and accounts.csv ends with a newline and
holds at least account_count + 1 lines; and, when the header names
reserve sources, reserves.json is there and every holder that signs has
signed (until then one line names what is missing and the command that
supplies it: ``_reserves_look``). A complete snapshot is proven; only
then can it be refused as malformed. Two cases cannot be completed by more
writing yet may be a file caught mid-write: a header.json that does not
decode and a file that is not a regular file; they are refused as malformed
only when unchanged (inode, size, mtime of both files) between two
consecutive looks. A snapshot refused as malformed is looked at again when
either file changes (its fingerprint is in the status entry), and one that
changes while it is being proven is not judged on that run.

With ``fetch_reserves`` (``watch --rpc``), a snapshot waiting for its
reserves.json whose header names a block window is read by the watch, at
the derived block, at most once per epoch (``reserves_fetched`` in the
status file, recorded before the file is written).
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec

from zksolv.circuits.epoch import declared_gap, epochs_text
from zksolv.errors import InputError, InsolventError, VerificationError, ZksolvError
from zksolv.executors import Executor
from zksolv.reserves_format import ReservesFile
from zksolv.safeio import decode_json, read_bounded, write_private
from zksolv.snapshot import (
    ACCOUNTS_FILE,
    HEADER_FILE,
    RESERVES_FILE,
    Snapshot,
    SnapshotHeader,
    evidence_problem,
    open_snapshot,
    write_reserves_file,
)
from zksolv.verifier.bundle import verify_bundle

from . import keys
from .epoch import PrevBundleError, Progress, prove_epoch
from .folderlock import FolderLock, lock_for_watch
from .inclusion_db import location_name, private_data_folder
from .shortfall import ShortfallReport
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
    # malformed only: (inode, size, mtime_ns, file type) of header.json and
    # accounts.csv as judged; a change brings the snapshot back
    fingerprint: str | None = None
    # insolvent only: the shortfall as numbers (``ShortfallReport.to_json``)
    shortfall: dict[str, Any] | None = None


class ReservesFetch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A reading of reserves this watch made (``--rpc``), recorded before
    reserves.json is written: one per epoch, never another."""

    snapshot: str
    epoch: int
    block_number: int
    block_hash: str


class WatchStatus(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    format: str
    version: int
    epochs: list[EpochStatus]
    # left out while empty, so a watch without --rpc writes what earlier versions read
    reserves_fetched: list[ReservesFetch] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class Look:
    """What one look at a snapshot folder found. ``state``: ``ready``
    (complete: prove it), ``bad`` (cannot be completed by more writing:
    refused as malformed once unchanged over two looks), ``wait`` (not
    complete, or unreadable now: skipped with a line, looked at next scan).
    ``kind`` groups the reasons of ``wait`` so that one line is said per
    change, not per scan."""

    state: str
    fingerprint: str | None = None
    epoch: int | None = None
    reason: str | None = None
    kind: str = ""


def _fingerprint(folder: Path) -> str | Look:
    """(inode, size, mtime_ns, file type) of header.json and accounts.csv,
    and of reserves.json when there is one (a snapshot without it keeps the
    fingerprint earlier versions recorded), or a ``wait`` Look saying why
    they cannot be looked at."""
    parts = []
    for name in (HEADER_FILE, ACCOUNTS_FILE, RESERVES_FILE):
        try:
            fd = os.open(folder / name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
        except FileNotFoundError:
            if not os.path.isdir(folder):
                return Look("wait", reason="gone since it was listed", kind="gone")
            if name == RESERVES_FILE:  # optional: look() says if the header needs it
                break
            return Look("wait", reason=f"incomplete: no {name} yet", kind="incomplete")
        except OSError as exc:
            return Look("wait", reason=f"cannot read {name}: {exc.strerror or exc}",
                        kind=f"unreadable {exc.errno}")
        parts.append(f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:"
                     f"{stat.S_IFMT(st.st_mode):o}")
    return "/".join(parts)


def fingerprint(folder: Path) -> str | None:
    fp = _fingerprint(folder)
    return fp if isinstance(fp, str) else None


def _count_lines(path: Path) -> tuple[int, bytes]:
    """Newlines in a file and its last byte, in bounded memory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    lines, last = 0, b""
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines, last


def look(folder: Path, *, operator: bytes | None = None) -> Look:
    """Is the snapshot in ``folder`` complete (docs/snapshot-format.md,
    *Writing a snapshot in place*)? Never raises for what it finds.
    ``operator`` (the watch's public key) only goes into the command a
    snapshot waiting for signatures is told to run."""
    fp = _fingerprint(folder)
    if isinstance(fp, Look):
        return fp
    try:
        header = open_snapshot(folder).header
    except ZksolvError as exc:
        return Look("bad", fp, reason=str(exc))
    except OSError as exc:
        return Look("wait", fp, reason=f"cannot read: {exc.strerror or exc}",
                    kind=f"unreadable {exc.errno}")
    try:
        lines, last = _count_lines(folder / ACCOUNTS_FILE)
    except OSError as exc:
        return Look("wait", fp, header.epoch, f"cannot read {ACCOUNTS_FILE}: "
                    f"{exc.strerror or exc}", kind=f"unreadable {exc.errno}")
    if last != b"\n" or lines < header.account_count + 1:
        rows = max(lines - 1, 0)
        return Look("wait", fp, header.epoch,
                    f"incomplete: {ACCOUNTS_FILE} has {rows} of {header.account_count} rows"
                    + ("" if last == b"\n" else " and no final newline") + " so far",
                    kind="incomplete")
    if header.reserve_sources is not None:
        return _reserves_look(folder, header, fp, operator)
    return Look("ready", fp, header.epoch)


def _reserves_look(folder: Path, header: SnapshotHeader, fp: str,
                   operator: bytes | None) -> Look:
    """A complete snapshot whose header names reserve sources is complete
    only with reserves.json fetched and signed by every holder that signs:
    until then it waits (the line names what is missing and the command that
    supplies it). Evidence that is not this snapshot's (another epoch, chain
    or holders, another operator) or whose signatures do not recover is
    ``ready``: ``prove`` refuses it as malformed, with its reason, and a
    change of reserves.json brings it back."""
    src = header.reserve_sources
    assert src is not None
    try:
        doc = Snapshot(folder, header).load_reserves()
    except ZksolvError as exc:    # may be a file caught mid-write: judged over two looks
        return Look("bad", fp, header.epoch, str(exc))
    except OSError as exc:
        return Look("wait", fp, header.epoch, f"cannot read {RESERVES_FILE}: "
                    f"{exc.strerror or exc}", kind=f"unreadable {exc.errno}")
    if doc is None:
        block = "" if src.window_length is not None else " --block N"
        return Look("wait", fp, header.epoch,
                    f"waiting for {RESERVES_FILE} (the header names reserve sources): read "
                    f"the balances with zksolv reserves fetch {folder} --rpc URL{block}",
                    kind="reserves-fetch" if src.window_length is not None
                    else "reserves-fetch-block")
    if evidence_problem(header, doc) is not None or (
            operator is not None and doc.operator not in (None, operator.hex())):
        return Look("ready", fp, header.epoch)
    missing = doc.evidence.missing_signatures()
    if missing:
        shown = ", ".join(f"{sym} {addr} ({kind})" for sym, addr, kind in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        op = "PUBKEY" if operator is None else operator.hex()
        return Look("wait", fp, header.epoch,
                    f"waiting for {len(missing)} ownership signature(s) in {RESERVES_FILE}: "
                    f"{shown}{more}: zksolv reserves sign {folder} --eth-key FILE "
                    f"--operator {op} (or reserves typed-data, then reserves import)",
                    kind=f"reserves-sign {len(missing)}")
    return Look("ready", fp, header.epoch)


def _last_handled(st: WatchStatus, name: str) -> int:
    """The last epoch the status file records (-1: none), the snapshot
    ``name``'s own refusals as malformed aside (it may since be fixed)."""
    return max((e.epoch for e in st.epochs if e.epoch is not None
                and not (e.snapshot == name and e.status == "malformed")), default=-1)


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
    # reads the reserves of a snapshot that waits for them (``--rpc``); None: never
    fetch_reserves: Callable[[Snapshot], ReservesFile] | None = None
    _lock: FolderLock | None = field(default=None, init=False, repr=False)
    # the previous scan's fingerprint of every folder looked at
    _seen: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)
    _looks: dict[str, Look] = field(default_factory=dict, init=False, repr=False)
    # the kind of the last line said about each skipped folder ("" : the scan)
    _said: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _unsettled: bool = field(default=False, init=False, repr=False)

    @property
    def status_path(self) -> Path:
        return status_location(self.bundles)

    @property
    def operator(self) -> bytes:
        return keys.public_key_bytes(keys.signing_key(self.master_key))

    def lock(self) -> None:
        """Take the lock on BUNDLES_DIR (``FolderBusy`` if another watcher
        has it); held until ``close`` or the process ends."""
        if self._lock is None:
            self._lock = lock_for_watch(self.bundles)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

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

    def _skip(self, name: str, kind: str, line: str) -> None:
        """One line per change of what is wrong with ``name``, not per scan."""
        if self._said.get(name) != kind:
            self._said[name] = kind
            self.log(line)

    def _look(self, folder: Path) -> Look:
        """``look``, reusing the last answer while the files are unchanged."""
        fp = fingerprint(folder)
        cached = self._looks.get(folder.name)
        if fp is not None and cached is not None and cached.fingerprint == fp:
            return cached
        lk = look(folder, operator=self.operator)
        self._looks[folder.name] = lk
        return lk

    def _candidates(self, st: WatchStatus) -> list[tuple[str, Look]]:
        """The snapshot folders to judge now, epoch order (a header that
        does not decode first): new ones that are complete or stably bad,
        and ones refused as malformed whose files changed since."""
        try:
            with os.scandir(self.snapshots) as it:
                entries = sorted((e.name, e) for e in it)
        except OSError as exc:
            self._skip("", f"scan {exc.errno}", f"cannot list {self.snapshots}: "
                       f"{exc.strerror or exc}; looking again on the next scan")
            return []
        self._said.pop("", None)
        latest = {e.snapshot: e for e in st.epochs}
        seen, self._seen = self._seen, {}
        self._unsettled = False
        out: list[tuple[str, Look]] = []
        for name, entry in entries:
            prior = latest.get(name)
            if name.startswith(".") or (prior is not None and prior.status != "malformed"):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError as exc:   # a symlink loop, a folder we may not search
                self._skip(name, f"entry {exc.errno}", f"{name}: skipped, cannot look at it: "
                           f"{exc.strerror or exc} (looked at again on the next scan)")
                continue
            if not is_dir:           # a file, a dangling symlink, gone since listed
                continue
            lk = self._look(self.snapshots / name)
            if lk.kind == "reserves-fetch" and self.fetch_reserves is not None:
                lk = self._fetch(st, name, lk)
            self._seen[name] = lk.fingerprint
            if prior is not None and (lk.fingerprint is None
                                      or lk.fingerprint == prior.fingerprint):
                continue             # refused as it is now; changed files bring it back
            if (lk.kind.startswith("reserves-") and lk.epoch is not None
                    and lk.epoch <= _last_handled(st, name)):
                out.append((name, lk))   # out of order whatever its reserves: recorded so
            elif lk.state == "wait":
                self._skip(name, lk.kind, f"{name}: skipped, {lk.reason} (looked at again on "
                                          "the next scan)")
            elif lk.state == "bad" and seen.get(name) != lk.fingerprint:
                self._unsettled = True
                self._skip(name, f"unsettled {lk.fingerprint}",
                           f"{name}: {lk.reason}; refused as malformed if unchanged on the "
                           "next look")
            else:
                out.append((name, lk))
        return sorted(out, key=lambda c: (-1 if c[1].epoch is None else c[1].epoch, c[0]))

    def _fetch(self, st: WatchStatus, name: str, lk: Look) -> Look:
        """Read the reserves of a complete snapshot that waits for them and
        whose header names a block window (the block is derived from the
        chain: nobody, the watch included, picks it), at most once per
        epoch: the reading is recorded in the status file before
        reserves.json is written (never over one written meanwhile). What
        the snapshot looks like afterwards (``lk`` if nothing was written)."""
        assert self.fetch_reserves is not None and lk.epoch is not None
        folder = self.snapshots / name
        done = [f for f in st.reserves_fetched if f.epoch == lk.epoch]
        if done:
            f = done[0]
            return replace(lk, kind="reserves-fetched", reason=(
                f"{RESERVES_FILE} is gone since this watch read epoch {f.epoch}'s reserves at "
                f"block {f.block_number} ({f.block_hash}); a watch reads an epoch's reserves "
                f"once: read them by hand with zksolv reserves fetch {folder} --rpc URL"))
        try:
            snap = open_snapshot(folder)
            doc = self.fetch_reserves(snap)
        except ZksolvError as exc:   # the window not begun or not mined yet, a node down
            # one line per kind of failure, not per block number that changes in it
            return replace(lk, kind="reserves-fetch " + re.sub(r"\d+", "N", str(exc)),
                           reason=f"waiting for {RESERVES_FILE}: reading it failed: {exc}")
        except OSError as exc:
            return replace(lk, kind=f"reserves-fetch {exc.errno}",
                           reason=f"waiting for {RESERVES_FILE}: {exc.strerror or exc}")
        ev = doc.evidence
        st.reserves_fetched.append(ReservesFetch(name, lk.epoch, ev.block_number,
                                                 ev.block_hash))
        self.save(st)
        try:
            write_reserves_file(snap, doc, overwrite=False)
        except ZksolvError as exc:   # one written meanwhile (by hand): it stands
            self.log(f"{name}: {RESERVES_FILE} not written: {exc}")
        else:
            window = ("" if ev.window is None else
                      f", derived from window block {ev.window.first_number}")
            self.log(f"{name}: read epoch {lk.epoch}'s reserves at block {ev.block_number} "
                     f"({ev.block_hash}{window}) into {folder / RESERVES_FILE}")
        self._looks.pop(name, None)
        return self._look(folder)

    def once(self, *, settle: float | None = None) -> list[EpochStatus]:
        """Prove every new complete snapshot once; return what was recorded.
        With ``settle``, a snapshot that would be refused as malformed on
        its first look is looked at again after ``settle`` seconds (one
        scan alone cannot see that it stopped changing)."""
        recorded = self._scan()
        if settle is not None and self._unsettled:
            time.sleep(settle)
            recorded += self._scan()
        return recorded

    def _scan(self) -> list[EpochStatus]:
        self.lock()
        st = self.load()
        recorded: list[EpochStatus] = []
        for name, lk in self._candidates(st):
            if lk.state == "bad":
                entry: EpochStatus | None = EpochStatus(
                    name, lk.epoch, "malformed", 2, reason=lk.reason,
                    fingerprint=lk.fingerprint)
            else:
                assert lk.epoch is not None
                entry = self._prove(st, lk.epoch, name, lk.fingerprint)
            if entry is None:
                continue
            st.epochs.append(entry)
            self.save(st)
            self._said.pop(name, None)
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

    def _prove(self, st: WatchStatus, epoch: int, name: str,
               judged: str | None = None) -> EpochStatus | None:
        """Prove (or adopt) one complete snapshot; the entry to record, or
        None when nothing may be recorded now (a line says why): the
        snapshot changed from ``judged`` while being proven, or an OSError
        or database error that is not the snapshot's (a full disk, a folder
        not writable)."""
        try:
            entry = self._prove_or_adopt(st, epoch, name)
        except OSError as exc:
            self._skip(name, f"oserror {exc.errno}", f"{name}: not proven now: "
                       f"{exc.strerror or exc} (tried again on the next scan)")
            return None
        except sqlite3.Error as exc:   # the private databases: a full disk, say
            self._skip(name, "sqlite", f"{name}: not proven now: {exc} (tried again on the "
                                       "next scan)")
            return None
        if entry.status != "proven" and fingerprint(self.snapshots / name) != judged:
            self._skip(name, "changed", f"{name}: changed while being proven; looked at again "
                                        "on the next scan")
            return None
        if entry.status == "malformed":
            entry = msgspec.structs.replace(entry, fingerprint=judged)
        return entry

    def _prove_or_adopt(self, st: WatchStatus, epoch: int, name: str) -> EpochStatus:
        handled = _last_handled(st, name)
        if epoch <= handled:
            return EpochStatus(name, epoch, "out-of-order", 2,
                               reason=f"epoch {epoch} is not after epoch {handled}, "
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
            numbers = exc.report.to_json() if isinstance(exc.report, ShortfallReport) else None
            return EpochStatus(name, epoch, "insolvent", exc.exit_code, reason=str(exc),
                               shortfall=numbers)
        except VerificationError as exc:
            return EpochStatus(name, epoch, "invalid", exc.exit_code, reason=str(exc))
        except ZksolvError as exc:
            return EpochStatus(name, epoch, "malformed", exc.exit_code, reason=str(exc))
        return EpochStatus(name, epoch, "proven", 0, bundle=out.name,
                           bundle_hash=res.bundle_hash.hex(), prev_epoch=res.prev_epoch,
                           seconds=res.seconds)

    def run(self, *, interval: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Look every ``interval`` seconds until ``stop()`` (or Ctrl-C). A
        scan that fails on an OSError (the status file cannot be written, a
        disk is full) is one line; the next scan tries again."""
        while not stop():
            try:
                self._scan()
            except OSError as exc:
                self._skip("", f"scan {exc.errno}", f"scan failed: {exc.strerror or exc}; "
                           f"looking again in {interval:g} s")
            time.sleep(interval)
