"""``zksolv verify`` of a folder names everything private in it (a work
area, a database, a snapshot, a key file, inclusion proofs), in text and in
``--json`` ("warnings"), and never changes its verdict for it; the scan is
bounded, follows no link and never blocks."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_epoch_support import ASSETS1, make_snapshot, prove, rows_for, run, verify_json

from zksolv.circuits import bundle as layout
from zksolv.private_scan import PrivateItem, scan


@pytest.fixture(scope="module")
def one_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("one-bundle")
    snap = make_snapshot(d / "snap", rows_for(5, 1), assets=ASSETS1)
    prove(snap, d / "b", "--inclusion-db", str(d / "b.inclusion.sqlite"))
    res = run("inclusion", "export", "--db", d / "b.inclusion.sqlite", "--account", "acct-1",
              "--out", d / "acct-1.json")
    assert res.exit_code == 0, res.output
    res = run("inclusion", "export", "--db", d / "b.inclusion.sqlite", "--all", "--out",
              d / "proofs", "-q")
    assert res.exit_code == 0, res.output
    return d


def _folder_with_strays(src: Path, dest: Path) -> tuple[Path, dict[str, str]]:
    """A folder of bundles holding one of each private thing; returns the
    folder and {relative path: kind} of what verify must name."""
    bundles = dest / "bundles"
    shutil.copytree(src / "b", bundles / "epoch-1")
    work = bundles / "epoch-2.work"          # a work area of an older version, killed
    (work / "shards").mkdir(parents=True)
    shutil.copyfile(src / "b.inclusion.sqlite", work / "leaves.sqlite")
    (work / "state.json").write_text("{}")
    with sqlite3.connect(bundles / "private.db") as conn:   # named .db, found by its magic
        conn.execute("CREATE TABLE t(x)")
    shutil.copytree(src / "snap", bundles / "snap-e1")
    (bundles / "operator.key").write_text("ab" * 32 + "\n")
    (bundles / "operator.key.pub").write_text("cd" * 32 + "\n")       # public: not named
    shutil.copytree(src / "proofs", bundles / "proofs")
    shutil.copyfile(src / "acct-1.json", bundles / "epoch-1" / "acct-1.json")
    (bundles / "index.html").write_text("<!doctype html>")          # public: not named
    return bundles, {
        "epoch-2.work": "work-area", "private.db": "database", "snap-e1": "snapshot",
        "operator.key": "key", "proofs": "inclusion-proofs",
        "epoch-1/acct-1.json": "inclusion-proof",
    }


def test_verify_names_every_private_item_in_the_folder(one_bundle: Path,
                                                         tmp_path: Path) -> None:
    bundles, expected = _folder_with_strays(one_bundle, tmp_path)
    code, rep = verify_json(bundles)
    assert code == 0 and rep["valid"] is True, rep      # the verdict is the proofs'
    got = {str(Path(w["path"]).relative_to(bundles)): w["kind"] for w in rep["warnings"]}
    assert got == expected
    assert all(w["what"] for w in rep["warnings"])
    res = run("verify", bundles)
    assert res.exit_code == 0, res.output
    for rel in expected:
        assert f"warning: {bundles / rel} is PRIVATE" in res.stderr, rel
    assert "6 private item(s)" in res.stderr
    # one bundle given: what is inside it is named too
    code, rep = verify_json(bundles / "epoch-1")
    assert code == 0
    assert [(Path(w["path"]).name, w["kind"]) for w in rep["warnings"]] == [
        ("acct-1.json", "inclusion-proof")]


def test_verify_warns_as_well_when_the_bundle_fails(one_bundle: Path, tmp_path: Path) -> None:
    bundles, expected = _folder_with_strays(one_bundle, tmp_path)
    leaves = bundles / "epoch-1" / layout.LEAVES_FILE
    data = bytearray(leaves.read_bytes())
    data[5] ^= 1
    leaves.write_bytes(bytes(data))
    code, rep = verify_json(bundles)
    assert code == 1 and rep["valid"] is False, rep
    assert {w["kind"] for w in rep["warnings"]} == set(expected.values())


def test_verify_of_a_clean_folder_warns_of_nothing(one_bundle: Path) -> None:
    code, rep = verify_json(one_bundle / "b")
    assert code == 0 and rep["warnings"] == []
    res = run("verify", one_bundle / "b")
    assert res.exit_code == 0 and "warning" not in res.stderr


def test_the_scan_is_bounded_and_follows_no_link(tmp_path: Path) -> None:
    """A symlink loop, a link to a private file, a FIFO named like a key:
    nothing followed, nothing blocks; past the entry bound it says so."""
    folder = tmp_path / "pub"
    folder.mkdir()
    (folder / "loop").symlink_to(folder)
    secret = tmp_path / "secret.sqlite"
    secret.write_bytes(b"SQLite format 3\x00")
    (folder / "link.bin").symlink_to(secret)
    os.mkfifo(folder / "fifo.json")
    deep = folder
    for i in range(8):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "x.sqlite").write_bytes(b"")
    res = scan(folder)
    assert res.items == () and not res.complete       # the deep folder was not looked into
    assert scan(folder, max_depth=10).items == (PrivateItem(deep / "x.sqlite", "database"),)
    shutil.rmtree(folder / "d0")
    assert scan(folder).complete
    for i in range(20):
        (folder / f"f{i}").write_text("")
    assert not scan(folder, max_entries=10).complete
    code, rep = verify_json(folder)
    assert code == 2 and rep["warnings"] == []
