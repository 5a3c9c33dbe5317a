"""``zksolv watch``: the simulator's epochs appear in a watched folder, one
of them insolvent; each solvent epoch is proven and chained to the last one
proven, the insolvent one is recorded (log line, status file), never
skipped silently, and ``verify --chain`` lists the gap."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_epoch_support import KEY_HEX, run, verify_json


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sim")
    res = run("simulate", "--scenario", "calm", "--accounts", "12", "--epochs", "5",
              "--out", d / "run")
    assert res.exit_code == 0, res.output
    return d / "run"


def _appear(src: Path, watched: Path, *, insolvent: bool = False) -> None:
    """Put a snapshot into the watched folder the way a writer should: build
    it under a hidden name, then rename it into place."""
    tmp = watched / f".{src.name}.partial"
    shutil.copytree(src, tmp)
    if insolvent:
        header = json.loads((tmp / "header.json").read_text())
        header["assets"][0]["reserves"] = 0
        (tmp / "header.json").write_text(json.dumps(header, indent=2) + "\n")
    os.rename(tmp, watched / src.name)


def _status_file(out: Path) -> Path:
    """Where the watch proving into ``out`` keeps its status (private: in the
    data directory, never in ``out``)."""
    from zksolv.prover.watch import status_location

    return status_location(out)


def _status(out: Path) -> list[dict]:
    return json.loads(_status_file(out).read_text())["epochs"]


def test_watch_once_records_the_insolvent_epoch_and_chains_past_it(simulated: Path,
                                                                  tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    for e in (1, 2):
        _appear(simulated / f"epoch-00000{e}", watched)
    _appear(simulated / "epoch-000003", watched, insolvent=True)
    _appear(simulated / "epoch-000004", watched)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0, res.output
    assert "epoch 3 (epoch-000003): REFUSED, insolvent (exit 3)" in res.output
    st = _status(out)
    assert [(e["epoch"], e["status"], e["exit_code"]) for e in st] == [
        (1, "proven", 0), (2, "proven", 0), (3, "insolvent", 3), (4, "proven", 0)]
    assert "USDC short by" in st[2]["reason"]
    assert [e["prev_epoch"] for e in st] == [None, 1, None, 2]
    assert stat.S_IMODE(_status_file(out).stat().st_mode) == 0o600
    assert not (out / "watch-status.json").exists()           # private: not among bundles
    assert not (out / "epoch-000003").exists()
    assert "epoch 4: proven solvent" in res.output
    assert "linked to epoch 2; its header declares epoch 3 NOT proven solvent" in res.output

    # the next bundle's own signed header states the gap: alone it reports it
    m4 = json.loads((out / "epoch-000004" / "manifest.json").read_text())
    assert m4["prev_epoch"] == 2 and m4["prev_bundle_hash"] == st[1]["bundle_hash"]
    code, rep = verify_json(out / "epoch-000004")
    assert code == 0 and rep["gaps"] == [{"first": 3, "last": 3}], rep
    code, rep = verify_json(out / "epoch-000004", "--no-gaps")
    assert (code, rep["check"]) == (1, "chain-epoch"), rep

    chain = [out / "epoch-000001", out / "epoch-000002", out / "epoch-000004"]
    code, rep = verify_json(chain[-1], "--chain", chain[0], "--chain", chain[1])
    assert code == 0, rep
    assert rep["gaps"] == [{"first": 3, "last": 3}]
    text = run("verify", chain[-1], "--chain", chain[0], "--chain", chain[1]).output
    assert "gap: epoch 3 NOT proven solvent" in text
    code, rep = verify_json(chain[-1], "--chain", chain[0], "--chain", chain[1], "--no-gaps")
    assert (code, rep["check"]) == (1, "chain-epoch")

    # run again: nothing proven twice; a new epoch links to the last proven
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0 and res.output == "", res.output
    _appear(simulated / "epoch-000005", watched)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert "epoch 5: proven solvent" in res.output and "linked to epoch 4" in res.output
    assert [e["epoch"] for e in _status(out)] == [1, 2, 3, 4, 5]
    # an epoch that shows up late is recorded, not proven out of order
    late = watched / "epoch-000002-again"
    shutil.copytree(simulated / "epoch-000002", late)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert "REFUSED, out-of-order" in res.output
    assert _status(out)[-1]["status"] == "out-of-order"


def test_watch_keeps_going_then_stops_cleanly_on_ctrl_c(simulated: Path, tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zksolv.cli.main", "watch", str(watched), "--out", str(out),
         "--interval", "0.2", "--jobs", "1"],
        env={**os.environ, "ZKSOLV_OPERATOR_KEY": KEY_HEX}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        for e, bad in ((1, False), (2, True), (3, False)):
            _appear(simulated / f"epoch-00000{e}", watched, insolvent=bad)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if _status_file(out).exists() and len(_status(out)) == e:
                    break
                time.sleep(0.1)
            assert len(_status(out)) == e
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "stopped" in err and "REFUSED, insolvent" in err
    assert [e["status"] for e in _status(out)] == ["proven", "insolvent", "proven"]
    assert _status(out)[2]["prev_epoch"] == 1
    code, rep = verify_json(out / "epoch-000003", "--chain", out / "epoch-000001")
    assert code == 0 and rep["gaps"] == [{"first": 2, "last": 2}], rep


def test_a_broken_last_bundle_stops_the_watch_and_records_nothing(simulated: Path,
                                                                  tmp_path: Path) -> None:
    """The chain's last bundle no longer verifies: that is not the new
    epoch's fault, so the watch stops (exit 2) without recording the epoch;
    once the bundle is fixed, the same command proves it."""
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    _appear(simulated / "epoch-000001", watched)
    assert run("watch", watched, "--out", out, "--once", "--jobs", "1").exit_code == 0
    sig = out / "epoch-000001" / "manifest.sig"
    good = sig.read_bytes()
    sig.write_bytes(bytes([good[0] ^ 1]) + good[1:])
    _appear(simulated / "epoch-000002", watched)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 2, res.output
    assert "previous bundle does not verify" in res.output
    assert [e["epoch"] for e in _status(out)] == [1]
    sig.write_bytes(good)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0 and "epoch 2: proven solvent" in res.output, res.output
    assert [(e["epoch"], e["prev_epoch"]) for e in _status(out)] == [(1, None), (2, 1)]


def test_a_bundle_found_in_place_is_adopted_only_if_it_links_to_the_chain(
        simulated: Path, tmp_path: Path) -> None:
    """A bundle already at BUNDLES/epoch-N (a stop right after publishing) is
    recorded as proven only if it is epoch N, this operator's, and links to
    the last bundle proven; one proven by hand without --prev is not."""
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    _appear(simulated / "epoch-000001", watched)
    assert run("watch", watched, "--out", out, "--once", "--jobs", "1").exit_code == 0
    res = run("prove", simulated / "epoch-000002", "--out", out / "epoch-000002",
              "--inclusion-db", tmp_path / "db2.sqlite", "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    _appear(simulated / "epoch-000002", watched)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert "REFUSED, invalid" in res.output, res.output
    st = _status(out)[-1]
    assert (st["epoch"], st["status"]) == (2, "invalid")
    assert "does not link to epoch 1's bundle epoch-000001: not adopted" in st["reason"]


# -- a watch that cannot crash ------------------------------------------------


def _in_place(src: Path, dst: Path, *, rows: int | None = None, tail: bytes = b"") -> None:
    """Write a snapshot the way an engine writing in place leaves it midway:
    header.json whole, accounts.csv cut after ``rows`` rows (plus ``tail``,
    a row cut short)."""
    dst.mkdir(exist_ok=True)
    shutil.copy(src / "header.json", dst / "header.json")
    lines = (src / "accounts.csv").read_bytes().splitlines(keepends=True)
    keep = lines if rows is None else lines[:rows + 1]
    (dst / "accounts.csv").write_bytes(b"".join(keep) + tail)


def test_a_half_written_snapshot_is_proven_once_complete_never_refused(
        simulated: Path, tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap = watched / "epoch-000001"
    _in_place(simulated / "epoch-000001", snap, rows=4)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0, res.output
    assert ("epoch-000001: skipped, incomplete: accounts.csv has 4 of 12 rows so far (looked "
            "at again on the next scan)") in res.output
    assert "REFUSED" not in res.output and not (out / "watch-status.json").exists()
    # more rows, the last one cut short: still being written
    _in_place(simulated / "epoch-000001", snap, rows=9, tail=b"acct-0000010,44")
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert "has 9 of 12 rows and no final newline so far" in res.output, res.output
    assert not (out / "watch-status.json").exists()
    _in_place(simulated / "epoch-000001", snap)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0 and "epoch 1: proven solvent" in res.output, res.output
    assert [(e["epoch"], e["status"]) for e in _status(out)] == [(1, "proven")]


def test_a_refused_snapshot_is_looked_at_again_when_its_files_change(
        simulated: Path, tmp_path: Path) -> None:
    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    snap = watched / "epoch-000001"
    _in_place(simulated / "epoch-000001", snap)
    good = (snap / "accounts.csv").read_bytes()
    (snap / "accounts.csv").write_bytes(good.replace(b"acct-0000002,", b"acct-0000002,-", 1))
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert "epoch 1 (epoch-000001): REFUSED, malformed (exit 2)" in res.output, res.output
    assert "negative amount" in _status(out)[0]["reason"] and _status(out)[0]["fingerprint"]
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0 and res.output == "", res.output   # unchanged: stays refused
    (snap / "accounts.csv").write_bytes(good)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert "epoch 1: proven solvent" in res.output, res.output
    assert [e["status"] for e in _status(out)] == ["malformed", "proven"]

    # a header.json that does not decode may be one caught mid-write: it is
    # refused only when unchanged over two looks (--once looks twice)
    bad = watched / "epoch-000002"
    _in_place(simulated / "epoch-000002", bad)
    (bad / "header.json").write_text('{"format": "zksolv-snapshot", "vers')
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1", "--interval", "0.1")
    assert "epoch-000002: " in res.output and "refused as malformed if unchanged on the next " \
        "look" in res.output, res.output
    assert "? (epoch-000002): REFUSED, malformed (exit 2)" in res.output, res.output
    shutil.copy(simulated / "epoch-000002" / "header.json", bad / "header.json")
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert "epoch 2: proven solvent" in res.output and "linked to epoch 1" in res.output
    assert [e["status"] for e in _status(out)] == ["malformed", "proven", "malformed", "proven"]


def test_a_symlink_loop_and_an_unreadable_entry_are_skipped_not_fatal(
        simulated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once with the command line, then with the loop itself (several scans:
    one line per problem, not one per scan)."""
    from zksolv.prover.watch import Watcher

    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    os.symlink("loop", watched / "loop")                 # loop -> loop
    stuck = watched / "stuck"
    _in_place(simulated / "epoch-000002", stuck)
    (stuck / "header.json").unlink()
    os.symlink("header.json", stuck / "header.json")     # a loop inside a snapshot
    locked = watched / "epoch-000003"
    _in_place(simulated / "epoch-000003", locked)
    _appear(simulated / "epoch-000001", watched)
    real_open = os.open

    def no_access(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        # tests run as root, where chmod 000 keeps nobody out
        if str(path).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_access)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "loop: skipped, cannot look at it: Too many levels of symbolic links" in res.output
    assert "stuck: skipped, cannot read header.json: Too many levels of symbolic links" \
        in res.output
    assert "epoch-000003: skipped, cannot read header.json: Permission denied" in res.output
    assert "epoch 1: proven solvent" in res.output
    assert [(e["snapshot"], e["status"]) for e in _status(out)] == [("epoch-000001", "proven")]

    lines: list[str] = []
    scans = 0

    def stop() -> bool:
        nonlocal scans
        scans += 1
        return scans > 3

    watcher = Watcher(watched, out, bytes.fromhex(KEY_HEX), log=lines.append)
    try:
        watcher.run(interval=0.01, stop=stop)
        assert sorted(lines) == sorted(
            ln for ln in res.output.splitlines() if "skipped" in ln), lines
        monkeypatch.setattr(os, "open", real_open)       # access granted
        lines.clear()
        scans = 2
        watcher.run(interval=0.01, stop=stop)
    finally:
        watcher.close()
    assert any(ln.startswith("epoch 3: proven solvent") for ln in lines), lines
    assert [(e["epoch"], e["status"]) for e in _status(out)] == [(1, "proven"), (3, "proven")]


