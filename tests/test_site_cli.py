"""``zksolv site`` and ``zksolv serve``: the files written, what the server
serves and refuses, and the synthetic proof the page benchmark uses."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_epoch_support import run

from zksolv.cli.bench_site import synthetic_inclusion
from zksolv.cli.site import TABLE_CHUNKS
from zksolv.site import CONTENT_SECURITY_POLICY, SITE_FILES, serving, site_files
from zksolv.verifier.inclusion import parse_document, verify_inclusion


def test_site_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "public"
    res = run("site", str(out))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*SITE_FILES, "generators"])
    assert len(list((out / "generators").iterdir())) == TABLE_CHUNKS  # the generator table
    assert stat.S_IMODE((out / "generators").stat().st_mode) == 0o755
    files = site_files()
    for name in SITE_FILES:
        assert (out / name).read_bytes() == files[name]
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644  # public
    (out / "bundles").mkdir()
    (out / "app.js").write_text("stale")
    assert run("site", str(out)).exit_code == 0  # rewrites its own files, keeps the rest
    assert (out / "app.js").read_bytes() == files["app.js"] and (out / "bundles").is_dir()
    (tmp_path / "file").write_text("x")
    res = run("site", str(tmp_path / "file"))
    assert res.exit_code == 2 and "is a file" in res.output


def test_page_loads_only_its_own_files() -> None:
    """No third-party code and no address in the page's files (but in comments
    citing sources): every import and link is one of the site's own files."""
    files = site_files()
    html = files["index.html"].decode()
    assert CONTENT_SECURITY_POLICY.split("; frame-ancestors")[0] in html
    assert re.findall(r'<script[^>]*src="([^"]+)"', html) == ["app.js"]
    assert re.findall(r'<link[^>]*href="([^"]+)"', html) == ["style.css"]
    imports = set()
    for name, data in files.items():
        text = data.decode()
        for line in text.splitlines():
            if "://" in line:
                assert name.endswith(".js") and line.lstrip().startswith("//"), (name, line)
        assert "import(" not in text and "importScripts" not in text, name
        for target in re.findall(r'(?:\bfrom|^import)\s+"([^"]+)"', text, re.M):
            assert target.startswith("./") and target[2:] in SITE_FILES, (name, target)
            imports.add(target[2:])
    # every module is imported by another but the page's and the workers' entry points
    assert imports == {n for n in SITE_FILES if n.endswith(".js")} - {
        "app.js", "checkworker.js", "msmworker.js"}


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url) as r:  # noqa: S310 - a local test server
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, b"", dict(exc.headers)


