"""Resumable epochs: the prover is killed with SIGKILL at several points,
``prove --resume`` finishes the epoch reusing the leaf assignment and the
shards already proven, and the bundle verifies. A resume against a changed
snapshot, key or option is refused, naming which, and keeps the work area.

The kills are real: ``zksolv prove`` runs in a child process whose chosen
function sends SIGKILL to its own process (nothing in the product knows)."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_epoch_support import (
    ASSETS1,
    KEY_HEX,
    make_snapshot,
    rows_for,
    run,
    verify_json,
    work_area,
)

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ

SHARD_VALUES = 16          # 16 leaves per shard: 40 accounts -> 64 leaves, 4 shards

KILLER = textwrap.dedent('''
    import os, signal, sys
    from zksolv.circuits import epoch as circ
    circ.SHARD_VALUES = {shard_values}
    from zksolv.prover import epoch as prover, keys, workarea
    from zksolv.cli.main import main

    point, after = {point!r}, {after}
    calls = [0]

    def killing(fn):
        def wrapped(*args, **kwargs):
            calls[0] += 1
            if calls[0] > after:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)
        return wrapped

    if point == "leaves":
        keys.account_salt = killing(keys.account_salt)
    elif point == "shards":
        workarea.WorkArea.save_shard = killing(workarea.WorkArea.save_shard)
    elif point == "solvency":
        prover.prove_solvency = killing(prover.prove_solvency)
    elif point == "publish":
        workarea.WorkArea.remove = killing(workarea.WorkArea.remove)
    elif point == "renamed":
        real_remove = workarea.WorkArea.remove
        def remove_then_die(self):
            real_remove(self)
            os.kill(os.getpid(), signal.SIGKILL)
        workarea.WorkArea.remove = remove_then_die
    main(sys.argv[1:])
''')


def _killed_prove(tmp: Path, snap: Path, out: Path, point: str, after: int,
                  *extra: str, jobs: int = 1) -> None:
    """Run ``zksolv prove`` in a child that SIGKILLs itself at ``point``;
    its worker processes must not outlive it (they hold its pipes: the
    run below would otherwise wait for them)."""
    script = tmp / f"kill_{point}.py"
    script.write_text(KILLER.format(shard_values=SHARD_VALUES, point=point, after=after))
    env = {**os.environ, "ZKSOLV_OPERATOR_KEY": KEY_HEX}
    proc = subprocess.Popen(
        [sys.executable, str(script), "prove", str(snap), "--out", str(out), "--quiet",
         "--jobs", str(jobs), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # only this test's own process group
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err)


def _resume(snap: Path, out: Path, *extra: str) -> str:
    res = run("prove", snap, "--out", out, "--jobs", "1", "--resume", *extra)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(circ, "SHARD_VALUES", SHARD_VALUES)


def _shard_files(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((work / "shards").iterdir())}


@pytest.mark.parametrize("point,after,kept", [
    ("leaves", 10, None),        # during the leaf assignment: starts afresh
    ("shards", 0, 0),            # before any shard is kept
    ("shards", 2, 2),            # two of four shards kept
    ("solvency", 0, 4),          # every shard kept, killed before the solvency proofs
    ("publish", 0, 4),           # the database renamed into place, the bundle not
])
def test_kill_then_resume_verifies(tmp_path: Path, small_shards: None, point: str, after: int,
                                   kept: int | None) -> None:
    rows = rows_for(40, 1)
    snap = make_snapshot(tmp_path / "snap", rows, assets=ASSETS1)
    out = tmp_path / "b"
    work = work_area(out)
    _killed_prove(tmp_path, snap, out, point, after)
    assert not out.exists()
    assert work.is_dir() and stat.S_IMODE(work.stat().st_mode) == 0o700
    for f in work.rglob("*"):
        if f.is_file():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    if kept is None:
        assert not (work / "state.json").exists()
    before = _shard_files(work) if (work / "shards").is_dir() else {}
    assert len(before) == (kept or 0)
    if kept is not None:
        with sqlite3.connect(work / "leaves.sqlite") as conn:
            leaves_before = conn.execute(
                "SELECT idx, account_id, blindings, salt FROM leaves ORDER BY idx").fetchall()

    output = _resume(snap, out)
    if kept:
        assert f"resumed: {kept} of 4 shards" in output
    else:
        assert "resumed:" not in output
    assert not work.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    code, rep = verify_json(out)
    assert code == 0, rep
    # the kept shards are in the bundle as they were proven: same positions,
    # same blindings, so the same leaf commitments
    leaves_bin = (out / layout.LEAVES_FILE).read_bytes()
    per = 16 * layout.leaf_record_size(1)
    for name, raw in before.items():
        s = int(name.split(".")[0])
        assert leaves_bin[s * per : (s + 1) * per] in raw
    if kept is not None:
        with sqlite3.connect(tmp_path / "b.inclusion.sqlite") as conn:
            leaves_after = conn.execute(
                "SELECT idx, account_id, blindings, salt FROM leaves ORDER BY idx").fetchall()
        assert leaves_after == leaves_before
    for acc, amounts in rows[:3]:
        res = run("inclusion", "export", "--db", tmp_path / "b.inclusion.sqlite",
                  "--account", acc, "--out", tmp_path / f"{acc}.json")
        assert res.exit_code == 0, res.output
        res = run("inclusion", "verify", tmp_path / f"{acc}.json", "--account", acc,
                  "--bundle", out, "--expect", f"USD={amounts[0]}")
        assert res.exit_code == 0, res.output


def test_kill_with_two_worker_processes_then_resume(tmp_path: Path, small_shards: None) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)
    _killed_prove(tmp_path, snap, tmp_path / "b", "shards", 1, jobs=2)
    _resume(snap, tmp_path / "b", "--jobs", "2")
    code, rep = verify_json(tmp_path / "b")
    assert code == 0, rep


@pytest.fixture
def interrupted(tmp_path: Path, small_shards: None) -> tuple[Path, Path]:
    snap = make_snapshot(tmp_path / "snap", rows_for(40, 1), assets=ASSETS1)
    _killed_prove(tmp_path, snap, tmp_path / "b", "shards", 2)
    return snap, tmp_path / "b"


def _refused(snap: Path, out: Path, *extra: str, env_key: str = KEY_HEX) -> str:
    from click.testing import CliRunner

    from zksolv.cli.main import cli

    res = CliRunner().invoke(cli, ["prove", str(snap), "--out", str(out), "--jobs", "1",
                                   "--quiet", "--resume", *extra],
                             env={"ZKSOLV_OPERATOR_KEY": env_key})
    assert res.exit_code == 2, res.output
    assert not out.exists()
    assert (work_area(out) / "state.json").exists()  # kept for a later resume
    return res.output


def test_resume_refuses_a_modified_snapshot(interrupted: tuple[Path, Path]) -> None:
    snap, out = interrupted
    accounts = snap / "accounts.csv"
    original = accounts.read_text()
    accounts.write_text(original.replace("acct-3,4000", "acct-3,4001"))
    assert "the snapshot changed" in _refused(snap, out)
    # the same row count and totals, amounts moved between accounts: still refused
    accounts.write_text(original.replace("acct-0,1000", "acct-0,2000")
                        .replace("acct-1,2000", "acct-1,1000"))
    assert "the snapshot changed" in _refused(snap, out)
    accounts.write_text(original)
    _resume(snap, out)
    assert verify_json(out)[0] == 0


def test_resume_refuses_another_key_or_option(interrupted: tuple[Path, Path]) -> None:
    snap, out = interrupted
    assert "the operator key changed" in _refused(snap, out, env_key="22" * 32)
    assert "--reveal-totals differs" in _refused(snap, out, "--reveal-totals")
    _resume(snap, out)
    assert verify_json(out)[0] == 0


def test_resume_refuses_another_previous_bundle(tmp_path: Path, small_shards: None) -> None:
    prev1 = make_snapshot(tmp_path / "s1", rows_for(5, 1), assets=ASSETS1, epoch=1)
    run_ok = run("prove", prev1, "--out", tmp_path / "p1", "--jobs", "1", "--quiet")
    assert run_ok.exit_code == 0, run_ok.output
    other = make_snapshot(tmp_path / "s1b", rows_for(6, 1), assets=ASSETS1, epoch=1)
    run_ok = run("prove", other, "--out", tmp_path / "p1b", "--jobs", "1", "--quiet")
    assert run_ok.exit_code == 0, run_ok.output
    snap = make_snapshot(tmp_path / "s2", rows_for(40, 1), assets=ASSETS1, epoch=2)
    _killed_prove(tmp_path, snap, tmp_path / "b", "shards", 1, "--prev", str(tmp_path / "p1"))
    assert "the previous bundle changed" in _refused(snap, tmp_path / "b", "--prev",
                                                     str(tmp_path / "p1b"))
    _resume(snap, tmp_path / "b", "--prev", str(tmp_path / "p1"))
    code, rep = verify_json(tmp_path / "b", "--chain", str(tmp_path / "p1"))
    assert code == 0, rep


def test_a_damaged_shard_file_is_proven_again(interrupted: tuple[Path, Path]) -> None:
    snap, out = interrupted
    shard = next((work_area(out) / "shards").iterdir())
    data = bytearray(shard.read_bytes())
    data[40] ^= 1
    shard.write_bytes(bytes(data))
    output = _resume(snap, out)
    assert "resumed: 1 of 4 shards" in output
    assert verify_json(out)[0] == 0


def test_resume_without_a_work_area_starts_afresh(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(4, 1), assets=ASSETS1)
    output = _resume(snap, tmp_path / "b")
    assert "resumed" not in output
    assert verify_json(tmp_path / "b")[0] == 0
    assert not work_area(tmp_path / "b").exists()


def test_work_area_inside_the_bundle_is_refused(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(4, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "b", "--work-dir", tmp_path / "b" / "w",
              "--jobs", "1", "--quiet")
    assert res.exit_code == 2 and "neither inside the bundle nor beside it" in res.output
