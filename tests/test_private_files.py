"""Secrets never beside public output: ``prove``, ``watch`` and ``simulate
--prove`` keep every private file (work areas, inclusion databases and their
temporaries) out of the folder that holds the bundles, a killed run
included; every folder zksolv creates for private files is 0700 whatever the
umask. (``verify``'s warnings: test_verify_private.py.)"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_epoch_support import (
    ASSETS1,
    KEY_HEX,
    make_snapshot,
    rows_for,
    run,
    verify_json,
    work_area,
)
from test_resume import _killed_prove

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.cli.main import cli
from zksolv.private_scan import scan
from zksolv.prover.inclusion_db import DATA_DIR_ENV

SHARD_VALUES = 16
PUBLIC_NAMES = {layout.MANIFEST_FILE, layout.SIGNATURE_FILE, *layout.DATA_FILES}



def _only_public(folder: Path, bundle_names: set[str]) -> None:
    """``folder`` holds the bundles named and, at most, hidden temporaries of
    a bundle being built (``.NAME.tmp-*``) with a bundle's files only: no
    private item anywhere, and no file readable by its owner alone."""
    found = scan(folder)
    assert found.complete and found.items == (), found
    for entry in folder.iterdir():
        if entry.name in bundle_names:
            continue
        assert entry.name.startswith(".") and ".tmp-" in entry.name, entry
        assert entry.is_dir() and not entry.is_symlink(), entry
        assert {p.name for p in entry.iterdir()} <= PUBLIC_NAMES, entry


@pytest.mark.parametrize("point,after", [
    ("leaves", 10),      # during the leaf assignment (the work area's database half-built)
    ("shards", 2),       # two of four shards kept in the work area
    ("publish", 0),      # the database renamed into place, the work area not yet removed
])
def test_a_killed_prove_leaves_nothing_private_beside_the_bundle(
        tmp_path: Path, private_data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        point: str, after: int) -> None:
    snap = make_snapshot(tmp_path / "snaps" / "e1", rows_for(40, 1), assets=ASSETS1)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    out = bundles / "epoch-1"
    _killed_prove(tmp_path, snap, out, point, after)
    assert not out.exists()
    # the secrets exist, in the private data directory
    work = work_area(out)
    assert work.is_dir() and work.is_relative_to(private_data_dir)
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    _only_public(bundles, set())
    # the same command with --resume finishes the epoch; still nothing private
    monkeypatch.setattr(circ, "SHARD_VALUES", SHARD_VALUES)
    res = CliRunner().invoke(cli, ["prove", str(snap), "--out", str(out), "--jobs", "1",
                                   "--quiet", "--resume"],
                             env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 0, res.output
    assert not work.exists()
    assert sorted(p.name for p in bundles.iterdir()) == ["epoch-1"]
    _only_public(bundles, {"epoch-1"})
    code, rep = verify_json(bundles)
    assert code == 0 and rep["warnings"] == [], rep


def test_a_kill_just_before_the_bundle_is_renamed_is_cleaned_by_a_rerun(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the work area is removed, before the bundle's rename:
    the database is finished, the bundle's hidden temporary (public files)
    is left; the same command again replaces the database, removes that
    temporary and publishes, leaving the folder holding the bundle only."""
    snap = make_snapshot(tmp_path / "snaps" / "e1", rows_for(40, 1), assets=ASSETS1)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    out = bundles / "epoch-1"
    _killed_prove(tmp_path, snap, out, "renamed", 0)
    assert not out.exists() and not work_area(out).exists()
    _only_public(bundles, set())
    assert [p.name for p in bundles.iterdir() if ".tmp-" in p.name]
    monkeypatch.setattr(circ, "SHARD_VALUES", SHARD_VALUES)
    res = CliRunner().invoke(cli, ["prove", str(snap), "--out", str(out), "--jobs", "1",
                                   "--quiet"], env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 0, res.output
    assert "replaced" in res.output
    assert sorted(p.name for p in bundles.iterdir()) == ["epoch-1"]
    assert verify_json(out)[0] == 0


def test_an_interrupted_prove_keeps_its_work_area_out_of_the_bundles_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure in a stage after the shards (Ctrl-C before the solvency
    proofs): the work area is kept, in the data directory, and the folder of
    the bundle holds nothing; the message names where the work is kept."""
    from zksolv.prover import epoch as prover

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(prover, "prove_solvency", interrupted)
    snap = make_snapshot(tmp_path / "snap", rows_for(5, 1), assets=ASSETS1)
    bundles = tmp_path / "bundles"
    res = CliRunner().invoke(cli, ["prove", str(snap), "--out", str(bundles / "b"), "--jobs",
                                   "1", "--quiet"], env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 130, res.output
    work = work_area(bundles / "b")
    assert f"proven shards are kept in {work}" in res.output
    assert (work / "state.json").is_file()
    assert list(bundles.iterdir()) == []


def test_a_work_area_an_earlier_version_left_beside_the_bundle_moves_out_on_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier versions kept the work area at OUT.work, beside the bundle: a
    plain prove refuses and names it; --resume moves it to the data
    directory, resumes from it, and leaves the folder holding the bundle."""
    from zksolv.prover import epoch as prover

    real = prover.prove_solvency

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(prover, "prove_solvency", interrupted)
    snap = make_snapshot(tmp_path / "snap", rows_for(5, 1), assets=ASSETS1)
    bundles = tmp_path / "bundles"
    argv = ["prove", str(snap), "--out", str(bundles / "b"), "--jobs", "1", "--quiet"]
    env = {"ZKSOLV_OPERATOR_KEY": KEY_HEX}
    assert CliRunner().invoke(cli, argv, env=env).exit_code == 130
    old = bundles / "b.work"
    work_area(bundles / "b").rename(old)                # where an earlier version kept it
    monkeypatch.setattr(prover, "prove_solvency", real)
    res = CliRunner().invoke(cli, argv, env=env)
    assert res.exit_code == 2 and f"{old}: an interrupted run" in res.output, res.output
    res = CliRunner().invoke(cli, [*argv, "--resume"], env=env)
    assert res.exit_code == 0, res.output
    assert "resumed: 1 of 1 shards" in res.output
    assert sorted(p.name for p in bundles.iterdir()) == ["b"]
    assert not work_area(bundles / "b").exists()
    assert verify_json(bundles / "b")[0] == 0


def test_a_work_dir_inside_or_beside_the_bundle_is_refused(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(4, 1), assets=ASSETS1)
    bundles = tmp_path / "bundles"
    for where in (bundles / "b.work", bundles / "b" / "w", bundles):
        res = run("prove", snap, "--out", bundles / "b", "--work-dir", where, "--jobs", "1",
                  "--quiet")
        assert res.exit_code == 2, res.output
        assert "neither inside the bundle nor beside it" in res.output
        assert not (bundles / "b").exists() and not (bundles / "b.work").exists()
    # elsewhere it is taken, and removed once the bundle is published
    res = run("prove", snap, "--out", bundles / "b", "--work-dir", tmp_path / "private" / "w",
              "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "private" / "w").exists()


def test_an_inclusion_db_beside_the_bundle_is_warned_about(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", rows_for(4, 1), assets=ASSETS1)
    res = run("prove", snap, "--out", tmp_path / "bundles" / "b", "--inclusion-db",
              tmp_path / "bundles" / "b.sqlite", "--jobs", "1", "--quiet")
    assert res.exit_code == 0, res.output
    assert "is in the folder that holds the bundle" in res.stderr
    assert "PRIVATE" in res.stderr


def _watch_once(snaps: Path, bundles: Path) -> None:
    from zksolv.prover.watch import Watcher

    watcher = Watcher(snaps, bundles, bytes.fromhex(KEY_HEX), log=lambda line: None)
    try:
        watcher.once()
    finally:
        watcher.close()  # as the process's end would release the folder's lock


def _watch_folder(bundles: Path) -> list[str]:
    """The bundles in a watch's folder, having checked that nothing private
    is there (a lock file of the watch's own may be)."""
    assert not (bundles / "watch-status.json").exists()
    assert scan(bundles).items == ()
    return sorted(p.name for p in bundles.iterdir() if p.name.startswith("epoch-"))


def status_location(bundles: Path) -> Path:
    from zksolv.prover.watch import status_location

    return status_location(bundles)


def test_watch_keeps_its_work_area_out_of_the_bundles_folder(
        tmp_path: Path, private_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted while epoch 2 is proven: its work area is in the data
    directory, never in BUNDLES; the next run finishes it from there."""
    from zksolv.prover import epoch as prover

    snaps, bundles = tmp_path / "snaps", tmp_path / "bundles"
    make_snapshot(snaps / "epoch-000001", rows_for(5, 1), assets=ASSETS1, epoch=1)
    make_snapshot(snaps / "epoch-000002", rows_for(6, 1), assets=ASSETS1, epoch=2)
    real = prover.prove_solvency
    calls = [0]

    def second_interrupted(*args: object, **kwargs: object) -> bytes:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prover, "prove_solvency", second_interrupted)
    with pytest.raises(KeyboardInterrupt):
        _watch_once(snaps, bundles)
    work = work_area(bundles / "epoch-000002")
    assert (work / "state.json").is_file() and work.is_relative_to(private_data_dir)
    assert _watch_folder(bundles) == ["epoch-000001"]
    assert scan(bundles).items == ()
    monkeypatch.setattr(prover, "prove_solvency", real)
    _watch_once(snaps, bundles)
    assert not work.exists()
    assert _watch_folder(bundles) == ["epoch-000001", "epoch-000002"]
    status = status_location(bundles)
    assert status.is_relative_to(private_data_dir)
    assert [e["epoch"] for e in json.loads(status.read_text())["epochs"]] == [1, 2]
    res = run("verify", bundles, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["warnings"] == []


def test_a_status_file_left_among_the_bundles_is_moved_out(
        tmp_path: Path, private_data_dir: Path) -> None:
    """An earlier version's BUNDLES/watch-status.json (private: it names
    shortfalls) is moved to the data directory on the next look, entries
    kept: epoch 1 stays done."""
    snaps, bundles = tmp_path / "snaps", tmp_path / "bundles"
    make_snapshot(snaps / "epoch-000001", rows_for(5, 1), assets=ASSETS1, epoch=1)
    _watch_once(snaps, bundles)
    status = status_location(bundles)
    legacy = bundles / "watch-status.json"
    status.rename(legacy)
    code, rep = verify_json(bundles)
    assert code == 0 and [(Path(w["path"]).name, w["kind"]) for w in rep["warnings"]] == [
        ("watch-status.json", "watch-status")]
    make_snapshot(snaps / "epoch-000002", rows_for(6, 1), assets=ASSETS1, epoch=2)
    lines: list[str] = []
    from zksolv.prover.watch import Watcher

    Watcher(snaps, bundles, bytes.fromhex(KEY_HEX), log=lines.append).once()
    assert not legacy.exists() and stat.S_IMODE(status.stat().st_mode) == 0o600
    assert f"moved {legacy}" in lines[0]
    assert [e["epoch"] for e in json.loads(status.read_text())["epochs"]] == [1, 2]
    assert _watch_folder(bundles) == ["epoch-000001", "epoch-000002"]


def test_simulate_prove_keeps_private_files_out_of_the_bundles_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while epoch 2 is proven: RUN/bundles/ holds epoch 1's bundle
    only; the databases and the work area are in RUN/private/ (0700)."""
    import zksolv.prover.epoch as prover

    real = prover.prove_solvency
    calls = [0]

    def second_interrupted(*args: object, **kwargs: object) -> bytes:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prover, "prove_solvency", second_interrupted)
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["simulate", "--scenario", "calm", "--accounts", "4",
                                   "--epochs", "3", "--out", str(out), "--prove", "--jobs", "1"],
                             env={"ZKSOLV_OPERATOR_KEY": KEY_HEX})
    assert res.exit_code == 130, res.output
    assert sorted(p.name for p in (out / "bundles").iterdir()) == ["epoch-000001"]
    assert scan(out / "bundles").items == ()
    private = out / "private"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert (private / "epoch-000002.work" / "state.json").is_file()
    # RUN as a whole is private, and verify says so, naming each item
    kinds = {(Path(i.path).name, i.kind) for i in scan(out).items}
    assert {("epoch-000001", "snapshot"), ("epoch-000002", "snapshot"),
            ("epoch-000002.work", "work-area"),
            ("epoch-000001.inclusion.sqlite", "database")} <= kinds


def test_private_folders_are_0700_under_umask_000(tmp_path: Path) -> None:
    """Under umask 000: $ZKSOLV_DATA_DIR's missing parents, the default data
    directory's (~/.local/share), the inclusion and work folders, a work
    area and an export's missing parents are all 0700; the bundle is public."""
    snap = make_snapshot(tmp_path / "snap", rows_for(5, 1), assets=ASSETS1)
    code = textwrap.dedent('''
        import os, sys
        os.umask(0)
        from zksolv.cli.main import main
        main(sys.argv[1:])
    ''')
    data = tmp_path / "a" / "b" / "data"
    env = {**os.environ, "ZKSOLV_OPERATOR_KEY": KEY_HEX, DATA_DIR_ENV: str(data)}

    def zksolv(*args: object, env: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc

    proc = zksolv("prove", snap, "--out", tmp_path / "bundles" / "b", "--jobs", "1")
    db = Path(next(ln for ln in proc.stdout.splitlines() if ln.startswith("inclusion"))
              .split()[1])
    for folder in (tmp_path / "a", tmp_path / "a" / "b", data, data / "inclusion",
                   data / "work"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert db.parent == data / "inclusion" and stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "bundles" / "b").stat().st_mode) == 0o755
    # an export's missing parents
    zksolv("inclusion", "export", "--db", db, "--all", "--out", tmp_path / "x" / "y" / "proofs",
           "-q")
    for folder in (tmp_path / "x", tmp_path / "x" / "y", tmp_path / "x" / "y" / "proofs"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # the default data directory: ~/.local/share/zksolv, each created 0700
    home = tmp_path / "home"
    home.mkdir()
    env2 = {k: v for k, v in env.items() if k not in (DATA_DIR_ENV, "XDG_DATA_HOME")}
    zksolv("prove", snap, "--out", tmp_path / "bundles" / "c", "--jobs", "1", "-q",
           env={**env2, "HOME": str(home)})
    for folder in (home / ".local", home / ".local" / "share", home / ".local/share/zksolv",
                   home / ".local/share/zksolv/inclusion", home / ".local/share/zksolv/work"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_make_private_dirs_leaves_existing_folders_alone(tmp_path: Path) -> None:
    from zksolv.safeio import make_private_dirs

    tmp_path.chmod(0o755)
    old = os.umask(0)
    try:
        make_private_dirs(tmp_path / "n" / "m")
    finally:
        os.umask(old)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "n").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "n" / "m").stat().st_mode) == 0o700


def test_a_readable_private_data_folder_is_restricted(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An inclusion/ folder left 0777 by an older version under umask 000 is
    made 0700 the next time a database goes there."""
    from zksolv.prover.inclusion_db import default_location

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    (tmp_path / "data" / "inclusion").mkdir(parents=True)
    (tmp_path / "data" / "inclusion").chmod(0o777)
    default_location(tmp_path / "b")
    assert stat.S_IMODE((tmp_path / "data" / "inclusion").stat().st_mode) == 0o700
