"""``zksolv serve``: the holder's page and a folder's bundles over HTTP, and
nothing else (docs/holder-page.md, *What zksolv serve serves*).

Served, to GET and HEAD:

- the page's files (``SITE_FILES``) at ``/`` and ``/NAME``, from the package;
- in each bundle folder under the served folder, exactly the files a bundle
  consists of: ``manifest.json``, ``manifest.sig`` and the data files its
  manifest lists (``leaves.bin``, ``range.bin``, ``solvency.bin``, and in a
  version 5 bundle ``margin.bin``).

A folder is a bundle when its ``manifest.json`` is a regular file readable
by others, at most 1 MiB, and decodes (exact JSON types) as an object with
``"format": "zksolv-bundle"`` and a ``files`` object of ``{sha256, bytes}``
entries; of the names in ``files`` only the bundle format's data file names
count. The rest of the manifest is the page's to check (so a bundle with a
forged manifest is served, and the page names what is wrong with it). What
a manifest lists is cached by the manifest's inode, size and times
(``MANIFEST_CACHE`` manifests at most), so a request costs a few ``openat``
and ``fstat`` calls.

A file is served only if every one of these holds: each URL component is
non-empty, not hidden (no leading ``.``) and holds no backslash or NUL; its
folder resolves (folder symlinks allowed) inside the served folder; every
folder from the served folder (exclusive) down to the file's, after
resolving, is not hidden and readable and searchable by others (mode o+rx),
checked on descriptors opened one component at a time without following
links; the file itself is no symlink, is a regular file and readable by
others. So nothing else is ever served: not snapshots (``header.json``,
``accounts.csv``), work areas, databases, keys, metrics, hidden files,
listings, or a bundle inside a private (0700) folder. Anything else is 404.

Requests must carry a ``Host`` header naming the bound address and port
(``localhost`` too for a loopback address; any IP address for a wildcard
bind such as 0.0.0.0), else 421: a page on another site that has its
name resolve to this machine (DNS rebinding) reads nothing.

Connections: one accepting thread reads each request's head (at most
``MAX_HEAD_BYTES``) without blocking, for at most ``HEAD_TIMEOUT`` seconds
from the connection's start, so an idle or slow client costs no thread; a
complete head goes to a fixed pool of ``WORKERS`` threads, whose socket
writes time out after ``IO_TIMEOUT`` seconds without progress, and a file
must be read within ``IO_TIMEOUT`` plus its size at ``MIN_SEND_RATE`` (else
the connection is reset). At most
``MAX_CONNECTIONS`` connections are open: a new one beyond that closes the
oldest still sending its head, or is closed at once when every slot is
serving a request. One request per connection (HTTP/1.0).
"""

from __future__ import annotations

import collections
import errno
import io
import ipaddress
import os
import selectors
import socket
import stat
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Literal

import msgspec

from zksolv.errors import InputError

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

# The bundle format's file names (docs/bundle-format.md; the site imports
# nothing of circuits, and a test holds these equal to circuits/bundle.py's).
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
DATA_FILES = ("leaves.bin", "range.bin", "solvency.bin", "margin.bin")
BUNDLE_FILES = (MANIFEST_FILE, SIGNATURE_FILE, *DATA_FILES)
MAX_MANIFEST_BYTES = 1 << 20

MANIFEST_CACHE = 256
WORKERS = 8
MAX_CONNECTIONS = 128
HEAD_TIMEOUT = 10.0
IO_TIMEOUT = 30.0
MAX_HEAD_BYTES = 32 * 1024
MAX_PATH_CHARS = 1024
MIN_SEND_RATE = 64 * 1024  # bytes per second a client must read a file at
_ACCEPT_BATCH = 64
_SEND_CHUNK = 1 << 20
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_PUBLIC_FOLDER = stat.S_IROTH | stat.S_IXOTH


class _FileEntry(msgspec.Struct, frozen=True):
    sha256: str
    bytes: int


