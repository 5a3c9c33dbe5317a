"""Verify one account's inclusion proof against a bundle or a bundle hash.

The holder gives their own account id (required: the leaf hash binds it, so
someone else's proof can never pass as theirs) and one anchor:

- ``bundle=DIR``: the bundle is verified here in full;
- ``bundle_hash=H``: the SHA-256 of the manifest, as published by the
  operator. The document carries the manifest and its signature, so the
  root, the asset symbols and their column order, decimals, prices and
  reserves all come from a manifest whose hash the holder checks; nothing
  comes from labels the operator could change.

Then the holder recomputes, from the opening (v_j, gamma_j, salt) and the path::

    C_leaf_j = v_j*g + gamma_j*h
    h_leaf   = H(LEAF_TAG || u64 epoch || u16 len(id) || id || salt)
    for each level l: (C, h) = fold with the sibling, [tree-sum] and [tree-hash]
    (C, h) at the top must be the manifest's (C_root, h_root)          [inclusion-root]

Why the sibling values are non-negative: every sibling on the path is a
subtree of leaves, every leaf commitment is in ``leaves.bin`` and covered by a
64-bit leaf range proof (shard ``leaf // shard_leaves``), and the bundle
verifier recomputes every node from those leaves up to the root. With
``bundle=`` the bundle is verified in full (every range proof, the solvency
proofs) and the report lists, per level, which leaves and which range-proof
shards cover the sibling subtree; with only the bundle hash the holder
learns that the root is reached, not that the siblings are non-negative nor
that the solvency proofs verify (``not_checked = ["range", "solvency"]``,
``complete = False``). Revealed totals are checked to open the root
commitments in both modes [totals-opening].

Failure tags: inclusion-format, inclusion-encoding, inclusion-epoch,
inclusion-bundle, inclusion-shape, inclusion-root, inclusion-labels,
inclusion-account, inclusion-amount (plus any bundle tag from ``verify_bundle`` or
``check_manifest``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from zksolv import units
from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.circuits.inclusion import (
    DOCUMENT_VERSION,
    INCLUSION_FORMAT,
    MAX_ASSETS,
    MAX_PROOF_BYTES,
    InclusionProof,
)
from zksolv.core.group import POINT_BYTES, Backend, get_backend
from zksolv.core.pedersen import commit
from zksolv.errors import FormatError, InputError, VerificationError
from zksolv.safeio import FileReadError, decode_json, read_bounded

from .bundle import (
    BundleReport,
    Progress,
    assets_json,
    check_manifest,
    verify_bundle,
)

# The JSON document: the proof and the manifest, both as hex or escaped text.
# The readable amounts add at most ~160 bytes per asset.
MAX_DOCUMENT_BYTES = (2 * layout.MAX_MANIFEST_BYTES + 2 * MAX_PROOF_BYTES + 4096
                      + 160 * MAX_ASSETS)


_Hex32 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]


class _Amount(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # the column's name: SYM, or SYM.debt for a debt (version 5)
    symbol: Annotated[str, msgspec.Meta(max_length=21)]
    decimals: Annotated[int, msgspec.Meta(ge=0, le=30)]
    proof_decimals: Annotated[int, msgspec.Meta(ge=0, le=30)]
    proof_units: Annotated[int, msgspec.Meta(ge=0)]
    tokens: Annotated[str, msgspec.Meta(max_length=64)]

    def __post_init__(self) -> None:
        # msgspec bounds stop at int64
        if self.proof_units > units.MAX_PROVEN:
            raise ValueError("proof_units out of range (must be < 2^64)")


class _Document(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    format: Literal["zksolv-inclusion"]
    version: Literal[2]
    epoch: Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=circ.MAX_ID_BYTES)]
    manifest: Annotated[str, msgspec.Meta(max_length=layout.MAX_MANIFEST_BYTES)]
    signature: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{128}\Z")]
    proof: Annotated[str, msgspec.Meta(pattern=r"^(?:[0-9a-f]{2})+\Z",
                                       max_length=2 * MAX_PROOF_BYTES)]
    # Readable copies (optional; when present each must equal what the proof
    # bytes and the manifest say, or the document is refused).
    bundle_hash: _Hex32 | None = None
    root_hash: _Hex32 | None = None
    amounts: Annotated[list[_Amount], msgspec.Meta(max_length=510)] | None = None


@dataclass(frozen=True)
class Readable:
    """The readable fields of a document: the bundle hash, the root hash and
    per column (column order: a borrowable asset's debt, named SYM.debt,
    right after its credit) name, decimals, proof_decimals, the amount in
    proof units and in tokens."""

    bundle_hash: bytes
    root_hash: bytes
    amounts: tuple[tuple[str, int, int, int, str], ...]

    @classmethod
    def of(cls, proof: InclusionProof, assets: Sequence[circ.AssetTerms],
           root_hash: bytes) -> Readable:
        cols = [assets[j] for j, _ in circ.column_layout(assets)]
        return cls(proof.bundle_hash, root_hash, tuple(
            (name, a.decimals, a.proven_decimals, v, units.format_tokens(v, a.proven_decimals))
            for name, a, v in zip(circ.column_names(assets), cols, proof.amounts, strict=True)
        ))

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle_hash": self.bundle_hash.hex(),
            "root_hash": self.root_hash.hex(),
            "amounts": [{"symbol": s, "decimals": d, "proof_decimals": p, "proof_units": v,
                         "tokens": t} for s, d, p, v, t in self.amounts],
        }


@dataclass(frozen=True)
class InclusionDocument:
    """The JSON file a holder receives: the canonical proof bytes, plus the
    bundle's manifest and its signature (which bind every label), and
    readable copies of the amounts, bundle hash and root (``readable``),
    which the holder's check compares with the binary part [inclusion-labels]."""

    proof: InclusionProof
    manifest: bytes
    signature: bytes
    readable: Readable | None = None
    # As read from a file: the readable fields it carried, to be checked.
    claimed: _Document | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "format": INCLUSION_FORMAT,
            "version": DOCUMENT_VERSION,
            "epoch": self.proof.epoch,
            "account_id": self.proof.account_id,
            "manifest": self.manifest.decode("utf-8"),
            "signature": self.signature.hex(),
            "proof": self.proof.to_bytes().hex(),
        }
        if self.readable is not None:
            out.update(self.readable.to_json())
        return out

    def to_bytes(self) -> bytes:
        return msgspec.json.encode(self.to_json()) + b"\n"


