"""The account holder's page: a static site that checks an inclusion proof in
the browser, with nothing to install.

The files (HTML, CSS, JavaScript modules, no build step, no third-party
code) ship inside this package; ``write_site`` copies them out for the
operator to publish beside its bundles (``zksolv site OUT_DIR``), and
``make_server`` serves the site and the bundles under a folder on localhost for
trying it (``zksolv serve DIR``).

Modules of the page:

=================  =====================================================
``bls12381.js``    BLS12-381 G1 in BigInt: strict decoding, addition,
                   scalar multiplication, encoding (sources cited inside)
``strictjson.js``  JSON with exact integers, no duplicate keys; Python's
                   canonical serialisation of the manifest
``bytes.js``       byte strings: concatenation, comparison, big-endian
                   integers
``inclusion.js``   the holder's check: the CLI's checks and failure tags
                   (``zksolv inclusion verify``), DOM-free
``verdict.js``     what the holder is told: the verdict and what was and
                   was not checked, DOM-free
``words.json``     one wording per check tag, shared with the CLI
                   (``zksolv.site.words`` reads it)
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
``app.js``         the form, the report, and the data-file check
                   (``checkworker.js``) in a Worker
=================  =====================================================

Beside them the site publishes the generator table
(``generators/chunk-NNNN.bin``), which the command line derives (or reads
from its verified cache) and passes in: this package does no cryptography.

``zksolv serve`` (``server.py``) serves the site's files and, in each bundle
folder under the served folder, exactly manifest.json, manifest.sig and the
data files the manifest lists (whole, or one byte range), and the generator
table: nothing else, ever (no snapshot, work area,
database, key, hidden file, nor anything in a folder others cannot read).
It checks the Host header, and idle or slow clients cost no thread. It sends
a Content-Security-Policy that allows no connection beyond the page's own
origin (the page carries the same policy in a meta tag, for operators' own
servers).
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from zksolv.errors import InputError
from zksolv.safeio import write_atomic

from .server import CONTENT_SECURITY_POLICY as CONTENT_SECURITY_POLICY
from .server import SiteServer

SITE_FILES = ("index.html", "style.css", "app.js", "inclusion.js", "bls12381.js", "strictjson.js",
              "verdict.js", "words.json",
              "keccak.js", "transcript.js", "msm.js", "generators.js", "rangeproof.js",
              "proofcheck.js", "checkworker.js", "msmworker.js", "h2c.js", "bytes.js",
              "reserves.js", "ownership.js", "registry.js")
REGISTRY_FILE = "registry.json"
REGISTRY_FORMAT = "zksolv-site-registry"
_CONNECT_SELF = "connect-src 'self'"


class SiteRegistry(NamedTuple):
    """The public registry the operator's site names (docs/holder-page.md,
    *The public registry*): the contract's address, a node's JSON-RPC URL
    the page asks, and the chain id that node must answer."""

    registry: str
    rpc: str
    chain_id: int

    @property
    def origin(self) -> str:
        """The RPC URL's origin, the one connection the page's policy adds."""
        u = urllib.parse.urlsplit(self.rpc)
        return f"{u.scheme}://{u.netloc}"

    def to_bytes(self) -> bytes:
        return (json.dumps({"format": REGISTRY_FORMAT, "registry": self.registry,
                            "rpc": self.rpc, "chain_id": self.chain_id}, indent=2) + "\n").encode()


def site_registry(registry: str, rpc: str, chain_id: int) -> SiteRegistry:
    """The registry named by ``zksolv site --registry --rpc --chain-id``,
    checked: a 0x address (written lowercase), an http or https URL without
    credentials, query or fragment, a chain id in [1, 2^63)."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", registry):
        raise InputError("--registry", f"not an address (0x and 40 hex digits): {registry!r}")
    try:
        u = urllib.parse.urlsplit(rpc)
        port = u.port
    except ValueError as exc:
        raise InputError("--rpc", f"not a URL: {rpc!r} ({exc})") from exc
    if (u.scheme not in ("http", "https") or not u.hostname or u.username is not None
            or u.password is not None or u.query or u.fragment
            or not re.fullmatch(r"[A-Za-z0-9.:\[\]/_~%-]*", u.netloc + u.path)):
        raise InputError("--rpc", "an http:// or https:// URL of a node, without credentials, "
                                  f"query or fragment: {rpc!r}")
    del port
    if not 1 <= chain_id < 1 << 63:
        raise InputError("--chain-id", f"out of range [1, 2^63): {chain_id}")
    return SiteRegistry(registry.lower(), rpc, chain_id)


