"""Bundle layout shared by the writer (prover) and the reader (verifier).

A bundle is a directory (``docs/bundle-format.md``)::

    manifest.json   canonical JSON (sorted keys, indent 2, trailing newline)
    manifest.sig    64-byte Ed25519 signature by the operator key named in the
                    manifest, over SIGNATURE_TAG || SHA-256(manifest.json)
    leaves.bin      2^depth records of  m*48 bytes (C_leaf_0..C_leaf_{m-1}) || 32 bytes h_leaf
    range.bin       `shards` leaf range proofs, each RangeProof.size(rounds) bytes
    solvency.bin    per-asset proof (k values, n=128) || valued proof (1 value, n=128)
    margin.bin      (version 5 only) per shard: debt range proof (S*b values,
                    n=64) || margin-health proof (S values, n=128)

m = k columns in version 4; in version 5 (an asset borrowable) m = k + b,
each borrowable asset's debt column right after its credit column.

The bundle hash, used to chain epochs, is SHA-256 of the manifest bytes.
Every data file is listed in the manifest with its SHA-256 and size.

``Manifest`` is the schema of manifest.json, stated once for the writer and
the reader: exact JSON types (msgspec, ``strict=True``: ``1.0`` and ``true``
are not ``1``), every integer range-bounded, every string matched whole.
A manifest is accepted only if its bytes are exactly ``canonical_json`` of
what was decoded, so one bundle has one hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Final, Literal

import msgspec

from zksolv import units
from zksolv.core.generators import GENERATOR_SET_ID
from zksolv.core.group import POINT_BYTES
from zksolv.core.rangeproof import RANGE_SCHEME_ID, RangeProof, RangeStatement
from zksolv.reserves_format import EvidenceJSON
from zksolv.safeio import SYMBOL_PATTERN

from . import epoch as circ
from .epoch import HASH_BYTES, LEAF_BITS, MARGIN_BITS

BUNDLE_FORMAT: Final = "zksolv-bundle"
BUNDLE_VERSION: Final = 4
# A bundle with a borrowable asset: debts in the leaves, margin health proven.
BUNDLE_VERSION_MARGIN: Final = 5
# A bundle whose reserves (some assets') are read from the chain: the
# manifest carries the evidence (chain_reserves); borrowable or not as 4 or 5.
BUNDLE_VERSION_CHAIN: Final = 6
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
SIGNATURE_TAG = b"zksolv/manifest-signature/v2"
# A manifest with the most assets (255, all totals revealed) is about 80 kB.
MAX_MANIFEST_BYTES = 1 << 20
LEAVES_FILE = "leaves.bin"
RANGE_FILE = "range.bin"
SOLVENCY_FILE = "solvency.bin"
MARGIN_FILE = "margin.bin"
DATA_FILES = (LEAVES_FILE, RANGE_FILE, SOLVENCY_FILE)
DATA_FILES_MARGIN = (*DATA_FILES, MARGIN_FILE)
GROUP_ID = "bls12-381-g1/zcash-compressed"
HASH_ID = "sha-256"


_HEX32 = r"^[0-9a-f]{64}\Z"
_HEX48 = r"^[0-9a-f]{96}\Z"
Hex32 = Annotated[str, msgspec.Meta(pattern=_HEX32)]
Hex48 = Annotated[str, msgspec.Meta(pattern=_HEX48)]
Symbol = Annotated[str, msgspec.Meta(pattern="^" + SYMBOL_PATTERN + r"\Z")]
U8 = Annotated[int, msgspec.Meta(ge=0, lt=1 << 8)]
U32 = Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
U63 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
# msgspec bounds stop at int64; wider unsigned fields are bounded in
# __post_init__ (a ValueError there is reported as a validation error).
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


def _below(value: int, bits: int, name: str) -> None:
    if value >= 1 << bits:
        raise ValueError(f"{name} {value} is out of range (must be < 2^{bits})")
Id = Annotated[str, msgspec.Meta(max_length=128)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class SuiteIds(_Strict, frozen=True, forbid_unknown_fields=True):
    circuits: Id
    generators: Id
    group: Id
    hash: Id
    range: Id


class StatementId(_Strict, frozen=True, forbid_unknown_fields=True):
    id: Id
    bits: U8


class Statements(_Strict, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The statement ids and bit widths; ``debt_range`` and ``margin_health``
    exactly in version 5 (absent, never null, in version 4)."""

    leaf_range: StatementId
    solvency_asset: StatementId
    solvency_valued: StatementId
    debt_range: StatementId | None = None
    margin_health: StatementId | None = None