def _bad(why: str) -> VerificationError:
    return VerificationError("inclusion-format", why)


def parse_document(data: bytes) -> InclusionDocument:
    """Decode an inclusion document strictly (exact types, bounded sizes)."""
    doc = decode_json(data, _Document, fail=_bad)
    try:
        proof = InclusionProof.from_bytes(bytes.fromhex(doc.proof))
    except FormatError as exc:
        raise _bad(str(exc)) from exc
    if doc.epoch != proof.epoch or doc.account_id != proof.account_id:
        raise _bad("labels disagree with the proof bytes")
    manifest = doc.manifest.encode("utf-8")
    if hashlib.sha256(manifest).digest() != proof.bundle_hash:
        raise VerificationError("inclusion-bundle",
                                "the enclosed manifest is not the bundle the proof was issued for")
    return InclusionDocument(proof, manifest, bytes.fromhex(doc.signature), claimed=doc)


def check_labels(doc: InclusionDocument, assets: Sequence[circ.AssetTerms],
                 root_hash: bytes) -> None:
    """[inclusion-labels] Every readable field a document carries equals what
    its proof bytes and the signed manifest say."""
    claimed = doc.claimed
    if claimed is None:
        return
    if claimed.bundle_hash is not None and claimed.bundle_hash != doc.proof.bundle_hash.hex():
        raise VerificationError("inclusion-labels", "bundle_hash differs from the proof bytes")
    if claimed.root_hash is not None and claimed.root_hash != root_hash.hex():
        raise VerificationError("inclusion-labels", "root_hash differs from the bundle's root")
    if claimed.amounts is not None:
        want = Readable.of(doc.proof, assets, root_hash).amounts
        got = tuple((a.symbol, a.decimals, a.proof_decimals, a.proof_units, a.tokens)
                    for a in claimed.amounts)
        if got != want:
            raise VerificationError("inclusion-labels",
                                    "the readable amounts differ from the proof bytes and the "
                                    "signed manifest (symbols, order, decimals or amounts)")