def test_serve_serves_bundles_not_private_files(site_epochs: Path, tmp_path: Path) -> None:
    d = site_epochs
    assert stat.S_IMODE((d / "b1.inclusion.sqlite").stat().st_mode) == 0o600
    with serving(d) as url:
        status, body, headers = _get(url)
        assert status == 200 and body == site_files()["index.html"]
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["Content-Type"].startswith("text/html")
        status, body, headers = _get(url + "inclusion.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        status, body, _ = _get(url + "b2/manifest.json")
        assert status == 200 and body == (d / "b2" / "manifest.json").read_bytes()
        assert _get(url + "b2/leaves.bin")[0] == 200
        for private in ("b1.inclusion.sqlite", "acct-4-e2.json"):  # mode 0600
            assert _get(url + private)[0] == 404, private
        for bad in ("b2/../b1/manifest.json", "%2e%2e/etc/passwd", "b2/", "nope", ".hidden",
                    "b2/%00"):
            assert _get(url + bad)[0] == 404, bad
    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    os.chmod(tmp_path / "secret.txt", 0o644)
    (tmp_path / "inside" / "link").symlink_to(tmp_path / "secret.txt")
    with serving(tmp_path / "inside") as url:
        assert _get(url + "link")[0] == 404  # a symlink leaving the folder


def _get_range(url: str, spec: str) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Range": spec})
    try:
        with urllib.request.urlopen(req) as r:  # noqa: S310 - a local test server
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, b"", dict(exc.headers)


def test_serve_answers_byte_ranges(site_epochs: Path) -> None:
    """The page fetches one shard's records by Range: exactly those bytes
    (206), the whole file for what this server does not read, 416 beyond
    the end."""
    data = (site_epochs / "b2" / "leaves.bin").read_bytes()
    size = len(data)
    with serving(site_epochs) as url:
        leaves = url + "b2/leaves.bin"
        for spec, first, last in (("bytes=0-79", 0, 79), ("bytes=80-159", 80, 159),
                                  (f"bytes={size - 5}-", size - 5, size - 1),
                                  ("bytes=-7", size - 7, size - 1),
                                  (f"bytes=10-{size + 100}", 10, size - 1)):
            status, body, headers = _get_range(leaves, spec)
            assert status == 206, spec
            assert body == data[first:last + 1], spec
            assert headers["Content-Range"] == f"bytes {first}-{last}/{size}", spec
            assert headers["Content-Length"] == str(last - first + 1)
        for spec in ("bytes=0-1,5-6", "bytes=5-2", "items=0-1", "bytes=x-1", "bytes=-"):
            status, body, headers = _get_range(leaves, spec)
            assert (status, body) == (200, data), spec
            assert headers["Accept-Ranges"] == "bytes"
        status, _, headers = _get_range(leaves, f"bytes={size}-")
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
        assert _get_range(url + "b1.inclusion.sqlite", "bytes=0-10")[0] == 404  # still private
        # nothing beyond the range goes on the wire (read to the connection's end)
        host, port = urlsplit(url).hostname, urlsplit(url).port
        with socket.create_connection((host, port)) as conn:
            conn.sendall(f"GET /b2/leaves.bin HTTP/1.0\r\nHost: {host}:{port}\r\n"
                         "Range: bytes=3-12\r\n\r\n".encode())
            raw = b""
            while chunk := conn.recv(1 << 16):
                raw += chunk
        assert raw.split(b"\r\n\r\n", 1)[1] == data[3:13]


def test_serve_command_binds_localhost(site_epochs: Path) -> None:
    res = run("serve", "--help")
    assert res.exit_code == 0 and "127.0.0.1" in res.output
    res = run("serve", str(site_epochs / "nope"))
    assert res.exit_code == 2
    proc = subprocess.Popen([sys.executable, "-m", "zksolv.cli.main", "serve", str(site_epochs),
                             "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split("at ")[1].split()[0]
        assert _get(url + "b1/manifest.sig")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_command_names_a_registry(site_epochs: Path) -> None:
    """zksolv serve --registry --rpc --chain-id: the page gets registry.json
    and a policy that lets it reach that node's origin (and no other), as a
    site written by zksolv site --registry does; the three go together."""
    reg = ["--registry", "0x" + "ab" * 20, "--rpc", "http://127.0.0.1:8545/x", "--chain-id",
           "31337"]
    res = run("serve", str(site_epochs), *reg[:4])
    assert res.exit_code == 2 and "go together" in res.output
    proc = subprocess.Popen([sys.executable, "-m", "zksolv.cli.main", "serve", str(site_epochs),
                             "--port", "0", *reg], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        url = proc.stderr.readline().split("at ")[1].split()[0]
        status, body, headers = _get(url + "registry.json")
        assert status == 200
        assert json.loads(body) == {"format": "zksolv-site-registry", "registry": "0x" + "ab" * 20,
                                    "rpc": "http://127.0.0.1:8545/x", "chain_id": 31337}
        csp = _get(url)[2]["Content-Security-Policy"]
        assert "connect-src 'self' http://127.0.0.1:8545" in csp and csp != CONTENT_SECURITY_POLICY
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("depth,amounts", [(1, (0,)), (6, (5, (1 << 64) - 1)), (20, (1,))])
def test_synthetic_proof_verifies_in_python(depth: int, amounts: tuple[int, ...]) -> None:
    """The benchmark's synthetic proof is one the CLI accepts, and only for
    its own account and bundle hash."""
    syn = synthetic_inclusion(depth, amounts=amounts, rng=random.Random(depth))
    report = verify_inclusion(parse_document(syn.document), account_id=syn.account_id,
                              bundle_hash=syn.bundle_hash)
    assert tuple(report.amounts.values()) == amounts
    from zksolv.errors import VerificationError

    with pytest.raises(VerificationError) as exc:
        verify_inclusion(parse_document(syn.document), account_id="someone-else",
                         bundle_hash=syn.bundle_hash)
    assert exc.value.check == "inclusion-account"