def _watcher(watched: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zksolv.cli.main", "watch", str(watched), "--out", str(out),
         "--jobs", "1", *extra],
        env={**os.environ, "ZKSOLV_OPERATOR_KEY": KEY_HEX}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def test_one_watcher_per_folder(simulated: Path, tmp_path: Path) -> None:
    """A second watcher on the same --out exits 2 naming the first, as does
    a prove into that folder; the lock of a killed watcher blocks nobody."""
    from zksolv.prover.folderlock import LOCK_FILE, lock_for_prove

    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    first = _watcher(watched, out, "--interval", "0.2")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lock = out / LOCK_FILE
            if lock.exists() and f'"pid": {first.pid}' in lock.read_text():
                break
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        second = _watcher(watched, out, "--once")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2, err
        assert f"already being written by zksolv watch pid {first.pid} on " in err, err
        assert "(running), since 20" in err and "Traceback" not in err, err
        assert stat.S_IMODE((out / LOCK_FILE).stat().st_mode) == 0o600
        res = run("prove", simulated / "epoch-000001", "--out", out / "epoch-000001",
                  "--jobs", "1", "--quiet")
        assert res.exit_code == 2, res.output
        assert f"is being written by zksolv watch pid {first.pid}" in res.output, res.output
        assert not (out / "epoch-000001").exists()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    # killed: the kernel dropped its lock
    _appear(simulated / "epoch-000001", watched)
    res = run("watch", watched, "--out", out, "--once", "--jobs", "1")
    assert res.exit_code == 0 and "epoch 1: proven solvent" in res.output, res.output
    # a prove into the folder holds it too: a watcher started meanwhile exits 2
    with lock_for_prove(out / "epoch-000002"):
        second = _watcher(watched, out, "--once")
        _, err = second.communicate(timeout=60)
    assert second.returncode == 2 and "zksolv prove --out" in err, err