def load_document(path: str | os.PathLike[str]) -> InclusionDocument:
    """Read and decode the inclusion document at ``path``; a malformed one
    fails ``inclusion-format`` naming the file."""
    try:
        data, _ = read_bounded(path, MAX_DOCUMENT_BYTES, what="inclusion proof")
    except FileReadError as exc:
        raise InputError(exc.where, exc.reason) from exc
    try:
        return parse_document(data)
    except VerificationError as exc:
        if exc.check != "inclusion-format":
            raise
        raise VerificationError(exc.check, f"{os.fspath(path)}: {exc.detail}") from exc


@dataclass(frozen=True)
class SiblingCoverage:
    level: int
    first_leaf: int
    last_leaf: int
    first_shard: int
    last_shard: int


@dataclass(frozen=True)
class InclusionReport:
    account_id: str
    epoch: int
    leaf_index: int
    amounts: dict[str, int]       # credits, by asset symbol (proof units)
    price_decimals: int
    assets: tuple[circ.AssetTerms, ...]
    bundle_hash: bytes
    operator: bytes
    operator_pinned: bool
    root_hash: bytes
    bundle: BundleReport | None
    coverage: tuple[SiblingCoverage, ...]
    # the epoch and bundle the signed header links to (None: first of a chain)
    prev_epoch: int | None = None
    prev_bundle_hash: bytes | None = None
    # version 5 (a borrowable asset): debts by asset symbol (proof units),
    # and the account's own margin health from its opened values
    debts: dict[str, int] | None = None
    own_margin: int | None = None
    # the header's time (seconds since 1970-01-01 UTC)
    timestamp: int = 0
    # revealed total liabilities per asset, in proof units, checked to open
    # the root commitments (None: the operator keeps them hidden)
    totals: tuple[int, ...] | None = None
    # the tags of the checks that passed, in order
    checks: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """The bundle was verified in full: every range proof and the
        solvency proofs, not only the path to the signed root."""
        return self.bundle is not None

    @property
    def not_checked(self) -> tuple[str, ...]:
        """What a holder relies on that this check did not cover: ``range``
        (the leaf range proofs, so the siblings' non-negativity), in a
        bundle with borrowable assets ``debt-range`` and ``margin-health``
        (every account's debts non-negative and covered by its collateral),
        and ``solvency`` (the solvency proofs)."""
        if self.complete:
            return ()
        if self.debts is None:
            return ("range", "solvency")
        return ("range", "debt-range", "margin-health", "solvency")

    @property
    def gap(self) -> tuple[int, int] | None:
        """The epochs before this one that the header declares were not
        proven solvent, inclusive, or None."""
        return circ.declared_gap(self.epoch, self.prev_epoch)

    @property
    def margin_health(self) -> str | None:
        """None without borrowable assets; else "proven" when the bundle was
        verified here (every shard's margin-health proof checked, the
        holder's own among them), "unchecked" with the bundle hash only."""
        if self.debts is None:
            return None
        return "proven" if self.bundle is not None else "unchecked"

    @property
    def siblings_nonnegative(self) -> str:
        return "proven" if self.bundle is not None else "unchecked"

    def amounts_json(self, amounts: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
        """Each amount (the credits, or ``amounts`` given: the debts)
        labelled: proof units, the decimals they are counted at (``unit``
        10^-proof_decimals of the token), and the tokens."""
        terms = {a.symbol: a for a in self.assets}
        return {
            sym: {"proof_units": v, "proof_decimals": terms[sym].proven_decimals,
                  "decimals": terms[sym].decimals,
                  "unit": f"10^-{terms[sym].proven_decimals} {sym}",
                  "tokens": units.format_tokens(v, terms[sym].proven_decimals)}
            for sym, v in (self.amounts if amounts is None else amounts).items()
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "included": True,
            "complete": self.complete,
            "checked": list(self.checks),
            "not_checked": list(self.not_checked),
            "account_id": self.account_id,
            "epoch": self.epoch,
            "timestamp": self.timestamp,
            "time_utc": circ.utc_text(self.timestamp),
            "leaf_index": self.leaf_index,
            "amounts": self.amounts_json(),
            "totals": None if self.totals is None else dict(zip(
                (a.symbol for a in self.assets), self.totals, strict=True)),
            "assets": assets_json(self.assets, self.price_decimals),
            "bundle_hash": self.bundle_hash.hex(),
            "operator": self.operator.hex(),
            "operator_pinned": self.operator_pinned,
            "root_hash": self.root_hash.hex(),
            "prev_epoch": self.prev_epoch,
            "prev_bundle_hash": None if self.prev_bundle_hash is None
            else self.prev_bundle_hash.hex(),
            "gap": None if self.gap is None else {"first": self.gap[0], "last": self.gap[1]},
            "siblings_nonnegative": self.siblings_nonnegative,
        }
        if self.debts is not None:
            out["debts"] = self.amounts_json(self.debts)
            out["margin_health"] = {
                "proof": self.margin_health,
                "own_margin": self.own_margin,
                "own_margin_holds": self.own_margin is not None and self.own_margin >= 0,
            }
            if self.bundle is not None:
                out["margin_health"]["shard"] = self.bundle.shard_of_leaf(self.leaf_index)
        if self.bundle is not None:
            out["bundle"] = self.bundle.to_json()
            out["own_leaf_shard"] = self.bundle.shard_of_leaf(self.leaf_index)
            out["sibling_coverage"] = [
                {"level": c.level, "leaves": [c.first_leaf, c.last_leaf],
                 "shards": [c.first_shard, c.last_shard]}
                for c in self.coverage
            ]
        return out


def fold_path(backend: Backend, proof: InclusionProof) -> tuple[list[Any], bytes]:
    """(C_root, h_root) reached from the opening through the path."""
    k = proof.k
    cur = [commit(backend, v, b) for v, b in zip(proof.amounts, proof.blindings, strict=True)]
    cur_enc = circ.encode_points(backend, cur)
    cur_hash = circ.leaf_hash(proof.epoch, proof.account_id, proof.salt)
    for level, step in enumerate(proof.path):
        try:
            sib = [
                backend.decode(step.commitments[j * POINT_BYTES : (j + 1) * POINT_BYTES],
                               what=f"path level {level} commitment {j}")
                for j in range(k)
            ]
        except FormatError as exc:
            raise VerificationError("inclusion-encoding", str(exc)) from exc
        if (proof.leaf_index >> level) & 1:
            cur = circ.node_commitments(backend, sib, cur)
            cur_hash = circ.node_hash(step.commitments, step.hash, cur_enc, cur_hash)
        else:
            cur = circ.node_commitments(backend, cur, sib)
            cur_hash = circ.node_hash(cur_enc, cur_hash, step.commitments, step.hash)
        cur_enc = circ.encode_points(backend, cur)
    return cur, cur_hash


def check_expected(asset: circ.AssetTerms, proven: int, want: int | str, *,
                   debt: bool = False) -> None:
    """[inclusion-amount] The proof counts what the holder expects: ``want``
    in base units (int) or tokens (str, ``"3989.744384"``), rounded to proof
    units as the prover rounds: a credit up, a debt (``debt``) down."""
    name = asset.symbol + (circ.DEBT_SUFFIX if debt else "")
    if isinstance(want, str):
        base = units.parse_tokens(want, asset.decimals)
        if base is None:
            raise InputError(f"--expect {name}",
                             f"{want[:40]!r} is not an amount of {asset.symbol} in tokens "
                             f"(digits, one '.', at most {asset.decimals} decimals)")
    else:
        base = want
    pd = asset.proven_decimals
    rounded = (units.receivable_units(base, asset.scale) if debt
               else units.liability_units(base, asset.scale))
    if rounded > units.MAX_PROVEN:
        raise InputError(f"--expect {name}",
                         f"{base} base units is more than a leaf holds (2^64 - 1 proof units "
                         f"of 10^-{pd} {asset.symbol})")
    if rounded != proven:
        what = "a debt of " if debt else ""
        raise VerificationError(
            "inclusion-amount",
            f"{name}: proof shows {what}{units.format_tokens(proven, pd)} {asset.symbol} "
            f"({proven} proof units at {pd} decimals), expected "
            f"{units.format_tokens(base, asset.decimals)} {asset.symbol} ({base} base units)"
        )


def verify_inclusion(
    doc: InclusionDocument,
    *,
    account_id: str,
    bundle: str | os.PathLike[str] | None = None,
    bundle_hash: bytes | None = None,
    expect_operator: bytes | None = None,
    epoch: int | None = None,
    expect: dict[str, int | str] | None = None,
    backend: Backend | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> InclusionReport:
    """Raise ``VerificationError`` unless the proof is ``account_id``'s and
    opens a leaf that reaches the root of ``bundle`` (verified in full, with
    ``progress`` bars) or of the manifest whose SHA-256 is ``bundle_hash``."""
    backend = backend or get_backend()
    proof = doc.proof
    if (bundle is None) == (bundle_hash is None):
        raise InputError("inclusion verify", "give exactly one of --bundle DIR or "
                                             "--bundle-hash HEX")
    # The order of the checks is docs/epoch.md "The holder's check", the
    # same in both modes and on the page. Steps 1-2 (the document decodes,
    # its manifest is the one its proof names) ran in parse_document.
    checks = ["inclusion-format"]
    # 3. the holder's own account
    if proof.account_id != account_id:
        raise VerificationError(
            "inclusion-account", f"proof is for account {proof.account_id!r}, not {account_id!r}"
        )
    checks.append("inclusion-account")
    # 4. the anchor: the bundle verified in full, or the given hash
    report = None
    if bundle is not None:
        report = verify_bundle(bundle, backend=backend, expect_operator=expect_operator,
                               jobs=jobs, progress=progress)
        checks += report.checks
        anchor, anchor_epoch = report.bundle_hash, f" (epoch {report.epoch})"
    else:
        assert bundle_hash is not None
        anchor, anchor_epoch = bundle_hash, ""
    # 5. the proof was issued for that bundle
    if proof.bundle_hash != anchor:
        raise VerificationError(
            "inclusion-bundle",
            f"proof was issued for bundle {proof.bundle_hash.hex()} (epoch {proof.epoch}), "
            f"not {anchor.hex()}{anchor_epoch}",
        )
    checks.append("inclusion-bundle")
    # 6. the enclosed manifest and the enclosed signature, in both modes: a
    # holder's document is judged the same whatever the anchor
    try:
        parsed = check_manifest(doc.manifest, doc.signature, expect_operator=expect_operator)
    except VerificationError as exc:
        raise VerificationError(exc.check, f"the manifest enclosed in the proof: {exc.detail}"
                                ) from exc
    checks += ["manifest-format", "manifest-canonical", "suite-mismatch", "signature",
               *(["operator-mismatch"] if expect_operator is not None else []), "bundle-shape"]
    header = parsed.header
    price_decimals, assets, operator, depth = (
        header.price_decimals, header.assets, header.operator, header.depth
    )
    root_hash, root_commitments = parsed.root_hash, parsed.root_commitments
    prev_epoch, prev_hash = header.prev_epoch, header.prev_bundle_hash
    timestamp = header.timestamp
    # 7. the epoch: the manifest's, and the one the holder expects
    if header.epoch != proof.epoch:
        raise VerificationError(
            "inclusion-epoch", f"proof is for epoch {proof.epoch}, manifest is {header.epoch}"
        )
    if epoch is not None and proof.epoch != epoch:
        raise VerificationError("inclusion-epoch", f"proof is for epoch {proof.epoch}, not {epoch}")
    checks.append("inclusion-epoch")
    # 8. [totals-opening] C_root_j = L_j*g + gamma_j*h
    totals = None
    if parsed.totals is not None:
        for (liab, gamma), a, c in zip(parsed.totals, assets, root_commitments, strict=True):
            if backend.encode(commit(backend, liab, gamma)) != c:
                raise VerificationError("totals-opening",
                                        f"{a.symbol}: published total does not open C_root")
        totals = tuple(liab for liab, _ in parsed.totals)
        checks.append("totals-opening")
    columns = circ.column_layout(assets)
    if len(columns) != proof.k or depth != proof.depth:
        raise VerificationError("inclusion-shape", "assets or depth differ from the bundle")
    checks.append("inclusion-shape")
    roots, top = fold_path(backend, proof)
    if top != root_hash or tuple(backend.encode(p) for p in roots) != root_commitments:
        raise VerificationError("inclusion-root", "path does not reach the bundle's root")
    checks += ["leaf opening", "leaf-hash", "tree-sum", "tree-hash", "inclusion-encoding",
               "inclusion-root"]
    check_labels(doc, assets, root_hash)
    if doc.claimed is not None and (doc.claimed.bundle_hash is not None
                                    or doc.claimed.root_hash is not None
                                    or doc.claimed.amounts is not None):
        checks.append("inclusion-labels")
    amounts: dict[str, int] = {}
    debts: dict[str, int] | None = {} if any(debt for _, debt in columns) else None
    for (j, debt), v in zip(columns, proof.amounts, strict=True):
        if debt:
            assert debts is not None
            debts[assets[j].symbol] = v
        else:
            amounts[assets[j].symbol] = v
    own_margin = None
    if debts is not None:
        coef = circ.valued_coefficients(assets, depth)
        own_margin = sum((-coef.liability[j] if debt else coef.reserve[j]) * v
                         for (j, debt), v in zip(columns, proof.amounts, strict=True))
    terms = {a.symbol: a for a in assets}
    for sym, want in (expect or {}).items():
        base, is_debt = (sym[: -len(circ.DEBT_SUFFIX)], True) if (
            debts is not None and sym.endswith(circ.DEBT_SUFFIX)
            and sym[: -len(circ.DEBT_SUFFIX)] in debts) else (sym, False)
        if is_debt:
            assert debts is not None
            check_expected(terms[base], debts[base], want, debt=True)
            continue
        if sym not in amounts:
            raise VerificationError("inclusion-amount", f"no asset {sym!r} in this bundle")
        check_expected(terms[sym], amounts[sym], want)
    if expect:
        checks.append("inclusion-amount")
    coverage = []
    if report is not None:
        S = report.shard_leaves
        for level in range(proof.depth):
            sib = (proof.leaf_index >> level) ^ 1
            first, last = sib << level, ((sib + 1) << level) - 1
            coverage.append(SiblingCoverage(level, first, last, first // S, last // S))
    return InclusionReport(
        proof.account_id, proof.epoch, proof.leaf_index, amounts, price_decimals,
        assets, proof.bundle_hash, operator, expect_operator is not None,
        top, report, tuple(coverage), prev_epoch=prev_epoch, prev_bundle_hash=prev_hash,
        debts=debts, own_margin=own_margin,
        timestamp=timestamp, totals=totals, checks=tuple(dict.fromkeys(checks)),
    )
