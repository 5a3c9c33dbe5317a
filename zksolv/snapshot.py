"""Epoch snapshots: the interface between a margin engine and the prover.

A snapshot is a directory holding two files (format documented in
``docs/snapshot-format.md``)::

    header.json    format, version, epoch, timestamp, assets, account count
    accounts.csv   account_id,<SYMBOL_1>[,<SYMBOL_1>.debt],...   (one row per account)

Amounts are non-negative integers in each asset's base units: a credit
(column ``SYM``, what the protocol owes the account) and, for an asset the
header declares borrowable (version 2), a debt (column ``SYM.debt``, what the
account owes the protocol), never netted. Prices are fixed-point integers with
``price_decimals`` decimals (quote currency per whole unit of the asset);
haircuts are integer basis points (10000 = counted in full).

The reader validates everything and streams: ``iter_accounts`` yields one
row at a time, so 10^6 accounts never need 10^6 Python objects at once.
Every problem is an ``InputError`` naming file, line and field. Files are
read through ``zksolv.safeio`` (regular files only, header.json bounded and
decoded into exact types, every accounts.csv line bounded).

The engine writes snapshots with ``write_snapshot``; a protocol with its own
engine writes the same two files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec

from zksolv import reserves_format, units
from zksolv.chain.evidence import ReserveSources
from zksolv.errors import InputError
from zksolv.reserves_format import ReservesFile
from zksolv.safeio import (
    SYMBOL_RE,
    UINT64_DIGITS,
    decode_json,
    has_control,
    open_regular,
    read_bounded,
    read_lines,
    write_private,
)

SNAPSHOT_FORMAT = "zksolv-snapshot"
SNAPSHOT_VERSION = 1           # no asset borrowable
SNAPSHOT_VERSION_MARGIN = 2    # admits "borrowable" assets and their debt columns
SNAPSHOT_VERSIONS = (SNAPSHOT_VERSION, SNAPSHOT_VERSION_MARGIN)
DEBT_SUFFIX = ".debt"
HEADER_FILE = "header.json"
ACCOUNTS_FILE = "accounts.csv"
# optional: the evidence of sourced reserves (``zksolv reserves fetch``)
RESERVES_FILE = "reserves.json"
HAIRCUT_SCALE = 10_000
MAX_AMOUNT_BITS = 64
MAX_AMOUNT = (1 << MAX_AMOUNT_BITS) - 1
# Reserves in base units: < 2^64 proof units of up to 10^30 base units each.
MAX_RESERVES_BITS = 8 * 32
MAX_ID_BYTES = 128
MAX_ASSETS = 255
MAX_ACCOUNTS = 1 << 32
# 255 assets of about 120 bytes each, with room for indentation.
MAX_HEADER_BYTES = 1 << 20
_INT_RE = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Asset(units.ProofUnits):
    """One asset column: ``price`` has ``price_decimals`` decimals (header
    level); ``haircut_bps`` weights reserves in the valued statement.
    ``proof_decimals`` (None: ``decimals``) is the unit amounts and reserves
    are proven in, 10^-proof_decimals tokens (``zksolv.units``)."""

    symbol: str
    decimals: int
    price: int
    haircut_bps: int
    reserves: int
    proof_decimals: int | None = None
    # accounts may owe this asset: accounts.csv has a SYM.debt column for it
    borrowable: bool = False
    # False: the header gives no "reserves" (the asset's reserve sources do,
    # once fetched: ``reserves`` is 0 until then)
    reserves_stated: bool = True

    @property
    def debt_column(self) -> str | None:
        """The CSV column of this asset's debts (None: not borrowable)."""
        return self.symbol + DEBT_SUFFIX if self.borrowable else None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "symbol": self.symbol,
            "decimals": self.decimals,
            "price": self.price,
            "haircut_bps": self.haircut_bps,
        }
        if self.reserves_stated:
            out["reserves"] = self.reserves
        if self.proof_decimals is not None:
            out["proof_decimals"] = self.proof_decimals
        if self.borrowable:
            out["borrowable"] = True
        return out


