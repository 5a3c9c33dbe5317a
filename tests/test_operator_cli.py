"""What the operator reads: `prove` naming `snapshot check` on a bad
snapshot, the valued shortfall per asset, timestamps and staleness warnings
in `verify`, finding a bundle's inclusion database, `locate --dir`, and the
result line `prove -q` keeps."""

from __future__ import annotations

from pathlib import Path

from test_epoch_support import make_snapshot, rows_for, run


def test_prove_points_to_snapshot_check(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", rows_for(3, 2))
    (snap / "accounts.csv").write_text("account_id,USDC,BTC\nacct-0,-1,0\nacct-1,x,0\nacct-2,1,1\n")
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "-q")
    assert res.exit_code == 2
    assert "accounts.csv:2:USDC" in res.output
    assert f"zksolv snapshot check {snap}` lists every error" in res.output
    assert not (tmp_path / "b").exists()


def test_prove_names_no_snapshot_check_for_other_input(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", rows_for(3, 2))
    res = run("prove", snap, "--out", tmp_path / "b", "--prev", tmp_path / "nothing", "-q")
    assert res.exit_code == 2 and "snapshot check" not in res.output
    res = run("prove", tmp_path, "--out", tmp_path / "b", "-q")   # not a snapshot
    assert res.exit_code == 2 and "snapshot check" not in res.output
