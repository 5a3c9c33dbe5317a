"""The generator cache on disk: one file per chunk of 1 024 generator pairs.

The core (``zksolv.core.generators``) decides whether a cached chunk is the
pinned one; this module only moves bytes, safely: a chunk file is read only
if it is a regular file of exactly ``CHUNK_BYTES`` (never a FIFO, a device or
a symlink), and written atomically under an unpredictable temporary name.
The files hold public data (hash-to-curve outputs) and are world-readable.

Location: ``$ZKSOLV_CACHE_DIR``, else ``$XDG_CACHE_HOME/zksolv``, else
``~/.cache/zksolv``. ``ZKSOLV_CACHE_DIR=off`` (or empty) disables the cache.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from zksolv.core import generators

CACHE_ENV = "ZKSOLV_CACHE_DIR"
_NAME = "generators-v1-{:04d}.bin"


def cache_dir() -> Path | None:
    """The folder ``install`` uses, or None when the cache is off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen in ("", "off") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zksolv"


class FileChunkStore:
    """Chunks as files in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, chunk: int) -> Path:
        return self.folder / _NAME.format(chunk)

    def load(self, chunk: int) -> bytes | None:
        try:
            fd = os.open(self.path(chunk), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != generators.CHUNK_BYTES:
                return None
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(generators.CHUNK_BYTES + 1)
            return data if len(data) == generators.CHUNK_BYTES else None
        except OSError:
            return None
        finally:
            os.close(fd)

    def store(self, chunk: int, data: bytes) -> None:
        """Write atomically; any failure (read-only home, full disk) only
        means the chunk is derived again next time."""
        tmp = self.folder / f".{_NAME.format(chunk)}.{secrets.token_hex(8)}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(chunk))
        except OSError:
            tmp.unlink(missing_ok=True)


def install() -> None:
    """Use the file cache (or none, if it is off) for this process and the
    worker processes it forks."""
    folder = cache_dir()
    generators.set_chunk_store(None if folder is None else FileChunkStore(folder))
