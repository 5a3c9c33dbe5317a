"""The epoch statements, defined once for the prover and the verifier.

Notation: g, h are the value and blinding bases (``zksolv.core.generators``),
k the number of assets, ``||`` byte concatenation, ``u8/u16/u32/u64`` big-endian
unsigned integers, H = SHA-256. Notes: ``docs/epoch.md``.

Leaf (one per account, or padding)::

    C_leaf_j  = v_j*g + gamma_j*h                     j = 0..k-1, 0 <= v_j < 2^64
    h_leaf    = H(LEAF_TAG || u64 epoch || u16 len(id) || id || salt)     [leaf-hash]

``id`` is the UTF-8 account id, ``salt`` 32 bytes derived by the operator
(HKDF, fresh per epoch). Padding leaves commit to 0 with fresh blindings and
carry 32 uniformly random bytes as hash, so they look like account leaves.

Node (every internal node, including the root)::

    C_node_j  = C_left_j + C_right_j                                      [tree-sum]
    h_node    = H(NODE_TAG || C_left_0..C_left_{k-1} || h_left
                           || C_right_0..C_right_{k-1} || h_right)         [tree-hash]

Both children's commitments are hashed (defeats Maxwell-Todd: a parent that
is not the sum of its children). The tree has depth >= 1, so the root hash
always binds the root's children.

No wrap-around mod r: leaves are < 2^64 and there are at most 2^32 leaves, so
every node value is < 2^96 < r.

Units. Leaf values are in proof units of 10^-proof_decimals_j tokens
(``proof_decimals`` defaults to ``decimals``: then a proof unit is a base
unit). The prover rounds each account's amount up and the verifier rounds
the published reserves down (``zksolv.units``, rule ``ROUNDING_ID``, bound
into the header), so rounding never makes an insolvent epoch look solvent.
Below, reserves_j means floor(reserves_j / 10^(decimals_j - proof_decimals_j)).

Solvency, per asset j (statement ``SOLVENCY_ASSET_ID``, n = 128)::

    C_margin_j = reserves_j*g - C_root_j     opens to (reserves_j - L_j, -gamma_root_j)

A negative margin m > -2^96 is r - |m| > 2^128 mod r, so no 128-bit range
proof exists for it.

Valued solvency (statement ``SOLVENCY_VALUED_ID``, n = 128). With
a_j = price_j * 10^(D - proof_decimals_j), D = max proof_decimals (one quote unit per
10^(price_decimals + D)), and g0 the gcd of all coefficients below::

    c_j = a_j * haircut_bps_j / g0         (reserve weight)
    b_j = a_j * 10000 / g0                 (liability weight)
    C_valued = (sum_j c_j*reserves_j)*g - sum_j b_j*C_root_j
             opens to (sum_j c_j*reserves_j - sum_j b_j*L_j, -sum_j b_j*gamma_root_j)

i.e. sum_j price_j*haircut_j*reserves_j >= sum_j price_j*L_j in common fixed
point. Sound only if the positive side is < 2^128 and the largest possible
liability side sum_j b_j*2^depth*(2^64-1) is < r - 2^128 (so a negative
margin cannot wrap into [0, 2^128)); ``valued_coefficients`` refuses
otherwise, and the verifier re-checks it [solvency-bounds].

Every range proof's transcript absorbs its statement id, and as ``context``
the epoch header digest (which covers the previous bundle's hash and epoch)
plus the shard index or the root, so no proof can be replayed in another
epoch, shard or statement.

Margin accounts (an asset declared borrowable; bundle version 5; notes:
docs/epoch.md, *Margin accounts*). A leaf then commits to m = k + b columns,
in header column order: each asset's credit v_j and, right after it, a
borrowable asset's debt d_j (what the account owes the protocol), each
in [0, 2^64) ([leaf-range] over the credits, [debt-range] over the debts,
both 64-bit, per shard). Nodes, [tree-sum] and [tree-hash] are as above over
the m column commitments. With the valued statement's weights c_j, b_j::

    C_health = sum_j c_j*C_leaf_credit_j - sum_{j borrowable} b_j*C_leaf_debt_j
             opens to (sum_j c_j*v_j - sum_j b_j*d_j, same combination of blindings)
                                                                  [margin-health]

is range-proven in [0, 2^128) for every leaf (padding and debt-free leaves
included, statement ``MARGIN_HEALTH_ID``, one aggregated proof per shard):
sum_j price_j*haircut_j*credit_j >= sum_j price_j*debt_j. Solvency counts
the root's debt sums D_j beside the reserves::

    C_margin_j = reserves_j*g + C_root_debt_j - C_root_credit_j        (per asset)
    C_valued   = (sum_j c_j*reserves_j)*g + sum_j b_j*C_root_debt_j - sum_j b_j*C_root_credit_j

No wrap-around: |sum_j b_j*d_j| < sum_j b_j*2^64 is below r - 2^128 whenever
[solvency-bounds] holds, so an unhealthy leaf's negative margin cannot land in
[0, 2^128); the valued margin's positive side sum_j c_j*reserves_j +
sum_j b_j*D_j stays below r for the same reason.

Chain. A header names the bundle it links to: its hash and its epoch
``prev_epoch`` (both absent for the first bundle of a chain). Normally
prev_epoch = epoch - 1; a smaller prev_epoch declares, in the signed header
itself, that the epochs prev_epoch+1 .. epoch-1 were not proven solvent
(refused, or never proven): a gap.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from zksolv import units
from zksolv.core.field import R
from zksolv.core.group import POINT_BYTES, Backend, Point
from zksolv.core.rangeproof import RangeStatement

CIRCUIT_SUITE_ID = "zksolv/circuits/epoch/v2"
LEAF_RANGE_ID = b"zksolv/circuit/leaf-range/v1"
SOLVENCY_ASSET_ID = b"zksolv/circuit/solvency-asset/v1"
SOLVENCY_VALUED_ID = b"zksolv/circuit/solvency-valued/v1"
DEBT_RANGE_ID = b"zksolv/circuit/debt-range/v1"
MARGIN_HEALTH_ID = b"zksolv/circuit/margin-health/v1"

LEAF_TAG = b"zksolv/tree/leaf/v1"
NODE_TAG = b"zksolv/tree/node/v1"
HEADER_TAG = b"zksolv/epoch-header/v4"
# A header with a borrowable asset (bundle version 5): the same fields, then
# one borrowable flag per asset.
HEADER_TAG_MARGIN = b"zksolv/epoch-header/v5"
# A header whose reserves come from the chain (bundle version 6): the fields
# of v4 (or v5, flags included, with a borrowable asset), then the SHA-256 of
# the chain-reserves evidence.
HEADER_TAG_CHAIN = b"zksolv/epoch-header/v6"
# The rounding rule between base units and proof units (``zksolv.units``),
# bound into every header: liabilities rounded up, reserves rounded down,
# and (headers with a borrowable asset) debts rounded down.
ROUNDING_ID: Final = units.ROUNDING_ID
ROUNDING_ID_MARGIN: Final = units.ROUNDING_ID_MARGIN
RESERVES_BYTES = 32
LEAF_CONTEXT_TAG = b"zksolv/context/leaf-shard/v1"
SOLVENCY_CONTEXT_TAG = b"zksolv/context/solvency/v1"

HASH_BYTES = 32
SALT_BYTES = 32
DEBT_SUFFIX = ".debt"
LEAF_BITS = 64
MARGIN_BITS = 128
HEALTH_BITS = 128
MAX_LEAF_VALUE = (1 << LEAF_BITS) - 1
MAX_DEPTH = 32
MIN_DEPTH = 1
HAIRCUT_SCALE = 10_000
# Range-proof shard: at most this many committed values (leaves * assets).
SHARD_VALUES = 256
MAX_ID_BYTES = 128
ZERO_HASH = bytes(HASH_BYTES)


@dataclass(frozen=True)
class AssetTerms(units.ProofUnits):
    """One asset column as published: price has ``price_decimals`` decimals
    (quote per whole unit), haircut in basis points, reserves in base units
    (exact, as the operator states them). Leaf amounts and the solvency
    statements are in proof units of 10^-proof_decimals tokens (default:
    ``decimals``, one proof unit per base unit); reserves enter them rounded
    down, liabilities rounded up (``zksolv.units``)."""

    symbol: str
    decimals: int
    price: int
    haircut_bps: int
    reserves: int
    proof_decimals: int | None = None
    # accounts may owe it: each leaf also commits to the account's debt in it
    borrowable: bool = False

    @property
    def proven_reserves(self) -> int:
        """[round-down] The reserves the statements use, in proof units."""
        return units.reserve_units(self.reserves, self.scale)


@dataclass(frozen=True)
class EpochHeader:
    """Everything public about an epoch that the proofs are bound to."""

    epoch: int
    timestamp: int
    price_decimals: int
    assets: tuple[AssetTerms, ...]
    prev_bundle_hash: bytes | None
    # The epoch of the bundle ``prev_bundle_hash`` names (None exactly when
    # there is none); below epoch - 1 it declares a gap.
    prev_epoch: int | None
    depth: int
    shard_leaves: int
    reveal_totals: bool
    # The operator's Ed25519 public key (32 bytes): the proofs are bound to
    # the key that signs the manifest, so they cannot be re-published under
    # another operator's name.
    operator: bytes
    # SHA-256 of the manifest's chain_reserves (bundle version 6), binding
    # the proofs to the evidence their sourced reserves come from; None when
    # every asset's reserves are the operator's assertion
    reserves_evidence: bytes | None = None

    def __post_init__(self) -> None:
        problem = chain_link_problem(self.epoch, self.prev_bundle_hash is not None,
                                     self.prev_epoch)
        if problem is not None:
            raise ValueError(problem)

    @property
    def gap(self) -> tuple[int, int] | None:
        """The epochs this header declares were not proven solvent, as an
        inclusive range (first, last), or None (see ``declared_gap``)."""
        return declared_gap(self.epoch, self.prev_epoch)

    @property
    def k(self) -> int:
        return len(self.assets)

    @property
    def margin(self) -> bool:
        """True if an asset is borrowable: leaves commit to debts too, and
        every leaf proves its margin health (bundle version 5)."""
        return any(a.borrowable for a in self.assets)

    @property
    def columns(self) -> tuple[tuple[int, bool], ...]:
        """The leaf's committed columns, in order: (asset index, is debt);
        each asset's credit, then its debt if it is borrowable."""
        return column_layout(self.assets)

    @property
    def m(self) -> int:
        """Commitments per leaf and per node: k, plus one per borrowable asset."""
        return len(self.columns)

    @property
    def rounding(self) -> str:
        return ROUNDING_ID_MARGIN if self.margin else ROUNDING_ID

    @property
    def leaves(self) -> int:
        return 1 << self.depth

    @property
    def shards(self) -> int:
        return self.leaves // self.shard_leaves

    def to_bytes(self) -> bytes:
        """Canonical encoding, the preimage of ``digest``."""
        if len(self.operator) != 32:
            raise ValueError("operator key must be 32 bytes")
        if self.reserves_evidence is not None and len(self.reserves_evidence) != HASH_BYTES:
            raise ValueError("reserves evidence digest must be 32 bytes")
        tag = HEADER_TAG_MARGIN if self.margin else HEADER_TAG
        out = [
            tag if self.reserves_evidence is None else HEADER_TAG_CHAIN,
            self.operator,
            struct.pack(">QQB", self.epoch, self.timestamp, self.price_decimals),
            struct.pack(">B", 0 if self.prev_bundle_hash is None else 1),
            self.prev_bundle_hash or ZERO_HASH,
            struct.pack(">Q", 0 if self.prev_epoch is None else self.prev_epoch),
            struct.pack(">BIB", self.depth, self.shard_leaves, int(self.reveal_totals)),
            struct.pack(">B", len(self.rounding)) + self.rounding.encode("ascii"),
            struct.pack(">H", self.k),
        ]
        for a in self.assets:
            sym = a.symbol.encode("utf-8")
            out.append(struct.pack(">B", len(sym)) + sym)
            out.append(struct.pack(">BB", a.decimals, a.proven_decimals))
            out.append(a.price.to_bytes(8, "big"))
            out.append(struct.pack(">H", a.haircut_bps))
            out.append(a.reserves.to_bytes(RESERVES_BYTES, "big"))
        if self.margin:
            out.append(bytes(int(a.borrowable) for a in self.assets))
        if self.reserves_evidence is not None:
            out.append(self.reserves_evidence)
        return b"".join(out)

    def digest(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()


def chain_link_problem(epoch: int, has_prev_hash: bool, prev_epoch: int | None) -> str | None:
    """Why a header's link fields cannot be (None if they can): prev_epoch
    is given exactly when the previous bundle's hash is, and is below epoch."""
    if has_prev_hash and prev_epoch is None:
        return "prev_epoch is null but prev_bundle_hash is set: a link names the epoch it links to"
    if not has_prev_hash and prev_epoch is not None:
        return (f"prev_epoch is {prev_epoch} but prev_bundle_hash is null: the first bundle of "
                "a chain links to no epoch")
    if prev_epoch is not None and prev_epoch >= epoch:
        return f"prev_epoch {prev_epoch} is not before epoch {epoch}"
    return None


def declared_gap(epoch: int, prev_epoch: int | None) -> tuple[int, int] | None:
    """The epochs that a bundle of ``epoch`` linking to ``prev_epoch`` declares
    were not proven solvent: those strictly between the two, as an inclusive
    range (first, last); None when it links to epoch - 1 or to no epoch."""
    if prev_epoch is None or prev_epoch + 1 >= epoch:
        return None
    return prev_epoch + 1, epoch - 1


def epochs_text(first: int, last: int) -> str:
    """``epoch 3`` or ``epochs 3..5``: an inclusive range of epochs, for messages."""
    return f"epoch {first}" if first == last else f"epochs {first}..{last}"


def gap_text(first: int, last: int) -> str:
    """``epoch 3 was`` or ``epochs 3..5 were``: ``epochs_text`` with its verb,
    for "... NOT proven solvent"."""
    return f"{epochs_text(first, last)} {'was' if first == last else 'were'}"


def column_layout(assets: Sequence[AssetTerms]) -> tuple[tuple[int, bool], ...]:
    """(asset index, is debt) per committed column: each asset's credit,
    followed by its debt if it is borrowable."""
    out: list[tuple[int, bool]] = []
    for j, a in enumerate(assets):
        out.append((j, False))
        if a.borrowable:
            out.append((j, True))
    return tuple(out)


def column_names(assets: Sequence[AssetTerms]) -> tuple[str, ...]:
    """Each committed column's name: ``SYM`` for a credit, ``SYM.debt`` for a
    debt (the snapshot's accounts.csv column names)."""
    return tuple(assets[j].symbol + (DEBT_SUFFIX if debt else "")
                 for j, debt in column_layout(assets))


def utc_text(timestamp: int, *, iso: bool = True) -> str:
    """A header's ``timestamp`` (seconds since 1970-01-01 UTC) in ISO 8601,
    ``2026-11-26T14:00:00Z``, or for reading ``2026-11-26 14:00:00 UTC``;
    one past year 9999 as its seconds."""
    import datetime

    try:
        when = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{timestamp} s after 1970-01-01 00:00:00 UTC"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S UTC")


