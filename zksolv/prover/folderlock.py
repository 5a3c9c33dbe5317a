"""One writer per bundles folder: the lock ``zksolv watch`` holds on its
``--out`` folder, and the check ``zksolv prove --out`` makes against it.

The lock is ``OUT/.zksolv-watch.lock`` (mode 0600, hidden, never removed):
a watcher takes an exclusive ``flock`` on it for as long as it runs and
writes into it who it is (pid, host, start time, as JSON), and empties it
when it stops. The kernel drops the lock when the process dies, however it
dies, so a file left by a killed watcher never blocks the next one; what it
says is only read to name the holder when the lock is taken.

``prove --out OUT/epoch-N`` takes a shared ``flock`` on the same file if it
exists (a folder that was watched): a running watcher makes it exit 2
naming the watcher, and a watcher started while such a prove runs exits 2
too. Two proves into one folder may run side by side (their bundles are
distinct folders; each refuses one that exists). A prove into a folder never
watched creates nothing there.

The lock lives in the folder it guards, not in the private data directory,
so every process that writes the folder sees it whatever its environment
(another ``$ZKSOLV_DATA_DIR``, another user's service); ``serve`` and
``verify`` never read hidden files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zksolv.errors import InputError

LOCK_FILE = ".zksolv-watch.lock"
MAX_LOCK_BYTES = 4096


class FolderBusy(InputError):
    """The folder is locked by another zksolv process (exit 2)."""


@dataclass
class FolderLock:
    """A held lock; ``release`` (or process exit) drops it."""

    path: Path
    fd: int | None
    exclusive: bool = False

    def release(self) -> None:
        if self.fd is not None:
            if self.exclusive:   # a watcher that ends says so: it names nobody now
                try:
                    os.ftruncate(self.fd, 0)
                except OSError:
                    pass
            os.close(self.fd)   # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _open(path: Path, flags: int) -> int:
    """Open the lock file without following a symlink and check it is a
    regular file."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(str(path), "lock file is a symlink; remove it") from exc
        raise InputError(str(path), f"cannot open lock file: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(str(path), "lock file is not a regular file; remove it")
    return fd


def _holder(fd: int, path: Path) -> str:
    """Who the lock file says holds it, as a phrase."""
    try:
        raw = os.pread(fd, MAX_LOCK_BYTES, 0)
    except OSError:
        raw = b""
    if not raw.strip():   # no watcher named: a shared holder has it
        return "another zksolv process (a `zksolv prove --out` into this folder?)"
    try:
        info = json.loads(raw)
        pid, host, since = int(info["pid"]), str(info["host"])[:255], str(info["since"])[:64]
    except (ValueError, KeyError, TypeError):
        return f"another zksolv process (the lock file {path} does not say which)"
    running = ""
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            # the named watcher is gone: a shared holder (prove --out) has it
            return (f"another zksolv process (a `zksolv prove --out` into this folder?); "
                    f"{path} last named watcher pid {pid}, which is no longer running")
        except PermissionError:
            pass
        running = " (running)"
    return f"zksolv watch pid {pid} on {host}{running}, since {since}"



def _flock(fd: int, path: Path, mode: int, busy: Callable[[str], FolderBusy]) -> None:
    """``flock`` without waiting; on failure ``fd`` is closed and
    ``busy(holder)`` raised if another process holds the lock, or an
    ``InputError`` if the file system cannot lock (some network mounts)."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        who = _holder(fd, path)
        os.close(fd)
        raise busy(who) from exc
    except OSError as exc:
        os.close(fd)
        raise InputError(str(path), f"cannot lock: {exc.strerror or exc}") from exc

def lock_for_watch(folder: Path, *, command: str = "watch") -> FolderLock:
    """Take ``folder``'s lock for a watcher (creating the folder and the
    lock file if needed), or raise ``FolderBusy`` naming its holder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(folder), f"cannot create: {exc.strerror or exc}") from exc
    path = folder / LOCK_FILE
    fd = _open(path, os.O_RDWR | os.O_CREAT)
    _flock(fd, path, fcntl.LOCK_EX, lambda who: FolderBusy(
        str(folder), f"already being written by {who}; one watcher per folder: stop it "
                     "first, or watch into another folder"))
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    data = (json.dumps(info) + "\n").encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        raise InputError(str(path), f"cannot write lock file: {exc.strerror or exc}") from exc
    return FolderLock(path, fd, exclusive=True)


def lock_for_prove(out: Path) -> FolderLock:
    """For ``prove --out OUT``: a shared lock on the lock file of OUT's
    folder if that folder was ever watched, or ``FolderBusy`` if a watcher
    holds it now. A folder never watched gets no lock file."""
    folder = out.parent if str(out.parent) else Path(".")
    path = folder / LOCK_FILE
    if not path.exists() and not path.is_symlink():
        return FolderLock(path, None)
    fd = _open(path, os.O_RDONLY)
    _flock(fd, path, fcntl.LOCK_SH, lambda who: FolderBusy(
        str(out), f"{folder} is being written by {who}: it proves the epochs of that "
                  "folder itself; stop it first, or prove into another folder"))
    return FolderLock(path, fd)
