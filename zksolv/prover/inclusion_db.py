"""The private inclusion database (SQLite), one per epoch, never published.

Tables::

    meta(key TEXT PRIMARY KEY, value BLOB)
        epoch, k, depth, symbols, bundle_hash, root_hash, accounts, and the
        bundle's manifest (text) and signature (hex), which every exported
        proof carries
    leaves(idx INTEGER PRIMARY KEY, account_id TEXT UNIQUE, amounts BLOB,
           blindings BLOB, salt BLOB, leaf_hash BLOB)
        every leaf's opening; padding leaves have account_id and salt NULL.
        amounts k*8 bytes big-endian, blindings k*32 bytes (scalars, LE).
    nodes(level INTEGER, idx INTEGER, data BLOB, PRIMARY KEY(level, idx))
        every tree node once: data = k*48 commitment bytes || 32-byte hash;
        level 0 are the leaves, level depth the root.

A path is depth sibling lookups, so storing nodes once (2^(depth+1) rows)
is far smaller than storing a path per account.

The database is private but still a file on disk: ``export`` reads every
value strictly (lengths, canonical scalars, known keys) and runs the
holder's own check on the proof before handing it out, so a corrupt or
tampered database gives an ``InputError`` naming it, never a traceback or a
proof that does not verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zksolv.circuits import epoch as circ
from zksolv.circuits.inclusion import InclusionProof, PathStep
from zksolv.core.field import R, scalar_from_bytes, scalar_to_bytes
from zksolv.core.group import POINT_BYTES
from zksolv.errors import FormatError, InputError, VerificationError, ZksolvError
from zksolv.safeio import make_private_dirs, open_regular
from zksolv.verifier.inclusion import InclusionDocument, Readable, verify_inclusion

_UINT = re.compile(r"[0-9]{1,20}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")

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


DATA_DIR_ENV = "ZKSOLV_DATA_DIR"


def data_dir() -> Path:
    """Where private per-epoch data goes by default: ``$ZKSOLV_DATA_DIR``,
    else ``$XDG_DATA_HOME/zksolv``, else ``~/.local/share/zksolv``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "zksolv"


