"""What in a folder about to be published is private: ``zksolv verify``
warns about each, naming its path.

A folder of bundles is meant to be published as it is; the prover never
writes anything private there (docs/epoch.md, "Where private files go"). A
copy, a stray ``--inclusion-db``, an old version's work area or a snapshot
dropped beside the bundles can still put secrets there. The scan recognises,
by the names and first bytes the formats document (never by importing the
prover, so the verifier's side stays free of it):

- ``work-area``: a prover work area, a folder holding ``leaves.sqlite`` and
  ``state.json``, or named ``*.work`` and holding one of them or ``shards/``;
- ``database``: an SQLite file (its 16-byte magic, or ``.sqlite`` in the
  name: inclusion databases and their temporaries);
- ``snapshot``: a folder holding ``accounts.csv`` (a snapshot, or one being
  written);
- ``accounts``: a loose ``accounts.csv``;
- ``key``: a small file holding only 64 hex digits, not named ``*.pub``
  (an operator master secret has that form);
- ``inclusion-proofs``: an ``inclusion export --all`` directory (at least 16
  sub-folders named by two hex digits);
- ``inclusion-proof``: a JSON file whose first 64 KiB name the format
  ``zksolv-inclusion``;
- ``watch-status``: a ``watch-status.json`` (a watch's status file, which
  names shortfalls and refused rows; earlier versions kept it among the
  bundles).

The scan is bounded (a few levels deep, a fixed number of entries; past
either bound it says it is incomplete), never
follows a symbolic link and never blocks on a FIFO or device (files are
opened ``O_NOFOLLOW | O_NONBLOCK`` and read only if regular). It reports;
it never decides a verdict.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_DEPTH = 4                  # entries this many levels below the folder given
MAX_ENTRIES = 100_000          # entries looked at in all, then the scan stops and says so
SQLITE_MAGIC = b"SQLite format 3\x00"
KEY_FILE_MAX = 256
PROOF_HEAD = 64 << 10
PROOF_FILE_MAX = 16 << 20
WORK_MARKERS = ("leaves.sqlite", "state.json", "shards")
_HEX_KEY = re.compile(rb"\s*[0-9a-fA-F]{64}\s*")
_HEX_PAIR = re.compile(r"[0-9a-f]{2}")

WHAT = {
    "work-area": "a prover work area (every leaf's amounts, blindings and salt)",
    "database": "an SQLite database (an inclusion database holds every account's amounts, "
                "blindings and salt)",
    "snapshot": "an epoch snapshot (every account's balances)",
    "accounts": "a snapshot's accounts.csv (every account's balances)",
    "key": "64 hex digits: an operator master key file (the operator's whole identity)",
    "inclusion-proofs": "an inclusion-proof export (every account's opening)",
    "inclusion-proof": "an inclusion proof (one account's amounts, blindings and salt)",
    "watch-status": "a watch status file (it names shortfalls and refused rows)",
}


@dataclass(frozen=True)
class PrivateItem:
    path: Path
    kind: str

    @property
    def what(self) -> str:
        return WHAT[self.kind]

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "kind": self.kind, "what": self.what}


@dataclass(frozen=True)
class ScanResult:
    items: tuple[PrivateItem, ...]
    complete: bool          # False: a folder deeper than MAX_DEPTH or unreadable, or
                            # more than MAX_ENTRIES entries: not every entry was looked at
    unread: tuple[Path, ...] = ()


def _head(path: Path, size: int) -> bytes | None:
    """Up to ``size`` first bytes of a regular file, never following a link
    nor blocking; None if it is not a readable regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _file_kind(entry: os.DirEntry[str]) -> str | None:
    name = entry.name
    lower = name.lower()
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if ".sqlite" in lower:
        return "database"
    if name == "accounts.csv":
        return "accounts"
    if name == "watch-status.json":
        return "watch-status"
    head = _head(Path(entry.path), PROOF_HEAD if lower.endswith(".json") else 64)
    if head is None:
        return None
    if head.startswith(SQLITE_MAGIC):
        return "database"
    if (st.st_size <= KEY_FILE_MAX and not lower.endswith(".pub")
            and _HEX_KEY.fullmatch(head)):
        return "key"
    if lower.endswith(".json") and st.st_size <= PROOF_FILE_MAX and re.search(
            rb'"format"\s*:\s*"zksolv-inclusion"', head):
        return "inclusion-proof"
    return None


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _folder_kind(path: Path) -> str | None:
    """What a folder is, from the names inside it the formats fix (looked up
    one by one: a folder of a million files is never listed for this)."""
    if _exists(path / "leaves.sqlite") and _exists(path / "state.json"):
        return "work-area"
    if path.name.endswith(".work") and any(_exists(path / m) for m in WORK_MARKERS):
        return "work-area"
    if _exists(path / "accounts.csv"):
        return "snapshot"
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def scan(folder: str | os.PathLike[str], *, max_depth: int = MAX_DEPTH,
         max_entries: int = MAX_ENTRIES) -> ScanResult:
    """Every private item in ``folder`` (itself included when it is one),
    in path order. A path that is not a folder gives nothing. At most
    ``max_entries`` entries are looked at, ``max_depth`` levels down."""
    root = Path(folder)
    items: list[PrivateItem] = []
    unread: list[Path] = []
    seen = 0
    complete = True

    def visit(path: Path, depth: int) -> None:
        nonlocal seen, complete
        kind = _folder_kind(path)
        if kind is not None:
            items.append(PrivateItem(path, kind))
            return
        subfolders: list[Path] = []
        hex_pairs: list[Path] = []
        try:
            with os.scandir(path) as it:
                for entry in it:      # lazily: memory bounded by max_entries
                    if seen >= max_entries:
                        complete = False
                        break
                    seen += 1
                    if _is_dir(entry):
                        (hex_pairs if _HEX_PAIR.fullmatch(entry.name)
                         else subfolders).append(Path(entry.path))
                    elif (fkind := _file_kind(entry)) is not None:
                        items.append(PrivateItem(Path(entry.path), fkind))
        except OSError:
            unread.append(path)
            complete = False
            return
        if len(hex_pairs) >= 16:       # inclusion export --all: 256 folders 00..ff
            items.append(PrivateItem(path, "inclusion-proofs"))
            hex_pairs = []
        for sub in subfolders + hex_pairs:
            if depth < max_depth:
                visit(sub, depth + 1)
            else:
                complete = False

    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            return ScanResult((), True)
    except OSError:
        return ScanResult((), True)
    visit(root, 1)
    return ScanResult(tuple(sorted(items, key=lambda i: str(i.path))), complete,
                      tuple(unread))