def content_security_policy(registry: SiteRegistry | None = None) -> str:
    """The page's policy: no connection beyond its own origin, and the
    named node's origin when the site names a registry."""
    if registry is None:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace(_CONNECT_SELF, f"{_CONNECT_SELF} {registry.origin}")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def site_files(registry: SiteRegistry | None = None) -> dict[str, bytes]:
    """The page's files by name; with ``registry``, registry.json too and
    index.html's policy allowing the node's origin."""
    root = resources.files(__name__)
    files = {name: root.joinpath(name).read_bytes() for name in SITE_FILES}
    if registry is not None:
        html = files["index.html"].decode()
        if html.count(_CONNECT_SELF) != 1:
            raise ValueError("index.html: no single connect-src 'self'")
        policy = f"{_CONNECT_SELF} {registry.origin}"
        files["index.html"] = html.replace(_CONNECT_SELF, policy).encode()
        files[REGISTRY_FILE] = registry.to_bytes()
    return files


def _extra_path(name: str) -> bool:
    """A generator table name: ``generators/`` and one plain file name."""
    parts = name.split("/")
    return (len(parts) == 2 and parts[0] == "generators" and parts[1].endswith(".bin")
            and parts[1].replace("-", "").replace(".", "").isalnum())


def _checked_extra(extra: Mapping[str, bytes] | None) -> dict[str, bytes]:
    out = dict(extra or {})
    for name in out:
        if not _extra_path(name):
            raise ValueError(f"not a generator table file name: {name!r}")
    return out


def write_site(out: str | os.PathLike[str],
               extra: Mapping[str, bytes] | None = None,
               registry: SiteRegistry | None = None) -> list[Path]:
    """Write the site's files into ``out`` (created if missing), each
    atomically (a fresh temporary name, then rename) and world-readable:
    they are public. ``extra``: the generator table (``generators/NAME``,
    see ``zksolv.cli.site.generator_table``); ``registry``: the public
    registry the page asks (registry.json). Other files in ``out`` are left
    alone."""
    dest = Path(out)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(dest), f"cannot create the directory: {exc.strerror or exc}") from exc
    if not dest.is_dir():
        raise InputError(str(dest), "not a directory")
    table = _checked_extra(extra)
    written = [write_atomic(dest / name, data, mode=0o644)
               for name, data in site_files(registry).items()]
    for name, data in table.items():
        folder = dest / name.split("/")[0]
        folder.mkdir(mode=0o755, exist_ok=True)
        folder.chmod(0o755)
        written.append(write_atomic(dest / name, data, mode=0o644))
    return written


def make_server(root: str | os.PathLike[str], *, host: str = DEFAULT_HOST,
                port: int = DEFAULT_PORT, quiet: bool = False,
                extra: Mapping[str, bytes] | None = None,
                registry: SiteRegistry | None = None, **limits: Any) -> SiteServer:
    """A server for the site, ``extra`` (the generator table) and the
    bundles under ``root`` (not started), naming ``registry`` if given;
    ``limits``: ``workers``, ``max_connections``, ``head_timeout``,
    ``io_timeout`` (``server.py``)."""
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(str(folder), "not a directory")
    return SiteServer(folder, {**site_files(registry), **_checked_extra(extra)}, host=host,
                      port=port, quiet=quiet, csp=content_security_policy(registry), **limits)


def base_url(server: SiteServer) -> str:
    """``http://HOST:PORT/`` of a server (an IPv6 address in brackets)."""
    host, port = server.server_address
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


@contextmanager
def serving(root: str | os.PathLike[str], *, host: str = DEFAULT_HOST, port: int = 0,
            extra: Mapping[str, bytes] | None = None, registry: SiteRegistry | None = None,
            **limits: Any) -> Iterator[str]:
    """Serve ``root`` and the site (and ``extra``) in a background thread;
    yields the base URL."""
    server = make_server(root, host=host, port=port, quiet=True, extra=extra, registry=registry,
                         **limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