def shard_leaves_for(depth: int, k: int) -> int:
    """Leaves per range-proof shard: a power of two with leaves*k <= SHARD_VALUES
    (one leaf at least), never more than the tree holds. ``k`` is the
    number of committed columns (m with a borrowable asset)."""
    per = max(1, SHARD_VALUES // (1 << (k - 1).bit_length()))
    return min(per, 1 << depth)


def depth_for(accounts: int) -> int:
    """Smallest depth >= MIN_DEPTH whose 2^depth leaves hold ``accounts``."""
    return max(MIN_DEPTH, (max(accounts, 1) - 1).bit_length())


def leaf_hash(epoch: int, account_id: str, salt: bytes) -> bytes:
    """[leaf-hash] H(LEAF_TAG || u64 epoch || u16 len(id) || id || salt)."""
    ident = account_id.encode("utf-8")
    if len(salt) != SALT_BYTES:
        raise ValueError("salt must be 32 bytes")
    return hashlib.sha256(
        LEAF_TAG + struct.pack(">QH", epoch, len(ident)) + ident + salt
    ).digest()


def node_hash(left_commitments: bytes, left_hash: bytes,
              right_commitments: bytes, right_hash: bytes) -> bytes:
    """[tree-hash] H(NODE_TAG || C_left.. || h_left || C_right.. || h_right);
    commitments are the k concatenated 48-byte encodings of each child."""
    return hashlib.sha256(
        NODE_TAG + left_commitments + left_hash + right_commitments + right_hash
    ).digest()


def node_commitments(
    backend: Backend, left: Sequence[Point], right: Sequence[Point]
) -> list[Point]:
    """[tree-sum] C_node_j = C_left_j + C_right_j."""
    return [backend.add(a, b) for a, b in zip(left, right, strict=True)]


def encode_points(backend: Backend, points: Sequence[Point]) -> bytes:
    return b"".join(backend.encode_many(points))


Level = tuple[list[list[Point]], list[bytes], list[bytes]]


def tree_levels(backend: Backend, k: int, level: Level) -> Iterator[Level]:
    """Every level above ``level`` up to the root, as (points, encodings,
    hashes) per node: [tree-sum] and [tree-hash] applied pairwise. A level's
    encodings are made in one batch (one field inversion on mcl)."""
    points, encodings, hashes = level
    while len(points) > 1:
        pairs = range(0, len(points), 2)
        nxt_pts = [node_commitments(backend, points[i], points[i + 1]) for i in pairs]
        flat = backend.encode_many([p for node in nxt_pts for p in node])
        size = k * POINT_BYTES
        joined = b"".join(flat)
        nxt_enc = [joined[i * size : (i + 1) * size] for i in range(len(nxt_pts))]
        nxt_hash = [
            node_hash(encodings[i], hashes[i], encodings[i + 1], hashes[i + 1]) for i in pairs
        ]
        points, encodings, hashes = nxt_pts, nxt_enc, nxt_hash
        yield points, encodings, hashes


def tree_root(backend: Backend, k: int, level: Level) -> Level:
    """The root level (one node) of the tree whose bottom is ``level``."""
    top = level
    for top in tree_levels(backend, k, level):  # noqa: B007 - the last level is the root
        pass
    return top


def leaf_context(header_digest: bytes, shard: int) -> bytes:
    return LEAF_CONTEXT_TAG + header_digest + struct.pack(">I", shard)


def solvency_context(header_digest: bytes, root_hash: bytes) -> bytes:
    return SOLVENCY_CONTEXT_TAG + header_digest + root_hash


def leaf_statement(header: EpochHeader, header_digest: bytes, shard: int,
                   commitments: Sequence[bytes]) -> RangeStatement:
    """Shard ``shard`` covers leaves [shard*S, (shard+1)*S), S = shard_leaves;
    its commitments are listed leaf by leaf, column by column within a leaf
    (all m columns: ``split_columns`` takes the credits and the debts)."""
    if len(commitments) != header.shard_leaves * header.m:
        raise ValueError("leaf shard: wrong number of commitments")
    credits, _ = split_columns(header, commitments)
    return RangeStatement(
        LEAF_RANGE_ID, tuple(credits), LEAF_BITS, leaf_context(header_digest, shard)
    )


T = TypeVar("T")


def split_columns(header: EpochHeader, items: Sequence[T]) -> tuple[list[T], list[T]]:
    """A shard's per-column items (leaf-major, m per leaf) split into the
    credits (k per leaf) and the debts (b per leaf), each leaf-major."""
    cols = header.columns
    m = len(cols)
    credits: list[T] = []
    debts: list[T] = []
    for i, item in enumerate(items):
        (debts if cols[i % m][1] else credits).append(item)
    return credits, debts


def debt_statement(header: EpochHeader, header_digest: bytes, shard: int,
                   commitments: Sequence[bytes]) -> RangeStatement:
    """[debt-range] The shard's debt commitments (all m columns given, as to
    ``leaf_statement``), each in [0, 2^64)."""
    if len(commitments) != header.shard_leaves * header.m:
        raise ValueError("debt shard: wrong number of commitments")
    _, debts = split_columns(header, commitments)
    return RangeStatement(
        DEBT_RANGE_ID, tuple(debts), LEAF_BITS, leaf_context(header_digest, shard)
    )


def health_statement(header: EpochHeader, header_digest: bytes, shard: int,
                     health: Sequence[bytes]) -> RangeStatement:
    """[margin-health] The shard's S health commitments, one per leaf in
    leaf order, each in [0, 2^128)."""
    if len(health) != header.shard_leaves:
        raise ValueError("health shard: wrong number of commitments")
    return RangeStatement(
        MARGIN_HEALTH_ID, tuple(health), HEALTH_BITS, leaf_context(header_digest, shard)
    )


def health_weights(header: EpochHeader, coef: ValuedCoefficients) -> tuple[int, ...]:
    """The scalar of each committed column in C_health: c_j for a credit,
    -b_j (mod r) for a debt."""
    return tuple((R - coef.liability[j]) % R if debt else coef.reserve[j]
                 for j, debt in header.columns)


def health_value(header: EpochHeader, coef: ValuedCoefficients,
                 values: Sequence[int]) -> int:
    """An account's margin health as an integer (may be negative):
    sum_j c_j*credit_j - sum_j b_j*debt_j; ``values`` in column order."""
    return sum((-coef.liability[j] if debt else coef.reserve[j]) * v
               for (j, debt), v in zip(header.columns, values, strict=True))


def health_commitments(backend: Backend, header: EpochHeader, coef: ValuedCoefficients,
                       leaves: Sequence[Sequence[Point]]) -> list[Point]:
    """[margin-health] C_health per leaf from its m column commitments."""
    weights = list(health_weights(header, coef))
    return [backend.msm(list(cols), weights) for cols in leaves]


def asset_statement(header_digest: bytes, root_hash: bytes,
                    margins: Sequence[bytes]) -> RangeStatement:
    """All k per-asset margins in one aggregated proof."""
    return RangeStatement(
        SOLVENCY_ASSET_ID, tuple(margins), MARGIN_BITS, solvency_context(header_digest, root_hash)
    )


def valued_statement(header_digest: bytes, root_hash: bytes, margin: bytes) -> RangeStatement:
    return RangeStatement(
        SOLVENCY_VALUED_ID, (margin,), MARGIN_BITS, solvency_context(header_digest, root_hash)
    )


class BoundsError(ValueError):
    """The valued statement's coefficients could wrap mod r; not provable soundly."""


@dataclass(frozen=True)
class ValuedCoefficients:
    reserve: tuple[int, ...]    # c_j
    liability: tuple[int, ...]  # b_j

    def reserve_value(self, assets: Sequence[AssetTerms]) -> int:
        """sum_j c_j*reserves_j, reserves in proof units (rounded down)."""
        return sum(c * a.proven_reserves for c, a in zip(self.reserve, assets, strict=True))


def valued_coefficients(assets: Sequence[AssetTerms], depth: int) -> ValuedCoefficients:
    """c_j, b_j of the valued statement; raises ``BoundsError`` if they could
    let a value wrap mod r or exceed 2^128 (see the module docstring)."""
    top = max(a.proven_decimals for a in assets)
    a_j = [a.price * 10 ** (top - a.proven_decimals) for a in assets]
    c = [aj * a.haircut_bps for aj, a in zip(a_j, assets, strict=True)]
    b = [aj * HAIRCUT_SCALE for aj in a_j]
    g0 = 0
    for x in c + b:
        g0 = math.gcd(g0, x)
    if g0 == 0:
        # g0 = 0 exactly when every price is 0 (b_j = 10000*a_j); a haircut
        # of 0 only zeroes c_j, which is sound (those reserves count for nothing)
        raise BoundsError("every asset has price 0: the valued statement has nothing to "
                          "weigh (a haircut of 0 is allowed: that asset's reserves then "
                          "count for nothing)")
    coef = ValuedCoefficients(tuple(x // g0 for x in c), tuple(x // g0 for x in b))
    positive = coef.reserve_value(assets)
    if positive >= 1 << MARGIN_BITS:
        raise BoundsError(
            f"valued reserves {positive} do not fit in {MARGIN_BITS} bits; "
            "lower price_decimals or an asset's proof_decimals"
        )
    worst_liabilities = sum(coef.liability) * (1 << depth) * MAX_LEAF_VALUE
    if worst_liabilities >= R - (1 << MARGIN_BITS):
        raise BoundsError(
            "valued liability weights could wrap modulo the group order; "
            "lower price_decimals or an asset's proof_decimals"
        )
    return coef


def asset_margins(backend: Backend, g: Point, assets: Sequence[AssetTerms],
                  roots: Sequence[Point]) -> list[Point]:
    """C_margin_j = reserves_j*g - C_root_j (reserves in proof units, rounded
    down), plus C_root_debt_j for a borrowable asset. ``roots`` are the
    root's m column commitments in column order."""
    credit, debt = _root_columns(assets, roots)
    out = []
    for j, a in enumerate(assets):
        p = backend.add(backend.mul(g, a.proven_reserves), backend.neg(credit[j]))
        if j in debt:
            p = backend.add(p, debt[j])
        out.append(p)
    return out


def _root_columns(assets: Sequence[AssetTerms], roots: Sequence[Point]
                  ) -> tuple[list[Point], dict[int, Point]]:
    cols = column_layout(assets)
    if len(roots) != len(cols):
        raise ValueError("one root commitment per column expected")
    credit: list[Point] = []
    debt: dict[int, Point] = {}
    for (j, is_debt), p in zip(cols, roots, strict=True):
        if is_debt:
            debt[j] = p
        else:
            credit.append(p)
    return credit, debt


def valued_margin(backend: Backend, g: Point, assets: Sequence[AssetTerms],
                  coef: ValuedCoefficients, roots: Sequence[Point]) -> Point:
    """C_valued = (sum_j c_j*reserves_j)*g - sum_j b_j*C_root_credit_j
    + sum_{j borrowable} b_j*C_root_debt_j."""
    scalars = [(-coef.liability[j] if not debt else coef.liability[j])
               for j, debt in column_layout(assets)]
    return backend.msm([g, *roots], [coef.reserve_value(assets), *scalars])
