"""Inclusion proofs: wrong epoch, wrong account, wrong amounts, tampered
proofs, size bound, and the explicit link to the leaf range proofs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_epoch_support import ASSETS1, make_snapshot, prove, rows_for, run, verify_json

from zksolv.circuits.inclusion import InclusionProof


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("incl")
    rows = rows_for(9, 1)
    prove(make_snapshot(d / "s1", rows, epoch=1, assets=ASSETS1), d / "b1")
    prove(make_snapshot(d / "s2", rows, epoch=2, assets=ASSETS1), d / "b2", "--prev", str(d / "b1"))
    for e in (1, 2):
        for acc in ("acct-0", "acct-4"):
            res = run("inclusion", "export", "--db", d / f"b{e}.inclusion.sqlite",
                      "--account", acc, "--out", d / f"{acc}-e{e}.json")
            assert res.exit_code == 0, res.output
    return d


def _verify(*args: object) -> tuple[int, dict]:
    res = run("inclusion", "verify", *map(str, args), "--json")
    return res.exit_code, json.loads(res.output)


def _hash(bundle: Path) -> str:
    code, out = verify_json(bundle)
    assert code == 0, out
    return str(out["bundles"][0]["bundle_hash"])


def test_valid_and_coverage(two_epochs: Path) -> None:
    d = two_epochs
    code, out = _verify(d / "acct-4-e2.json", "--account", "acct-4", "--bundle", d / "b2",
                        "--expect", "USD=5000")
    assert code == 0, out
    assert out["siblings_nonnegative"] == "proven"
    leaf, depth = out["leaf_index"], out["bundle"]["depth"]
    cover = out["sibling_coverage"]
    assert [c["level"] for c in cover] == list(range(depth))
    # the siblings' leaf ranges plus the own leaf tile the whole tree
    covered = {leaf}
    for c in cover:
        covered |= set(range(c["leaves"][0], c["leaves"][1] + 1))
    assert covered == set(range(2**depth))


def test_other_epoch_bundle(two_epochs: Path) -> None:
    d = two_epochs
    code, out = _verify(d / "acct-4-e1.json", "--account", "acct-4", "--bundle", d / "b2")
    assert (code, out["check"]) == (1, "inclusion-epoch")
    code, out = _verify(d / "acct-4-e1.json", "--account", "acct-4", "--bundle-hash",
                        _hash(d / "b2"))
    assert (code, out["check"]) == (1, "inclusion-bundle")
    code, out = _verify(d / "acct-4-e1.json", "--account", "acct-4", "--bundle", d / "b1",
                        "--epoch", "2")
    assert (code, out["check"]) == (1, "inclusion-epoch")


def test_other_account(two_epochs: Path) -> None:
    d = two_epochs
    code, out = _verify(d / "acct-0-e2.json", "--bundle", d / "b2", "--account", "acct-4")
    assert (code, out["check"]) == (1, "inclusion-account")
    code, out = _verify(d / "acct-0-e2.json", "--account", "acct-0", "--bundle", d / "b2",
                        "--expect", "USD=5000")
    assert (code, out["check"]) == (1, "inclusion-amount")
    # relabelling another account's proof breaks the leaf hash, so the root
    doc = json.loads((d / "acct-0-e2.json").read_text())
    pf = InclusionProof.from_bytes(bytes.fromhex(doc["proof"]))
    forged = InclusionProof(pf.epoch, pf.bundle_hash, pf.leaf_index, "acct-4", pf.amounts,
                            pf.blindings, pf.salt, pf.path)
    doc.update(account_id="acct-4", proof=forged.to_bytes().hex())
    (d / "forged.json").write_text(json.dumps(doc))
    code, out = _verify(d / "forged.json", "--account", "acct-4", "--bundle", d / "b2")
    assert (code, out["check"]) == (1, "inclusion-root")


def test_inflated_amount_is_rejected(two_epochs: Path) -> None:
    d = two_epochs
    doc = json.loads((d / "acct-4-e2.json").read_text())
    pf = InclusionProof.from_bytes(bytes.fromhex(doc["proof"]))
    forged = InclusionProof(pf.epoch, pf.bundle_hash, pf.leaf_index, pf.account_id,
                            (pf.amounts[0] + 1,), pf.blindings, pf.salt, pf.path)
    doc["proof"] = forged.to_bytes().hex()
    (d / "inflated.json").write_text(json.dumps(doc))
    code, out = _verify(d / "inflated.json", "--account", "acct-4", "--bundle", d / "b2")
    assert (code, out["check"]) == (1, "inclusion-root")


def test_every_flipped_byte_of_a_proof(two_epochs: Path, tmp_path: Path) -> None:
    d = two_epochs
    raw = bytes.fromhex(json.loads((d / "acct-4-e2.json").read_text())["proof"])
    bundle_hash = _hash(d / "b2")
    doc = json.loads((d / "acct-4-e2.json").read_text())
    for pos in range(len(raw)):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        doc["proof"] = bytes(bad).hex()
        (tmp_path / "p.json").write_text(json.dumps(doc))
        code, out = _verify(tmp_path / "p.json", "--account", "acct-4", "--bundle-hash",
                            bundle_hash)
        assert code == 1 and out["check"].startswith("inclusion-"), (pos, out)
        if 13 <= pos < 45:
            # the bundle hash no longer matches the enclosed manifest
            assert out["check"] == "inclusion-bundle", (pos, out)
    (tmp_path / "p.json").write_text("{not json")
    code, out = _verify(tmp_path / "p.json", "--account", "acct-4", "--bundle-hash", bundle_hash)
    assert (code, out["check"]) == (1, "inclusion-format")
    assert out["detail"].startswith(f"{tmp_path / 'p.json'}: "), out  # names the file


def test_unknown_account_and_bad_db(two_epochs: Path, tmp_path: Path) -> None:
    d = two_epochs
    res = run("inclusion", "export", "--db", d / "b1.inclusion.sqlite", "--account", "nobody")
    assert res.exit_code == 2 and "no account" in res.output
    (tmp_path / "x.sqlite").write_bytes(b"garbage" * 100)
    res = run("inclusion", "export", "--db", tmp_path / "x.sqlite", "--account", "a")
    assert res.exit_code == 2


def test_proof_size_at_depth_16(two_epochs: Path) -> None:
    """One asset, 2^16 leaves: the proof stays under 3 kB as JSON; the signed
    manifest it carries (about 1.9 kB escaped, plus 128 hex digits of
    signature) brings the file to about 5 kB."""
    from zksolv.circuits.inclusion import PathStep
    from zksolv.verifier.inclusion import InclusionDocument

    manifest = (two_epochs / "b2" / "manifest.json").read_bytes()
    pf = InclusionProof(1, bytes(32), 12345, "acct-00012345", (2**63,), (5,), bytes(32),
                        tuple(PathStep(bytes(48), bytes(32)) for _ in range(16)))
    size = len(InclusionDocument(pf, manifest, bytes(64)).to_bytes())
    assert size - len(json.dumps(manifest.decode())) - len('"signature":""') - 128 <= 3000
    assert size <= 5200
    assert InclusionProof.from_bytes(pf.to_bytes()) == pf