@dataclass(frozen=True)
class Column:
    """One amount column of accounts.csv: an asset's credits (what the
    protocol owes the account) or, for a borrowable asset, its debts (what
    the account owes the protocol)."""

    asset: Asset
    debt: bool

    @property
    def name(self) -> str:
        return self.asset.symbol + (DEBT_SUFFIX if self.debt else "")

    def proof_units(self, amount: int) -> int:
        """The amount as proven: a credit rounded up [round-up], a debt
        rounded down [round-down-debt] (a receivable is never overstated)."""
        if self.debt:
            return units.receivable_units(amount, self.asset.scale)
        return units.liability_units(amount, self.asset.scale)


@dataclass(frozen=True)
class SnapshotHeader:
    epoch: int
    timestamp: int
    price_decimals: int
    assets: tuple[Asset, ...]
    account_count: int
    # where sourced assets' reserves are read (None: every asset asserted)
    reserve_sources: ReserveSources | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(a.symbol for a in self.assets)

    @property
    def borrowable(self) -> bool:
        """True if any asset is borrowable (the snapshot is version 2)."""
        return any(a.borrowable for a in self.assets)

    @property
    def version(self) -> int:
        """The format version this header is written as: 1 when no asset is
        borrowable (byte-identical to every earlier writer), 2 otherwise."""
        return SNAPSHOT_VERSION_MARGIN if self.borrowable else SNAPSHOT_VERSION

    @property
    def amount_columns(self) -> tuple[Column, ...]:
        """accounts.csv's amount columns in order: each asset's credits,
        then its debts if it is borrowable."""
        out: list[Column] = []
        for a in self.assets:
            out.append(Column(a, False))
            if a.borrowable:
                out.append(Column(a, True))
        return tuple(out)

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of accounts.csv's amount columns, in order (after
        ``account_id``): ``SYM`` for each asset, followed by ``SYM.debt``
        for a borrowable one."""
        return tuple(c.name for c in self.amount_columns)

    def to_json(self) -> dict[str, object]:
        return {
            "format": SNAPSHOT_FORMAT,
            "version": self.version,
            "epoch": self.epoch,
            "timestamp": self.timestamp,
            "price_decimals": self.price_decimals,
            "assets": [a.to_json() for a in self.assets],
            "account_count": self.account_count,
            **({} if self.reserve_sources is None
               else {"reserve_sources": reserves_format.sources_json(self.reserve_sources)}),
        }

    def sourced(self, symbol: str) -> bool:
        """True if the asset's reserves are read from the chain."""
        return self.reserve_sources is not None and symbol in self.reserve_sources.symbols()


@dataclass(frozen=True)
class Snapshot:
    """An opened, header-validated snapshot directory."""

    path: Path
    header: SnapshotHeader

    @property
    def accounts_path(self) -> Path:
        return self.path / ACCOUNTS_FILE

    @property
    def reserves_path(self) -> Path:
        return self.path / RESERVES_FILE

    def load_reserves(self) -> ReservesFile | None:
        """The snapshot's reserves.json (None when there is none yet)."""
        if not self.reserves_path.exists() and not self.reserves_path.is_symlink():
            return None
        return read_reserves_file(self.reserves_path)

    def iter_accounts(self, digest: hashlib._Hash | None = None
                      ) -> Iterator[tuple[str, tuple[int, ...]]]:
        """Yield (account_id, amounts) per row, validating as it goes; the
        amounts in ``header.columns`` order (credits and debts).

        Duplicate ids are detected with a set of ids (ids only, not rows).
        Call ``validate`` to check the whole file before any proving.
        ``digest`` is fed every line read, so two passes can be compared."""
        yield from _iter_rows(self.accounts_path, self.header, digest)

    def iter_proof_amounts(self, digest: hashlib._Hash | None = None
                           ) -> Iterator[tuple[str, tuple[int, ...]]]:
        """Like ``iter_accounts``, amounts in proof units, credits rounded up
        [round-up] and debts rounded down [round-down-debt]: what the leaves
        commit to (each < 2^64, checked)."""
        cols = self.header.amount_columns
        if all(c.asset.scale == 1 for c in cols):
            yield from self.iter_accounts(digest)
            return
        for acc, amounts in self.iter_accounts(digest):
            yield acc, tuple(c.proof_units(v) for v, c in zip(amounts, cols, strict=True))

    def validate(self) -> int:
        """Read the whole body once; return the account count."""
        count = 0
        for _ in self.iter_accounts():
            count += 1
        return count