class _BundleManifest(msgspec.Struct, frozen=True):
    """What the server reads of a manifest: enough to tell a bundle and
    the files it lists (unknown keys ignored: the page checks them)."""

    format: Literal["zksolv-bundle"]
    files: dict[str, _FileEntry]


def listed_files(manifest: bytes) -> frozenset[str]:
    """The files served from a folder whose manifest.json holds these
    bytes: none when it is not a bundle manifest, else manifest.json,
    manifest.sig and the data files it lists."""
    try:
        m = msgspec.json.decode(manifest, type=_BundleManifest, strict=True)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return frozenset()
    return frozenset((MANIFEST_FILE, SIGNATURE_FILE, *(n for n in m.files if n in DATA_FILES)))


def _plain_name(part: str) -> bool:
    return (part not in ("", ".", "..") and not part.startswith(".") and "\\" not in part
            and "\0" not in part and len(part.encode("utf-8", "surrogatepass")) <= 255)


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")


class _NotPublic(Exception):
    """A path component that is not served (private, hidden, a symlink)."""


class HostCheck:
    """Which ``Host`` header values name this server: the bound address
    and the name it was given (with ``localhost`` for a loopback address),
    with the bound port (no port: 80); for a wildcard bind, any IP address
    literal or ``localhost`` with that port (never another DNS name)."""

    def __init__(self, given: str, bound: str, port: int) -> None:
        ip = ipaddress.ip_address(bound.split("%")[0])
        self.port = port
        self.wildcard = ip.is_unspecified
        names = {_bracket(given.lower()), _bracket(bound.lower())}
        if ip.is_loopback or self.wildcard:
            names.add("localhost")
        self.names = frozenset(names)

    def allows(self, value: str | None) -> bool:
        if value is None:
            return False
        value = value.strip().lower()
        host, port = value, self.port if self.port == 80 else None
        if not value.endswith("]") and ":" in value:
            host, _, digits = value.rpartition(":")
            port = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 5 \
                else None
        if port != self.port or not host:
            return False
        if host in self.names:
            return True
        return self.wildcard and _is_ip_literal(host)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _is_ip_literal(host: str) -> bool:
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in inner and not host.startswith("["):
        return False
    try:
        ipaddress.ip_address(inner)
    except ValueError:
        return False
    return True


