"""Reading hostile files and writing private ones: the one module every file
boundary goes through (snapshot, bundle, inclusion proof, key files).

Reading, every file is hostile until checked:

- it is opened with ``O_NONBLOCK`` (a FIFO never blocks the open) and
  checked with ``os.fstat`` on the open descriptor (no race between the check
  and the read) to be a regular file: FIFOs, devices (``/dev/zero``),
  sockets and directories are refused;
- its size is bounded by what its format allows, before and while reading
  (a file that grows past the bound while it is read is refused too);
- JSON is decoded by msgspec into exact types (``1.0`` and ``true`` are not
  ``1``; ``strict=True``), whose schemas contain no free-form values, so the
  nesting depth is bounded by the schema; integers are range-bounded by the
  schema, and text integers are ASCII digits of bounded length, matched
  whole (``fullmatch``), before ``int()`` ever sees them.

Writing, private files (keys, inclusion proofs) are created under an
unpredictable temporary name with ``O_CREAT | O_EXCL`` and mode 0600
(``tempfile.mkstemp``), fsynced, then renamed into place; a symlink planted
at the destination is replaced, never followed. Private folders, and every
missing parent of one, are created mode 0700 whatever the umask
(``make_private_dirs``).

Every refusal is an ``InputError`` (exit 2) naming the file; callers that
check a bundle turn it into their own ``VerificationError`` tag.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from zksolv.errors import InputError, ZksolvError

T = TypeVar("T")

# The asset symbol grammar, shared by the snapshot and the bundle: 1-16 ASCII
# letters, digits, '.', '_' or '-', starting with a letter or digit.
SYMBOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}"
SYMBOL_RE = re.compile(SYMBOL_PATTERN)
# The largest base-unit amount (u64) has 20 decimal digits.
UINT64_DIGITS = 20
_UINT_RE = re.compile(r"[0-9]{1,20}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileReadError(InputError):
    """A file that cannot be read safely: missing, not a regular file, too
    large, or growing while read."""


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, what: str) -> tuple[int, os.stat_result]:
    """Open ``path`` read-only without blocking and check, on the descriptor,
    that it is a regular file. Returns (fd, stat); the caller closes fd."""
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise FileReadError(where, f"no such {what}") from exc
    except OSError as exc:
        raise FileReadError(where, f"cannot open {what}: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise FileReadError(where, f"cannot stat {what}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileReadError(where, f"{what} is {_kind(st.st_mode)}, not a regular file")
    return fd, st


def _too_large(where: str, what: str, size: int, limit: int) -> FileReadError:
    return FileReadError(where, f"{what} is {size} bytes; the format allows at most {limit}")


def read_bounded(path: str | os.PathLike[str], limit: int, *, what: str,
                 exact: int | None = None) -> tuple[bytes, os.stat_result]:
    """The whole content of a regular file of at most ``limit`` bytes (exactly
    ``exact`` bytes if given), and its stat taken on the open descriptor."""
    where = str(path)
    fd, st = open_regular(path, what=what)
    with os.fdopen(fd, "rb") as f:
        if exact is not None and st.st_size != exact:
            raise FileReadError(where, f"{what} is {st.st_size} bytes, expected {exact}")
        if st.st_size > limit:
            raise _too_large(where, what, st.st_size, limit)
        want = limit if exact is None else exact
        try:
            data = f.read(want + 1)
        except OSError as exc:
            raise FileReadError(where, f"cannot read {what}: {exc.strerror or exc}") from exc
    if len(data) > want or (exact is not None and len(data) != exact):
        raise FileReadError(where, f"{what} changed size while being read")
    return data, st


def read_lines(path: str | os.PathLike[str], line_limit: int, *,
               what: str) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw line without its end) of a regular text file,
    refusing any line longer than ``line_limit`` bytes."""
    where = str(path)
    fd, _ = open_regular(path, what=what)
    with os.fdopen(fd, "rb") as f:
        number = 0
        while True:
            try:
                line = f.readline(line_limit + 2)
            except OSError as exc:
                raise FileReadError(where, f"cannot read {what}: {exc.strerror or exc}") from exc
            if not line:
                return
            number += 1
            body = line[:-1] if line.endswith(b"\n") else line
            if body.endswith(b"\r"):
                body = body[:-1]
            if len(body) > line_limit:
                raise FileReadError(f"{where}:{number}",
                                    f"line longer than {line_limit} bytes")
            yield number, body