class AssetEntry(_Strict, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """``reserves`` in base units, exact; the statements use them rounded
    down to proof units of 10^-proof_decimals tokens (``zksolv.units``).
    ``borrowable`` (version 5 only) is written only when true."""

    symbol: Symbol
    decimals: Annotated[int, msgspec.Meta(ge=0, le=30)]
    proof_decimals: Annotated[int, msgspec.Meta(ge=0, le=30)]
    price: NonNegative
    haircut_bps: Annotated[int, msgspec.Meta(ge=0, le=circ.HAIRCUT_SCALE)]
    reserves: NonNegative
    borrowable: bool = False

    def __post_init__(self) -> None:
        _below(self.price, 64, "price")
        if self.proof_decimals > self.decimals:
            raise ValueError(f"proof_decimals {self.proof_decimals} exceeds decimals "
                             f"{self.decimals}")
        _below(self.reserves, 8 * circ.RESERVES_BYTES, "reserves")
        proven = units.reserve_units(self.reserves,
                                     units.proof_scale(self.decimals, self.proof_decimals))
        _below(proven, 64, "reserves in proof units")


class TreeEntry(_Strict, frozen=True, forbid_unknown_fields=True):
    depth: Annotated[int, msgspec.Meta(ge=circ.MIN_DEPTH, le=circ.MAX_DEPTH)]
    leaves: NonNegative
    shard_leaves: U32
    shards: NonNegative
    root_hash: Hex32
    # one per committed column (m): k, plus one per borrowable asset
    root_commitments: Annotated[list[Hex48], msgspec.Meta(min_length=1, max_length=510)]

    def __post_init__(self) -> None:
        _below(self.leaves, 64, "leaves")
        _below(self.shards, 64, "shards")


class TotalEntry(_Strict, frozen=True, forbid_unknown_fields=True):
    liabilities: NonNegative
    root_blinding: Hex32

    def __post_init__(self) -> None:
        _below(self.liabilities, 128, "liabilities")


class FileEntry(_Strict, frozen=True, forbid_unknown_fields=True):
    sha256: Hex32
    bytes: U63


class Files(_Strict, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    leaves: FileEntry = msgspec.field(name=LEAVES_FILE)
    range: FileEntry = msgspec.field(name=RANGE_FILE)
    solvency: FileEntry = msgspec.field(name=SOLVENCY_FILE)
    # version 5 only
    margin: FileEntry | None = msgspec.field(name=MARGIN_FILE, default=None)

    def names(self) -> tuple[str, ...]:
        return DATA_FILES if self.margin is None else DATA_FILES_MARGIN

    def get(self, name: str) -> FileEntry:
        entry = {LEAVES_FILE: self.leaves, RANGE_FILE: self.range,
                 SOLVENCY_FILE: self.solvency, MARGIN_FILE: self.margin}[name]
        if entry is None:
            raise KeyError(name)
        return entry


class Manifest(_Strict, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """manifest.json (docs/bundle-format.md). ``operator`` is the hex of the
    operator's Ed25519 public key, which must sign the manifest.
    ``prev_epoch`` is the epoch of the bundle ``prev_bundle_hash`` names:
    both null (the first bundle of a chain) or both set, prev_epoch < epoch;
    below epoch - 1 it declares the epochs between not proven solvent."""

    format: Literal["zksolv-bundle"]
    version: Literal[4, 5, 6]
    suite: SuiteIds
    statements: Statements
    operator: Hex32
    epoch: U63
    timestamp: U63
    prev_bundle_hash: Hex32 | None
    prev_epoch: U63 | None
    price_decimals: Annotated[int, msgspec.Meta(ge=0, le=18)]
    rounding: Literal["liabilities-up/reserves-down", "liabilities-up/reserves-down/debts-down"]
    assets: Annotated[list[AssetEntry], msgspec.Meta(min_length=1, max_length=255)]
    tree: TreeEntry
    reveal_totals: bool
    totals: Annotated[list[TotalEntry], msgspec.Meta(max_length=255)] | None
    files: Files
    # version 6 only (absent, never null, otherwise): the evidence of the
    # sourced assets' reserves, docs/bundle-format.md
    chain_reserves: EvidenceJSON | None = None

    @property
    def margin(self) -> bool:
        """An asset is borrowable: debts in the leaves, margin health proven."""
        return any(a.borrowable for a in self.assets)

    def __post_init__(self) -> None:
        problem = circ.chain_link_problem(self.epoch, self.prev_bundle_hash is not None,
                                          self.prev_epoch)
        if problem is not None:
            raise ValueError(problem)
        problem = version_problem(self)
        if problem is not None:
            raise ValueError(problem)


def version_problem(m: Manifest) -> str | None:
    """Why a manifest's version does not fit its content (None if it does):
    version 5 exactly when an asset is borrowable, with the debt rounding
    rule, the two margin statements and margin.bin; version 4 with none of them."""
    margin = m.margin
    chain = m.chain_reserves is not None
    if chain != (m.version == BUNDLE_VERSION_CHAIN):
        return (f"version {m.version} {'with' if chain else 'without'} chain_reserves: version "
                f"{BUNDLE_VERSION_CHAIN} is exactly the bundle with them")
    if not chain and margin != (m.version == BUNDLE_VERSION_MARGIN):
        return (f"version {m.version} with {'a' if margin else 'no'} borrowable asset: version "
                f"{BUNDLE_VERSION_MARGIN} is exactly the bundle with one")
    rounding = circ.ROUNDING_ID_MARGIN if margin else circ.ROUNDING_ID
    if m.rounding != rounding:
        return f"rounding {m.rounding!r} in a version {m.version} bundle (must be {rounding!r})"
    has = (m.statements.debt_range is not None, m.statements.margin_health is not None,
           m.files.margin is not None)
    if has != (margin,) * 3:
        return (f"statements.debt_range, statements.margin_health and files.{MARGIN_FILE} are "
                f"{'required' if margin else 'not allowed'} in version {m.version}")
    if margin and m.reveal_totals:
        return "reveal_totals: a bundle with a borrowable asset reveals no totals"
    if len(m.tree.root_commitments) != len(circ.column_layout(
            [circ.AssetTerms(a.symbol, 0, 0, 0, 0, None, a.borrowable) for a in m.assets])):
        return "tree.root_commitments: one per column (k, plus one per borrowable asset) expected"
    return None


def manifest_bytes(manifest: Manifest) -> bytes:
    """The canonical bytes of a manifest (the only bytes a reader accepts)."""
    return canonical_json(msgspec.to_builtins(manifest))


def signature_message(bundle_hash_: bytes) -> bytes:
    """What the operator signs: SIGNATURE_TAG || SHA-256(manifest.json)."""
    return SIGNATURE_TAG + bundle_hash_


def canonical_json(obj: Any) -> bytes:
    """The one accepted serialisation of a manifest."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def bundle_hash(manifest_bytes: bytes) -> bytes:
    return hashlib.sha256(manifest_bytes).digest()


def leaf_record_size(k: int) -> int:
    """A leaf record (and a node) of ``k`` committed columns (m in version 5)."""
    return k * POINT_BYTES + HASH_BYTES


def proof_size(bits: int, m: int) -> int:
    return RangeProof.size(RangeStatement(b"", (bytes(POINT_BYTES),) * m, bits).rounds)


def leaf_proof_size(shard_leaves: int, k: int) -> int:
    """A shard's leaf range proof: the credits of its leaves (k per leaf)."""
    return proof_size(LEAF_BITS, shard_leaves * k)


def margin_proof_sizes(shard_leaves: int, borrowable: int) -> tuple[int, int]:
    """A shard's debt range proof (S*b values, 64-bit) and margin-health
    proof (S values, 128-bit): one record of margin.bin."""
    return (proof_size(LEAF_BITS, shard_leaves * borrowable),
            proof_size(circ.HEALTH_BITS, shard_leaves))


def solvency_sizes(k: int) -> tuple[int, int]:
    return proof_size(MARGIN_BITS, k), proof_size(MARGIN_BITS, 1)


def suite_ids() -> SuiteIds:
    """The ``suite`` object of a manifest: the schemes this version speaks."""
    return SuiteIds(
        circuits=circ.CIRCUIT_SUITE_ID,
        generators=GENERATOR_SET_ID.decode(),
        group=GROUP_ID,
        hash=HASH_ID,
        range=RANGE_SCHEME_ID.decode(),
    )


def statement_ids(margin: bool = False) -> Statements:
    """The ``statements`` object of a manifest (``margin``: version 5)."""
    return Statements(
        leaf_range=StatementId(circ.LEAF_RANGE_ID.decode(), LEAF_BITS),
        solvency_asset=StatementId(circ.SOLVENCY_ASSET_ID.decode(), MARGIN_BITS),
        solvency_valued=StatementId(circ.SOLVENCY_VALUED_ID.decode(), MARGIN_BITS),
        debt_range=StatementId(circ.DEBT_RANGE_ID.decode(), LEAF_BITS) if margin else None,
        margin_health=(StatementId(circ.MARGIN_HEALTH_ID.decode(), circ.HEALTH_BITS)
                       if margin else None),
    )
