"""The snapshot reader and writer: round trips, and every malformed input is
refused with the file, line and field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksolv.errors import InputError
from zksolv.snapshot import MAX_AMOUNT, Asset, SnapshotHeader, open_snapshot, write_snapshot

ASSETS = (
    Asset("USDC", 6, 100_000_000, 10_000, 5_000_000),
    Asset("ETH", 9, 200_000_000_000, 9_000, 7_000),
)


def header(count: int) -> SnapshotHeader:
    return SnapshotHeader(epoch=3, timestamp=1_700_000_000, price_decimals=8, assets=ASSETS,
                          account_count=count)


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "s", header(2), [("a1", (1, 2)), ("a2", (3, 4))])


def rewrite_body(snap: Path, text: str) -> Path:
    path = snap / "accounts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def read_all(snap: Path) -> list[tuple[str, tuple[int, ...]]]:
    return list(open_snapshot(snap).iter_accounts())


def test_round_trip(snap: Path) -> None:
    opened = open_snapshot(snap)
    assert opened.header == header(2)
    assert read_all(snap) == [("a1", (1, 2)), ("a2", (3, 4))]
    assert opened.validate() == 2


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, MAX_AMOUNT), st.integers(0, MAX_AMOUNT)),
                min_size=1, max_size=30))
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory,
                             rows: list[tuple[int, int]]) -> None:
    out = tmp_path_factory.mktemp("snap") / "s"
    data = [(f"id-{i}", amounts) for i, amounts in enumerate(rows)]
    write_snapshot(out, header(len(data)), data)
    assert read_all(out) == data


@pytest.mark.parametrize(
    ("body", "where", "why"),
    [
        ("account_id,USDC,ETH\na1,-5,0\n", ":2:USDC", "negative amount"),
        ("account_id,USDC,ETH\na1,1.5,0\n", ":2:USDC", "fractional"),
        ("account_id,USDC,ETH\na1,0,1e3\n", ":2:ETH", "fractional"),
        ("account_id,USDC,ETH\na1,abc,0\n", ":2:USDC", "not a non-negative integer"),
        ("account_id,USDC,ETH\na1,0,\n", ":2:ETH", "not a non-negative integer"),
        (f"account_id,USDC,ETH\na1,{MAX_AMOUNT + 1},0\n", ":2:USDC", "exceeds 2^64 - 1"),
        ("account_id,USDC,ETH\na1,1,1\na1,2,2\n", ":3:account_id", "duplicate account id"),
        ("account_id,USDC,ETH\n,1,1\n", ":2:account_id", "empty id"),
        ("account_id,USDC,ETH\n a1,1,1\n", ":2:account_id", "surrounding spaces"),
        ("account_id,USDC,ETH,BTC\na1,1,1,1\n", ":1", "unknown asset column(s) BTC"),
        ("account_id,USDC\na1,1\n", ":1", "missing column(s) ETH"),
        ("account_id,ETH,USDC\na1,1,1\n", ":1", "columns out of order"),
        ("", ":1", "empty file"),
        ("account_id,USDC,ETH\na1,1\n", ":2", "expected 3 fields, got 2"),
    ],
)
def test_body_rejected_with_file_line_field(snap: Path, body: str, where: str,
                                            why: str) -> None:
    path = rewrite_body(snap, body)
    with pytest.raises(InputError) as info:
        read_all(snap)
    assert info.value.where == f"{path}{where}"
    assert why in str(info.value)
    assert str(info.value).startswith(f"{path}{where}: ")
    assert info.value.exit_code == 2


@pytest.mark.parametrize("rows", [1, 3])
def test_header_body_count_mismatch(snap: Path, rows: int) -> None:
    body = "account_id,USDC,ETH\n" + "".join(f"a{i},1,1\n" for i in range(rows))
    path = rewrite_body(snap, body)
    with pytest.raises(InputError) as info:
        read_all(snap)
    assert info.value.where == str(path)
    # too many rows are refused as soon as the count is exceeded (bounded reading)
    have = f"{rows} rows" if rows < 2 else "more than 2 rows"
    assert f"account_count=2 but the file has {have}" in str(info.value)


def test_no_accounts(snap: Path) -> None:
    path = rewrite_body(snap, "account_id,USDC,ETH\n")
    with pytest.raises(InputError, match="no accounts") as info:
        read_all(snap)
    assert info.value.where == str(path)


@pytest.mark.parametrize(
    ("mutate", "field", "why"),
    [
        (lambda h: h.update(format="other"), "format", "expected 'zksolv-snapshot'"),
        (lambda h: h.update(version=3), "version", "unsupported version 3"),
        (lambda h: h.update(epoch=-1), "epoch", "out of range"),
        (lambda h: h.update(epoch=1.5), "epoch", "must be an integer"),
        (lambda h: h["assets"][1].update(symbol="USDC"), "assets[1].symbol", "duplicate asset"),
        (lambda h: h["assets"][0].update(haircut_bps=10_001), "assets[0].haircut_bps",
         "out of range"),
        (lambda h: h["assets"][0].update(reserves=-1), "assets[0].reserves", "out of range"),
        (lambda h: h.update(assets=[]), "assets", "non-empty list"),
    ],
)
def test_header_rejected_naming_field(snap: Path, mutate, field: str, why: str) -> None:
    hp = snap / "header.json"
    data = json.loads(hp.read_text())
    mutate(data)
    hp.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        open_snapshot(snap)
    assert info.value.where == f"{hp}.{field}"
    assert why in str(info.value)


def test_header_invalid_json_names_line(snap: Path) -> None:
    hp = snap / "header.json"
    hp.write_text('{\n "format": \n')
    with pytest.raises(InputError, match="invalid JSON") as info:
        open_snapshot(snap)
    assert info.value.where.startswith(f"{hp}:")


def test_writer_refuses_count_mismatch_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="account_count"):
        write_snapshot(tmp_path / "s", header(3), [("a1", (1, 2))])
    assert list(tmp_path.iterdir()) == []


# --- version 2: borrowable assets and their debt columns ---------------------------------

MARGIN_ASSETS = (
    Asset("ETH", 18, 250_000_000_000, 8_000, 10**21, proof_decimals=9),
    Asset("DAI", 18, 100_000_000, 10_000, 10**24, proof_decimals=6, borrowable=True),
)


def margin_header(count: int, assets: tuple[Asset, ...] = MARGIN_ASSETS) -> SnapshotHeader:
    return SnapshotHeader(epoch=4, timestamp=1_700_000_000, price_decimals=8, assets=assets,
                          account_count=count)


@pytest.fixture
def margin_snap(tmp_path: Path) -> Path:
    rows = [("borrower", (10**18, 0, 1_000 * 10**18)), ("saver", (0, 5 * 10**18, 0))]
    return write_snapshot(tmp_path / "m", margin_header(2), rows)


def test_margin_round_trip(margin_snap: Path) -> None:
    head = json.loads((margin_snap / "header.json").read_text())
    assert head["version"] == 2
    assert [a.get("borrowable") for a in head["assets"]] == [None, True]
    body = (margin_snap / "accounts.csv").read_text().splitlines()
    assert body[0] == "account_id,ETH,DAI,DAI.debt"
    opened = open_snapshot(margin_snap)
    assert opened.header == margin_header(2)
    assert opened.header.columns == ("ETH", "DAI", "DAI.debt")
    assert read_all(margin_snap) == [("borrower", (10**18, 0, 1_000 * 10**18)),
                                     ("saver", (0, 5 * 10**18, 0))]


def test_debts_round_down_credits_up(tmp_path: Path) -> None:
    """A receivable is never overstated: a debt is proven rounded down, a
    credit rounded up (DAI proven at 6 of its 18 decimals)."""
    odd = 10**12 + 1      # 1.000000000001 micro-DAI
    out = write_snapshot(tmp_path / "m", margin_header(1), [("a", (0, odd, odd))])
    assert list(open_snapshot(out).iter_proof_amounts()) == [("a", (0, 2, 1))]


def test_debt_above_2_64_base_units_fits_rounded_down(tmp_path: Path) -> None:
    big = ((1 << 64) - 1) * 10**12 + (10**12 - 1)   # rounds down to 2^64 - 1
    out = write_snapshot(tmp_path / "m", margin_header(1), [("a", (0, 0, big))])
    assert list(open_snapshot(out).iter_proof_amounts()) == [("a", (0, 0, (1 << 64) - 1))]
    rewrite_body(out, f"account_id,ETH,DAI,DAI.debt\na,0,0,{big + 1}\n")
    with pytest.raises(InputError, match="debt .* exceeds 2\\^64 - 1") as info:
        read_all(out)
    assert info.value.where.endswith("accounts.csv:2:DAI.debt")


@pytest.mark.parametrize(
    ("body", "where", "why"),
    [
        ("account_id,ETH,DAI,DAI.debt\na1,0,0,-5\n", ":2:DAI.debt", "negative amount"),
        ("account_id,ETH,DAI,DAI.debt\na1,0,0,1.5\n", ":2:DAI.debt", "fractional"),
        ("account_id,ETH,DAI\na1,0,0\n", ":1", "missing column(s) DAI.debt"),
        ("account_id,ETH,DAI.debt,DAI\na1,0,0,0\n", ":1", "columns out of order"),
        ("account_id,ETH,ETH.debt,DAI,DAI.debt\na1,0,0,0,0\n", ":1",
         "unknown asset column(s) ETH.debt"),
        ("account_id,ETH,DAI,DAI.debt\na1,0,0\n", ":2", "expected 4 fields, got 3"),
    ],
)
def test_margin_body_rejected_with_file_line_field(margin_snap: Path, body: str, where: str,
                                                   why: str) -> None:
    path = rewrite_body(margin_snap, body)
    with pytest.raises(InputError) as info:
        read_all(margin_snap)
    assert info.value.where == f"{path}{where}"
    assert why in str(info.value)


@pytest.mark.parametrize("value", [True, False])
def test_version_1_refuses_borrowable(snap: Path, value: bool) -> None:
    hp = snap / "header.json"
    data = json.loads(hp.read_text())
    data["assets"][0]["borrowable"] = value
    hp.write_text(json.dumps(data))
    with pytest.raises(InputError, match="'borrowable' needs \"version\": 2") as info:
        open_snapshot(snap)
    assert info.value.where == f"{hp}.assets[0].borrowable"


def test_version_2_without_borrowable_reads_as_version_1(snap: Path) -> None:
    hp = snap / "header.json"
    data = json.loads(hp.read_text())
    data["version"] = 2
    data["assets"][1]["borrowable"] = False
    hp.write_text(json.dumps(data))
    opened = open_snapshot(snap)
    assert opened.header == header(2) and opened.header.version == 1
    assert read_all(snap) == [("a1", (1, 2)), ("a2", (3, 4))]


def test_borrowable_must_be_a_bool(margin_snap: Path) -> None:
    hp = margin_snap / "header.json"
    hp.write_text(hp.read_text().replace('"borrowable": true', '"borrowable": 1'))
    with pytest.raises(InputError, match="Expected 'bool | null', got 'int'"):
        open_snapshot(margin_snap)


@pytest.mark.parametrize("at", [0, 2])
def test_symbol_colliding_with_a_debt_column_is_refused(tmp_path: Path, at: int) -> None:
    clash = Asset("DAI.debt", 6, 100_000_000, 10_000, 0)
    assets = list(MARGIN_ASSETS)
    assets.insert(at, clash)
    hp = tmp_path / "header.json"
    hp.write_text(json.dumps(margin_header(1, tuple(assets)).to_json()))
    (tmp_path / "accounts.csv").write_text("")
    with pytest.raises(InputError, match="is the debt column of borrowable asset 'DAI'") as info:
        open_snapshot(tmp_path)
    assert info.value.where == f"{hp}.assets[{at}].symbol"


def test_debt_symbol_of_an_asset_not_borrowable_is_a_plain_symbol(tmp_path: Path) -> None:
    assets = (Asset("DAI", 6, 1, 10_000, 0), Asset("DAI.debt", 6, 1, 10_000, 0))
    out = write_snapshot(tmp_path / "s", margin_header(1, assets), [("a", (1, 2))])
    assert json.loads((out / "header.json").read_text())["version"] == 1
    assert read_all(out) == [("a", (1, 2))]


def test_writer_refuses_a_row_without_its_debts_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has 2 amounts; the columns are ETH,DAI,DAI.debt"):
        write_snapshot(tmp_path / "m", margin_header(1), [("a", (1, 2))])
    assert list(tmp_path.iterdir()) == []


def test_version_1_writer_output_unchanged(snap: Path) -> None:
    """No borrowable asset: the bytes every earlier writer wrote."""
    head = json.loads((snap / "header.json").read_text())
    assert head["version"] == 1
    assert all("borrowable" not in a for a in head["assets"])
    assert (snap / "accounts.csv").read_text() == "account_id,USDC,ETH\na1,1,2\na2,3,4\n"