class _SocketWriter(io.BufferedIOBase):
    """Unbuffered writes straight to the socket (each one whole)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        with memoryview(data) as view:
            return view.nbytes


class _Handler(BaseHTTPRequestHandler):
    """One request whose head the accepting thread has already read."""

    server: SiteServer  # type: ignore[assignment]  # our server, not socketserver's
    server_version = "zksolv"
    sys_version = ""

    def setup(self) -> None:
        conn, head = self.request
        self.connection = conn
        self.rfile = io.BytesIO(head)
        self.wfile = _SocketWriter(conn)

    def finish(self) -> None:
        self.rfile.close()

    def version_string(self) -> str:
        return self.server_version

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """A malformed request: a plain-text answer with the usual headers."""
        self.close_connection = True
        status = HTTPStatus(code)
        self.log_error("code %d, message %s", code, message or status.phrase)
        self._text(status, f"{status.value} {status.phrase}\n",
                   body=getattr(self, "command", "") != "HEAD")

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if not self.server.quiet:
            super().log_message(format, *args)

    def _headers(self, status: HTTPStatus, ctype: str, length: int,
                 content_range: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if content_range is not None:
            self.send_header("Content-Range", content_range)
        self.send_header("Content-Security-Policy", self.server.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _text(self, status: HTTPStatus, msg: str, body: bool) -> None:
        data = msg.encode()
        self._headers(status, "text/plain; charset=utf-8", len(data))
        if body:
            self.wfile.write(data)

    def _serve(self, *, body: bool) -> None:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or not self.server.hosts.allows(hosts[0]):
            self._text(HTTPStatus.MISDIRECTED_REQUEST,
                       "misdirected request: the Host header does not name this server\n", body)
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        name = "index.html" if path == "/" else path[1:]
        data = self.server.site.get(name)
        if data is not None:
            self._headers(HTTPStatus.OK, content_type(name), len(data))
            if body:
                self.wfile.write(data)
            return
        opened = self.server.open_public(path)
        if opened is None:
            self._text(HTTPStatus.NOT_FOUND, "not found\n", body)
            return
        fd, st = opened
        with os.fdopen(fd, "rb") as f:
            span = byte_range(self.headers.get("Range"), st.st_size)
            if span is None:
                self._headers(HTTPStatus.OK, content_type(path), st.st_size)
                if body:
                    self._send_file(f, 0, st.st_size)
                return
            if span == UNSATISFIABLE:
                self._headers(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                              "text/plain; charset=utf-8", 0, f"bytes */{st.st_size}")
                return
            first, last = span
            self._headers(HTTPStatus.PARTIAL_CONTENT, content_type(path), last - first + 1,
                          f"bytes {first}-{last}/{st.st_size}")
            if body:
                self._send_file(f, first, last - first + 1)

    def _send_file(self, f: io.BufferedReader, offset: int, size: int) -> None:
        """``size`` bytes of ``f`` from ``offset``, within IO_TIMEOUT plus
        the time they take at MIN_SEND_RATE, and no IO_TIMEOUT without
        progress: a client that reads slower is dropped (TimeoutError)."""
        deadline = time.monotonic() + self.server.io_timeout + size / MIN_SEND_RATE
        conn = self.connection
        conn.setblocking(False)
        sent = 0
        with selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_WRITE)
            while sent < size:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(min(left, self.server.io_timeout)):
                    # too slow: reset, so what is queued for it is dropped too
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    raise TimeoutError("the client reads too slowly")
                try:
                    n = os.sendfile(conn.fileno(), f.fileno(), offset + sent,
                                    min(_SEND_CHUNK, size - sent))
                except BlockingIOError:
                    continue
                if n == 0:
                    return  # the file shrank: the client sees a short answer
                sent += n


UNSATISFIABLE = (-1, -1)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range ``header`` asks for, as (first, last) inclusive
    (RFC 9110, section 14.1.2: ``bytes=A-B``, ``bytes=A-``, ``bytes=-N``);
    ``UNSATISFIABLE`` when it cannot be satisfied; None to send the whole
    file (no Range, several ranges, or a header this server does not read)."""
    if header is None:
        return None
    spec = header.strip()
    if not spec.startswith("bytes=") or "," in spec:
        return None
    first_text, sep, last_text = spec[len("bytes="):].strip().partition("-")
    if not sep or not (first_text or last_text) or not all(
            t == "" or (t.isascii() and t.isdigit() and len(t) <= 20)
            for t in (first_text, last_text)):
        return None
    if first_text == "":  # the last N bytes
        n = int(last_text)
        return UNSATISFIABLE if n == 0 or size == 0 else (max(0, size - n), size - 1)
    first = int(first_text)
    last = size - 1 if last_text == "" else min(int(last_text), size - 1)
    if last_text != "" and int(last_text) < first:
        return None
    return UNSATISFIABLE if first >= size else (first, last)


@dataclass
class _Pending:
    """A connection whose request head is still arriving."""

    address: Any
    deadline: float
    head: bytearray = field(default_factory=bytearray)


