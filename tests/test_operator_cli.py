"""What the operator reads: `prove` naming `snapshot check` on a bad
snapshot, the valued shortfall per asset, timestamps and staleness warnings
in `verify`, finding a bundle's inclusion database, `locate --dir`, and the
result line `prove -q` keeps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_epoch_support import KEY_HEX, make_snapshot, rows_for, run, verify_json

from zksolv.cli.main import cli
from zksolv.prover.inclusion_db import DATA_DIR_ENV
from zksolv.snapshot import Asset


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


ETH = 10**18
HAIRCUT_ASSETS = (Asset("USDC", 6, 100, 10_000, 1000 * 10**6),             # 1,000 USDC at 1.00
                  Asset("ETH", 18, 250_000, 5_000, 2 * ETH, proof_decimals=9))  # 2 ETH at 50%
# every asset covered on its own; valued: 1,000 + 0.5 x 2 x 2,500 = 3,500 held
# against 900 + 1.9 x 2,500 = 5,650 owed
HAIRCUT_ROWS = [("a", (900 * 10**6, 19 * ETH // 10))]


def test_valued_insolvency_is_broken_down_per_asset(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", HAIRCUT_ROWS, assets=HAIRCUT_ASSETS)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "-q")
    assert res.exit_code == 3 and not (tmp_path / "b").exists()
    text = res.output
    assert ("valued (priced, haircut) reserves short by 2,150.00 quote units (the currency "
            "header.json's prices are in, price_decimals 2; the snapshot does not name it): "
            "haircut reserves 3,500.00 against valued liabilities 5,650.00") in text
    assert ("USDC: haircut reserves 1,000.00 (reserves 1000.000000 USDC x price 1.00 x haircut "
            "100.00%) against valued liabilities 900.00 (owed 900.000000 USDC x price 1.00): "
            "covers 100.00") in text
    assert ("ETH: haircut reserves 2,500.00 (reserves 2.000000000 ETH x price 2,500.00 x haircut "
            "50.00%) against valued liabilities 4,750.00 (owed 1.900000000 ETH x price "
            "2,500.00): short 2,250.00") in text
    assert "short by" not in text.split("valued")[0]    # no asset short on its own

    code = CliRunner().invoke(cli, ["snapshot", "check", str(snap), "--json"])
    out = json.loads(code.output)
    assert code.exit_code == 0 and not out["solvent"]
    sf = out["shortfall"]
    assert sf["solvent"] is False
    assert sf["quote"] == {"name": None, "unit": "quote units", "decimals": 2}
    assert sf["valued"] == {"valued_liabilities": 565_000, "haircut_reserves": 350_000,
                            "short": 215_000}
    usdc, eth = sf["assets"]
    assert (usdc["valued_liabilities"], usdc["haircut_reserves"], usdc["short_proof_units"]) == (
        90_000, 100_000, 0)
    assert (eth["valued_liabilities"], eth["haircut_reserves"], eth["short_proof_units"]) == (
        475_000, 250_000, 0)
    assert eth["owed_proof_units"] == 19 * 10**8 and eth["haircut_bps"] == 5_000


def test_per_asset_shortfall_as_numbers(tmp_path: Path) -> None:
    assets = (Asset("USDC", 6, 100, 10_000, 1000 * 10**6),)
    snap = make_snapshot(tmp_path / "s", [("a", (1500 * 10**6,))], assets=assets)
    res = CliRunner().invoke(cli, ["snapshot", "check", str(snap), "--json"])
    sf = json.loads(res.output)["shortfall"]
    (usdc,) = sf["assets"]
    assert usdc["short_proof_units"] == usdc["short_base_units"] == 500 * 10**6
    assert usdc["short_tokens"] == "500.000000"
    assert sf["valued"]["short"] == 50_000 and not sf["solvent"]
    text = CliRunner().invoke(cli, ["snapshot", "check", str(snap)]).output
    assert "USDC short by 500.000000 USDC" in text and "USDC: haircut reserves 1,000.00" in text


def test_solvent_snapshot_has_a_solvent_shortfall_of_zero(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", rows_for(3, 2))
    out = json.loads(CliRunner().invoke(cli, ["snapshot", "check", str(snap), "--json"]).output)
    assert out["solvent"] and out["shortfall"]["solvent"]
    assert out["shortfall"]["valued"]["short"] == 0


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as `simulate --prove` leaves it after refusing epochs 2
    and 3: snapshots of epochs 1..3, a bundle of epoch 1 only, a private
    area (whose contents are never looked at)."""
    root = tmp_path_factory.mktemp("run")
    run_dir = root / "run"
    for e in (1, 2, 3):
        make_snapshot(run_dir / f"epoch-{e:06d}", rows_for(3, 2), epoch=e)
    (run_dir / "private").mkdir(mode=0o700)
    make_snapshot(run_dir / "private" / "epoch-000009", rows_for(3, 2), epoch=9)
    res = run("prove", run_dir / "epoch-000001", "--out", run_dir / "bundles" / "epoch-000001",
              "--jobs", "1", "-q", "--inclusion-db", root / "e1.sqlite")
    assert res.exit_code == 0, res.output
    return root


