"""``zksolv serve`` serves the page and bundle files, nothing else: not a
snapshot beside or inside a bundle folder, not a work area, database or key,
not a file inside a folder others cannot read, not a symlink that leaves its
bundle; it refuses a Host header that does not name it (DNS rebinding), and
idle or slow connections cost no thread and are dropped."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from zksolv.circuits import bundle as layout
from zksolv.site import SITE_FILES, make_server, serving, site_files
from zksolv.site import server as srv

BUNDLE = ("manifest.json", "manifest.sig", "leaves.bin", "range.bin", "solvency.bin")


def _get(url: str, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method)  # noqa: S310 - a local test server
    try:
        with urllib.request.urlopen(req, timeout=20) as r:  # noqa: S310
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _raw(url: str, head: bytes) -> bytes:
    """The whole answer to the request head ``head`` sent as it is."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as s:
        s.sendall(head)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _public(path: Path, mode: int = 0o644) -> Path:
    os.chmod(path, mode)
    return path


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return _public(path, mode)


def _copy_bundle(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)  # modes kept: folder 0755, files 0644
    return dest


@pytest.fixture
def run_dir(site_epochs: Path, tmp_path: Path) -> Path:
    """The layout ``zksolv simulate --prove --out run`` writes: snapshots
    (world-readable files in a 0700 folder), bundles/ (public), private/
    (0700, the inclusion databases), metrics; plus the same snapshot in a
    0755 folder and a bundle copied into private/."""
    run = tmp_path / "run"
    run.mkdir(mode=0o755)
    os.chmod(run, 0o755)
    _copy_bundle(site_epochs / "b1", run / "bundles" / "epoch-000001")
    _copy_bundle(site_epochs / "b2", run / "bundles" / "epoch-000002")
    os.chmod(run / "bundles", 0o755)
    for epoch, mode in (("epoch-000001", 0o700), ("epoch-000002", 0o755)):
        _write(run / epoch / "header.json", '{"format": "zksolv-snapshot"}')
        _write(run / epoch / "accounts.csv", "account_id,USD\nalice,5000\n")
        os.chmod(run / epoch, mode)
    _write(run / "private" / "epoch-000001.inclusion.sqlite", "secrets", 0o600)
    _write(run / "private" / "notes.txt", "private notes, world-readable by mistake")
    _copy_bundle(site_epochs / "b1", run / "private" / "copy")
    os.chmod(run / "private", 0o700)
    for name in ("metrics.csv", "metrics.json"):
        _write(run / name, "epoch,bad_debt\n")
    return run


def test_bundle_names_are_the_formats() -> None:
    assert srv.BUNDLE_FILES == (layout.MANIFEST_FILE, layout.SIGNATURE_FILE,
                                *layout.DATA_FILES_MARGIN)
    assert srv.MAX_MANIFEST_BYTES == layout.MAX_MANIFEST_BYTES


def test_simulate_prove_run_serves_bundles_only(run_dir: Path) -> None:
    """The reported leak: GET /epoch-000001/accounts.csv on `serve run/`
    answered every account's balances (a 0644 file in a 0700 folder)."""
    with serving(run_dir) as url:
        for epoch in ("epoch-000001", "epoch-000002"):
            for name in BUNDLE:
                status, body = _get(f"{url}bundles/{epoch}/{name}")
                assert status == 200, (epoch, name)
                assert body == (run_dir / "bundles" / epoch / name).read_bytes()
            for name in ("accounts.csv", "header.json"):
                assert _get(f"{url}{epoch}/{name}")[0] == 404, (epoch, name)
                assert _get(f"{url}{epoch}/{name}", "HEAD")[0] == 404, (epoch, name)
        for private in ("private/epoch-000001.inclusion.sqlite", "private/notes.txt",
                        "private/copy/manifest.json", "private/copy/leaves.bin",
                        "metrics.csv", "metrics.json", "bundles/", "bundles",
                        "bundles/epoch-000001/", "bundles/epoch-000001//manifest.json"):
            assert _get(url + private)[0] == 404, private