def _err(where: str, reason: str) -> InputError:
    return InputError(where, reason)


U63 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class _AssetSchema(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    symbol: str
    decimals: Annotated[int, msgspec.Meta(ge=0, le=30)]
    price: NonNegative
    haircut_bps: Annotated[int, msgspec.Meta(ge=0, le=HAIRCUT_SCALE)]
    # absent: the asset's reserves are read from its reserve_sources
    reserves: NonNegative | None = None
    proof_decimals: Annotated[int, msgspec.Meta(ge=0, le=30)] | None = None
    borrowable: bool | None = None     # version 2 only

    def __post_init__(self) -> None:
        # msgspec bounds stop at int64; a ValueError here is reported with the path
        if self.price > MAX_AMOUNT:
            raise ValueError("price out of range (must be <= 2^64 - 1)")
        if self.proof_decimals is not None and self.proof_decimals > self.decimals:
            raise ValueError(f"proof_decimals {self.proof_decimals} is more than decimals "
                             f"{self.decimals} (a proof unit is never finer than a base unit)")
        if self.reserves is not None and self.reserves >= 1 << MAX_RESERVES_BITS:
            raise ValueError(f"reserves out of range (must be < 2^{MAX_RESERVES_BITS})")


class _HeaderSchema(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """header.json with exact JSON types; every field range-bounded."""

    format: str
    version: int
    epoch: U63
    timestamp: U63
    price_decimals: Annotated[int, msgspec.Meta(ge=0, le=18)]
    assets: Annotated[list[_AssetSchema], msgspec.Meta(max_length=MAX_ASSETS)]
    account_count: Annotated[int, msgspec.Meta(ge=0, le=MAX_ACCOUNTS)]
    reserve_sources: reserves_format.SourcesSpec | None = None


_PATH_RE = re.compile(r"`\$((?:\.[A-Za-z_]+|\[[0-9]+\]|\[\.\.\.\])*)`")


def _schema_error(where: str, why: str) -> InputError:
    """msgspec names the field as `$.assets[1].price`: report it as
    ``header.json.assets[1].price``, with a plain reason."""
    bad_json = re.match(r"invalid JSON at line ([0-9]+)", why)
    if bad_json:
        return _err(f"{where}:{bad_json.group(1)}", why)
    m = _PATH_RE.search(why)
    field = m.group(1) if m else ""
    reason = why[: m.start()].removesuffix(" - at ") if m else why
    bound = re.fullmatch(r"Expected `int` ([<>]=? \S+)", reason)
    typed = re.fullmatch(r"Expected `int`, got `(\w+)`", reason)
    if bound:
        reason = f"out of range (must be {bound.group(1)})"
    elif typed:
        reason = f"must be an integer, got {typed.group(1)}"
    return _err(f"{where}{field}", reason.replace("`", "'"))


def parse_header(data: bytes, where: str) -> SnapshotHeader:
    """Decode header.json bytes strictly: exact types, bounded integers,
    symbols matched whole, distinct."""
    h = decode_json(data, _HeaderSchema, fail=lambda why: _schema_error(where, why))
    if h.format != SNAPSHOT_FORMAT:
        raise _err(f"{where}.format", f"expected {SNAPSHOT_FORMAT!r}, got {h.format[:40]!r}")
    if h.version not in SNAPSHOT_VERSIONS:
        raise _err(f"{where}.version", f"unsupported version {h.version} (this reads "
                                       f"{' and '.join(map(str, SNAPSHOT_VERSIONS))})")
    if not h.assets:
        raise _err(f"{where}.assets", "must be a non-empty list")
    seen: set[str] = set()
    assets = []
    for i, a in enumerate(h.assets):
        aw = f"{where}.assets[{i}]"
        if not SYMBOL_RE.fullmatch(a.symbol):
            raise _err(f"{aw}.symbol", f"bad symbol {a.symbol[:40]!r} (1-16 of A-Z a-z 0-9 . _ -)")
        if a.symbol in seen:
            raise _err(f"{aw}.symbol", f"duplicate asset {a.symbol!r}")
        seen.add(a.symbol)
        if a.borrowable is not None and h.version < SNAPSHOT_VERSION_MARGIN:
            raise _err(f"{aw}.borrowable", f"'borrowable' needs \"version\": "
                                           f"{SNAPSHOT_VERSION_MARGIN} (this header is version "
                                           f"{h.version})")
        sourced = h.reserve_sources is not None and a.symbol in h.reserve_sources.assets
        if a.reserves is None and not sourced:
            raise _err(f"{aw}.reserves", "missing: state the asset's reserves, or name where "
                                         "they are in reserve_sources")
        asset = Asset(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves or 0,
                      a.proof_decimals, bool(a.borrowable), a.reserves is not None)
        if units.reserve_units(asset.reserves, asset.scale) > MAX_AMOUNT:
            raise _err(f"{aw}.reserves", _too_big(asset.reserves, asset, "reserves", up=False))
        assets.append(asset)
    debt_of = {a.debt_column: a.symbol for a in assets if a.debt_column is not None}
    for i, parsed in enumerate(assets):
        if parsed.symbol in debt_of:
            raise _err(f"{where}.assets[{i}].symbol",
                       f"symbol {parsed.symbol!r} is the debt column of borrowable asset "
                       f"{debt_of[parsed.symbol]!r}: rename one of them")
    sources = None
    if h.reserve_sources is not None:
        sources = reserves_format.sources_from_spec(h.reserve_sources, [a.symbol for a in assets],
                                                    f"{where}.reserve_sources")
    return SnapshotHeader(h.epoch, h.timestamp, h.price_decimals, tuple(assets), h.account_count,
                          sources)


def read_reserves_file(path: str | os.PathLike[str]) -> ReservesFile:
    """A snapshot's reserves.json, decoded strictly and bounded in size."""
    data, _ = read_bounded(path, reserves_format.MAX_RESERVES_BYTES, what="reserves file")
    return decode_json(data, ReservesFile, fail=lambda why: _schema_error(str(path), why))


def write_reserves_file(snap: Snapshot, doc: ReservesFile, *, overwrite: bool = True) -> Path:
    """Write reserves.json atomically (0600, as the rest of a snapshot is
    private); never over an existing one unless ``overwrite``."""
    return write_private(snap.reserves_path, reserves_format.reserves_file_bytes(doc),
                         overwrite=overwrite)


def evidence_problem(header: SnapshotHeader, doc: ReservesFile) -> str | None:
    """Why reserves.json is not the evidence of this header's sources for its
    epoch (None if it is)."""
    if header.reserve_sources is None:
        return "the header names no reserve_sources"
    if doc.epoch != header.epoch:
        return f"reserves.json is for epoch {doc.epoch}, the header is epoch {header.epoch}"
    return reserves_format.evidence_matches_sources(doc.evidence, header.reserve_sources)


def with_chain_reserves(header: SnapshotHeader, doc: ReservesFile, where: str
                        ) -> SnapshotHeader:
    """The header with each sourced asset's reserves set to the evidence's
    sum. A header that also states reserves must state that sum."""
    problem = evidence_problem(header, doc)
    if problem is not None:
        raise _err(where, problem)
    assets = []
    for i, a in enumerate(header.assets):
        ev = doc.evidence.asset(a.symbol)
        if ev is None:
            assets.append(a)
            continue
        total = ev.total()
        if a.reserves_stated and a.reserves != total:
            raise _err(f"{where}: assets[{i}].reserves",
                       f"header.json states {a.reserves} base units of {a.symbol}, the evidence "
                       f"at block {doc.evidence.block_number} sums to {total}: drop "
                       "\"reserves\" from the header or correct it")
        sourced = Asset(a.symbol, a.decimals, a.price, a.haircut_bps, total, a.proof_decimals,
                        a.borrowable, True)
        if units.reserve_units(total, sourced.scale) > MAX_AMOUNT:
            raise _err(f"{where}: {a.symbol}", _too_big(total, sourced, "reserves", up=False))
        assets.append(sourced)
    return SnapshotHeader(header.epoch, header.timestamp, header.price_decimals, tuple(assets),
                          header.account_count, header.reserve_sources)


def open_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Open a snapshot directory and validate its header (not yet the body)."""
    root = Path(path)
    if not root.is_dir():
        raise _err(str(root), "snapshot must be a directory holding header.json and accounts.csv")
    hp = root / HEADER_FILE
    if not hp.exists() and not hp.is_symlink():
        looks = _what_it_is(root)
        if looks:
            raise _err(str(root), looks)
    data, _ = read_bounded(hp, MAX_HEADER_BYTES, what="header file")
    header = parse_header(data.removeprefix(BOM), str(hp))
    ap = root / ACCOUNTS_FILE
    fd, _ = open_regular(ap, what="accounts file")
    os.close(fd)
    return Snapshot(root, header)


def _what_it_is(root: Path) -> str | None:
    """A directory without header.json: a simulator run or a bundle?"""
    try:
        with os.scandir(root) as it:
            names = [e.name for _, e in zip(range(10_000), it, strict=False)]
    except OSError:
        return None
    epochs = sorted(n for n in names if re.fullmatch(r"epoch-[0-9]{6}", n))
    if epochs:
        return (f"a simulator run, not a snapshot: its snapshots are {root / epochs[0]} .. "
                f"{root / epochs[-1]}; prove one of them")
    if "manifest.json" in names:
        return "a bundle, not a snapshot: check it with zksolv verify"
    return None


def line_limit(k: int, extra_digits: int = 0) -> int:
    """The longest accounts.csv line the format allows for k assets: a
    quoted id (every byte doubled) and k amounts of 20 digits (plus
    ``extra_digits`` where proof_decimals < decimals), or the header."""
    return 2 * MAX_ID_BYTES + 2 + k * (UINT64_DIGITS + extra_digits + 1) + 16 * k + 64


BOM = b"\xef\xbb\xbf"
_GROUPED_RE = re.compile(r"[0-9]{1,3}(?:[,' _\u00a0\u202f][0-9]{3})+(?:\.[0-9]*)?")
_DECIMAL_RE = re.compile(r"[0-9]+\.[0-9]*")

OnError = Callable[[InputError], None]


def _raise(exc: InputError) -> None:
    raise exc


def _iter_rows(path: Path, header: SnapshotHeader, digest: hashlib._Hash | None = None,
               on_error: OnError = _raise) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Every valid row. Each problem goes to ``on_error``, which raises by
    default (the prover stops at the first); ``check_snapshot`` collects
    them instead, and the bad row is skipped. A UTF-8 byte-order mark at
    the start and blank lines at the end are accepted."""
    columns = header.amount_columns
    expected = ["account_id", *header.columns]
    assets = header.assets
    seen: set[str] = set()
    count = 0
    header_seen = False
    blank: list[int] = []   # blank lines not (yet) followed by a row
    extra = max(a.decimals - a.proven_decimals for a in assets)
    for line, raw in read_lines(path, line_limit(len(columns), extra), what="accounts file"):
        if digest is not None:
            digest.update(len(raw).to_bytes(4, "big") + raw)
        if line == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            on_error(_err(f"{path}:{line}", f"not UTF-8 ({exc.reason})"))
            continue
        if not text.strip():
            if line == 1:
                on_error(_err(f"{path}:1", "empty line: the first line must be the header row "
                                           + ",".join(expected)))
                return
            blank.append(line)
            continue
        for b in blank:
            on_error(_err(f"{path}:{b}", "empty line (only allowed at the end of the file)"))
        blank.clear()
        if line > 1:
            count += 1
            if count > header.account_count:
                on_error(_err(str(path), f"header says account_count={header.account_count} "
                                         f"but the file has more than {header.account_count} "
                                         "rows"))
                return
        try:
            rows = list(csv.reader([text], strict=True))
        except csv.Error as exc:
            on_error(_err(f"{path}:{line}", f"malformed CSV: {exc}"))
            continue
        row = rows[0] if rows else []
        if line == 1:
            header_seen = True
            if row != expected:
                missing = [c for c in expected if c not in row]
                unknown = [c for c in row if c not in expected]
                why = []
                if missing:
                    why.append(f"missing column(s) {', '.join(missing)}")
                if unknown:
                    why.append("unknown asset column(s) "
                               + ", ".join(repr(c) if has_control(c) else c for c in unknown))
                if not why:
                    why.append("columns out of order")
                on_error(_err(f"{path}:1", "; ".join(why) + f" (expected {','.join(expected)})"))
                return  # the columns cannot be read: nothing more to check
            continue
        if len(row) != len(expected):
            count_why = f"expected {len(expected)} fields, got {len(row)}"
            if len(row) > len(expected) and any(re.fullmatch(r"[0-9]{3}", c) for c in row[2:]):
                count_why += (" (an amount written with thousands separators, 1,250,000, splits "
                              "into several fields: write 1250000)")
            on_error(_err(f"{path}:{line}", count_why))
            continue
        acc = row[0]
        problems: list[InputError] = []
        if not acc or acc != acc.strip():
            problems.append(_err(f"{path}:{line}:account_id", "empty id or surrounding spaces"))
        elif has_control(acc):
            problems.append(_err(f"{path}:{line}:account_id", f"control character in id {acc!r}"))
        elif len(acc.encode("utf-8")) > MAX_ID_BYTES:
            problems.append(_err(f"{path}:{line}:account_id",
                                 f"id longer than {MAX_ID_BYTES} bytes"))
        elif acc in seen:
            problems.append(_err(f"{path}:{line}:account_id", f"duplicate account id {acc!r}"))
        amounts = []
        for c, raw_amount in zip(columns, row[1:], strict=True):
            try:
                amounts.append(_amount(raw_amount, f"{path}:{line}:{c.name}", c))
            except InputError as exc:
                problems.append(exc)
        if acc and acc not in seen:
            seen.add(acc)
        if problems:
            for p in problems:
                on_error(p)
            continue
        yield acc, tuple(amounts)
    if not header_seen:
        on_error(_err(f"{path}:1", "empty file: expected a header row " + ",".join(expected)))
        return
    if count == 0:
        on_error(_err(str(path), "no accounts"))
    elif count != header.account_count:
        on_error(_err(
            str(path),
            f"header says account_count={header.account_count} but the file has {count} rows",
        ))


def _too_big(value: int, asset: Asset, what: str, *, up: bool) -> str:
    """Why ``value`` base units do not fit 2^64 - 1 proof units, and the
    proof_decimals that would make them fit."""
    tokens = units.format_tokens(value, asset.decimals)
    why = (f"{what} {value} base units ({tokens} {asset.symbol}) exceeds 2^64 - 1 "
           f"proof units at proof_decimals {asset.proven_decimals}")
    fit = units.fitting_proof_decimals(value, asset.decimals, up=up)
    if fit is None:
        return why + "; it does not fit even in whole tokens"
    return (why + f'; set "proof_decimals": {fit} (or fewer) for {asset.symbol} in header.json '
            f"to prove amounts and reserves in units of 10^-{fit} {asset.symbol} "
            "(liabilities rounded up, reserves rounded down)")


def _amount(raw: str, where: str, column: Column) -> int:
    """An amount in base units: ASCII digits only; in proof units (a credit
    rounded up, a debt rounded down) it must be at most 2^64 - 1."""
    asset = column.asset
    if not _INT_RE.fullmatch(raw):
        if raw.startswith("-"):
            reason = f"negative amount {raw[:40]!r}"
        elif _GROUPED_RE.fullmatch(raw.strip()):
            plain = re.sub(r"[^0-9.]", "", raw)
            reason = (f"amount {raw[:40]!r} has thousands separators: write {plain[:40]} "
                      "(digits only, base units)")
        elif _DECIMAL_RE.fullmatch(raw) and asset.decimals:
            whole, _, frac = raw.partition(".")
            hint = ""
            if len(frac) <= asset.decimals:
                base = int(whole + frac.ljust(asset.decimals, "0"))
                hint = f"; {raw[:40]} {asset.symbol} is {base}"
            reason = (f"fractional amount {raw[:40]!r}: amounts are integers in base units "
                      f"(10^-{asset.decimals} {asset.symbol}){hint}")
        elif "." in raw or "e" in raw.lower():
            reason = f"fractional or non-integer amount {raw[:40]!r} (use base units)"
        elif raw != raw.strip():
            reason = f"spaces around amount {raw[:40]!r}"
        else:
            reason = f"not a non-negative integer: {raw[:40]!r}"
        raise _err(where, reason)
    v = int(raw)  # at most a few hundred digits: the line length is bounded
    if column.proof_units(v) > MAX_AMOUNT:
        raise _err(where, _too_big(v, asset, "debt" if column.debt else "amount",
                                   up=not column.debt))
    return v


def write_snapshot(
    out: str | os.PathLike[str],
    header: SnapshotHeader,
    accounts: Iterable[tuple[str, Iterable[int]]],
) -> Path:
    """Write a snapshot directory atomically (temporary directory, rename).

    Each row is ``(account_id, amounts)``, the amounts in ``header.columns``
    order (each asset's credit, then its debt if it is borrowable). The
    header is written as version 1 when no asset is borrowable, else 2.
    ``header.account_count`` must match the rows written, and every row
    must have one amount per column; a mismatch raises and leaves nothing
    at ``out``."""
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
            names = header.columns
            w.writerow(["account_id", *names])
            for acc, amounts in accounts:
                row = [str(int(a)) for a in amounts]
                if len(row) != len(names):
                    raise ValueError(f"row {n + 1} ({acc!r}) has {len(row)} amounts; the columns "
                                     f"are {','.join(names)}")
                w.writerow([acc, *row])
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


@dataclass(frozen=True)
class SnapshotCheck:
    """What ``check_snapshot`` found: every error (up to the limit), and for
    a well-formed snapshot the account count, each asset's liabilities
    (credits) in base units and in proof units (each account rounded up),
    and each asset's debts in base units and in proof units (each account
    rounded down; 0 for an asset that is not borrowable)."""

    path: Path
    header: SnapshotHeader | None
    errors: tuple[InputError, ...]
    truncated: bool
    accounts: int
    owed: tuple[int, ...]
    owed_proof_units: tuple[int, ...]
    # why accounts.csv was not read (a header its columns cannot be taken
    # from, a file that cannot be opened), or None when it was
    rows_not_checked: str | None = None
    debts: tuple[int, ...] = ()
    debts_proof_units: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


class _TooMany(Exception):
    pass


def check_snapshot(path: str | os.PathLike[str], *, max_errors: int = 50) -> SnapshotCheck:
    """Read a whole snapshot and collect every problem (up to
    ``max_errors``) instead of stopping at the first, as ``prove`` does.

    A header error in a field the rows do not need (a price, a haircut, the
    reserves, the epoch, an unknown field...) is reported and the rows are
    read too, with the rest of the header. When the header does not give
    the columns (not JSON, a bad symbol, decimals or account_count), the
    rows cannot be read: ``rows_not_checked`` says why."""
    root = Path(path)
    header_errors: list[InputError] = []
    try:
        snap = open_snapshot(root)
    except InputError as exc:
        header_errors.append(exc)
        stood_in, why_not = _open_for_rows(root, header_errors, max_errors)
        if stood_in is None:
            return SnapshotCheck(root, None, tuple(header_errors), False, 0, (), (),
                                 rows_not_checked=why_not)
        snap = stood_in
    errors: list[InputError] = list(header_errors)

    def collect(exc: InputError) -> None:
        errors.append(exc)
        if len(errors) >= max_errors:
            raise _TooMany

    assets = snap.header.assets
    k = len(assets)
    # (asset index, is debt) per column
    where = [(assets.index(c.asset), c.debt) for c in snap.header.amount_columns]
    cols = snap.header.amount_columns
    sums = {False: [0] * k, True: [0] * k}
    proven = {False: [0] * k, True: [0] * k}
    count = 0
    truncated = len(errors) >= max_errors
    try:
        if not truncated:
            for _, amounts in _iter_rows(snap.accounts_path, snap.header, on_error=collect):
                count += 1
                for (j, debt), c, v in zip(where, cols, amounts, strict=True):
                    sums[debt][j] += v
                    proven[debt][j] += c.proof_units(v)
    except _TooMany:
        truncated = True
    except InputError as exc:  # the file itself: unreadable, a line too long
        errors.append(exc)
    # a header with errors is not the snapshot's: no preview is made from it
    return SnapshotCheck(root, None if header_errors else snap.header, tuple(errors),
                         truncated, count, tuple(sums[False]), tuple(proven[False]),
                         debts=tuple(sums[True]), debts_proof_units=tuple(proven[True]))


# Header fields the rows do not need, and a stand-in that passes the schema,
# so that the rows can still be checked after an error in one of them.
_STAND_INS: dict[str, object] = {
    "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION_MARGIN, "epoch": 0, "timestamp": 0,
    "price_decimals": 0, "price": 1, "haircut_bps": HAIRCUT_SCALE, "reserves": 0,
}
_UNKNOWN_RE = re.compile(r"Object contains unknown field '([^']{1,64})'")
_MISSING_RE = re.compile(r"Object missing required field '([A-Za-z_]+)'")


def _open_for_rows(root: Path, errors: list[InputError], max_errors: int
                   ) -> tuple[Snapshot | None, str]:
    """After ``open_snapshot`` failed with ``errors[0]``: a snapshot whose
    header has stand-ins for the fields the rows do not need, with every
    further header error appended to ``errors``; or None and why the rows
    cannot be read."""
    hp = root / HEADER_FILE
    cannot = "accounts.csv was not checked: "
    where = str(hp)
    if not errors[0].where.startswith(where):
        return None, cannot + "the snapshot folder or its files cannot be opened"
    if not re.fullmatch(r"(\.[A-Za-z0-9_.-]+|\[[0-9]+\]|\[\.\.\.\])*",
                        errors[0].where[len(where):]):
        return None, cannot + "header.json cannot be read as JSON of the snapshot's format"
    try:
        data, _ = read_bounded(hp, MAX_HEADER_BYTES, what="header file")
        doc = json.loads(data.removeprefix(BOM))
    except (InputError, ValueError, RecursionError):
        return None, cannot + "header.json cannot be read"
    if not isinstance(doc, dict):
        return None, cannot + "header.json is not a JSON object"
    exc = errors[0]
    for _ in range(4 * MAX_ASSETS + 16):
        if not _stand_in(doc, exc.where[len(where):], exc.reason):
            field = exc.where[len(where):].lstrip(".") or "top level"
            return None, (cannot + "its columns and row count come from header.json, and "
                          f"header.json's {field} is not usable")
        try:
            header = parse_header(json.dumps(doc).encode(), where)
        except InputError as again:
            if len(errors) >= max_errors:
                return None, cannot + "stopped at --max-errors in header.json"
            errors.append(again)
            exc = again
            continue
        try:
            fd, _ = open_regular(root / ACCOUNTS_FILE, what="accounts file")
        except InputError as bad:
            errors.append(bad)
            return None, cannot + "it cannot be opened"
        os.close(fd)
        return Snapshot(root, header), ""
    return None, cannot + "too many errors in header.json"


def _stand_in(doc: dict[str, object], field: str, reason: str) -> bool:
    """Put a stand-in for the header field an error names (``field`` such as
    ``.assets[1].price``, or an object and a field named in ``reason``), or
    drop an unknown field; False when it is a field the rows need, or the
    error names none."""
    if field.startswith(".reserve_sources"):
        # where reserves are read: the rows do not need it (nor the reserves
        # its assets then leave out)
        assets = doc.get("assets")
        for asset in assets if isinstance(assets, list) else []:
            if isinstance(asset, dict):
                asset.setdefault("reserves", 0)
        return doc.pop("reserve_sources", None) is not None
    node: object = doc
    parent: object = None
    for name, index in re.findall(r"\.([A-Za-z_]+)|\[([0-9]+)\]", field):
        parent = node
        if name and isinstance(node, dict) and name in node:
            node = node[name]
        elif index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            return False
    unknown = _UNKNOWN_RE.search(reason)
    if unknown and isinstance(node, dict):
        node.pop(unknown.group(1), None)
        return True
    named = _MISSING_RE.search(reason) or re.match(r"(price|reserves) ", reason)
    if isinstance(node, dict):   # an error about a whole object: its field named by the reason
        if named is None or named.group(1) not in _STAND_INS:
            return False
        node[named.group(1)] = _STAND_INS[named.group(1)]
        return True
    key = field.rsplit(".", 1)[-1]
    if not isinstance(parent, dict) or key not in _STAND_INS:
        return False
    parent[key] = _STAND_INS[key]
    return True
