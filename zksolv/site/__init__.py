"""The account holder's page: a static site that checks an inclusion proof in
the browser, with nothing to install.

The files (HTML, CSS, JavaScript modules, no build step, no third-party
code) ship inside this package; ``write_site`` copies them out for the
operator to publish beside its bundles (``zksolv site OUT_DIR``), and
``make_server`` serves a folder of bundles plus the site on localhost for
trying it (``zksolv serve DIR``).

Modules of the page:

=================  =====================================================
``bls12381.js``    BLS12-381 G1 in BigInt: strict decoding, addition,
                   scalar multiplication, encoding (sources cited inside)
``strictjson.js``  JSON with exact integers, no duplicate keys; Python's
                   canonical serialisation of the manifest
``inclusion.js``   the holder's check: the CLI's checks and failure tags
                   (``zksolv inclusion verify``), DOM-free
``keccak.js``      SHAKE-256 (Keccak-f[1600] on 32-bit halves)
``transcript.js``  the Fiat-Shamir transcript of docs/protocol.md
``msm.js``         F_p in Montgomery form, fast decoding, the bucket-method
                   multi-scalar multiplication
``generators.js``  g, h, u and the pinned generator table
``h2c.js``         RFC 9380 hash-to-curve (G1), for spot checks of the table
``rangeproof.js``  aggregated Bulletproofs verification
``proofcheck.js``  the bundle's proofs the page checks (own shard, a random
                   sample of shards, solvency), DOM-free
``checkworker.js`` the Web Worker around it, and its message API
``msmworker.js``   helper workers sharing its multi-scalar multiplication
``app.js``         the form and the report
=================  =====================================================

Beside them the site publishes the generator table
(``generators/chunk-NNNN.bin``), which the command line derives (or reads
from its verified cache) and passes in: this package does no cryptography.

The server serves the site's files at ``/`` and the folder's files under
their paths, but only regular files that are readable by others and not
hidden, so the private inclusion database (mode 0600) and keys that may sit
beside the bundles are never served. It sends a Content-Security-Policy that
allows no connection beyond the page's own origin (the page carries the
same policy in a meta tag, for operators' own servers).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from zksolv.errors import InputError
from zksolv.safeio import FileReadError, open_regular, write_atomic

SITE_FILES = ("index.html", "style.css", "app.js", "inclusion.js", "bls12381.js", "strictjson.js",
              "keccak.js", "transcript.js", "msm.js", "generators.js", "rangeproof.js",
              "proofcheck.js", "checkworker.js", "msmworker.js", "h2c.js")
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
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def site_files() -> dict[str, bytes]:
    """The page's files by name."""
    root = resources.files(__name__)
    return {name: root.joinpath(name).read_bytes() for name in SITE_FILES}


def _extra_path(name: str) -> bool:
    """A generator table name: ``generators/`` and one plain file name."""
    parts = name.split("/")
    return (len(parts) == 2 and parts[0] == "generators" and parts[1].endswith(".bin")
            and parts[1].replace("-", "").replace(".", "").isalnum())


def write_site(out: str | os.PathLike[str],
               extra: Mapping[str, bytes] | None = None) -> list[Path]:
    """Write the site's files into ``out`` (created if missing), each
    atomically (a fresh temporary name, then rename) and world-readable:
    they are public. ``extra``: the generator table (``generators/NAME``,
    see ``zksolv.cli.site.generator_table``). Other files in ``out`` are
    left alone."""
    dest = Path(out)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(dest), f"cannot create the directory: {exc.strerror or exc}") from exc
    if not dest.is_dir():
        raise InputError(str(dest), "not a directory")
    written = [write_atomic(dest / name, data, mode=0o644) for name, data in site_files().items()]
    for name, data in (extra or {}).items():
        if not _extra_path(name):
            raise ValueError(f"not a generator table file name: {name!r}")
        folder = dest / name.split("/")[0]
        folder.mkdir(mode=0o755, exist_ok=True)
        folder.chmod(0o755)
        written.append(write_atomic(dest / name, data, mode=0o644))
    return written