class SiteServer:
    """The page and the bundles of ``root`` (see the module docstring).
    Not started: ``serve_forever()``, then ``shutdown()`` from another
    thread, and ``server_close()``."""

    def __init__(self, root: Path, site: dict[str, bytes], *, host: str, port: int,
                 quiet: bool = False, workers: int = WORKERS,
                 max_connections: int = MAX_CONNECTIONS, head_timeout: float = HEAD_TIMEOUT,
                 io_timeout: float = IO_TIMEOUT, csp: str = CONTENT_SECURITY_POLICY) -> None:
        self.root = root.resolve()
        self.site = dict(site)
        self.csp = csp
        self.quiet = quiet
        self.max_connections = max_connections
        self.head_timeout = head_timeout
        self.io_timeout = io_timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(str(root), f"cannot open the folder: {exc.strerror or exc}") from exc
        try:
            self.socket = socket.create_server((host, port), family=family, backlog=128)
        except OSError as exc:
            os.close(self._root_fd)
            raise InputError(f"{host}:{port}", f"cannot listen: {exc.strerror or exc}") from exc
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self.hosts = HostCheck(host, self.server_address[0], self.server_address[1])
        self._manifests: collections.OrderedDict[tuple[int, ...], frozenset[str]] = \
            collections.OrderedDict()
        self._lock = threading.Lock()
        self._open = 0  # connections accepted and not yet closed
        self._jobs: collections.deque[tuple[socket.socket, bytes, Any]] = collections.deque()
        self._job_ready = threading.Condition(self._lock)
        self._closing = False
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._workers = [threading.Thread(target=self._work, name=f"zksolv-serve-{i}",
                                          daemon=True) for i in range(workers)]
        for t in self._workers:
            t.start()

    # ---------------------------------------------------------------- files

    def open_public(self, url_path: str) -> tuple[int, os.stat_result] | None:
        """(fd, stat) of the file ``url_path`` names if it is served (the
        module docstring's rules), else None. The caller closes fd."""
        parts = url_path.split("/")
        if parts[0] != "" or len(url_path) > MAX_PATH_CHARS:
            return None
        parts = parts[1:]
        if not parts or not all(_plain_name(p) for p in parts) or parts[-1] not in BUNDLE_FILES:
            return None
        try:
            folder = self._open_folder(parts[:-1])
        except (OSError, ValueError, _NotPublic):
            return None
        try:
            if parts[-1] not in self._bundle_files(folder):
                return None
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IROTH:
                os.close(fd)
                return None
            return fd, st
        except OSError:
            return None
        finally:
            os.close(folder)

    def _open_folder(self, parts: list[str]) -> int:
        """A descriptor of the folder ``parts`` names under the root, after
        resolving symlinks (which must stay inside the root); every folder
        below the root is opened one component at a time without following
        links and must be public (o+rx) and not hidden."""
        real = os.path.realpath(os.path.join(self.root, *parts), strict=True)
        if os.path.commonpath([real, self.root]) != str(self.root):
            raise _NotPublic(real)
        rel = os.path.relpath(real, self.root)
        components = [] if rel == "." else rel.split(os.sep)
        fd = os.dup(self._root_fd)
        try:
            for name in components:
                if not _plain_name(name):
                    raise _NotPublic(name)
                inner = os.open(name, _FOLDER_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
                if os.fstat(fd).st_mode & _PUBLIC_FOLDER != _PUBLIC_FOLDER:
                    raise _NotPublic(name)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _bundle_files(self, folder: int) -> frozenset[str]:
        """The files served from the open folder ``folder`` (none when it
        is not a bundle), cached by the manifest's identity and times."""
        try:
            fd = os.open(MANIFEST_FILE, _FILE_FLAGS, dir_fd=folder)
        except OSError:
            return frozenset()
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if (not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IROTH
                    or st.st_size > MAX_MANIFEST_BYTES):
                return frozenset()
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            with self._lock:
                names = self._manifests.get(key)
                if names is not None:
                    self._manifests.move_to_end(key)
                    return names
            names = listed_files(f.read(MAX_MANIFEST_BYTES + 1))
        with self._lock:
            self._manifests[key] = names
            while len(self._manifests) > MANIFEST_CACHE:
                self._manifests.popitem(last=False)
        return names

    def bundles(self, limit: int = 20, max_folders: int = 10_000) -> list[str]:
        """Up to ``limit`` bundle folders that are served, as paths relative
        to the root (``.`` for the root itself), looking at no more than
        ``max_folders`` folders and following no folder symlink."""
        found: list[str] = []
        seen = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if _plain_name(d))
            seen += 1
            rel = Path(dirpath).relative_to(self.root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            if MANIFEST_FILE in filenames:
                opened = self.open_public(f"/{prefix}{MANIFEST_FILE}")
                if opened is not None:
                    os.close(opened[0])
                    found.append(rel)
            if len(found) >= limit or seen >= max_folders:
                break
        return found

    # ---------------------------------------------------------- connections

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept connections and read their heads until ``shutdown()``."""
        self._stop.clear()
        self._stopped.clear()
        sel = selectors.DefaultSelector()
        pending: dict[socket.socket, _Pending] = {}  # in the order accepted
        try:
            self.socket.setblocking(False)
            sel.register(self.socket, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                timeout = poll_interval
                if pending:
                    first = next(iter(pending.values()))
                    timeout = max(0.0, min(timeout, first.deadline - time.monotonic()))
                for key, _ in sel.select(timeout):
                    conn = key.fileobj
                    if conn is self.socket:
                        self._accept(sel, pending)
                    elif conn is self._wake_r:
                        self._wake_r.recv(64)
                    else:
                        assert isinstance(conn, socket.socket)
                        self._read_head(sel, pending, conn)
                now = time.monotonic()
                while pending:
                    conn, p = next(iter(pending.items()))
                    if p.deadline > now:
                        break
                    self._drop(sel, pending, conn)
        finally:
            for conn in list(pending):
                self._drop(sel, pending, conn)
            sel.close()
            self._stopped.set()

    def _accept(self, sel: selectors.BaseSelector, pending: dict[socket.socket, _Pending]) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES and pending:
                    self._drop(sel, pending, next(iter(pending)))  # make room
                return
            with self._lock:
                full = self._open >= self.max_connections
            if full and pending:
                self._drop(sel, pending, next(iter(pending)))  # the oldest still idle
            elif full:
                conn.close()  # every slot is serving a request
                continue
            with self._lock:
                self._open += 1
            conn.setblocking(False)
            pending[conn] = _Pending(address, time.monotonic() + self.head_timeout)
            sel.register(conn, selectors.EVENT_READ)

    def _read_head(self, sel: selectors.BaseSelector, pending: dict[socket.socket, _Pending],
                   conn: socket.socket) -> None:
        p = pending[conn]
        try:
            chunk = conn.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        p.head += chunk
        if not chunk or len(p.head) > MAX_HEAD_BYTES:
            self._drop(sel, pending, conn)
        elif b"\r\n\r\n" in p.head or b"\n\n" in p.head:
            sel.unregister(conn)
            del pending[conn]
            conn.setblocking(True)
            conn.settimeout(self.io_timeout)
            with self._lock:
                self._jobs.append((conn, bytes(p.head), p.address))
                self._job_ready.notify()

    def _drop(self, sel: selectors.BaseSelector, pending: dict[socket.socket, _Pending],
              conn: socket.socket) -> None:
        sel.unregister(conn)
        del pending[conn]
        self._close(conn)

    def _close(self, conn: socket.socket) -> None:
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()
        with self._lock:
            self._open -= 1

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs and not self._closing:
                    self._job_ready.wait()
                if self._closing:
                    return
                conn, head, address = self._jobs.popleft()
            try:
                _Handler((conn, head), address, self)  # type: ignore[arg-type]
            except OSError:
                pass  # the client went away
            except Exception as exc:  # noqa: BLE001 - one request's bug must not stop a worker
                if not self.quiet:
                    print(f"zksolv serve: error answering {address[0]}: {exc!r}",
                          file=sys.stderr)
            finally:
                self._close(conn)

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (from another thread) and wait for it."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket, the queued connections and the pool."""
        with self._lock:
            self._closing = True
            jobs = list(self._jobs)
            self._jobs.clear()
            self._job_ready.notify_all()
        for conn, _, _ in jobs:
            self._close(conn)
        for t in self._workers:
            t.join(timeout=1.0)
        self.socket.close()
        self._wake_r.close()
        self._wake_w.close()
        try:
            os.close(self._root_fd)
        except OSError:
            pass
