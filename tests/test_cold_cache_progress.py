"""A cold generator cache never means a blank screen: `zksolv prove` and
`zksolv verify`, on a terminal, show a bar while generators are derived
(silent with -q, and absent once the cache holds them).

Each run is a fresh process (generators live for a process's life) whose
stderr is a pseudo-terminal of 80 x 24: the bars are drawn only on a
terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from test_epoch_support import KEY_HEX, make_snapshot, rows_for

DERIVING = "deriving generators (first run only)"


def on_terminal(args: list[str], cache: str, tmp: Path) -> tuple[int, str, str]:
    """Run ``zksolv ARGS`` with ``ZKSOLV_CACHE_DIR=cache`` and stderr on a
    terminal; return the exit code, what the terminal showed and stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(ZKSOLV_CACHE_DIR=cache, ZKSOLV_OPERATOR_KEY=KEY_HEX, TERM="xterm")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with open(tmp / "stdout", "w+b") as out:
        proc = subprocess.Popen([sys.executable, "-m", "zksolv.cli.main", *args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=slave, env=env)
        os.close(slave)
        screen = bytearray()
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 1.0)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not data:
                    break
                screen += data
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
        out.seek(0)
        return code, screen.decode("utf-8", "replace"), out.read().decode()


def derived_all(screen: str) -> bool:
    """The bar reached its end: 'deriving generators (...):  100%|...| N/N'."""
    return re.search(re.escape(DERIVING) + r": +100%\|[^|]*\| *(\d+)/\1 ", screen) is not None


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_snapshot(tmp_path_factory.mktemp("cold") / "snap", rows_for(5, 2))


def test_prove_shows_the_derivation_on_a_cold_cache(snapshot: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code, screen, stdout = on_terminal(
        ["prove", str(snapshot), "--out", str(tmp_path / "b1"), "--jobs", "1",
         "--inclusion-db", str(tmp_path / "b1.sqlite")], str(cache), tmp_path)
    assert code == 0, screen + stdout
    assert DERIVING in screen and derived_all(screen), screen
    assert sorted(p.name for p in cache.iterdir())[0] == "generators-v1-0000.bin"
    # cached afterwards: the next run shows its other bars, not this one
    code, screen, stdout = on_terminal(
        ["prove", str(snapshot), "--out", str(tmp_path / "b2"), "--jobs", "1",
         "--inclusion-db", str(tmp_path / "b2.sqlite")], str(cache), tmp_path)
    assert code == 0, screen + stdout
    assert "prove shards" in screen and "deriving generators" not in screen, screen
    # verify on a cold cache
    code, screen, stdout = on_terminal(["verify", str(tmp_path / "b1")],
                                       str(tmp_path / "cache-v"), tmp_path)
    assert code == 0, screen + stdout
    assert derived_all(screen), screen
    assert "valid: epoch 1" in stdout
    # a holder's check against the bundle verifies it in full: the same bar,
    # and none with -q
    proof = tmp_path / "p.json"
    code, screen, stdout = on_terminal(
        ["inclusion", "export", "--db", str(tmp_path / "b1.sqlite"), "--account", "acct-1",
         "--out", str(proof)], str(cache), tmp_path)
    assert code == 0, screen + stdout
    check = ["inclusion", "verify", str(proof), "--account", "acct-1", "--bundle",
             str(tmp_path / "b1")]
    code, screen, stdout = on_terminal(check, str(tmp_path / "cache-h"), tmp_path)
    assert code == 0, screen + stdout
    assert derived_all(screen) and "included: account 'acct-1'" in stdout, screen + stdout
    code, screen, stdout = on_terminal([*check, "-q"], str(tmp_path / "cache-q"), tmp_path)
    assert code == 0 and screen.strip() == "", screen + stdout


def test_quiet_is_silent_and_cache_off_says_so(snapshot: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code, screen, stdout = on_terminal(
        ["prove", str(snapshot), "--out", str(tmp_path / "b1"), "--jobs", "1", "-q",
         "--inclusion-db", str(tmp_path / "private" / "b1.sqlite")], str(cache), tmp_path)
    assert code == 0, screen + stdout
    assert screen.strip() == ""
    assert any(cache.iterdir())  # derived (and cached) all the same
    code, screen, stdout = on_terminal(["verify", str(tmp_path / "b1"), "-q"],
                                       str(tmp_path / "cache-v"), tmp_path)
    assert code == 0, screen + stdout
    assert screen.strip() == ""
    code, screen, stdout = on_terminal(["verify", str(tmp_path / "b1")], "off", tmp_path)
    assert code == 0, screen + stdout
    assert "deriving generators (cache off)" in screen, screen
