"""What the Python side tells the page's JavaScript (tests/js/vectors.test.mjs):
the pinned constants, curve arithmetic done by the Python backends, and
inclusion cases (real proofs from proven epochs, every flipped byte, forged
documents and manifests) each with the verdict the Python verifier gives.
The JavaScript must reach the same verdict and name the same check."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from zksolv.circuits import bundle as layout
from zksolv.circuits import epoch as circ
from zksolv.circuits.inclusion import MAX_PROOF_BYTES, InclusionProof
from zksolv.cli.bench_site import SyntheticInclusion, synthetic_inclusion
from zksolv.cli.epoch import holder_link_text
from zksolv.core import ed25519
from zksolv.core.field import R
from zksolv.core.generators import generators
from zksolv.core.group import P, get_backend
from zksolv.errors import FormatError, VerificationError
from zksolv.safeio import SYMBOL_PATTERN
from zksolv.verifier.inclusion import MAX_DOCUMENT_BYTES, parse_document, verify_inclusion


def constants() -> dict[str, Any]:
    b = get_backend()
    gens = generators(b)
    return {
        "g": b.encode(gens.g).hex(),
        "h": b.encode(gens.h).hex(),
        "leafTag": circ.LEAF_TAG.decode(),
        "nodeTag": circ.NODE_TAG.decode(),
        "signatureTag": layout.SIGNATURE_TAG.decode(),
        "rounding": circ.ROUNDING_ID,
        "bundleVersion": layout.BUNDLE_VERSION,
        "roundingMargin": circ.ROUNDING_ID_MARGIN,
        "bundleVersionMargin": layout.BUNDLE_VERSION_MARGIN,
        "bundleVersionChain": layout.BUNDLE_VERSION_CHAIN,
        "suite": msgspec.to_builtins(layout.suite_ids()),
        "statements": msgspec.to_builtins(layout.statement_ids()),
        "marginStatements": {k: v for k, v in msgspec.to_builtins(
            layout.statement_ids(margin=True)).items()
            if k not in msgspec.to_builtins(layout.statement_ids())},
        "maxManifestBytes": layout.MAX_MANIFEST_BYTES,
        "maxProofBytes": MAX_PROOF_BYTES,
        "maxDocumentBytes": MAX_DOCUMENT_BYTES,
        "maxIdBytes": circ.MAX_ID_BYTES,
        "minDepth": circ.MIN_DEPTH,
        "maxDepth": circ.MAX_DEPTH,
        "shardValues": circ.SHARD_VALUES,
        "haircutScale": circ.HAIRCUT_SCALE,
        "symbolPattern": SYMBOL_PATTERN,
    }


def curve_vectors(rng: random.Random) -> dict[str, Any]:
    """Arithmetic by the Python backend; decoding verdicts of the backend on
    valid and invalid encodings."""
    b = get_backend()
    gens = generators(b)
    ops = []
    for i in range(16):
        s, t = rng.randrange(R), rng.randrange(R)
        u = [0, 1, 2, R - 1, R, R + 1, (1 << 64) - 1, (1 << 256) - 1][i % 8] if i < 8 else \
            rng.randrange(1 << 256)
        p, q = b.mul(gens.g, s), b.mul(gens.h, t)
        ops.append({
            "p": b.encode(p).hex(), "q": b.encode(q).hex(),
            "sum": b.encode(b.add(p, q)).hex(), "double": b.encode(b.add(p, p)).hex(),
            "neg": b.encode(b.neg(p)).hex(), "u": str(u), "up": b.encode(b.mul(p, u)).hex(),
            "v": str(s), "w": str(t),
            "commit": b.encode(b.msm([gens.g, gens.h], [s, t])).hex(),
        })
    encodings = [bytes.fromhex(o["p"]) for o in ops[:4]]
    encodings += [bytes([0xC0]) + bytes(47), bytes([0xE0]) + bytes(47),
                  bytes([0xC0]) + bytes(46) + b"\x01", bytes(48),
                  (P | (1 << 383)).to_bytes(48, "big"), ((P + 1) | (1 << 383)).to_bytes(48, "big")]
    # x values just above a few numbers: on the curve or not, and (almost
    # surely) not in the subgroup when on it
    for x in (0, 1, 2, 3, 4, 5, 11, P - 1):
        for sign in (0, 0x20):
            enc = bytearray(x.to_bytes(48, "big"))
            enc[0] |= 0x80 | sign
            encodings.append(bytes(enc))
    for _ in range(8):
        enc = bytearray(rng.randbytes(48))
        enc[0] = (enc[0] & 0x1F) | 0x80
        encodings.append(bytes(enc))
    flipped = bytearray(encodings[0])
    flipped[0] ^= 0x80  # compression flag cleared
    encodings.append(bytes(flipped))
    decode = []
    for enc in encodings:
        try:
            b.decode(enc, allow_identity=True)
            error = None
        except FormatError as exc:
            error = str(exc)
        # the page must refuse with the same words (one wording per failure)
        decode.append({"bytes": enc.hex(), "valid": error is None, "error": error})
    return {"ops": ops, "decode": decode}


def _python_verdict(document: bytes, account: str, *, bundle: Path | None = None,
                    bundle_hash: str | None = None, operator: str | None = None) -> dict[str, Any]:
    try:
        doc = parse_document(document)
        report = verify_inclusion(
            doc, account_id=account, bundle=bundle,
            bundle_hash=None if bundle_hash is None else bytes.fromhex(bundle_hash),
            expect_operator=None if operator is None else bytes.fromhex(operator),
        )
    except VerificationError as exc:
        return {"valid": False, "check": exc.check}
    owed = {f"{k}.debt": str(v) for k, v in (report.debts or {}).items()}
    return {"valid": True, "amounts": {**{k: str(v) for k, v in report.amounts.items()}, **owed},
            "epoch": str(report.epoch), "leafIndex": report.leaf_index,
            "prevEpoch": None if report.prev_epoch is None else str(report.prev_epoch),
            "gap": None if report.gap is None else f"{report.gap[0]}-{report.gap[1]}",
            "link": holder_link_text(report.epoch, report.prev_epoch, report.prev_bundle_hash)}


def _case(name: str, document: bytes, account: str, *, bundle: Path | None = None,
          bundle_hash: str | None = None, operator: str | None = None) -> dict[str, Any]:
    anchor: dict[str, Any]
    if bundle is not None:
        anchor = {"bundle": {
            "manifest": (bundle / layout.MANIFEST_FILE).read_text(),
            "signature": (bundle / layout.SIGNATURE_FILE).read_bytes().hex()}}
    else:
        anchor = {"bundleHash": bundle_hash}
    return {"name": name, "document": document.decode("utf-8", "replace"), "account": account,
            "operator": operator, **anchor,
            "expect": _python_verdict(document, account, bundle=bundle, bundle_hash=bundle_hash,
                                      operator=operator)}


def _with_proof(document: bytes, edit: Callable[[InclusionProof], InclusionProof]) -> bytes:
    doc = json.loads(document)
    pf = InclusionProof.from_bytes(bytes.fromhex(doc["proof"]))
    new = edit(pf)
    doc.update(proof=new.to_bytes().hex(), account_id=new.account_id, epoch=new.epoch)
    return json.dumps(doc).encode()


def _edited(document: bytes, **changes: Any) -> bytes:
    doc = json.loads(document)
    doc.update(changes)
    return json.dumps(doc).encode()


def inclusion_cases(epochs: Path, rng: random.Random) -> list[dict[str, Any]]:
    """Cases from the proven epochs in ``epochs`` (b1, b2 one asset, chained;
    m3 two assets; g4 linked to b2 with a gap) and synthetic ones."""
    cases = []
    doc2 = (epochs / "acct-4-e2.json").read_bytes()
    doc1 = (epochs / "acct-4-e1.json").read_bytes()
    other = (epochs / "acct-0-e2.json").read_bytes()
    multi = (epochs / "acct-4-m3.json").read_bytes()
    gap = (epochs / "acct-4-g4.json").read_bytes()
    h2 = json.loads(doc2)
    hash2 = layout.bundle_hash((epochs / "b2" / layout.MANIFEST_FILE).read_bytes()).hex()
    hash3 = layout.bundle_hash((epochs / "m3" / layout.MANIFEST_FILE).read_bytes()).hex()
    op = json.loads(h2["manifest"])["operator"]
    b2, b1, m3, g4 = epochs / "b2", epochs / "b1", epochs / "m3", epochs / "g4"
    hash4 = layout.bundle_hash((g4 / layout.MANIFEST_FILE).read_bytes()).hex()
    flipped = _edited(doc2, signature=("0" if h2["signature"][0] != "0" else "1")
                      + h2["signature"][1:])
    unsigned = json.dumps({k: v for k, v in h2.items() if k != "signature"}).encode()
    l5 = epochs / "l5"
    hash5 = layout.bundle_hash((l5 / layout.MANIFEST_FILE).read_bytes()).hex()
    borrower = (epochs / "borrower-l5.json").read_bytes()
    saver = (epochs / "saver-l5.json").read_bytes()
    cases += [
        _case("valid, debts (version 5)", borrower, "borrower", bundle=l5),
        _case("valid, debts (version 5), hash", borrower, "borrower", bundle_hash=hash5),
        _case("valid, owes nothing (version 5)", saver, "saver", bundle=l5),
        _case("debt understated", _with_proof(borrower, lambda p: InclusionProof(
            p.epoch, p.bundle_hash, p.leaf_index, p.account_id,
            (*p.amounts[:2], p.amounts[2] - 1), p.blindings, p.salt, p.path)), "borrower",
            bundle=l5),
        _case("debt column as a version 4 proof", borrower, "borrower", bundle=b2),
    ]
    cases += [
        _case("valid, bundle", doc2, "acct-4", bundle=b2),
        _case("valid, bundle hash", doc2, "acct-4", bundle_hash=hash2),
        _case("valid, operator pinned", doc2, "acct-4", bundle=b2, operator=op),
        _case("valid, two assets", multi, "acct-4", bundle=m3),
        _case("valid, two assets, hash", multi, "acct-4", bundle_hash=hash3),
        _case("valid, other account's own", other, "acct-0", bundle_hash=hash2),
        _case("valid, gap declared", gap, "acct-4", bundle=g4),
        _case("valid, gap declared, hash", gap, "acct-4", bundle_hash=hash4),
        _case("gap bundle's proof, linked bundle", gap, "acct-4", bundle=b2),
        _case("other operator pinned", doc2, "acct-4", bundle=b2, operator=OTHER_OPERATOR),
        _case("another account's id", other, "acct-4", bundle=b2),
        _case("another epoch's bundle", doc1, "acct-4", bundle=b2),
        _case("another epoch's bundle hash", doc1, "acct-4", bundle_hash=hash2),
        _case("another epoch's bundle, older", doc2, "acct-4", bundle=b1),
        _case("another bundle, same shape", doc2, "acct-4", bundle_hash=hash3),
        _case("inflated amount", _with_proof(doc2, lambda p: InclusionProof(
            p.epoch, p.bundle_hash, p.leaf_index, p.account_id, (p.amounts[0] + 1,),
            p.blindings, p.salt, p.path)), "acct-4", bundle=b2),
        _case("relabelled account", _with_proof(other, lambda p: InclusionProof(
            p.epoch, p.bundle_hash, p.leaf_index, "acct-4", p.amounts,
            p.blindings, p.salt, p.path)), "acct-4", bundle=b2),
        _case("other leaf index", _with_proof(doc2, lambda p: InclusionProof(
            p.epoch, p.bundle_hash, p.leaf_index ^ 1, p.account_id, p.amounts,
            p.blindings, p.salt, p.path)), "acct-4", bundle=b2),
        _case("version 1", _edited(doc2, version=1), "acct-4", bundle=b2),
        _case("epoch as float", _edited(doc2).replace(b'"epoch": 2,', b'"epoch": 2.0,'),
              "acct-4", bundle=b2),
        _case("epoch as bool", _edited(doc2, epoch=True), "acct-4", bundle=b2),
        _case("labels disagree", _edited(doc2, epoch=3), "acct-4", bundle=b2),
        _case("unknown field", _edited(doc2, extra=1), "acct-4", bundle=b2),
        _case("uppercase hex", _edited(doc2, proof=h2["proof"].upper()), "acct-4", bundle=b2),
        _case("not JSON", b"{not json", "acct-4", bundle=b2),
        _case("enclosed manifest edited",
              _edited(doc2, manifest=h2["manifest"].replace('"epoch": 2', '"epoch": 3')),
              "acct-4", bundle_hash=hash2),
        _case("signature flipped", flipped, "acct-4", bundle_hash=hash2),
        # the enclosed signature is checked whatever the anchor
        _case("signature flipped, bundle", flipped, "acct-4", bundle=b2),
        _case("signature absent", unsigned, "acct-4", bundle_hash=hash2),
        _case("signature absent, bundle", unsigned, "acct-4", bundle=b2),
    ]
    for key in SMALL_ORDER_KEYS[:2] + [(ed25519.P + 1).to_bytes(32, "little")]:
        forged, forged_hash = _under_key(doc2, key)
        cases.append(_case(f"{SMALL_ORDER_CASE} {key.hex()[:8]}..", forged, "acct-4",
                           bundle_hash=forged_hash))
    raw = bytes.fromhex(h2["proof"])
    for pos in range(len(raw)):
        bad = bytearray(raw)
        bad[pos] ^= 1 << rng.randrange(8)
        cases.append(_case(f"flipped proof byte {pos}", _edited(doc2, proof=bytes(bad).hex()),
                           "acct-4", bundle_hash=hash2))
    cases += synthetic_cases(rng)
    cases += spec_cases()
    return cases


def spec_cases() -> list[dict[str, Any]]:
    """The inclusion vectors of tests/vectors/spec/ in both modes, each with
    the outcome its index states (``want``), which the page must reach."""
    vectors = Path(__file__).parent / "vectors"
    index = json.loads((vectors / "spec" / "index.json").read_text())
    out = []
    for v in index["inclusion"]:
        document = (vectors / v["document"]).read_bytes()
        for mode in ("bundle", "hash"):
            case = _case(f"spec {v['name']}, {mode}", document, v["account"],
                         bundle=vectors / v["bundle"] if mode == "bundle" else None,
                         bundle_hash=v["bundle_hash"] if mode == "hash" else None)
            got = case["expect"]
            assert (got["check"] if not got["valid"] else "valid") == v["expect"], (v, got)
            case["want"] = v["expect"]
            out.append(case)
    return out


# Another operator's key (RFC 8032 §7.1, test 1): a pin that matches nothing.
OTHER_OPERATOR = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
# The identity and the point of order 2, canonically encoded: under either
# the signature R = identity, S = 0 verifies for every message.
SMALL_ORDER_KEYS = [bytes([1]) + bytes(31), bytes.fromhex("ec" + "ff" * 30 + "7f")]
SMALL_ORDER_CASE = "small-order operator key, R = identity, S = 0:"


def _under_key(document: bytes, key: bytes) -> tuple[bytes, str]:
    """``document`` re-issued under the real manifest with ``key`` as its
    operator and the signature (R = identity, S = 0): what anyone can write
    without a private key. Returns the document and its bundle hash anchor."""
    doc = json.loads(document)
    manifest = json.loads(doc["manifest"])
    manifest["operator"] = key.hex()
    raw = layout.canonical_json(manifest)
    bundle_hash = layout.bundle_hash(raw)
    pf = InclusionProof.from_bytes(bytes.fromhex(doc["proof"]))
    pf = InclusionProof(pf.epoch, bundle_hash, pf.leaf_index, pf.account_id, pf.amounts,
                        pf.blindings, pf.salt, pf.path)
    doc.update(manifest=raw.decode(), signature=(bytes([1]) + bytes(63)).hex(),
               proof=pf.to_bytes().hex(), bundle_hash=bundle_hash.hex())
    return json.dumps(doc).encode(), bundle_hash.hex()


def ed25519_vectors(rng: random.Random) -> list[dict[str, Any]]:
    """Operator key encodings and the Python package's verdict on each
    (``zksolv/core/ed25519.py``): the eight small-order points, y >= p,
    x = 0 with the sign bit, points off the curve, real keys."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from zksolv.prover.keys import public_key_bytes

    order8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
    y8 = int.from_bytes(order8, "little")
    small_y = [1, ed25519.P - 1, 0, y8, ed25519.P - y8]
    encodings = [(y | sign << 255).to_bytes(32, "little") for y in small_y for sign in (0, 1)]
    encodings += [(y | sign << 255).to_bytes(32, "little")
                  for y in range(ed25519.P, 1 << 255) for sign in (0, 1)]
    encodings += [y.to_bytes(32, "little") for y in range(2, 24)]
    encodings += [public_key_bytes(Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)))
                  for _ in range(16)]
    out = []
    for key in encodings:
        try:
            ed25519.check_public_key(key)
            valid = True
        except FormatError:
            valid = False
        out.append({"key": key.hex(), "valid": valid})
    return out