class _Handler(BaseHTTPRequestHandler):
    server: _SiteServer
    server_version = "zksolv"
    sys_version = ""

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
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _not_found(self, body: bool) -> None:
        msg = b"not found\n"
        self._headers(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", len(msg))
        if body:
            self.wfile.write(msg)

    def _serve(self, *, body: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/", "/index.html") or path.lstrip("/") in self.server.site:
            name = "index.html" if path == "/" else path.lstrip("/")
            data = self.server.site[name]
            self._headers(HTTPStatus.OK, _content_type(name), len(data))
            if body:
                self.wfile.write(data)
            return
        if path.lstrip("/") in self.server.extra:
            data = self.server.extra[path.lstrip("/")]
            self._headers(HTTPStatus.OK, "application/octet-stream", len(data))
            if body:
                self.wfile.write(data)
            return
        target = self.server.resolve(path)
        if target is None:
            self._not_found(body)
            return
        try:
            fd, st = open_regular(target, what="file")
        except FileReadError:
            self._not_found(body)
            return
        with os.fdopen(fd, "rb") as f:
            if not st.st_mode & stat.S_IROTH:
                self._not_found(body)  # private (an inclusion database, a key)
                return
            span = byte_range(self.headers.get("Range"), st.st_size)
            if span is None:
                self._headers(HTTPStatus.OK, _content_type(target.name), st.st_size)
                if body:
                    shutil.copyfileobj(f, self.wfile, st.st_size)
                return
            if span == UNSATISFIABLE:
                self._headers(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "text/plain", 0,
                              f"bytes */{st.st_size}")
                return
            first, last = span
            self._headers(HTTPStatus.PARTIAL_CONTENT, _content_type(target.name),
                          last - first + 1, f"bytes {first}-{last}/{st.st_size}")
            if body:
                f.seek(first)
                left = last - first + 1
                while left:
                    chunk = f.read(min(left, 1 << 16))
                    if not chunk:  # the file shrank: the client sees a short body
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)


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


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(posixpath.splitext(name)[1], "application/octet-stream")


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, host: str, port: int, quiet: bool,
                 extra: Mapping[str, bytes] | None = None) -> None:
        self.root = root.resolve()
        self.site = site_files()
        self.extra = dict(extra or {})
        self.quiet = quiet
        super().__init__((host, port), _Handler)
        for name in self.extra:
            if not _extra_path(name):
                raise ValueError(f"not a generator table file name: {name!r}")

    def resolve(self, url_path: str) -> Path | None:
        """The file under the served folder for ``url_path``, or None for a
        hidden name, a traversal, or anything leaving the folder."""
        parts = url_path.split("/")[1:]
        if not parts or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p
                            or "\0" in p for p in parts):
            return None
        target = self.root.joinpath(*parts)
        try:
            real = target.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self.root):
            return None
        return real


def make_server(root: str | os.PathLike[str], *, host: str = DEFAULT_HOST,
                port: int = DEFAULT_PORT, quiet: bool = False,
                extra: Mapping[str, bytes] | None = None) -> ThreadingHTTPServer:
    """An HTTP server for the site, ``extra`` (the generator table) and the
    folder ``root`` (not started). Files of ``root`` are served whole or, for
    one ``Range: bytes=...``, in part (206), so the page fetches only the
    records it checks."""
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(str(folder), "not a directory")
    try:
        return _SiteServer(folder, host, port, quiet, extra)
    except OSError as exc:
        raise InputError(f"{host}:{port}", f"cannot listen: {exc.strerror or exc}") from exc


@contextmanager
def serving(root: str | os.PathLike[str], *, host: str = DEFAULT_HOST,
            port: int = 0, extra: Mapping[str, bytes] | None = None) -> Iterator[str]:
    """Serve ``root`` and the site (and ``extra``) in a background thread;
    yields the base URL."""
    server = make_server(root, host=host, port=port, quiet=True, extra=extra)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
