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
        (lambda h: h.update(version=2), "version", "unsupported version 2"),
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