def _canonical(obj: dict[str, Any]) -> bytes:
    return layout.canonical_json(obj)


def _syn_case(name: str, syn: SyntheticInclusion, **kw: Any) -> dict[str, Any]:
    return _case(name, syn.document, syn.account_id, bundle_hash=syn.bundle_hash.hex(), **kw)


def synthetic_cases(rng: random.Random) -> list[dict[str, Any]]:
    """Manifests no prover writes, signed by the key they name, so that only
    the manifest checks can refuse them."""

    def edit(fn: Callable[[dict[str, Any]], bytes]) -> SyntheticInclusion:
        return synthetic_inclusion(3, rng=random.Random(rng.randrange(1 << 32)),
                                   manifest_bytes=fn)

    def big_numbers(m: dict[str, Any]) -> bytes:
        m["assets"][0]["price"] = (1 << 64) - 1
        m["timestamp"] = (1 << 63) - 1
        return _canonical(m)

    def set_(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], bytes]:
        def fn(m: dict[str, Any]) -> bytes:
            node = m
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            return _canonical(m)
        return fn

    def link(prev_hash: str | None, prev_epoch: Any) -> Callable[[dict[str, Any]], bytes]:
        def fn(m: dict[str, Any]) -> bytes:
            m["prev_bundle_hash"], m["prev_epoch"] = prev_hash, prev_epoch
            return _canonical(m)
        return fn

    def dup_symbol(m: dict[str, Any]) -> bytes:
        m["assets"][1]["symbol"] = m["assets"][0]["symbol"]
        return _canonical(m)

    cases = [
        _syn_case("synthetic, depth 3", edit(_canonical)),
        _syn_case("synthetic, big integers", edit(big_numbers)),
        _syn_case("synthetic, deep tree", synthetic_inclusion(
            32, rng=random.Random(rng.randrange(1 << 32)), leaf_index=(1 << 32) - 1)),
        _syn_case("synthetic, three assets", synthetic_inclusion(
            2, amounts=(0, 1, (1 << 64) - 1), rng=random.Random(rng.randrange(1 << 32)))),
        _syn_case("manifest not canonical", edit(
            lambda m: json.dumps(m, indent=2, sort_keys=True).encode())),
        _syn_case("manifest compact", edit(lambda m: json.dumps(m).encode())),
        _syn_case("manifest float", edit(
            lambda m: _canonical(m).replace(b'"price_decimals": 2', b'"price_decimals": 2.0'))),
        _syn_case("manifest duplicate key", edit(
            lambda m: _canonical(m).replace(b'"epoch": 7,', b'"epoch": 7,\n  "epoch": 7,'))),
        _syn_case("manifest unknown key", edit(set_(("extra",), 1))),
        _syn_case("manifest bool epoch", edit(set_(("epoch",), True))),
        _syn_case("manifest version 1", edit(set_(("version",), 1))),
        _syn_case("manifest suite", edit(set_(("suite", "hash"), "sha-512"))),
        _syn_case("manifest statement bits", edit(set_(("statements", "leaf_range", "bits"), 32))),
        _syn_case("manifest symbol", edit(set_(("assets", 0, "symbol"), "US D"))),
        _syn_case("manifest price 2^64", edit(set_(("assets", 0, "price"), 1 << 64))),
        _syn_case("manifest shard size", edit(set_(("tree", "shard_leaves"), 4))),
        _syn_case("manifest leaves", edit(set_(("tree", "leaves"), 9))),
        _syn_case("manifest shards", edit(set_(("tree", "shards"), 3))),
        _syn_case("manifest totals without reveal", edit(
            set_(("totals",), [{"liabilities": 1, "root_blinding": "00" * 32}]))),
        _syn_case("manifest epoch other", edit(set_(("epoch",), 8))),
        _syn_case("manifest root", edit(set_(("tree", "root_hash"), "ab" * 32))),
        _syn_case("manifest depth", edit(set_(("tree", "depth"), 4))),
        _syn_case("manifest operator", edit(set_(("operator",), "cd" * 32))),
        _syn_case("manifest non-ascii", edit(
            lambda m: _canonical(m).replace(b'"USD"', '"USD\u00e9"'.encode()))),
        # the link to the previous bundle (synthetic bundles are epoch 7)
        _syn_case("synthetic, linked to epoch 6", edit(link("ab" * 32, 6))),
        _syn_case("synthetic, gap: epochs 3..6 not proven", edit(link("ab" * 32, 2))),
        _syn_case("synthetic, gap: linked to epoch 0", edit(link("ab" * 32, 0))),
        _syn_case("manifest prev_epoch without prev hash", edit(link(None, 6))),
        _syn_case("manifest prev hash without prev_epoch", edit(link("ab" * 32, None))),
        _syn_case("manifest prev_epoch = epoch", edit(link("ab" * 32, 7))),
        _syn_case("manifest prev_epoch after epoch", edit(link("ab" * 32, 8))),
        _syn_case("manifest prev_epoch float", edit(
            lambda m: link("ab" * 32, 6)(m).replace(b'"prev_epoch": 6', b'"prev_epoch": 6.0'))),
        _syn_case("manifest prev_epoch bool", edit(link("ab" * 32, True))),
        _syn_case("manifest prev_epoch string", edit(link("ab" * 32, "6"))),
        _syn_case("manifest prev_epoch negative", edit(link("ab" * 32, -1))),
        _syn_case("manifest prev_epoch 2^63", edit(link("ab" * 32, 1 << 63))),
        _syn_case("manifest prev_epoch missing", edit(
            lambda m: _canonical({k: v for k, v in m.items() if k != "prev_epoch"}))),
        _syn_case("manifest duplicate symbol", synthetic_inclusion(
            2, amounts=(1, 2), rng=random.Random(rng.randrange(1 << 32)),
            manifest_bytes=dup_symbol)),
    ]
    return cases


def json_vectors() -> list[dict[str, str]]:
    """Values and their canonical manifest serialisation by Python."""
    values: list[Any] = [
        {"b": [1, {"z": None, "a": True}], "a": "\u00e9\"/\x7f\x01\\\t~ ", "c": {}, "d": []},
        {"big": (1 << 128) - 1, "neg": -5, "s": "\U0001f600\u2028", "k\u00e9y": [[], [{}]]},
        [], {}, "x", 0,
    ]
    return [{"text": json.dumps(v), "canonical": layout.canonical_json(v).decode()}
            for v in values]


def write_vectors(path: Path, epochs: Path, *, seed: int = 11) -> Path:
    rng = random.Random(seed)
    data = {"constants": constants(), "curve": curve_vectors(rng), "json": json_vectors(),
            "inclusion": inclusion_cases(epochs, rng), "ed25519": ed25519_vectors(rng)}
    path.write_text(json.dumps(data))
    return path
