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