def test_stray_private_files_beside_and_in_bundles(site_epochs: Path, tmp_path: Path) -> None:
    """World-readable by mistake, still not served: a leaves database, a work
    area, keys, a snapshot, beside the bundles or inside a bundle folder."""
    root = tmp_path / "pub"
    b1 = _copy_bundle(site_epochs / "b1", root / "b1")
    _write(root / "leaves.sqlite", "every amount, blinding and salt")
    _write(root / "b1.work" / "leaves.sqlite", "every amount, blinding and salt")
    _write(root / "b1.work" / "state.json", "{}")
    _write(root / "b1.work" / "shards" / "00000000.bin", "shard")
    for d in (root / "b1.work", root / "b1.work" / "shards"):
        os.chmod(d, 0o755)
    _write(root / "operator.key", "00" * 32)
    _write(root / "operator.key.pub", "00" * 32)
    _write(root / "s1" / "header.json", "{}")
    _write(root / "s1" / "accounts.csv", "account_id,USD\nalice,5\n")
    os.chmod(root / "s1", 0o755)
    for name in ("accounts.csv", "header.json", "leaves.sqlite", "operator.key", "notes.txt"):
        _write(b1 / name, "private")
    _write(b1 / ".hidden", "private")
    with serving(root) as url:
        assert _get(url + "b1/manifest.json")[0] == 200
        for stray in ("leaves.sqlite", "b1.work/leaves.sqlite", "b1.work/state.json",
                      "b1.work/shards/00000000.bin", "operator.key", "operator.key.pub",
                      "s1/header.json", "s1/accounts.csv", "b1/accounts.csv", "b1/header.json",
                      "b1/leaves.sqlite", "b1/operator.key", "b1/notes.txt", "b1/.hidden",
                      "b1/%2ehidden", "b1.inclusion.sqlite"):
            assert _get(url + stray)[0] == 404, stray


def test_a_folder_is_a_bundle_by_its_manifest(site_epochs: Path, tmp_path: Path) -> None:
    """Files are served from a folder whose manifest names the bundle format,
    and only the data files it lists; a forged manifest is still served (the
    page names what is wrong with it); a manifest that is no bundle's, too
    large, not a regular file or private makes the folder serve nothing."""
    root = tmp_path / "pub"
    manifest = json.loads((site_epochs / "b1" / "manifest.json").read_bytes())
    forged = _copy_bundle(site_epochs / "b1", root / "forged")
    del manifest["files"]["range.bin"]
    manifest["files"]["accounts.csv"] = {"sha256": "00" * 32, "bytes": 5}
    _write(forged / "manifest.json", json.dumps(manifest))
    _write(forged / "accounts.csv", "account_id,USD\nalice,5\n")
    cases = {
        "other": json.dumps({"format": "something-else", "files": {"leaves.bin": {}}}),
        "nofiles": json.dumps({"format": "zksolv-bundle"}),
        "empty": "",
        "deep": '{"format": "zksolv-bundle", "files": {}, "x": ' + "[" * 200_000
                + "]" * 200_000 + "}",
        "big": json.dumps({"format": "zksolv-bundle", "files": {}, "x": "a" * (1 << 20)}),
    }
    for name, text in cases.items():
        _copy_bundle(site_epochs / "b1", root / name)
        _write(root / name / "manifest.json", text)
    _copy_bundle(site_epochs / "b1", root / "private-manifest")
    os.chmod(root / "private-manifest" / "manifest.json", 0o600)
    _copy_bundle(site_epochs / "b1", root / "fifo")
    (root / "fifo" / "manifest.json").unlink()
    os.mkfifo(root / "fifo" / "manifest.json", 0o644)
    with serving(root) as url:
        for name in ("manifest.json", "manifest.sig", "leaves.bin", "solvency.bin"):
            assert _get(f"{url}forged/{name}")[0] == 200, name
        for name in ("range.bin", "accounts.csv"):
            assert _get(f"{url}forged/{name}")[0] == 404, name
        for folder in (*cases, "private-manifest", "fifo"):
            for name in BUNDLE:
                assert _get(f"{url}{folder}/{name}")[0] == 404, (folder, name)


