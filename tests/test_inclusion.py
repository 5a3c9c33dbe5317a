"""Inclusion proofs: wrong epoch, wrong account, wrong amounts, tampered
proofs, size bound, and the explicit link to the leaf range proofs."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import pytest
from test_epoch_support import ASSETS1, make_snapshot, prove, rows_for, run, verify_json

from zksolv.circuits.inclusion import InclusionProof
from zksolv.site import words


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
    """One verdict per document: a proof of epoch 1 against the epoch-2
    bundle is refused by the anchor check [inclusion-bundle] in both modes
    (docs/epoch.md "The holder's check", step 5); the detail names both
    epochs when the bundle is at hand."""
    d = two_epochs
    code, out = _verify(d / "acct-4-e1.json", "--account", "acct-4", "--bundle", d / "b2")
    assert (code, out["check"]) == (1, "inclusion-bundle")
    assert "(epoch 1)" in out["detail"] and "(epoch 2)" in out["detail"], out
    code, out = _verify(d / "acct-4-e1.json", "--account", "acct-4", "--bundle-hash",
                        _hash(d / "b2"))
    assert (code, out["check"]) == (1, "inclusion-bundle")
    code, out = _verify(d / "acct-4-e1.json", "--account", "acct-4", "--bundle", d / "b1",
                        "--epoch", "2")
    assert (code, out["check"]) == (1, "inclusion-epoch")
    code, out = _verify(d / "acct-4-e1.json", "--account", "acct-4", "--bundle-hash",
                        _hash(d / "b1"), "--epoch", "2")
    assert (code, out["check"]) == (1, "inclusion-epoch")


@pytest.mark.parametrize("signature", ["flipped", "zero", "absent"])
def test_enclosed_signature_checked_in_both_modes(two_epochs: Path, tmp_path: Path,
                                                  signature: str) -> None:
    """The signature enclosed in the document is always checked: a corrupted
    one fails `signature` with --bundle as with --bundle-hash, even though
    the bundle's own manifest.sig is good; an absent one is a malformed
    document in both modes."""
    d = two_epochs
    doc = json.loads((d / "acct-4-e2.json").read_text())
    sig = doc["signature"]
    if signature == "flipped":
        doc["signature"] = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    elif signature == "zero":
        doc["signature"] = "0" * 128
    else:
        del doc["signature"]
    (tmp_path / "p.json").write_text(json.dumps(doc))
    want = "inclusion-format" if signature == "absent" else "signature"
    for anchor in (["--bundle", d / "b2"], ["--bundle-hash", _hash(d / "b2")]):
        code, out = _verify(tmp_path / "p.json", "--account", "acct-4", *anchor)
        assert (code, out["check"]) == (1, want), (anchor, out)
        if want == "signature":
            assert out["detail"].startswith("the manifest enclosed in the proof: "), out


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


# --- what the holder is told ----------------------------------------------------


def test_bundle_hash_alone_says_what_it_did_not_check(two_epochs: Path) -> None:
    """With only the bundle hash the range and solvency proofs are not
    checked (an operator could hide a negative sibling): the output says
    "included", lists what was and was not checked, never "valid"."""
    d = two_epochs
    args = (d / "acct-4-e2.json", "--account", "acct-4", "--bundle-hash", _hash(d / "b2"))
    code, out = _verify(*args)
    assert code == 0, out
    assert "valid" not in out and out["included"] is True and out["complete"] is False
    assert out["not_checked"] == ["range", "solvency"]
    assert "inclusion-root" in out["checked"] and "leaf-range" not in out["checked"]
    res = run("inclusion", "verify", *map(str, args))
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert first.startswith("included: account 'acct-4' (the id you gave) is in epoch 2, the "
                            "state at ") and first.endswith("; range and solvency proofs NOT "
                                                            "checked"), first
    assert "valid" not in res.output.lower().replace("verified", "")
    assert (f"NOT checked: {words.unchecked('range')}; {words.unchecked('solvency')}. Pass "
            "--bundle DIR") in res.output
    # every check that passed, in the words the page uses
    assert f"  - {words.passed('inclusion-root')}\n" in res.output
    assert "suite-mismatch" not in res.output and "operator-mismatch" not in res.output


def test_bundle_checks_everything_and_shows_the_time(two_epochs: Path) -> None:
    d = two_epochs
    code, out = _verify(d / "acct-4-e2.json", "--account", "acct-4", "--bundle", d / "b2")
    assert code == 0 and out["complete"] is True and out["not_checked"] == [], out
    assert out["checked"][:2] == ["inclusion-format", "inclusion-account"], out["checked"]
    for tag in ("leaf-range", "solvency-asset", "solvency-valued", "tree-root",
                "inclusion-root"):
        assert tag in out["checked"], (tag, out["checked"])
    manifest = json.loads((d / "b2" / "manifest.json").read_bytes())
    when = datetime.datetime.fromtimestamp(manifest["timestamp"], datetime.UTC)
    assert out["timestamp"] == manifest["timestamp"]
    assert out["time_utc"] == f"{when:%Y-%m-%dT%H:%M:%S}Z"
    assert out["amounts"] == {"USD": {"proof_units": 5000, "proof_decimals": 6, "decimals": 6,
                                      "unit": "10^-6 USD", "tokens": "0.005000"}}
    res = run("inclusion", "verify", d / "acct-4-e2.json", "--account", "acct-4", "--bundle",
              d / "b2", "--expect", "USD=0.005")
    assert res.exit_code == 0, res.output
    assert f"is in epoch 2, the state at {when:%Y-%m-%d %H:%M:%S} UTC\n" in res.output
    assert "\n  USD 0.005000 (5000 units of 10^-6 USD)\n" in res.output
    assert "\n  as you expected: USD 0.005000 (--expect USD=0.005)\n" in res.output
    assert "NOT checked" not in res.output and "totals hidden by the operator" in res.output


def test_a_failure_says_what_it_means_and_what_to_do(two_epochs: Path) -> None:
    """The same words as the page, for the same tag (zksolv/site/words.json)."""
    d = two_epochs
    args = ("inclusion", "verify", d / "acct-4-e1.json", "--account", "acct-4",
            "--bundle-hash", _hash(d / "b2"))
    res = run(*args)
    meaning, steps = words.failure("inclusion-bundle")
    assert res.exit_code == 1
    assert res.output.splitlines() == [
        res.output.splitlines()[0], f"what it means: {meaning}",
        *(f"what to do: {s}" for s in steps)], res.output
    assert res.output.startswith("error: inclusion-bundle: ")
    code, out = _verify(*args[2:])
    assert (code, out["included"], out["meaning"], out["next"]) == (1, False, meaning, steps)


def test_revealed_totals_are_checked_and_shown(tmp_path: Path) -> None:
    """Revealed totals open the root commitments [totals-opening], also with
    only the bundle hash; the coverage is shown."""
    rows = rows_for(9, 1)
    prove(make_snapshot(tmp_path / "s", rows, epoch=1, assets=ASSETS1), tmp_path / "b",
          "--reveal-totals")
    res = run("inclusion", "export", "--db", tmp_path / "b.inclusion.sqlite", "--account",
              "acct-4", "--out", tmp_path / "p.json")
    assert res.exit_code == 0, res.output
    args = ("inclusion", "verify", tmp_path / "p.json", "--account", "acct-4", "--bundle-hash",
            _hash(tmp_path / "b"))
    res = run(*args)
    assert res.exit_code == 0, res.output
    total = json.loads((tmp_path / "b" / "manifest.json").read_bytes())["totals"][0]
    assert f"  - {words.passed('totals-opening')}\n" in res.output
    assert "  USD: owed 0.0" in res.output and "% of it\n" in res.output, res.output
    code, out = _verify(*args[2:])
    assert out["totals"] == {"USD": total["liabilities"]}


def test_every_tag_has_its_words() -> None:
    """Each failure tag the verifier or the page can raise, and each check a
    holder is told passed, has its own words (words.json), and each next
    step named exists."""
    root = Path(__file__).parent.parent
    sources = [*sorted((root / "zksolv" / "verifier").glob("*.py")),
               root / "zksolv" / "site" / "inclusion.js"]
    tags = set()
    for src in sources:
        text = src.read_text()
        tags |= set(re.findall(r'(?:VerificationError|_fail)\(\s*"([a-z]+(?:-[a-z]+)*)"', text))
        # a shard's failing proof is raised by the tag of the check it is
        # (range_check: leaf-range, or verifier.margin's DEBT_RANGE, MARGIN_HEALTH)
        tags |= set(re.findall(r'(?:range_check(?:: str)?|^[A-Z_]+) = "([a-z]+(?:-[a-z]+)*)"',
                               text, flags=re.M))
    assert {"inclusion-root", "leaf-range", "debt-range", "margin-health", "solvency-valued",
            "signature"} <= tags, tags
    checks = words.holder_words()["checks"]
    assert {"registry-binding", "registry-chain", "registry-code", "registry-mismatch",
            "registry-missing"} <= tags
    assert tags - set(checks) == set(), tags - set(checks)
    for tag, entry in checks.items():
        assert set(entry) == {"passed", "failed", "next"}, tag
        assert all(k in words.holder_words()["next"] for k in entry["next"]), tag
    for tag in ("leaf opening", "leaf-hash", "tree-sum", "tree-hash"):
        assert words.passed(tag) != tag