def test_a_look_at_any_folder_never_raises(simulated: Path, tmp_path: Path) -> None:
    """What ``watch`` sees of one folder, for what an engine or a race can
    leave there: a verdict, never an exception."""
    from zksolv.prover.watch import look

    snap = tmp_path / "epoch-000001"
    assert look(tmp_path / "gone") == look(tmp_path / "gone")
    assert look(tmp_path / "gone").reason == "gone since it was listed"
    snap.mkdir()
    assert look(snap).reason == "incomplete: no header.json yet"
    _in_place(simulated / "epoch-000001", snap, rows=0)
    lk = look(snap)
    assert (lk.state, lk.epoch, lk.kind) == ("wait", 1, "incomplete"), lk
    _in_place(simulated / "epoch-000001", snap)
    lk = look(snap)
    assert (lk.state, lk.epoch) == ("ready", 1) and lk.fingerprint, lk
    os.mkfifo(tmp_path / "fifo")
    (snap / "accounts.csv").unlink()
    os.symlink(tmp_path / "fifo", snap / "accounts.csv")
    lk = look(snap)
    assert lk.state == "bad" and "a FIFO, not a regular file" in (lk.reason or ""), lk
    (snap / "header.json").write_bytes(b"\xff" * 10)
    assert look(snap).state == "bad"


def test_a_planted_lock_file_is_never_followed(tmp_path: Path) -> None:
    from zksolv.prover.folderlock import LOCK_FILE

    watched, out = tmp_path / "snaps", tmp_path / "bundles"
    watched.mkdir()
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    os.symlink(victim, out / LOCK_FILE)
    for args in (("watch", watched, "--out", out, "--once"),
                 ("prove", watched, "--out", out / "epoch-000001")):
        res = run(*args)
        assert res.exit_code == 2 and "lock file is a symlink" in res.output, res.output
    assert victim.read_text() == "keep\n"
    (out / LOCK_FILE).unlink()
    os.mkfifo(out / LOCK_FILE)
    res = run("watch", watched, "--out", out, "--once")
    assert res.exit_code == 2 and "lock file is not a regular file" in res.output, res.output