def test_verify_shows_the_time_and_warns_of_later_snapshots(sim_run: Path) -> None:
    bundles = sim_run / "run" / "bundles"
    res = run("verify", bundles)
    assert res.exit_code == 0, res.output
    assert "valid: epoch 1, the state at 2023-11-14 22:13:21 UTC" in res.output
    assert (f"warning: {sim_run / 'run'}: 2 snapshot(s) of later epochs than the newest bundle "
            "given (epoch 1): epochs 2..3, no bundle given for them") in res.output
    assert "epoch 9" not in res.output and "max-age" not in res.output
    code, out = verify_json(bundles)
    assert code == 0
    (b,) = out["bundles"]
    assert b["timestamp"] == 1_700_000_001 and b["time_utc"] == "2023-11-14T22:13:21Z"
    (w,) = [w for w in out["warnings"] if w["kind"] == "unproven-snapshots"]
    assert w["path"] == str(sim_run / "run") and "epochs 2..3" in w["what"]
    assert set(w) == {"path", "kind", "what"}


def test_verify_max_age(sim_run: Path) -> None:
    bundle = sim_run / "run" / "bundles" / "epoch-000001"
    code, out = verify_json(bundle, "--max-age", "2h")
    assert code == 0 and out["valid"]
    (stale,) = [w for w in out["warnings"] if w["kind"] == "stale"]
    assert stale["path"] == str(bundle)
    assert "older than --max-age 2 h 0 min" in stale["what"]
    res = run("verify", bundle, "--max-age", "2h")
    assert res.exit_code == 0 and "older than --max-age 2 h 0 min" in res.output
    code, out = verify_json(bundle, "--max-age", "2000w")    # younger than that: no warning
    assert code == 0 and not [w for w in out["warnings"] if w["kind"] == "stale"]
    for bad in ("2 h", "2x", "h", "-1h", ""):
        res = run("verify", bundle, "--max-age", bad)
        assert res.exit_code == 2 and "--max-age" in res.output, bad


