"""``zksolv snapshot check``: every error in one run, spreadsheet habits
(byte-order mark, trailing blank lines, thousands separators) accepted or
explained, and a solvency preview."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zksolv.cli.main import cli
from zksolv.errors import InputError
from zksolv.snapshot import Asset, SnapshotHeader, open_snapshot, write_snapshot

ASSETS = (Asset("USDC", 6, 100, 10_000, 10**12),
          Asset("ETH", 18, 250_000, 9_000, 1500 * 10**18, proof_decimals=9))


def snap(tmp_path: Path, body: str | bytes, count: int, *, bom_header: bool = False) -> Path:
    out = write_snapshot(tmp_path / "s", SnapshotHeader(3, 1, 2, ASSETS, 1), [("x", (0, 0))])
    hp = out / "header.json"
    hp.write_text(hp.read_text().replace('"account_count": 1',
                                                             f'"account_count": {count}'))
    if bom_header:
        hp.write_bytes(b"\xef\xbb\xbf" + hp.read_bytes())
    raw = body.encode() if isinstance(body, str) else body
    (out / "accounts.csv").write_bytes(raw)
    return out


def check(path: Path, *extra: str) -> tuple[int, dict]:
    res = CliRunner().invoke(cli, ["snapshot", "check", str(path), "--json", *extra])
    return res.exit_code, json.loads(res.output)


def test_every_error_in_one_run(tmp_path: Path) -> None:
    body = ("account_id,USDC,ETH\n"
            "a1,\"1,250,000\",0\n"        # quoted thousands separators
            "a2,1,250,000,0\n"            # unquoted: splits into fields
            "a3,3989.744384,0\n"          # tokens, not base units
            "a4,-5,0\n"
            "a1,1,0\n"                    # duplicate id
            "\n"
            "a6,1,1\n")                   # after a blank line in the middle
    code, out = check(snap(tmp_path, body, 6))
    assert code == 2 and not out["valid"] and not out["truncated"]
    where = [e["where"].rsplit("/", 1)[1] for e in out["errors"]]
    assert where == ["accounts.csv:2:USDC", "accounts.csv:3", "accounts.csv:4:USDC",
                     "accounts.csv:5:USDC", "accounts.csv:6:account_id", "accounts.csv:7"]
    reasons = [e["reason"] for e in out["errors"]]
    assert "thousands separators: write 1250000" in reasons[0]
    assert "thousands separators, 1,250,000, splits into several fields" in reasons[1]
    assert "3989.744384 USDC is 3989744384" in reasons[2]
    assert "negative" in reasons[3] and "duplicate account id 'a1'" in reasons[4]
    assert "empty line (only allowed at the end of the file)" in reasons[5]


def test_max_errors_stops_early(tmp_path: Path) -> None:
    body = "account_id,USDC,ETH\n" + "".join(f"a{i},x,0\n" for i in range(30))
    code, out = check(snap(tmp_path, body, 30), "--max-errors", "5")
    assert code == 2 and out["truncated"] and len(out["errors"]) == 5


def test_bom_and_trailing_blank_lines_are_accepted(tmp_path: Path) -> None:
    body = b"\xef\xbb\xbfaccount_id,USDC,ETH\r\na1,5,1000000000000000001\r\na2,7,0\r\n\r\n\n  \n"
    path = snap(tmp_path, body, 2, bom_header=True)
    code, out = check(path)
    assert code == 0, out
    assert out["accounts"] == 2 and out["solvent"]
    eth = out["assets"][1]
    assert eth["owed"] == 10**18 + 1 and eth["owed_proof_units"] == 10**9 + 1   # rounded up
    assert eth["owed_tokens"] == "1.000000000000000001"
    # and the prover's reader agrees
    assert open_snapshot(path).validate() == 2


def test_insolvent_snapshot_is_well_formed_but_flagged(tmp_path: Path) -> None:
    body = f"account_id,USDC,ETH\na1,{2 * 10**12},0\n"
    path = snap(tmp_path, body, 1)
    code, out = check(path)
    assert code == 0 and not out["solvent"]
    assert out["shortfalls"][0].startswith("USDC short by 1000000.000000 USDC")
    res = CliRunner().invoke(cli, ["snapshot", "check", str(path)])
    assert res.exit_code == 0 and "insolvent as it stands (prove would exit 3)" in res.output


def test_header_and_row_errors_are_reported_together(tmp_path: Path) -> None:
    """A bad price, a bad haircut, an unknown field: none of them needed to
    read the rows, so the rows are checked too, in the same run."""
    path = snap(tmp_path, "account_id,USDC,ETH\na1,-1,1\na2,x,0\n", 2)
    hp = path / "header.json"
    doc = json.loads(hp.read_text())
    doc["assets"][0]["price"] = 1.5
    doc["assets"][1]["haircut_bps"] = 20_000
    doc["assets"][1]["colour"] = "blue"
    doc["epoch"] = -3
    hp.write_text(json.dumps(doc))
    code, out = check(path)
    assert code == 2 and out["rows_checked"] and out["rows_not_checked"] is None
    where = [e["where"].rsplit("/", 1)[1] for e in out["errors"]]
    assert where == ["header.json.epoch", "header.json.assets[0].price",
                     "header.json.assets[1].haircut_bps", "header.json.assets[1]",
                     "accounts.csv:2:USDC", "accounts.csv:3:USDC"], where
    assert "colour" in out["errors"][3]["reason"]
    assert "epoch" not in out and "solvent" not in out   # no preview from a broken header
    res = CliRunner().invoke(cli, ["snapshot", "check", str(path)])
    assert res.exit_code == 2 and "6 error(s)" in res.output and "not checked" not in res.output


def test_a_price_too_large_still_lets_the_rows_be_read(tmp_path: Path) -> None:
    path = snap(tmp_path, "account_id,USDC,ETH\na1,-1,1\n", 1)
    hp = path / "header.json"
    hp.write_text(hp.read_text().replace('"price": 100', f'"price": {2**64}'))
    code, out = check(path)
    assert code == 2 and out["rows_checked"]
    assert [e["where"].rsplit("/", 1)[1] for e in out["errors"]] == [
        "header.json.assets[0]", "accounts.csv:2:USDC"]


@pytest.mark.parametrize("edit, why", [
    (lambda t: t.replace('"symbol": "ETH"', '"symbol": "E T H"'), "assets[1].symbol"),
    (lambda t: t.replace('"decimals": 6', '"decimals": "6"'), "assets[0].decimals"),
    (lambda t: t.replace('"account_count": 1', '"account_count": -1'), "account_count"),
    (lambda t: t[:-5], "cannot be read as JSON"),
])
def test_header_without_columns_says_rows_were_not_checked(tmp_path: Path, edit, why) -> None:
    path = snap(tmp_path, "account_id,USDC,ETH\na1,-1,1\n", 1)
    hp = path / "header.json"
    hp.write_text(edit(hp.read_text()))
    code, out = check(path)
    assert code == 2 and len(out["errors"]) == 1 and not out["rows_checked"]
    assert out["rows_not_checked"].startswith("accounts.csv was not checked")
    assert why in out["rows_not_checked"]
    res = CliRunner().invoke(cli, ["snapshot", "check", str(path)])
    assert res.exit_code == 2 and "note: accounts.csv was not checked" in res.output


def test_max_errors_counts_header_errors(tmp_path: Path) -> None:
    path = snap(tmp_path, "account_id,USDC,ETH\na1,-1,1\n", 1)
    hp = path / "header.json"
    doc = json.loads(hp.read_text())
    doc["epoch"], doc["timestamp"] = -1, -1
    hp.write_text(json.dumps(doc))
    code, out = check(path, "--max-errors", "2")
    assert code == 2 and out["truncated"] and len(out["errors"]) == 2


def test_blank_line_in_the_middle_still_stops_prove(tmp_path: Path) -> None:
    path = snap(tmp_path, "account_id,USDC,ETH\na1,1,1\n\na2,1,1\n", 2)
    with pytest.raises(InputError, match="empty line"):
        open_snapshot(path).validate()


def test_blank_first_line_is_named(tmp_path: Path) -> None:
    code, out = check(snap(tmp_path, "\naccount_id,USDC,ETH\na1,1,1\n", 1))
    assert code == 2 and out["errors"][0]["where"].endswith("accounts.csv:1")
    assert "the first line must be the header row" in out["errors"][0]["reason"]


MARGIN = (Asset("ETH", 18, 250_000, 8_000, 10 * 10**18, proof_decimals=9),
          Asset("DAI", 18, 100, 10_000, 1_000 * 10**18, proof_decimals=6, borrowable=True))


def test_preview_counts_debts_beside_reserves(tmp_path: Path) -> None:
    """Savers are owed 3000 DAI; the protocol holds 1000 and lent 2500 to a
    borrower (collateral 2 ETH): short without the debt, covered with it."""
    rows = [("borrower", (2 * 10**18, 0, 2_500 * 10**18 + 7)),
            ("saver", (0, 3_000 * 10**18, 0))]
    path = write_snapshot(tmp_path / "m", SnapshotHeader(3, 1, 2, MARGIN, 2), rows)
    code, out = check(path)
    assert code == 0 and out["solvent"], out
    dai = out["assets"][1]
    assert dai["borrowable"] and dai["debts"] == 2_500 * 10**18 + 7
    assert dai["debts_proof_units"] == 2_500 * 10**6             # rounded down
    assert out["assets"][0]["debts"] == 0 and not out["assets"][0]["borrowable"]
    res = CliRunner().invoke(cli, ["snapshot", "check", str(path)])
    assert "owed by accounts 2500.000000000000000007" in res.output
    assert "debts owed by accounts counted beside reserves" in res.output
    assert "every account's collateral covers its debts" in res.output


def test_preview_short_even_with_debts(tmp_path: Path) -> None:
    rows = [("borrower", (2 * 10**18, 0, 1_000 * 10**18)), ("saver", (0, 3_000 * 10**18, 0))]
    path = write_snapshot(tmp_path / "m", SnapshotHeader(3, 1, 2, MARGIN, 2), rows)
    code, out = check(path)
    assert code == 0 and not out["solvent"]
    assert out["shortfalls"][0].startswith("DAI short by 1000.000000 DAI")
    assert "owed to it 1000.000000" in out["shortfalls"][0]


def test_preview_names_an_unhealthy_account(tmp_path: Path) -> None:
    rows = [("borrower", (2 * 10**18, 0, 4_100 * 10**18)), ("saver", (0, 10**18, 0))]
    path = write_snapshot(tmp_path / "m", SnapshotHeader(3, 1, 2, MARGIN, 2), rows)
    code, out = check(path)
    assert code == 0 and not out["solvent"]
    assert any("account 'borrower' short by 100.00 in the quote currency" in s
               for s in out["shortfalls"]), out["shortfalls"]