def decode_json(data: bytes, schema: type[T], *,
                fail: Callable[[str], ZksolvError]) -> T:
    """Decode JSON ``data`` into ``schema`` with exact types (msgspec,
    ``strict=True``). Any problem becomes ``fail(reason)``; the reason names
    the failing field as a JSON path (``$.assets[0].price``)."""
    try:
        return msgspec.json.decode(data, type=schema, strict=True)
    except msgspec.ValidationError as exc:
        raise fail(str(exc)) from exc
    except msgspec.DecodeError as exc:
        at = re.search(r"\(byte ([0-9]+)\)", str(exc))
        line = data[: int(at.group(1))].count(b"\n") + 1 if at else 1
        raise fail(f"invalid JSON at line {line}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 ({exc.reason})") from exc
    except RecursionError as exc:  # cannot happen with our schemas; kept as a bound
        raise fail("JSON nested too deeply") from exc


def to_builtins(obj: Any) -> Any:
    """A decoded schema object back to plain JSON values (for canonical bytes)."""
    return msgspec.to_builtins(obj)


def parse_uint(text: str, *, hi: int, where: str, what: str = "amount") -> int:
    """A non-negative decimal integer in ASCII digits (no sign, no spaces, no
    Unicode digits), at most 20 digits and at most ``hi``."""
    if not _UINT_RE.fullmatch(text):
        raise InputError(where, f"{what} {text[:40]!r} is not a non-negative integer "
                                f"of at most {UINT64_DIGITS} ASCII digits")
    value = int(text)
    if value > hi:
        raise InputError(where, f"{what} {text} exceeds {hi}")
    return value


def has_control(text: str) -> bool:
    """True if ``text`` holds a C0/C1 control character (newline, escape, ...),
    which could forge lines in a report."""
    return _CONTROL_RE.search(text) is not None


def readable_by_others(st: os.stat_result) -> bool:
    return bool(stat.S_IMODE(st.st_mode) & 0o077)


def read_key_text(path: str | os.PathLike[str], limit: int, *, what: str, not_ascii: str,
                  warn: Callable[[str], None] | None = None) -> str:
    """The ASCII text of a secret key file: a regular file of at most
    ``limit`` bytes; ``warn`` is told if group or others can read it; bytes
    that are not ASCII are an ``InputError`` saying ``not_ascii``."""
    where = str(path)
    data, st = read_bounded(path, limit, what=what)
    if warn is not None and readable_by_others(st):
        warn(f"{what} {where} is readable by others (mode "
             f"{stat.S_IMODE(st.st_mode):04o}); restrict it: chmod 600 {where}")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputError(where, not_ascii) from exc


def make_private_dirs(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` and each missing parent, every one mode
    0700 whatever the umask (``mkdir(parents=True)`` would give the parents
    0777 under umask 000). Folders that exist are left as they are."""
    dest = Path(path)
    missing = []
    p = dest
    while not (p.exists() or p.is_symlink()):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue  # made by someone else meanwhile: not ours to change
        except OSError as exc:
            raise InputError(str(d), f"cannot create the folder: {exc.strerror or exc}") from exc
        os.chmod(d, 0o700)  # the umask can only have removed bits
    return dest


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` with mode 0600 (``write_atomic``)."""
    return write_atomic(path, data, mode=0o600, overwrite=overwrite)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int,
                 overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` with ``mode``: a fresh unpredictable
    temporary name created exclusively (0600 until written), fsync, then
    rename (``overwrite``) or hard-link (never overwrite) into place. A
    symlink at ``path`` is replaced, not followed."""
    dest = Path(path)
    parent = dest.parent if str(dest.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise InputError(str(dest), f"cannot create: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)
            except FileExistsError as exc:
                raise InputError(str(dest), "exists; refusing to overwrite") from exc
            tmp.unlink()
        fsync_dir(parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
