"""Inclusion proofs: what one account holder receives.

Canonical bytes (``InclusionProof.to_bytes``), big-endian integers::

    magic       4   b"ZKSI"
    version     1   1
    epoch       8
    bundle_hash 32  SHA-256 of the bundle's manifest.json
    k           1   number of committed columns (assets, plus one per
                    borrowable asset in a version 5 bundle)
    depth       1   tree depth
    leaf_index  4
    id_len      2, then id (UTF-8)
    amounts     k * 8         v_j, in column order (a debt right after its credit)
    blindings   k * 32        gamma_j (scalars, little-endian, canonical)
    salt        32
    path        depth * (k*48 + 32)   sibling commitments and hash, leaf level first

The holder recomputes C_leaf_j = v_j*g + gamma_j*h and h_leaf, then folds the
path with [tree-sum] and [tree-hash] (``zksolv.circuits.epoch``) up to the
root. JSON form (version 2, ``zksolv.verifier.inclusion``): ``{"format",
"version", "epoch", "account_id", "manifest", "signature", "proof"}``,
``proof`` the lowercase hex of these bytes, ``manifest`` the bundle's
manifest.json text and ``signature`` the hex of its manifest.sig.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from zksolv.core.field import scalar_from_bytes, scalar_to_bytes
from zksolv.core.group import POINT_BYTES
from zksolv.errors import FormatError

from .epoch import HASH_BYTES, MAX_DEPTH, MAX_ID_BYTES, MIN_DEPTH, SALT_BYTES

MAGIC = b"ZKSI"
INCLUSION_VERSION = 1
INCLUSION_FORMAT = "zksolv-inclusion"
# Version of the JSON document (the bytes above keep INCLUSION_VERSION).
DOCUMENT_VERSION = 2
MAX_ASSETS = 255
# The largest proof the format allows: 255 assets, depth 32, a 128-byte id.
MAX_PROOF_BYTES = (
    4 + 1 + 8 + HASH_BYTES + 1 + 1 + 4 + 2 + MAX_ID_BYTES
    + MAX_ASSETS * (8 + 32) + SALT_BYTES + MAX_DEPTH * (MAX_ASSETS * POINT_BYTES + HASH_BYTES)
)


@dataclass(frozen=True)
class PathStep:
    """The sibling at one level: its k commitments (concatenated) and hash."""

    commitments: bytes
    hash: bytes


@dataclass(frozen=True)
class InclusionProof:
    epoch: int
    bundle_hash: bytes
    leaf_index: int
    account_id: str
    amounts: tuple[int, ...]
    blindings: tuple[int, ...]
    salt: bytes
    path: tuple[PathStep, ...]

    @property
    def k(self) -> int:
        return len(self.amounts)

    @property
    def depth(self) -> int:
        return len(self.path)

    def to_bytes(self) -> bytes:
        ident = self.account_id.encode("utf-8")
        out = [
            MAGIC,
            struct.pack(">BQ", INCLUSION_VERSION, self.epoch),
            self.bundle_hash,
            struct.pack(">BBI", self.k, self.depth, self.leaf_index),
            struct.pack(">H", len(ident)),
            ident,
        ]
        out += [struct.pack(">Q", v) for v in self.amounts]
        out += [scalar_to_bytes(b) for b in self.blindings]
        out.append(self.salt)
        for step in self.path:
            out += [step.commitments, step.hash]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> InclusionProof:
        data = bytes(data)
        pos = 0

        def take(n: int, what: str) -> bytes:
            nonlocal pos
            if pos + n > len(data):
                raise FormatError(f"inclusion proof: truncated in {what}")
            chunk = data[pos : pos + n]
            pos += n
            return chunk

        if take(4, "magic") != MAGIC:
            raise FormatError("inclusion proof: bad magic")
        version, epoch = struct.unpack(">BQ", take(9, "header"))
        if version != INCLUSION_VERSION:
            raise FormatError(f"inclusion proof: unsupported version {version}")
        bundle_hash = take(HASH_BYTES, "bundle hash")
        k, depth, leaf_index = struct.unpack(">BBI", take(6, "shape"))
        if k < 1:
            raise FormatError("inclusion proof: no assets")
        if not MIN_DEPTH <= depth <= MAX_DEPTH:
            raise FormatError(f"inclusion proof: depth {depth} out of range")
        if leaf_index >= 1 << depth:
            raise FormatError("inclusion proof: leaf index beyond the tree")
        (id_len,) = struct.unpack(">H", take(2, "id length"))
        if not 1 <= id_len <= MAX_ID_BYTES:
            raise FormatError("inclusion proof: bad account id length")
        try:
            account_id = take(id_len, "account id").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError("inclusion proof: account id is not UTF-8") from exc
        amounts = tuple(struct.unpack(">Q", take(8, "amount"))[0] for _ in range(k))
        blindings = tuple(
            scalar_from_bytes(take(32, "blinding"), what="inclusion proof blinding")
            for _ in range(k)
        )
        salt = take(SALT_BYTES, "salt")
        path = tuple(
            PathStep(take(k * POINT_BYTES, "path commitments"), take(HASH_BYTES, "path hash"))
            for _ in range(depth)
        )
        if pos != len(data):
            raise FormatError(f"inclusion proof: {len(data) - pos} trailing bytes")
        return cls(epoch, bundle_hash, leaf_index, account_id, amounts, blindings, salt, path)
