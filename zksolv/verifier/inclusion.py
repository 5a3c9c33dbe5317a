"""Verify one account's inclusion proof against a bundle or a root hash.

The holder recomputes, from the opening (v_j, gamma_j, salt) and the path::

    C_leaf_j = v_j*g + gamma_j*h
    h_leaf   = H(LEAF_TAG || u64 epoch || u16 len(id) || id || salt)
    for each level l: (C, h) = fold with the sibling, [tree-sum] and [tree-hash]
    (C, h) at the top must be the published (C_root, h_root)            [inclusion-root]

Why the sibling values are non-negative: every sibling on the path is a
subtree of leaves, every leaf commitment is in ``leaves.bin`` and covered by a
64-bit leaf range proof (shard ``leaf // shard_leaves``), and the bundle
verifier recomputes every node from those leaves up to the root. With
``bundle=`` the bundle is verified here in full and the report lists, per
level, which leaves and which range-proof shards cover the sibling subtree;
with only a root hash the holder learns that the root is reached, not that
the siblings are non-negative (``siblings_nonnegative = "unchecked"``).

Failure tags: inclusion-format, inclusion-encoding, inclusion-epoch,
inclusion-bundle, inclusion-shape, inclusion-root, inclusion-account,
inclusion-amount (plus any bundle tag from ``verify_bundle``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zksolv.circuits import epoch as circ
from zksolv.circuits.inclusion import INCLUSION_FORMAT, INCLUSION_VERSION, InclusionProof
from zksolv.core.group import POINT_BYTES, Backend, get_backend
from zksolv.core.pedersen import commit
from zksolv.errors import FormatError, InputError, VerificationError

from .bundle import BundleReport, verify_bundle

_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


@dataclass(frozen=True)
class InclusionDocument:
    """The JSON file a holder receives: the canonical proof plus labels."""

    proof: InclusionProof
    symbols: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": INCLUSION_FORMAT,
            "version": INCLUSION_VERSION,
            "epoch": self.proof.epoch,
            "account_id": self.proof.account_id,
            "assets": list(self.symbols),
            "proof": self.proof.to_bytes().hex(),
        }


def parse_document(obj: Any) -> InclusionDocument:
    def bad(why: str) -> VerificationError:
        return VerificationError("inclusion-format", why)

    if not isinstance(obj, dict) or set(obj) != {
        "format", "version", "epoch", "account_id", "assets", "proof"
    }:
        raise bad("not an inclusion proof object")
    if obj["format"] != INCLUSION_FORMAT or obj["version"] != INCLUSION_VERSION:
        raise bad("unknown format or version")
    hx = obj["proof"]
    if not isinstance(hx, str) or not _HEX.match(hx):
        raise bad("proof must be lowercase hex")
    try:
        proof = InclusionProof.from_bytes(bytes.fromhex(hx))
    except FormatError as exc:
        raise bad(str(exc)) from exc
    syms = obj["assets"]
    if not isinstance(syms, list) or len(syms) != proof.k or not all(
        isinstance(s, str) for s in syms
    ):
        raise bad("assets must list one symbol per amount")
    if obj["epoch"] != proof.epoch or obj["account_id"] != proof.account_id:
        raise bad("labels disagree with the proof bytes")
    return InclusionDocument(proof, tuple(syms))


def load_document(path: str | os.PathLike[str]) -> InclusionDocument:
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise InputError(str(p), f"cannot read ({exc.strerror or exc})") from exc
    try:
        obj = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise VerificationError("inclusion-format", f"{p}: not valid JSON") from exc
    return parse_document(obj)


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
    amounts: dict[str, int]
    root_hash: bytes
    bundle: BundleReport | None
    coverage: tuple[SiblingCoverage, ...]

    @property
    def siblings_nonnegative(self) -> str:
        return "proven" if self.bundle is not None else "unchecked"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "valid": True,
            "account_id": self.account_id,
            "epoch": self.epoch,
            "leaf_index": self.leaf_index,
            "amounts": self.amounts,
            "root_hash": self.root_hash.hex(),
            "siblings_nonnegative": self.siblings_nonnegative,
        }
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


def verify_inclusion(
    doc: InclusionDocument,
    *,
    bundle: str | os.PathLike[str] | None = None,
    root_hash: bytes | None = None,
    epoch: int | None = None,
    account_id: str | None = None,
    expect: dict[str, int] | None = None,
    backend: Backend | None = None,
    jobs: int = 1,
) -> InclusionReport:
    """Raise ``VerificationError`` unless the proof opens a leaf that reaches
    the root of ``bundle`` (verified in full) or ``root_hash``."""
    backend = backend or get_backend()
    proof = doc.proof
    if bundle is None and root_hash is None:
        raise InputError("inclusion verify", "give --bundle DIR or --root HEX")
    if epoch is not None and proof.epoch != epoch:
        raise VerificationError("inclusion-epoch", f"proof is for epoch {proof.epoch}, not {epoch}")
    if account_id is not None and proof.account_id != account_id:
        raise VerificationError(
            "inclusion-account", f"proof is for account {proof.account_id!r}, not {account_id!r}"
        )
    report = None
    symbols = doc.symbols
    if bundle is not None:
        report = verify_bundle(bundle, backend=backend, jobs=jobs)
        if report.epoch != proof.epoch:
            raise VerificationError(
                "inclusion-epoch", f"proof is for epoch {proof.epoch}, bundle is {report.epoch}"
            )
        if report.bundle_hash != proof.bundle_hash:
            raise VerificationError("inclusion-bundle", "proof was issued for another bundle")
        if report.symbols != doc.symbols or report.depth != proof.depth:
            raise VerificationError("inclusion-shape", "assets or depth differ from the bundle")
        symbols = report.symbols
    roots, top = fold_path(backend, proof)
    if report is not None:
        if top != report.root_hash or tuple(backend.encode(p) for p in roots) != (
            report.root_commitments
        ):
            raise VerificationError("inclusion-root", "path does not reach the bundle's root")
    if root_hash is not None and top != root_hash:
        raise VerificationError("inclusion-root", "path does not reach the given root hash")
    amounts = dict(zip(symbols, proof.amounts, strict=True))
    for sym, want in (expect or {}).items():
        if sym not in amounts:
            raise VerificationError("inclusion-amount", f"no asset {sym!r} in this proof")
        if amounts[sym] != want:
            raise VerificationError(
                "inclusion-amount", f"{sym}: proof shows {amounts[sym]}, expected {want}"
            )
    coverage = []
    if report is not None:
        S = report.shard_leaves
        for level in range(proof.depth):
            sib = (proof.leaf_index >> level) ^ 1
            first, last = sib << level, ((sib + 1) << level) - 1
            coverage.append(SiblingCoverage(level, first, last, first // S, last // S))
    return InclusionReport(
        proof.account_id, proof.epoch, proof.leaf_index, amounts, top, report, tuple(coverage)
    )