def test_no_later_snapshot_no_warning(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snaps" / "epoch-000004", rows_for(3, 2), epoch=4)
    make_snapshot(tmp_path / "snaps" / "epoch-000003", rows_for(3, 2), epoch=3)   # earlier
    run("prove", snap, "--out", tmp_path / "snaps" / "bundles" / "epoch-000004", "--jobs", "1",
        "-q", "--inclusion-db", tmp_path / "db.sqlite")
    code, out = verify_json(tmp_path / "snaps" / "bundles")
    assert code == 0 and not [w for w in out["warnings"] if w["kind"] == "unproven-snapshots"]


def test_inclusion_verify_time_and_warnings(sim_run: Path, tmp_path: Path) -> None:
    bundle = sim_run / "run" / "bundles" / "epoch-000001"
    proof = tmp_path / "p.json"
    assert run("inclusion", "export", "--db", sim_run / "e1.sqlite", "--account", "acct-1",
               "--out", proof).exit_code == 0
    res = run("inclusion", "verify", proof, "--account", "acct-1", "--bundle", bundle,
              "--max-age", "1d", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["time_utc"] == "2023-11-14T22:13:21Z"
    assert [w["kind"] for w in out["warnings"]] == ["stale", "unproven-snapshots"]
    res = run("inclusion", "verify", proof, "--account", "acct-1", "--bundle-hash",
              out["bundle_hash"], "--max-age", "1d")
    assert res.exit_code == 0
    assert "the state at 2023-11-14 22:13:21 UTC" in res.output
    assert "older than --max-age 1 d 0 h" in res.output and "later epochs" not in res.output
    res = run("inclusion", "verify", proof, "--account", "acct-1", "--bundle-hash",
              out["bundle_hash"], "--json")
    assert json.loads(res.output)["warnings"] == []


def _prove_default_db(snap: Path, out: Path, data: Path, *extra: str):
    return CliRunner().invoke(cli, ["prove", str(snap), "--out", str(out), "--jobs", "1",
                                    *extra],
                              env={"ZKSOLV_OPERATOR_KEY": KEY_HEX, DATA_DIR_ENV: str(data)})


def test_prove_quiet_keeps_the_result_line_and_inclusion_db_finds_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    snap = make_snapshot(tmp_path / "s", rows_for(3, 2))
    res = _prove_default_db(snap, tmp_path / "b", data, "-q")
    assert res.exit_code == 0, res.output
    m = re.fullmatch(r"epoch 1: bundle (\S+) \(hash ([0-9a-f]{64})\); inclusion database "
                     r"(\S+) \(private: do not publish\)\n", res.output)
    assert m is not None, res.output
    bundle_hash, db = m.group(2), Path(m.group(3))
    assert db.parent == data / "inclusion" and db.is_file()
    # a second epoch's database beside it is not a match
    snap2 = make_snapshot(tmp_path / "s2", rows_for(4, 2), epoch=2)
    assert _prove_default_db(snap2, tmp_path / "b2", data, "-q").exit_code == 0
    env = {DATA_DIR_ENV: str(data)}
    for how in (["--bundle-hash", bundle_hash], ["--bundle-hash", bundle_hash.upper()],
                ["--bundle", str(tmp_path / "b")]):
        found = CliRunner().invoke(cli, ["inclusion", "db", *how], env=env)
        assert found.exit_code == 0 and found.output == f"{db}\n", found.output
    out = json.loads(CliRunner().invoke(cli, ["inclusion", "db", "--bundle", str(tmp_path / "b"),
                                              "--json"], env=env).output)
    assert out == {"bundle_hash": bundle_hash, "databases": [str(db)],
                   "searched": [str(data / "inclusion")]}


def test_inclusion_db_not_found_and_elsewhere(tmp_path: Path) -> None:
    data = tmp_path / "data"
    snap = make_snapshot(tmp_path / "s", rows_for(3, 2))
    own = tmp_path / "mine" / "e1.sqlite"
    own.parent.mkdir()
    (own.parent / "junk.sqlite").write_bytes(b"not a database")
    res = _prove_default_db(snap, tmp_path / "b", data, "-q", "--inclusion-db", str(own))
    assert res.exit_code == 0 and f"inclusion database {own} " in res.output
    env = {DATA_DIR_ENV: str(data)}
    res = CliRunner().invoke(cli, ["inclusion", "db", "--bundle", str(tmp_path / "b")], env=env)
    assert res.exit_code == 2 and "no inclusion database of bundle" in res.output
    assert str(data / "inclusion") in res.output and "add --in FOLDER" in res.output
    res = CliRunner().invoke(cli, ["inclusion", "db", "--bundle", str(tmp_path / "b"),
                                   "--in", str(own.parent)], env=env)
    assert res.exit_code == 0 and res.output == f"{own}\n"
    for bad in ([], ["--bundle-hash", "12"], ["--bundle", str(snap)],
                ["--bundle-hash", "00" * 32, "--bundle", str(tmp_path / "b")]):
        res = CliRunner().invoke(cli, ["inclusion", "db", *bad], env=env)
        assert res.exit_code == 2 and "Traceback" not in res.output, bad


def test_locate_dir_prints_the_full_path(sim_run: Path, tmp_path: Path) -> None:
    db = sim_run / "e1.sqlite"
    proofs = tmp_path / "proofs"
    assert run("inclusion", "export", "--db", db, "--all", "--out", proofs, "-q",
               "--jobs", "1").exit_code == 0
    rel = run("inclusion", "locate", "--db", db, "--account", "acct-2").output.strip()
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{32}\.json", rel)
    res = run("inclusion", "locate", "--db", db, "--account", "acct-2", "--dir", proofs)
    assert res.exit_code == 0 and res.output == f"{proofs / rel}\n"
    assert json.loads((proofs / rel).read_text())["format"] == "zksolv-inclusion"
    res = run("inclusion", "locate", "--db", db, "--account", "acct-2", "--dir", tmp_path)
    assert res.exit_code == 2 and "no such file" in res.output
    help_text = " ".join(run("inclusion", "locate", "--help").output.split())
    assert "relative to that DIR" in help_text and "--dir" in help_text


def test_demo_says_where_its_files_are(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["demo", "--accounts", "5", "--jobs", "1", "-q"])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert "in a temporary folder, deleted at the end: --keep DIR keeps it" in first
    assert "/" not in first.split("(")[1].split("deleted")[0]   # no path it then deletes
    keep = tmp_path / "kept"
    res = CliRunner().invoke(cli, ["demo", "--accounts", "5", "--jobs", "1", "-q",
                                   "--keep", str(keep)])
    assert res.exit_code == 0, res.output
    assert f"(in {keep / 'snapshot'})" in res.output and f"kept in    {keep}" in res.output
    assert (keep / "snapshot" / "accounts.csv").is_file() and (keep / "bundle").is_dir()
    assert "--keep" in CliRunner().invoke(cli, ["demo", "--help"]).output


def test_plain_pytest_says_why_a_test_was_skipped(tmp_path: Path) -> None:
    """The project's pytest options list each skip with its reason."""
    import subprocess
    import sys

    (tmp_path / "test_skip.py").write_text(
        "import pytest\n\ndef test_x():\n    pytest.skip('no chromium on this machine')\n")
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "pytest", "-c", str(repo / "pyproject.toml"),
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           str(tmp_path / "test_skip.py")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "1 skipped" in proc.stdout, proc.stdout + proc.stderr
    assert "SKIPPED" in proc.stdout and "no chromium on this machine" in proc.stdout