def test_symlinks_that_leave_a_bundle_are_not_served(site_epochs: Path, tmp_path: Path) -> None:
    """A data file that is a symlink (to a hidden file, to another bundle's
    file, out of the root) is not served; a folder symlink inside the root
    is followed, one out of it or into a hidden or private folder is not."""
    root = tmp_path / "pub"
    b1 = _copy_bundle(site_epochs / "b1", root / "b1")
    _copy_bundle(site_epochs / "b2", root / "b2")
    _write(root / ".secret", "hidden")
    _write(b1 / ".hidden", "hidden")
    _write(tmp_path / "outside.bin", "outside")
    for name, target in (("leaves.bin", root / ".secret"), ("range.bin", b1 / ".hidden"),
                         ("solvency.bin", root / "b2" / "solvency.bin"),
                         ("manifest.sig", tmp_path / "outside.bin")):
        (b1 / name).unlink()
        (b1 / name).symlink_to(target)
    _copy_bundle(site_epochs / "b2", root / ".staging" / "b2")
    os.chmod(root / ".staging", 0o755)
    _copy_bundle(site_epochs / "b2", tmp_path / "elsewhere")
    _copy_bundle(site_epochs / "b2", root / "vault" / "b2")
    os.chmod(root / "vault", 0o711)  # searchable, not readable: not public either
    (root / "latest").symlink_to("b2")
    (root / "staged").symlink_to(root / ".staging" / "b2")
    (root / "out").symlink_to(tmp_path / "elsewhere")
    (root / "loop").symlink_to(root / "loop")
    (root / "vaulted").symlink_to(root / "vault" / "b2")
    with serving(root) as url:
        assert _get(url + "b1/manifest.json")[0] == 200
        for name in ("leaves.bin", "range.bin", "solvency.bin", "manifest.sig"):
            assert _get(url + "b1/" + name)[0] == 404, name
        assert _get(url + "latest/leaves.bin") == (200, (root / "b2" / "leaves.bin").read_bytes())
        for bad in ("staged/manifest.json", ".staging/b2/manifest.json", "out/manifest.json",
                    "loop/manifest.json", "vault/b2/manifest.json", "vaulted/manifest.json",
                    "b1/../b2/manifest.json", "%2e%2e/elsewhere/manifest.json"):
            assert _get(url + bad)[0] == 404, bad


def test_the_page_and_its_fetches_are_served(site_epochs: Path) -> None:
    """Everything the page requests: its files at / and by name (GET and
    HEAD), and a bundle's manifest.json and manifest.sig, under a path or as
    the served folder itself (?bundle=.)."""
    files = site_files()
    with serving(site_epochs) as url:
        assert _get(url + "?bundle=b2") == (200, files["index.html"])
        for name in SITE_FILES:
            assert _get(url + name) == (200, files[name]), name
            assert _get(url + name, "HEAD") == (200, b""), name
        for bundle in ("b1", "b2", "m3", "g4"):
            for name in ("manifest.json", "manifest.sig"):
                assert _get(f"{url}{bundle}/{name}?x=1") == \
                    (200, (site_epochs / bundle / name).read_bytes())
    with serving(site_epochs / "b2") as url:
        assert _get(url + "manifest.json")[0] == 200 and _get(url + "leaves.bin")[0] == 200


def test_host_header_must_name_this_server(site_epochs: Path) -> None:
    """DNS rebinding: a page on evil.example that resolves its name to
    127.0.0.1 sends Host: evil.example:PORT and reads nothing."""
    with serving(site_epochs) as url:
        port = urlsplit(url).port
        assert port is not None

        def ask(*hosts: str, path: str = "/b2/manifest.json") -> int:
            head = f"GET {path} HTTP/1.1\r\n" + "".join(f"Host: {h}\r\n" for h in hosts)
            return _status(_raw(url, (head + "Connection: close\r\n\r\n").encode()))

        assert ask(f"127.0.0.1:{port}") == 200
        assert ask(f"localhost:{port}") == 200
        assert ask(f"LOCALHOST:{port}", path="/") == 200
        for bad in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}",
                    "127.0.0.1", f"localhost.:{port}", f"127.0.0.1:{port}x", f"10.0.0.1:{port}",
                    f"127.0.0.1:{port}@evil.example", ""):
            assert ask(bad) == 421, bad
            assert ask(bad, path="/") == 421, bad
        assert ask() == 421  # none
        assert ask(f"127.0.0.1:{port}", f"evil.example:{port}") == 421  # two


