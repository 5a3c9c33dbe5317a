"""The private inclusion database (SQLite), one per epoch, never published.

Tables::

    meta(key TEXT PRIMARY KEY, value BLOB)
        epoch, k, depth, symbols, bundle_hash, root_hash, accounts
    leaves(idx INTEGER PRIMARY KEY, account_id TEXT UNIQUE, amounts BLOB,
           blindings BLOB, salt BLOB, leaf_hash BLOB)
        every leaf's opening; padding leaves have account_id and salt NULL.
        amounts k*8 bytes big-endian, blindings k*32 bytes (scalars, LE).
    nodes(level INTEGER, idx INTEGER, data BLOB, PRIMARY KEY(level, idx))
        every tree node once: data = k*48 commitment bytes || 32-byte hash;
        level 0 are the leaves, level depth the root.

A path is depth sibling lookups, so storing nodes once (2^(depth+1) rows)
is far smaller than storing a path per account.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zksolv.circuits.inclusion import InclusionProof, PathStep
from zksolv.core.field import scalar_from_bytes, scalar_to_bytes
from zksolv.errors import InputError

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE leaves(
    idx INTEGER PRIMARY KEY,
    account_id TEXT UNIQUE,
    amounts BLOB NOT NULL,
    blindings BLOB NOT NULL,
    salt BLOB,
    leaf_hash BLOB NOT NULL
);
CREATE TABLE nodes(
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY(level, idx)
) WITHOUT ROWID;
"""


class InclusionDB:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def create(cls, path: Path, *, k: int, depth: int, epoch: int,
               symbols: tuple[str, ...]) -> InclusionDB:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(_SCHEMA)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("k", str(k)), ("depth", str(depth)), ("epoch", str(epoch)),
             ("symbols", json.dumps(list(symbols)))],
        )
        return cls(conn)

    @classmethod
    def open(cls, path: str | Path) -> InclusionDB:
        p = Path(path)
        if not p.is_file():
            raise InputError(str(p), "no such inclusion database")
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            conn.execute("SELECT value FROM meta WHERE key='bundle_hash'").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise InputError(str(p), f"not a zksolv inclusion database ({exc})") from exc
        return cls(conn)

    def insert_leaves(self, rows: Iterable[tuple[Any, ...]]) -> None:
        batch: list[tuple[Any, ...]] = []
        sql = "INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?)"
        for idx, acc, amounts, blinds, salt, lh in rows:
            batch.append((
                idx, acc,
                b"".join(struct.pack(">Q", v) for v in amounts),
                b"".join(scalar_to_bytes(b) for b in blinds),
                salt, lh,
            ))
            if len(batch) >= 20_000:
                self.conn.executemany(sql, batch)
                batch.clear()
        self.conn.executemany(sql, batch)

    def shard_openings(self, start: int, count: int
                       ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[bytes, ...]]:
        """Values and blindings (leaf-major) and leaf hashes of leaves start..start+count-1."""
        rows = self.conn.execute(
            "SELECT amounts, blindings, leaf_hash FROM leaves WHERE idx >= ? AND idx < ? "
            "ORDER BY idx", (start, start + count),
        ).fetchall()
        if len(rows) != count:
            raise RuntimeError("inclusion database: missing leaves")
        vals: list[int] = []
        blinds: list[int] = []
        hashes = []
        for amounts, bl, lh in rows:
            vals += [v for (v,) in struct.iter_unpack(">Q", amounts)]
            blinds += [int.from_bytes(bl[i : i + 32], "little") for i in range(0, len(bl), 32)]
            hashes.append(bytes(lh))
        return tuple(vals), tuple(blinds), tuple(hashes)

    def insert_level(self, level: int, start: int, nodes: list[bytes]) -> None:
        self.conn.executemany(
            "INSERT INTO nodes VALUES (?, ?, ?)",
            [(level, start + i, n) for i, n in enumerate(nodes)],
        )

    def finish(self, *, bundle_hash: bytes, root_hash: bytes, accounts: int) -> None:
        self.conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("bundle_hash", bundle_hash.hex()), ("root_hash", root_hash.hex()),
             ("accounts", str(accounts))],
        )
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def meta(self, key: str) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise InputError("inclusion database", f"missing meta {key!r} (incomplete file?)")
        return str(row[0])

    def export(self, account_id: str) -> InclusionProof:
        """The inclusion proof of one account: its opening and its path."""
        row = self.conn.execute(
            "SELECT idx, amounts, blindings, salt FROM leaves WHERE account_id = ?",
            (account_id,),
        ).fetchone()
        if row is None:
            raise InputError("--account", f"no account {account_id!r} in this epoch")
        idx, amounts, blinds, salt = row
        k, depth = int(self.meta("k")), int(self.meta("depth"))
        path = []
        for level in range(depth):
            sib = (idx >> level) ^ 1
            node = self.conn.execute(
                "SELECT data FROM nodes WHERE level = ? AND idx = ?", (level, sib)
            ).fetchone()
            if node is None:
                raise InputError("inclusion database", f"missing node ({level}, {sib})")
            data = bytes(node[0])
            path.append(PathStep(data[: k * 48], data[k * 48 :]))
        return InclusionProof(
            epoch=int(self.meta("epoch")),
            bundle_hash=bytes.fromhex(self.meta("bundle_hash")),
            leaf_index=idx,
            account_id=account_id,
            amounts=tuple(v for (v,) in struct.iter_unpack(">Q", amounts)),
            blindings=tuple(
                scalar_from_bytes(blinds[i : i + 32]) for i in range(0, len(blinds), 32)
            ),
            salt=bytes(salt),
            path=tuple(path),
        )