def private_data_folder(name: str) -> Path:
    """``DATA_DIR/name`` (``inclusion``, ``work``, ``watch``), created
    mode 0700 with every missing parent (DATA_DIR's too) mode 0700, whatever
    the umask. An existing one of ours that others may read is restricted to
    0700; one that is not a folder, or not ours, is refused."""
    folder = data_dir() / name
    make_private_dirs(folder)
    try:
        st = os.stat(folder)
    except OSError as exc:
        raise InputError(str(folder), f"cannot read the private data folder: "
                                      f"{exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(str(folder), "the private data folder is not a folder")
    if st.st_uid != os.getuid():
        raise InputError(str(folder), "the private data folder belongs to another user")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(folder, 0o700)
    return folder


def location_name(bundle: Path) -> str:
    """``NAME.HASH``: the bundle directory's name and the first 12 hex
    digits of SHA-256 of its absolute path, so two bundles named alike do not
    collide and a rerun with the same --out finds its own leftovers."""
    where = hashlib.sha256(str(bundle.resolve()).encode("utf-8", "surrogateescape"))
    return f"{bundle.name}.{where.hexdigest()[:12]}"


def default_location(bundle: Path) -> Path:
    """The default inclusion database of the bundle at ``bundle``:
    ``DATA_DIR/inclusion/NAME.HASH.inclusion.sqlite`` (``location_name``).
    Never beside the bundle: publishing a folder of bundles must never
    publish a database."""
    return private_data_folder("inclusion") / f"{location_name(bundle)}.inclusion.sqlite"


class InclusionDB:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.where = "inclusion database"

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
    def writable(cls, path: Path) -> InclusionDB:
        """An unfinished database of ours (a copy of the work area's leaf
        assignment), opened to add the tree's nodes and finish it."""
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        return cls(conn)

    @classmethod
    def open(cls, path: str | Path) -> InclusionDB:
        p = Path(path)
        fd, _ = open_regular(p, what="inclusion database")
        os.close(fd)
        try:
            conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise InputError(str(p), f"cannot open inclusion database ({exc})") from exc
        try:
            conn.execute("SELECT value FROM meta WHERE key='bundle_hash'").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise InputError(str(p), f"not a zksolv inclusion database ({exc})") from exc
        db = cls(conn)
        db.where = str(p)
        return db

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

    def blinding_sums(self, k: int) -> list[int]:
        """Per asset, the sum mod r of every leaf's blinding (the root
        blindings gamma_j of the tree these leaves make)."""
        sums = [0] * k
        for (bl,) in self.conn.execute("SELECT blindings FROM leaves"):
            if len(bl) != 32 * k:
                raise self._bad("a leaf's blindings have the wrong size")
            for j in range(k):
                sums[j] += int.from_bytes(bl[32 * j : 32 * (j + 1)], "little")
        return [s % R for s in sums]

    def insert_level(self, level: int, start: int, nodes: list[bytes]) -> None:
        self.conn.executemany(
            "INSERT INTO nodes VALUES (?, ?, ?)",
            [(level, start + i, n) for i, n in enumerate(nodes)],
        )

    def finish(self, *, bundle_hash: bytes, root_hash: bytes, accounts: int, manifest: bytes,
               signature: bytes) -> None:
        self.conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("bundle_hash", bundle_hash.hex()), ("root_hash", root_hash.hex()),
             ("accounts", str(accounts)), ("manifest", manifest.decode("ascii")),
             ("signature", signature.hex())],
        )
        self.conn.commit()

    def is_finished(self) -> bool:
        """True if the prover finished this database (its bundle was signed)."""
        try:
            self._hex("bundle_hash", 32)
            self._hex("signature", 64)
        except ZksolvError:
            return False
        return True

    def close(self) -> None:
        self.conn.close()

    def _bad(self, why: str) -> InputError:
        return InputError(self.where, f"corrupt or tampered inclusion database: {why}")

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._bad(str(exc)) from exc

    def meta(self, key: str) -> str:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        if not rows:
            raise self._bad(f"missing meta {key!r} (incomplete file?)")
        value = rows[0][0]
        if not isinstance(value, str):
            raise self._bad(f"meta {key!r} is not text")
        return value

    def _uint(self, key: str, lo: int, hi: int) -> int:
        text = self.meta(key)
        if not _UINT.fullmatch(text) or not lo <= int(text) <= hi:
            raise self._bad(f"meta {key!r} is not an integer in [{lo}, {hi}]")
        return int(text)

    def _hex(self, key: str, size: int) -> bytes:
        text = self.meta(key)
        if len(text) != 2 * size or not _HEX.fullmatch(text):
            raise self._bad(f"meta {key!r} is not {size} bytes of hex")
        return bytes.fromhex(text)

    def _blob(self, value: object, size: int, what: str) -> bytes:
        if not isinstance(value, bytes) or len(value) != size:
            raise self._bad(f"{what} is not {size} bytes")
        return value

    def export(self, account_id: str) -> InclusionDocument:
        """The inclusion proof of one account: its opening, its path, and the
        bundle's signed manifest; checked with the holder's own check before
        it is returned."""
        k = self._uint("k", 1, 255)
        depth = self._uint("depth", circ.MIN_DEPTH, circ.MAX_DEPTH)
        epoch = self._uint("epoch", 0, (1 << 63) - 1)
        bundle_hash = self._hex("bundle_hash", 32)
        signature = self._hex("signature", 64)
        manifest = self.meta("manifest").encode("utf-8")
        rows = self._query(
            "SELECT idx, amounts, blindings, salt FROM leaves WHERE account_id = ?", (account_id,)
        )
        if not rows:
            raise InputError("--account", f"no account {account_id!r} in this epoch")
        idx, amounts, blinds, salt = rows[0]
        if not isinstance(idx, int) or not 0 <= idx < 1 << depth:
            raise self._bad("leaf index out of range")
        amounts = self._blob(amounts, 8 * k, "amounts")
        blinds = self._blob(blinds, 32 * k, "blindings")
        salt = self._blob(salt, circ.SALT_BYTES, "salt")
        try:
            blindings = tuple(
                scalar_from_bytes(blinds[i : i + 32]) for i in range(0, len(blinds), 32)
            )
        except FormatError as exc:
            raise self._bad(str(exc)) from exc
        node_size = k * POINT_BYTES + circ.HASH_BYTES
        path = []
        for level in range(depth):
            sib = (idx >> level) ^ 1
            node = self._query("SELECT data FROM nodes WHERE level = ? AND idx = ?", (level, sib))
            if not node:
                raise self._bad(f"missing node ({level}, {sib})")
            data = self._blob(node[0][0], node_size, f"node ({level}, {sib})")
            path.append(PathStep(data[: k * POINT_BYTES], data[k * POINT_BYTES :]))
        proof = InclusionProof(
            epoch=epoch, bundle_hash=bundle_hash, leaf_index=idx, account_id=account_id,
            amounts=tuple(v for (v,) in struct.iter_unpack(">Q", amounts)),
            blindings=blindings, salt=salt, path=tuple(path),
        )
        doc = InclusionDocument(proof, manifest, signature)
        try:
            report = verify_inclusion(doc, account_id=account_id, bundle_hash=bundle_hash)
        except VerificationError as exc:
            raise self._bad(f"the exported proof does not verify ({exc})") from exc
        return InclusionDocument(proof, manifest, signature,
                                 Readable.of(proof, report.assets, report.root_hash))
