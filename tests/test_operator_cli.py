"""What the operator reads: `prove` naming `snapshot check` on a bad
snapshot, the valued shortfall per asset, timestamps and staleness warnings
in `verify`, finding a bundle's inclusion database, `locate --dir`, and the
result line `prove -q` keeps."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from test_epoch_support import make_snapshot, rows_for, run

from zksolv.cli.main import cli
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
