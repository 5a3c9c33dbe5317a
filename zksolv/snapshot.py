"""Epoch snapshots: the interface between a margin engine and the prover.

A snapshot is a directory holding two files (format documented in
``docs/snapshot-format.md``)::

    header.json    format, version, epoch, timestamp, assets, account count
    accounts.csv   account_id,<SYMBOL_1>,...,<SYMBOL_k>   (one row per account)

Amounts are non-negative integers in each asset's base units (what the
protocol owes the account). Prices are fixed-point integers with
``price_decimals`` decimals (quote currency per whole unit of the asset);
haircuts are integer basis points (10000 = counted in full).

The reader validates everything and streams: ``iter_accounts`` yields one
row at a time, so 10^6 accounts never need 10^6 Python objects at once.
Every problem is an ``InputError`` naming file, line and field.

The engine writes snapshots with ``write_snapshot``; a protocol with its own
engine writes the same two files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zksolv.errors import InputError

SNAPSHOT_FORMAT = "zksolv-snapshot"
SNAPSHOT_VERSION = 1
HEADER_FILE = "header.json"
ACCOUNTS_FILE = "accounts.csv"
HAIRCUT_SCALE = 10_000
MAX_AMOUNT_BITS = 64
MAX_AMOUNT = (1 << MAX_AMOUNT_BITS) - 1
MAX_ID_BYTES = 128
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$")
_INT_RE = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class Asset:
    """One asset column: ``price`` has ``price_decimals`` decimals (header
    level); ``haircut_bps`` weights reserves in the valued statement."""

    symbol: str
    decimals: int
    price: int
    haircut_bps: int
    reserves: int

    def to_json(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "decimals": self.decimals,
            "price": self.price,
            "haircut_bps": self.haircut_bps,
            "reserves": self.reserves,
        }


@dataclass(frozen=True)
class SnapshotHeader:
    epoch: int
    timestamp: int
    price_decimals: int
    assets: tuple[Asset, ...]
    account_count: int

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(a.symbol for a in self.assets)

    def to_json(self) -> dict[str, object]:
        return {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "epoch": self.epoch,
            "timestamp": self.timestamp,
            "price_decimals": self.price_decimals,
            "assets": [a.to_json() for a in self.assets],
            "account_count": self.account_count,
        }


@dataclass(frozen=True)
class Snapshot:
    """An opened, header-validated snapshot directory."""

    path: Path
    header: SnapshotHeader

    @property
    def accounts_path(self) -> Path:
        return self.path / ACCOUNTS_FILE

    def iter_accounts(self) -> Iterator[tuple[str, tuple[int, ...]]]:
        """Yield (account_id, amounts) per row, validating as it goes.

        Duplicate ids are detected with a set of ids (ids only, not rows).
        Call ``validate`` to check the whole file before any proving."""
        yield from _iter_rows(self.accounts_path, self.header)

    def validate(self) -> int:
        """Read the whole body once; return the account count."""
        count = 0
        for _ in self.iter_accounts():
            count += 1
        return count


def _err(where: str, reason: str) -> InputError:
    return InputError(where, reason)


def _int_field(
    obj: dict[str, object], key: str, where: str, *, lo: int = 0, hi: int | None = None
) -> int:
    if key not in obj:
        raise _err(where, f"missing field {key!r}")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(f"{where}.{key}", f"must be an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise _err(f"{where}.{key}", f"{v} is out of range {bound}")
    return v


def parse_header(data: object, where: str) -> SnapshotHeader:
    if not isinstance(data, dict):
        raise _err(where, "header must be a JSON object")
    if data.get("format") != SNAPSHOT_FORMAT:
        raise _err(f"{where}.format", f"expected {SNAPSHOT_FORMAT!r}, got {data.get('format')!r}")
    version = _int_field(data, "version", where)
    if version != SNAPSHOT_VERSION:
        raise _err(
            f"{where}.version", f"unsupported version {version} (this reads {SNAPSHOT_VERSION})"
        )
    epoch = _int_field(data, "epoch", where, hi=(1 << 63) - 1)
    timestamp = _int_field(data, "timestamp", where, hi=(1 << 63) - 1)
    price_decimals = _int_field(data, "price_decimals", where, hi=18)
    assets_raw = data.get("assets")
    if not isinstance(assets_raw, list) or not assets_raw:
        raise _err(f"{where}.assets", "must be a non-empty list")
    assets = []
    seen: set[str] = set()
    for i, a in enumerate(assets_raw):
        aw = f"{where}.assets[{i}]"
        if not isinstance(a, dict):
            raise _err(aw, "must be an object")
        sym = a.get("symbol")
        if not isinstance(sym, str) or not _SYMBOL_RE.match(sym):
            raise _err(f"{aw}.symbol", f"bad symbol {sym!r} (1-16 of A-Z a-z 0-9 . _ -)")
        if sym in seen:
            raise _err(f"{aw}.symbol", f"duplicate asset {sym!r}")
        seen.add(sym)
        assets.append(
            Asset(
                symbol=sym,
                decimals=_int_field(a, "decimals", aw, hi=30),
                price=_int_field(a, "price", aw, hi=MAX_AMOUNT),
                haircut_bps=_int_field(a, "haircut_bps", aw, hi=HAIRCUT_SCALE),
                reserves=_int_field(a, "reserves", aw, hi=MAX_AMOUNT),
            )
        )
    count = _int_field(data, "account_count", where, hi=1 << 32)
    return SnapshotHeader(epoch, timestamp, price_decimals, tuple(assets), count)


def open_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Open a snapshot directory and validate its header (not yet the body)."""
    root = Path(path)
    if not root.is_dir():
        raise _err(str(root), "snapshot must be a directory holding header.json and accounts.csv")
    hp = root / HEADER_FILE
    if not hp.is_file():
        raise _err(str(hp), "missing header file")
    try:
        data = json.loads(hp.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise _err(str(hp), f"not UTF-8 ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise _err(f"{hp}:{exc.lineno}", f"invalid JSON: {exc.msg}") from exc
    header = parse_header(data, str(hp))
    ap = root / ACCOUNTS_FILE
    if not ap.is_file():
        raise _err(str(ap), "missing accounts file")
    return Snapshot(root, header)


def _iter_rows(path: Path, header: SnapshotHeader) -> Iterator[tuple[str, tuple[int, ...]]]:
    symbols = header.symbols
    expected = ["account_id", *symbols]
    seen: set[str] = set()
    count = 0
    try:
        f = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise _err(str(path), f"cannot open: {exc.strerror}") from exc
    with f:
        reader = csv.reader(f, strict=True)
        try:
            head = next(reader, None)
            if head is None:
                raise _err(f"{path}:1", "empty file: expected a header row " + ",".join(expected))
            if head != expected:
                missing = [c for c in expected if c not in head]
                unknown = [c for c in head if c not in expected]
                why = []
                if missing:
                    why.append(f"missing column(s) {', '.join(missing)}")
                if unknown:
                    why.append(f"unknown asset column(s) {', '.join(unknown)}")
                if not why:
                    why.append("columns out of order")
                raise _err(f"{path}:1", "; ".join(why) + f" (expected {','.join(expected)})")
            for row in reader:
                line = reader.line_num
                if not row:
                    raise _err(f"{path}:{line}", "empty line")
                if len(row) != len(expected):
                    raise _err(f"{path}:{line}", f"expected {len(expected)} fields, got {len(row)}")
                acc = row[0]
                if not acc or acc != acc.strip():
                    raise _err(f"{path}:{line}:account_id", "empty id or surrounding spaces")
                if len(acc.encode("utf-8")) > MAX_ID_BYTES:
                    raise _err(f"{path}:{line}:account_id", f"id longer than {MAX_ID_BYTES} bytes")
                if acc in seen:
                    raise _err(f"{path}:{line}:account_id", f"duplicate account id {acc!r}")
                seen.add(acc)
                amounts = []
                for sym, raw in zip(symbols, row[1:], strict=True):
                    if not _INT_RE.match(raw):
                        if raw.startswith("-"):
                            reason = f"negative amount {raw!r}"
                        elif "." in raw or "e" in raw.lower():
                            reason = f"fractional or non-integer amount {raw!r} (use base units)"
                        else:
                            reason = f"not a non-negative integer: {raw!r}"
                        raise _err(f"{path}:{line}:{sym}", reason)
                    v = int(raw)
                    if v > MAX_AMOUNT:
                        raise _err(f"{path}:{line}:{sym}", f"amount {raw} exceeds 2^64 - 1")
                    amounts.append(v)
                count += 1
                yield acc, tuple(amounts)
        except csv.Error as exc:
            raise _err(f"{path}:{reader.line_num}", f"malformed CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise _err(str(path), f"not UTF-8 ({exc.reason})") from exc
    if count == 0:
        raise _err(str(path), "no accounts")
    if count != header.account_count:
        raise _err(
            str(path),
            f"header says account_count={header.account_count} but the file has {count} rows",
        )


def write_snapshot(
    out: str | os.PathLike[str],
    header: SnapshotHeader,
    accounts: Iterable[tuple[str, Iterable[int]]],
) -> Path:
    """Write a snapshot directory atomically (temporary directory, rename).

    ``header.account_count`` must match the rows written; a mismatch raises
    and leaves nothing at ``out``."""
    dest = Path(out)
    if dest.exists():
        raise FileExistsError(f"{dest} exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        n = 0
        with open(tmp / ACCOUNTS_FILE, "w", encoding="utf-8", newline="") as f:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["account_id", *header.symbols])
            for acc, amounts in accounts:
                w.writerow([acc, *(str(int(a)) for a in amounts)])
                n += 1
                if buf.tell() > 1 << 20:
                    f.write(buf.getvalue())
                    buf.seek(0)
                    buf.truncate()
            f.write(buf.getvalue())
        if n != header.account_count:
            raise ValueError(f"header.account_count={header.account_count} but {n} rows written")
        (tmp / HEADER_FILE).write_text(json.dumps(header.to_json(), indent=2) + "\n")
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