def test_malformed_requests(site_epochs: Path) -> None:
    """Bad requests get a short plain answer with the usual headers; a head
    larger than the bound gets none."""
    from zksolv.site import CONTENT_SECURITY_POLICY

    with serving(site_epochs) as url:
        host = urlsplit(url).netloc
        for head, status in ((b"GET / x HTTP/1.0\r\n\r\n", 400),
                             (f"POST / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode(), 501)):
            answer = _raw(url, head)
            assert _status(answer) == status, (head, answer)
            headers, _, body = answer.partition(b"\r\n\r\n")
            assert f"Content-Security-Policy: {CONTENT_SECURITY_POLICY}".encode() in headers
            assert b"text/plain" in headers and body.startswith(str(status).encode())
        big = f"GET / HTTP/1.0\r\nHost: {host}\r\nX: {'a' * srv.MAX_HEAD_BYTES}\r\n\r\n"
        try:
            assert _raw(url, big.encode()) == b""
        except ConnectionResetError:
            pass
        assert _get(url)[0] == 200


def test_host_check_of_other_binds() -> None:
    wild = srv.HostCheck("0.0.0.0", "0.0.0.0", 8000)
    assert wild.allows("192.168.1.7:8000") and wild.allows("localhost:8000")
    assert wild.allows("[fe80::1]:8000")
    assert not wild.allows("evil.example:8000") and not wild.allows("192.168.1.7:80")
    six = srv.HostCheck("::1", "::1", 80)
    assert six.allows("[::1]") and six.allows("[::1]:80") and six.allows("localhost")
    assert not six.allows("::1") and not six.allows("[::2]:80")
    named = srv.HostCheck("localhost", "127.0.0.1", 8000)
    assert named.allows("localhost:8000") and named.allows("127.0.0.1:8000")
    lan = srv.HostCheck("192.168.1.7", "192.168.1.7", 8000)
    assert lan.allows("192.168.1.7:8000") and not lan.allows("localhost:8000")


def _idle(url: str, count: int, head: bytes = b"") -> Iterator[socket.socket]:
    parts = urlsplit(url)
    for _ in range(count):
        s = socket.create_connection((parts.hostname, parts.port), timeout=5)
        if head:
            s.sendall(head)
        yield s


def test_idle_connections_cost_no_thread(site_epochs: Path) -> None:
    """400 idle connections (half of them with a partial request) on a
    server that allows 128: the thread count does not grow, and a normal
    request is answered at once."""
    with serving(site_epochs) as url:
        threads = threading.active_count()
        held: list[socket.socket] = []
        try:
            held += _idle(url, 200)
            held += _idle(url, 200, b"GET /b2/manifest.json HTTP/1.1\r\nHost: x")
            time.sleep(0.5)
            assert threading.active_count() == threads
            t0 = time.monotonic()
            assert _get(url + "b2/manifest.json")[0] == 200
            assert time.monotonic() - t0 < 5
            assert threading.active_count() == threads
        finally:
            for s in held:
                s.close()


def test_slow_and_idle_clients_are_dropped(site_epochs: Path) -> None:
    """A client that sends nothing, or a byte a time, is disconnected when
    its request head is not complete in time; others are served meanwhile."""
    with serving(site_epochs, head_timeout=1.0) as url:
        idle, drip = list(_idle(url, 2))
        t0 = time.monotonic()
        try:
            for ch in b"GET /b2/manifest.json HTTP/1.0\r\n":
                try:
                    drip.sendall(bytes([ch]))
                except OSError:
                    break
                time.sleep(0.1)
            assert _get(url + "b2/manifest.sig")[0] == 200
            assert idle.recv(10) == b""  # closed by the server
            assert drip.recv(10) == b""
            assert time.monotonic() - t0 < 4.5
        finally:
            idle.close()
            drip.close()


def test_a_client_that_reads_slowly_is_dropped(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that asks for a large file and reads it slowly but steadily
    (so no single write waits long) holds the only worker until its time is
    up (here 2 s), not for the 16 s the file would take."""
    monkeypatch.setattr(srv, "MIN_SEND_RATE", 1 << 40)
    size = 64 << 20
    big = tmp_path / "pub" / "big"
    _write(big / "manifest.json", json.dumps(
        {"format": "zksolv-bundle", "files": {"leaves.bin": {"sha256": "00" * 32, "bytes": size}}}))
    with open(big / "leaves.bin", "wb") as f:
        f.truncate(size)
    _public(big / "leaves.bin")
    with serving(tmp_path / "pub", workers=1, io_timeout=2.0) as url:
        parts = urlsplit(url)
        s = socket.socket()
        s.settimeout(20)
        read: dict[str, float] = {}

        def trickle() -> None:
            got, t0 = 0, time.monotonic()
            try:
                while time.monotonic() - t0 < 15 and (chunk := s.recv(65536)):
                    got += len(chunk)
                    time.sleep(0.015)  # at most 4 MiB/s
            except OSError:
                pass
            read.update(got=got, seconds=time.monotonic() - t0)

        try:
            s.connect((parts.hostname, parts.port))
            s.sendall(f"GET /big/leaves.bin HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode())
            reader = threading.Thread(target=trickle)
            reader.start()
            time.sleep(0.3)
            assert _get(url + "big/manifest.json")[0] == 200  # once the worker is free
            reader.join(timeout=30)
            assert read["got"] < size and read["seconds"] < 10, read
        finally:
            s.close()


def test_workers_are_a_fixed_pool(site_epochs: Path) -> None:
    """Many requests at once are answered by the same few threads."""
    with serving(site_epochs, workers=3) as url:
        threads = threading.active_count()
        results: list[int] = []
        clients = [threading.Thread(target=lambda: results.append(
            _get(url + "b2/leaves.bin")[0])) for _ in range(40)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=60)
        assert results == [200] * 40
        assert threading.active_count() == threads


def test_manifest_cache_is_bounded_and_follows_changes(
        site_epochs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv, "MANIFEST_CACHE", 2)
    root = tmp_path / "pub"
    for i in range(4):
        _copy_bundle(site_epochs / "b1", root / f"b{i}")
    server = make_server(root, port=0, quiet=True)
    try:
        for i in range(4):
            opened = server.open_public(f"/b{i}/leaves.bin")
            assert opened is not None
            os.close(opened[0])
        assert len(server._manifests) == 2
        tmp = root / "b3" / "new.json"
        _write(tmp, json.dumps({"format": "zksolv-bundle", "files": {}}))
        tmp.replace(root / "b3" / "manifest.json")  # as an atomic rewrite would
        assert server.open_public("/b3/leaves.bin") is None
        assert server.bundles() == ["b0", "b1", "b2", "b3"]
    finally:
        server.server_close()


def test_serve_lists_only_served_bundles(run_dir: Path) -> None:
    server = make_server(run_dir, port=0, quiet=True)
    try:
        assert server.bundles() == ["bundles/epoch-000001", "bundles/epoch-000002"]
        assert server.bundles(limit=1) == ["bundles/epoch-000001"]
    finally:
        server.server_close()
    server = make_server(run_dir / "bundles" / "epoch-000001", port=0, quiet=True)
    try:
        assert server.bundles() == ["."]
    finally:
        server.server_close()


def test_serve_help_says_what_is_served() -> None:
    from test_epoch_support import run

    res = run("serve", "--help")
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for words in ("manifest.json, manifest.sig and the data files the manifest lists",
                  "leaves.bin, range.bin, solvency.bin", "nothing else",
                  "accounts.csv", "inclusion databases", "Host header", "421"):
        assert words in text, words


def test_serve_command_lists_the_bundles_it_serves(run_dir: Path) -> None:
    """`zksolv serve RUN` names the bundles it serves (not the copy inside
    private/) and serves them; a folder with none (a snapshot's) gets a hint."""
    import subprocess
    import sys

    for folder, expect in ((run_dir, ["bundles/epoch-000001", "bundles/epoch-000002"]),
                           (run_dir / "epoch-000001", [])):
        proc = subprocess.Popen([sys.executable, "-m", "zksolv.cli.main", "serve", str(folder),
                                 "--port", "0"], stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            url = first.split(" at ")[1].split()[0]
            lines = [proc.stderr.readline().strip() for _ in range(max(1, len(expect)))]
            if expect:
                assert lines == [f"bundle {b}: {url}?bundle={b}" for b in expect], lines
                assert _get(url + expect[0] + "/manifest.sig")[0] == 200
            else:
                assert lines == ["no bundle is served from this folder (see zksolv serve "
                                 "--help)"], lines
        finally:
            proc.terminate()
            proc.wait(timeout=30)
