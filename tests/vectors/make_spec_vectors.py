"""Write tests/vectors/spec/: the vectors docs/ states for an independent
verifier, beside the published bundle vectors of tests/vectors/bundles/.

    python tests/vectors/make_spec_vectors.py

``spec/index.json`` lists:

- ``bundles``: invalid bundles derived from ``bundles/valid-epoch1`` and
  ``bundles/valid-totals`` (each changed in one place, re-signed by the test
  operator key): a byte-order mark before manifest.json, tree depth 0 and 33,
  a non-canonical ``root_blinding``, every price 0; and a valid bundle whose
  only asset has haircut 0 (nothing owed: proven here). Each with the tag
  ``zksolv verify`` gives (docs/epoch.md, *Verifier checks*).
- ``inclusion``: inclusion proofs of two chained bundles proven here
  (``spec/incl-epoch1``, ``spec/incl-epoch2``): valid ones and one per way of
  being invalid, each under ``--bundle`` and ``--bundle-hash`` with the tag
  both modes and the holder's page give (docs/epoch.md, *The holder's
  check*).
- ``header_digests``: for each valid bundle, the epoch-header bytes and
  D = SHA-256 of them (docs/bundle-format.md, *Epoch header*).
- the ``chain-*`` bundles: version 6 (reserves read from a chain, real
  EIP-712 signatures by fixed test keys, an invented block on chain 31337):
  a valid one, and invalid ones the offline verifier catches: reserves that
  are not the evidence's sum and a signature made for another epoch (both
  proven by a prover whose own checks were switched off: a dishonest
  operator), a block that is not the window's (``reserves-block``), version 4
  and a checksummed address (``manifest-format``).

    python tests/vectors/make_spec_vectors.py --chain

rewrites only the ``chain-*`` vectors (and their entries), leaving every
other published vector as it is.

The challenges of one range proof are in ``transcript_v1.json``
(``make_transcript.py``). Proving uses fresh randomness, so regenerating
gives other bytes with the same outcomes; the committed files are the
published ones. ``tests/test_spec_vectors.py`` checks every outcome with the
command line, and tests/js the page's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from test_epoch_support import (  # noqa: E402
    copy_bundle,
    make_snapshot,
    prove,
    read_manifest,
    run,
    sign_manifest,
    write_manifest,
)

from zksolv.circuits import bundle as layout  # noqa: E402
from zksolv.circuits.inclusion import InclusionProof, PathStep  # noqa: E402
from zksolv.core.field import R, scalar_from_bytes  # noqa: E402
from zksolv.snapshot import Asset  # noqa: E402
from zksolv.verifier.bundle import check_manifest  # noqa: E402

BUNDLES = HERE / "bundles"
OUT = HERE / "spec"
ASSETS = (Asset("USDC", 6, 100, 10_000, 10**10),)
ROWS = [("alice", (1_250_000,)), ("bob", (7,)), ("carol", (3_000_000,))]
ACCOUNT = "alice"


def _edit_json(path: Path, **changes: Any) -> bytes:
    doc = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    return (json.dumps(doc) + "\n").encode()


def _with_proof(path: Path, proof: InclusionProof) -> bytes:
    return _edit_json(path, proof=proof.to_bytes().hex())


def bundle_vectors() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, expect: str, what: str) -> None:
        out.append({"name": name, "bundle": f"spec/{name}", "expect": expect, "what": what})

    b = copy_bundle(BUNDLES / "valid-epoch1", OUT / "manifest-bom")
    raw = (b / layout.MANIFEST_FILE).read_bytes()
    (b / layout.MANIFEST_FILE).write_bytes(b"\xef\xbb\xbf" + raw)
    sign_manifest(b)
    add("manifest-bom", "manifest-format", "a UTF-8 byte-order mark before manifest.json, "
        "re-signed")
    for depth in (0, 33):
        b = copy_bundle(BUNDLES / "valid-epoch1", OUT / f"depth-{depth}")
        m = read_manifest(b)
        m["tree"]["depth"] = depth
        write_manifest(b, m)
        add(f"depth-{depth}", "manifest-format", f"tree.depth set to {depth} (outside [1, 32]), "
            "re-signed")
    b = copy_bundle(BUNDLES / "valid-totals", OUT / "root-blinding-noncanonical")
    m = read_manifest(b)
    gamma = scalar_from_bytes(bytes.fromhex(m["totals"][0]["root_blinding"]))
    assert gamma + R < 1 << 256
    m["totals"][0]["root_blinding"] = (gamma + R).to_bytes(32, "little").hex()
    write_manifest(b, m)
    add("root-blinding-noncanonical", "manifest-format",
        "totals[0].root_blinding replaced by the same scalar plus r (not below r), re-signed")
    b = copy_bundle(BUNDLES / "valid-epoch1", OUT / "all-prices-0")
    m = read_manifest(b)
    for a in m["assets"]:
        a["price"] = 0
    write_manifest(b, m)
    add("all-prices-0", "solvency-bounds", "every asset's price set to 0, re-signed: the "
        "valued statement has nothing to weigh")
    return out


def inclusion_vectors(t: Path) -> list[dict[str, Any]]:
    prove(make_snapshot(t / "s1", ROWS, epoch=1, assets=ASSETS), OUT / "incl-epoch1")
    prove(make_snapshot(t / "s2", ROWS, epoch=2, assets=ASSETS), OUT / "incl-epoch2",
          "--prev", str(OUT / "incl-epoch1"))
    docs = OUT / "inclusion"
    docs.mkdir()
    for e in (1, 2):
        for acc in ("alice", "bob"):
            res = run("inclusion", "export", "--db", OUT / f"incl-epoch{e}.inclusion.sqlite",
                      "--account", acc, "--out", docs / f"{acc}-epoch{e}.json")
            assert res.exit_code == 0, res.output
        (OUT / f"incl-epoch{e}.inclusion.sqlite").unlink()
    a2 = docs / "alice-epoch2.json"
    doc = json.loads(a2.read_text())
    pf = InclusionProof.from_bytes(bytes.fromhex(doc["proof"]))
    sig = doc["signature"]

    def write(name: str, data: bytes) -> str:
        (docs / f"{name}.json").write_bytes(data)
        return f"spec/inclusion/{name}.json"

    def proof_of(**changes: Any) -> InclusionProof:
        f = {k: getattr(pf, k) for k in ("epoch", "bundle_hash", "leaf_index", "account_id",
                                         "amounts", "blindings", "salt", "path")}
        f.update(changes)
        return InclusionProof(**f)

    bad_step = PathStep(b"\xff" * 48, pf.path[0].hash)
    cases = [
        ("valid", "inclusion/alice-epoch2.json", ACCOUNT, "incl-epoch2", "valid",
         "alice's proof against its bundle"),
        ("valid-other-account", "inclusion/bob-epoch2.json", "bob", "incl-epoch2", "valid",
         "bob's proof, bob's id"),
        ("valid-epoch1", "inclusion/alice-epoch1.json", ACCOUNT, "incl-epoch1", "valid",
         "alice's epoch-1 proof against the epoch-1 bundle"),
        ("signature-flipped",
         write("signature-flipped", _edit_json(a2, signature=sig[:10] + (
             "0" if sig[10] != "0" else "1") + sig[11:])),
         ACCOUNT, "incl-epoch2", "signature",
         "one hex digit of the enclosed signature changed (the bundle's manifest.sig is good)"),
        ("signature-absent", write("signature-absent", _edit_json(a2, signature=None)),
         ACCOUNT, "incl-epoch2", "inclusion-format", "the signature key removed"),
        ("bom", write("bom", b"\xef\xbb\xbf" + a2.read_bytes()), ACCOUNT, "incl-epoch2",
         "inclusion-format", "a UTF-8 byte-order mark before the JSON"),
        ("enclosed-manifest-edited", write("enclosed-manifest-edited", _edit_json(
            a2, manifest=doc["manifest"].replace('"timestamp": ', '"timestamp": 1'))),
         ACCOUNT, "incl-epoch2", "inclusion-bundle",
         "the enclosed manifest changed: no longer the bundle the proof names"),
        ("other-account", "inclusion/bob-epoch2.json", ACCOUNT, "incl-epoch2",
         "inclusion-account", "bob's proof checked with alice's id"),
        ("other-epoch", "inclusion/alice-epoch1.json", ACCOUNT, "incl-epoch2",
         "inclusion-bundle", "alice's epoch-1 proof against the epoch-2 bundle"),
        ("shape", write("shape", _with_proof(a2, proof_of(path=pf.path[:-1]))), ACCOUNT,
         "incl-epoch2", "inclusion-shape", "the path's last step removed (depth one less)"),
        ("sibling-encoding", write("sibling-encoding", _with_proof(
            a2, proof_of(path=(bad_step, *pf.path[1:])))), ACCOUNT, "incl-epoch2",
         "inclusion-encoding", "the first sibling commitment is not a point"),
        ("inflated-amount", write("inflated-amount", _with_proof(
            a2, proof_of(amounts=(pf.amounts[0] + 1,)))), ACCOUNT, "incl-epoch2",
         "inclusion-root", "the amount one unit higher"),
        ("labels", write("labels", _edit_json(a2, root_hash="00" * 32)), ACCOUNT,
         "incl-epoch2", "inclusion-labels", "a readable root_hash that is not the root"),
    ]
    out = []
    for name, path, account, bundle, expect, what in cases:
        if not path.startswith("spec/"):
            path = f"spec/{path}"
        bundle_hash = hashlib.sha256((OUT / bundle / layout.MANIFEST_FILE).read_bytes()).hexdigest()
        out.append({"name": name, "document": path, "account": account,
                    "bundle": f"spec/{bundle}", "bundle_hash": bundle_hash,
                    "expect": expect, "what": what})
    return out


def chain_vectors(t: Path) -> list[dict[str, Any]]:
    """Version 6 bundles (docs/bundle-format.md, *chain_reserves*)."""
    import pytest
    from reserves_support import (
        ETH_KEYS,
        eth_address,
        sourced_snapshot,
        write_evidence,
    )
    from test_epoch_support import OPERATOR_HEX

    import zksolv.prover.epoch as prover_epoch

    a0, a1 = eth_address(ETH_KEYS[0]), eth_address(ETH_KEYS[1])
    declared = "0x" + "22" * 20
    out: list[dict[str, Any]] = []

    def add(name: str, expect: str, what: str) -> None:
        out.append({"name": name, "bundle": f"spec/{name}", "expect": expect, "what": what})

    def snapshot(name: str, *, epoch: int = 1, sign_epoch: int | None = None,
                 window: dict[str, Any] | None = None) -> Path:
        snap = sourced_snapshot(t / name, [(a0, "account"), (a1, "account"),
                                           (declared, "declared")], epoch=sign_epoch or epoch,
                                window=None if window is None else window["length"])
        write_evidence(snap, [(a0, "account", 2 * 10**18), (a1, "account", 10**18),
                              (declared, "declared", 5 * 10**17)], epoch=sign_epoch or epoch,
                       window=window)
        for i in (0, 1):
            key = t / f"eth{i}.key"
            key.write_text(ETH_KEYS[i])
            key.chmod(0o600)
            res = run("reserves", "sign", snap, "--eth-key", key, "--operator", OPERATOR_HEX)
            assert res.exit_code == 0, res.output
        if sign_epoch is not None:      # signed for another epoch, then relabelled
            for name in ("reserves.json", "header.json"):
                doc = json.loads((snap / name).read_text())
                doc["epoch"] = epoch
                (snap / name).write_text(json.dumps(doc))
        return snap

    def publish(snap: Path, name: str) -> None:
        prove(snap, OUT / name)
        (OUT / f"{name}.inclusion.sqlite").unlink()

    with pytest.MonkeyPatch.context() as mp:
        publish(snapshot("c-valid"), "chain-valid")
        add("chain-valid", "valid", "version 6: ETH read from chain 31337 at block 7 (two "
            "signing accounts and a declared contract), USDC asserted")
        b = copy_bundle(OUT / "chain-valid", OUT / "chain-version-4")
        m = read_manifest(b)
        m["version"] = 4
        write_manifest(b, m)
        add("chain-version-4", "manifest-format", "chain_reserves in a bundle stating version 4, "
            "re-signed")
        b = copy_bundle(OUT / "chain-valid", OUT / "chain-address-case")
        m = read_manifest(b)
        h = m["chain_reserves"]["assets"][0]["holdings"][0]
        h["address"] = "0x" + h["address"][2:].upper()
        write_manifest(b, m)
        add("chain-address-case", "manifest-format", "a holding's address in upper case (one "
            "spelling per address), re-signed")

        # a dishonest operator: the prover's own checks switched off
        from zksolv.chain import evidence as chain_evidence

        mp.setattr(prover_epoch, "verify_bundle", lambda *a, **k: None)
        mp.setattr(chain_evidence, "check_offline", lambda *a, **k: [])
        snap = snapshot("c-sig-epoch", sign_epoch=2)
        publish(snap, "chain-signature-epoch")
        add("chain-signature-epoch", "reserves-signature", "the accounts' signatures are for "
            "epoch 2, the bundle is epoch 1")
        snap = snapshot("c-window", window={"length": 16, "first_number": 3,
                                            "first_hash": "0x" + "0f" * 32})
        publish(snap, "chain-window")
        add("chain-window", "reserves-block", "the block (7) is not the one the window "
            "derives (3 + 1 + 0x0f0f..0f mod 16 = 19)")
        from reserves_support import inflating_reserves

        import zksolv.prover.reserves as prover_reserves

        mp.setattr(prover_reserves, "with_chain_reserves", inflating_reserves(10**18))
        publish(snapshot("c-sum"), "chain-sum")
        add("chain-sum", "reserves-balance", "ETH reserves 1 ETH more than the evidence's sum "
            "(the proofs made for that number)")
    return out


def header_digests(names: list[str]) -> list[dict[str, str]]:
    out = []
    for name in names:
        d = HERE / name
        parsed = check_manifest((d / layout.MANIFEST_FILE).read_bytes(),
                                (d / layout.SIGNATURE_FILE).read_bytes())
        raw = parsed.header.to_bytes()
        out.append({"bundle": name, "header": raw.hex(),
                    "digest": hashlib.sha256(raw).hexdigest()})
    return out


def main_chain() -> None:
    """Rewrite the chain-* vectors only."""
    index = json.loads((OUT / "index.json").read_text())
    for d in OUT.glob("chain-*"):
        shutil.rmtree(d)
    with tempfile.TemporaryDirectory() as tmp:
        chain = chain_vectors(Path(tmp))
    index["bundles"] = [v for v in index["bundles"] if not v["name"].startswith("chain-")]
    index["bundles"] += chain
    index["header_digests"] = [d for d in index["header_digests"]
                               if not d["bundle"].startswith("spec/chain-")]
    index["header_digests"] += header_digests(["spec/chain-valid"])
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def main() -> None:
    if "--chain" in sys.argv[1:]:
        main_chain()
        return
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    bundles = bundle_vectors()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        prove(make_snapshot(t / "h0", [("alice", (0,)), ("bob", (0,))], epoch=1,
                            assets=(Asset("USD", 6, 3, 0, 10**6),)), OUT / "haircut-0")
        (OUT / "haircut-0.inclusion.sqlite").unlink()
        bundles.append({"name": "haircut-0", "bundle": "spec/haircut-0", "expect": "valid",
                        "what": "one asset, price 3, haircut 0, nothing owed: valid (a haircut "
                                "of 0 weighs the reserves by 0; the liabilities, 0, still "
                                "count)"})
        inclusion = inclusion_vectors(t)
        bundles += chain_vectors(t)
    digests = header_digests(["bundles/valid-epoch1", "bundles/valid-totals",
                              "spec/incl-epoch1", "spec/incl-epoch2", "spec/haircut-0",
                              "spec/chain-valid"])
    (OUT / "index.json").write_text(json.dumps(
        {"format": "zksolv-spec-vectors", "version": 1, "paths": "relative to tests/vectors/",
         "bundles": bundles, "inclusion": inclusion, "header_digests": digests},
        indent=1) + "\n")


if __name__ == "__main__":
    main()
