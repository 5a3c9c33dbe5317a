"""Bulk export of inclusion proofs, and where private data lands: the
default database location (never beside the bundle), file modes."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from test_epoch_support import KEY_HEX, make_snapshot, prove, rows_for, run, verify_json

from zksolv.prover import export as export_mod
from zksolv.prover import inclusion_db
from zksolv.prover.export import proof_file_path

N = 21


@pytest.fixture(scope="module")
def epoch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    d = tmp_path_factory.mktemp("export")
    rows = rows_for(N, 2)
    prove(make_snapshot(d / "snap", rows, epoch=4), d / "b")
    return d, rows


def test_export_all_writes_every_proof_once(epoch: tuple[Path, list], tmp_path: Path) -> None:
    d, rows = epoch
    db = d / "b.inclusion.sqlite"
    out = tmp_path / "proofs"
    res = run("inclusion", "export", "--db", db, "--all", "--out", out)
    assert res.exit_code == 0, res.output
    assert f"wrote {N} inclusion proofs" in res.output
    # the first and last account and up to 16 more: never a sample of padding
    sampled = int(re.search(r"commitment; (\d+) proofs also as their holders", res.output)[1])
    assert 2 <= sampled <= 18, res.output
    subdirs = sorted(os.listdir(out))
    assert subdirs == [f"{i:02x}" for i in range(256)]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE((out / s).stat().st_mode) == 0o700 for s in subdirs)
    names = sorted(f"{s}/{f}" for s in subdirs for f in os.listdir(out / s))
    assert len(names) == N and all(n[:2] == n[3:5] for n in names)
    _, bundle = verify_json(d / "b")
    bundle_hash = bundle["bundles"][0]["bundle_hash"]
    for acc, amounts in rows:
        res = run("inclusion", "locate", "--db", db, "--account", acc)
        assert res.exit_code == 0, res.output
        name = res.output.strip()
        path = out / name
        assert name in names and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert acc not in name
        # the same bytes as a one-account export
        single = run("inclusion", "export", "--db", db, "--account", acc)
        assert path.read_text() == single.output
        doc = json.loads(path.read_text())
        assert name == proof_file_path(_salt(doc))
        res = run("inclusion", "verify", path, "--account", acc, "--bundle-hash", bundle_hash,
                  "--expect", f"USDC={amounts[0]}", "--expect", f"BTC={amounts[1]}")
        assert res.exit_code == 0, res.output
    # one full check against the bundle, for the first file
    acc = rows[0][0]
    name = run("inclusion", "locate", "--db", db, "--account", acc).output.strip()
    res = run("inclusion", "verify", out / name, "--account", acc, "--bundle", d / "b")
    assert res.exit_code == 0, res.output


def test_export_all_fast_documents_are_the_reference_documents(
        epoch: tuple[Path, list], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampled accounts are built through the reference path too: a fast
    encoding that drifts from it stops the export (ProverFault, exit 1) and
    leaves nothing behind."""
    d, _ = epoch
    db = d / "b.inclusion.sqlite"
    real = export_mod._DocumentBytes.document

    def drifted(self: export_mod._DocumentBytes, account_id: str, proof: bytes,
                values: list[int]) -> bytes:
        return real(self, account_id, proof, values).replace(b'"tokens":"', b'"tokens":" ')

    monkeypatch.setattr(export_mod._DocumentBytes, "document", drifted)
    out = tmp_path / "proofs"
    res = run("inclusion", "export", "--db", db, "--all", "--out", out, "--jobs", "1")
    assert res.exit_code == 1, res.output
    assert "differs from the reference" in res.output
    assert not out.exists() and not list(tmp_path.iterdir())


def _salt(doc: dict) -> bytes:
    from zksolv.circuits.inclusion import InclusionProof

    return InclusionProof.from_bytes(bytes.fromhex(doc["proof"])).salt


def test_export_all_refuses_a_tampered_database(epoch: tuple[Path, list],
                                                tmp_path: Path) -> None:
    d, _ = epoch
    for what, sql in (
        ("node", "UPDATE nodes SET data = substr(data, 1, length(data) - 1) || x'00' "
                 "WHERE level = 1 AND idx = 0"),
        ("opening", "UPDATE leaves SET amounts = x'00000000000000000000000000000000' "
                    "WHERE account_id = 'acct-3'"),
        ("salt", "UPDATE leaves SET salt = zeroblob(32) WHERE account_id = 'acct-5'"),
    ):
        db = tmp_path / f"{what}.sqlite"
        shutil.copy(d / "b.inclusion.sqlite", db)
        con = sqlite3.connect(db)
        con.execute(sql)
        con.commit()
        con.close()
        out = tmp_path / f"out-{what}"
        res = run("inclusion", "export", "--db", db, "--all", "--out", out)
        assert res.exit_code == 2, (what, res.output)
        assert "corrupt or tampered inclusion database" in res.output, res.output
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out-{what}")]


def test_export_usage_errors(epoch: tuple[Path, list], tmp_path: Path) -> None:
    d, _ = epoch
    db = d / "b.inclusion.sqlite"
    res = run("inclusion", "export", "--db", db)
    assert res.exit_code == 2 and "exactly one of --account ID or --all" in res.output
    res = run("inclusion", "export", "--db", db, "--all")
    assert res.exit_code == 2 and "--all needs --out DIR" in res.output
    (tmp_path / "exists").mkdir()
    res = run("inclusion", "export", "--db", db, "--all", "--out", tmp_path / "exists")
    assert res.exit_code == 2 and "refusing to overwrite" in res.output
    res = run("inclusion", "locate", "--db", db, "--account", "nobody")
    assert res.exit_code == 2 and "no account 'nobody'" in res.output


def test_default_database_is_never_beside_the_bundle(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`prove --out bundles/1` with no --inclusion-db: the database goes to the
    data directory (0700), the bundle folder holds only bundles, world-readable
    even under a strict umask; `verify bundles/*` works."""
    from click.testing import CliRunner

    from zksolv.cli.main import cli

    data = tmp_path / "data"
    snap = make_snapshot(tmp_path / "snap", rows_for(5, 2), epoch=1)
    old = os.umask(0o077)
    try:
        res = CliRunner().invoke(
            cli, ["prove", str(snap), "--out", str(tmp_path / "bundles" / "1"), "--jobs", "1",
                  "--quiet"],
            env={"ZKSOLV_OPERATOR_KEY": KEY_HEX, inclusion_db.DATA_DIR_ENV: str(data)})
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert os.listdir(tmp_path / "bundles") == ["1"]
    bundle = tmp_path / "bundles" / "1"
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o755
    for f in bundle.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    dbs = list((data / "inclusion").iterdir())
    assert len(dbs) == 1 and dbs[0].name.startswith("1.") and dbs[0].suffix == ".sqlite"
    assert stat.S_IMODE(dbs[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "inclusion").stat().st_mode) == 0o700
    assert str(dbs[0]) in res.output  # even with --quiet: it is not beside the bundle
    code, out = verify_json(bundle)
    assert code == 0, out
    res = run("inclusion", "export", "--db", dbs[0], "--account", "acct-2")
    assert res.exit_code == 0, res.output
