"""Bundle layout shared by the writer (prover) and the reader (verifier).

A bundle is a directory (``docs/bundle-format.md``)::

    manifest.json   canonical JSON (sorted keys, indent 2, trailing newline)
    leaves.bin      2^depth records of  k*48 bytes (C_leaf_0..C_leaf_{k-1}) || 32 bytes h_leaf
    range.bin       `shards` leaf range proofs, each RangeProof.size(rounds) bytes
    solvency.bin    per-asset proof (m=k, n=128) || valued proof (m=1, n=128)

The bundle hash, used to chain epochs, is SHA-256 of the manifest bytes.
Every other file is listed in the manifest with its SHA-256 and size.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from zksolv.core.generators import GENERATOR_SET_ID
from zksolv.core.group import POINT_BYTES
from zksolv.core.rangeproof import RANGE_SCHEME_ID, RangeProof, RangeStatement

from . import epoch as circ
from .epoch import HASH_BYTES, LEAF_BITS, MARGIN_BITS

BUNDLE_FORMAT = "zksolv-bundle"
BUNDLE_VERSION = 1
MANIFEST_FILE = "manifest.json"
LEAVES_FILE = "leaves.bin"
RANGE_FILE = "range.bin"
SOLVENCY_FILE = "solvency.bin"
DATA_FILES = (LEAVES_FILE, RANGE_FILE, SOLVENCY_FILE)
GROUP_ID = "bls12-381-g1/zcash-compressed"
HASH_ID = "sha-256"


def canonical_json(obj: Any) -> bytes:
    """The one accepted serialisation of a manifest."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def bundle_hash(manifest_bytes: bytes) -> bytes:
    return hashlib.sha256(manifest_bytes).digest()


def leaf_record_size(k: int) -> int:
    return k * POINT_BYTES + HASH_BYTES


def proof_size(bits: int, m: int) -> int:
    return RangeProof.size(RangeStatement(b"", (bytes(POINT_BYTES),) * m, bits).rounds)


def leaf_proof_size(shard_leaves: int, k: int) -> int:
    return proof_size(LEAF_BITS, shard_leaves * k)


def solvency_sizes(k: int) -> tuple[int, int]:
    return proof_size(MARGIN_BITS, k), proof_size(MARGIN_BITS, 1)


def suite_ids() -> dict[str, str]:
    """The ``suite`` object of a manifest: the schemes this version speaks."""
    return {
        "circuits": circ.CIRCUIT_SUITE_ID,
        "generators": GENERATOR_SET_ID.decode(),
        "group": GROUP_ID,
        "hash": HASH_ID,
        "range": RANGE_SCHEME_ID.decode(),
    }


def statement_ids() -> dict[str, object]:
    """The ``statements`` object of a manifest."""
    return {
        "leaf_range": {"id": circ.LEAF_RANGE_ID.decode(), "bits": LEAF_BITS},
        "solvency_asset": {"id": circ.SOLVENCY_ASSET_ID.decode(), "bits": MARGIN_BITS},
        "solvency_valued": {"id": circ.SOLVENCY_VALUED_ID.decode(), "bits": MARGIN_BITS},
    }
