"""Chain reserves, the format side (offline): reserve_sources in header.json,
reserves.json, `zksolv reserves sign/import/typed-data/check`, `prove`'s
refusals, bundle version 6 and what `verify` says without a node.

Signatures are real EIP-712 signatures (eth-account); the node-backed half
(fetch, verify --rpc) is in test_reserves_chain.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reserves_support import (
    ETH_KEYS,
    eth_address,
    sourced_snapshot,
    write_evidence,
)
from test_epoch_support import OPERATOR_HEX, make_snapshot, prove, run, verify_json

from zksolv.errors import InputError
from zksolv.snapshot import open_snapshot

A0, A1 = eth_address(ETH_KEYS[0]), eth_address(ETH_KEYS[1])
ETH = 10**18


def _key_file(tmp: Path, i: int) -> Path:
    p = tmp / f"eth{i}.key"
    p.write_text(ETH_KEYS[i] + "\n")
    p.chmod(0o600)
    return p


def _signed_snapshot(tmp: Path, balances: tuple[int, int] = (2 * ETH, ETH), *,
                     epoch: int = 1) -> Path:
    snap = sourced_snapshot(tmp / "snap", [(A0, "account"), (A1.upper().replace("0X", "0x"),
                                                              "account")], epoch=epoch)
    write_evidence(snap, [(A0, "account", balances[0]), (A1, "account", balances[1])],
                   epoch=epoch)
    for i in (0, 1):
        res = run("reserves", "sign", snap, "--eth-key", _key_file(tmp, i),
                  "--operator", OPERATOR_HEX)
        assert res.exit_code == 0, res.output
    return snap


# --- header.json --------------------------------------------------------------------------

def test_header_sources_lowercased_and_reserves_may_be_omitted(tmp_path: Path) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0.upper().replace("0X", "0x"), "account"),
                                             ("0x" + "22" * 20, "declared")])
    h = open_snapshot(snap).header
    assert h.version == 1
    assert h.reserve_sources is not None
    (eth,) = h.reserve_sources.assets
    assert [x.address for x in eth.holders] == [bytes.fromhex(A0[2:]), b"\x22" * 20]
    assert h.sourced("ETH") and not h.sourced("USDC")
    written: Any = json.loads(json.dumps(h.to_json()))   # round-trips as written
    assert "reserves" not in written["assets"][0]
    assert written["reserve_sources"]["assets"]["ETH"]["holders"][0]["address"] == A0


@pytest.mark.parametrize("edit, where, reason", [
    (lambda d: d["reserve_sources"]["assets"].update(BTC={"token": "native", "holders": [
        {"address": "0x" + "11" * 20, "kind": "account"}]}),
     "reserve_sources.assets.BTC", "no asset 'BTC'"),
    (lambda d: d["reserve_sources"]["assets"]["ETH"]["holders"].append(
        {"address": "0x" + "11" * 20, "kind": "account"}),
     "reserve_sources.assets.ETH.holders[1].address", "duplicate holder"),
    (lambda d: d["reserve_sources"]["assets"]["ETH"]["holders"][0].update(kind="wallet"),
     "reserve_sources.assets[...].holders[0].kind", "wallet"),
    (lambda d: d["reserve_sources"]["assets"]["ETH"]["holders"][0].update(address="0x12"),
     "reserve_sources.assets[...].holders[0].address", "regex"),
    (lambda d: d["reserve_sources"]["assets"].update(USDC={"token": "native", "holders": [
        {"address": "0x" + "12" * 20, "kind": "account"}]}),
     "reserve_sources.assets.USDC.token", "one token serves one asset"),
    (lambda d: d["reserve_sources"].update(chain_id=0), "reserve_sources.chain_id",
     "out of range"),
    (lambda d: d["reserve_sources"].update(block_window={"length": 10_001}),
     "reserve_sources.block_window.length", "out of range"),
    (lambda d: d["reserve_sources"]["assets"].pop("ETH"), "reserve_sources.assets",
     "length"),
    (lambda d: d["assets"][1].pop("reserves"), "assets[1].reserves", "missing"),
    (lambda d: d["reserve_sources"].update(extra=1), "reserve_sources", "unknown field"),
])
def test_header_sources_errors_name_the_path(tmp_path: Path, edit, where: str,
                                             reason: str) -> None:
    snap = sourced_snapshot(tmp_path / "s", [("0x" + "11" * 20, "account")])
    hp = snap / "header.json"
    doc = json.loads(hp.read_text())
    edit(doc)
    hp.write_text(json.dumps(doc))
    with pytest.raises(InputError) as e:
        open_snapshot(snap)
    assert e.value.where == f"{hp}.{where}", e.value
    assert reason in e.value.reason
    res = run("snapshot", "check", snap)
    assert res.exit_code == 2 and where in res.output


def test_reserves_json_decoded_strictly(tmp_path: Path) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0, "account")])
    p = write_evidence(snap, [(A0, "account", 5)])
    doc = json.loads(p.read_text())
    doc["evidence"]["assets"][0]["holdings"][0]["balance"] = 5.0
    p.write_text(json.dumps(doc))
    res = run("reserves", "check", snap)
    assert res.exit_code == 2
    assert "reserves.json.evidence.assets[0].holdings[0].balance" in res.output
    doc["evidence"]["assets"][0]["holdings"][0].update(balance=5, address=A0.upper())
    p.write_text(json.dumps(doc))       # one spelling per address in the evidence
    assert run("reserves", "check", snap).exit_code == 2


# --- prove's refusals ---------------------------------------------------------------------

def test_prove_refuses_without_evidence(tmp_path: Path) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0, "account")])
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2
    assert "zksolv reserves fetch" in res.output and not (tmp_path / "b").exists()


def test_prove_refuses_missing_signature_but_not_declared(tmp_path: Path) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0, "account"), (A1, "account"),
                                             ("0x" + "22" * 20, "declared")])
    write_evidence(snap, [(A0, "account", ETH), (A1, "account", ETH),
                          ("0x" + "22" * 20, "declared", ETH)])
    assert run("reserves", "sign", snap, "--eth-key", _key_file(tmp_path, 0),
               "--operator", OPERATOR_HEX).exit_code == 0
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2
    assert "1 holder(s) without an ownership signature" in res.output
    assert A1 in res.output and "0x" + "22" * 20 not in res.output
    assert "zksolv reserves sign" in res.output
    chk = run("reserves", "check", snap, "--json")
    assert chk.exit_code == 2
    state = json.loads(chk.output)
    assert state["missing"] == [{"symbol": "ETH", "address": A1, "kind": "account"}]
    assert run("reserves", "sign", snap, "--eth-key", _key_file(tmp_path, 1),
               "--operator", OPERATOR_HEX).exit_code == 0
    prove(snap, tmp_path / "b")                 # the declared holder needs no signature
    code, out = verify_json(tmp_path / "b")
    assert code == 0
    (eth, _usdc) = out["bundles"][0]["reserves"]["assets"]
    assert eth["declared"] == 1 and eth["reserves"] == 3 * ETH


def test_prove_refuses_other_operator_and_other_epoch(tmp_path: Path) -> None:
    snap = _signed_snapshot(tmp_path)
    p = snap / "reserves.json"
    doc = json.loads(p.read_text())
    doc["operator"] = "ab" * 32
    p.write_text(json.dumps(doc))
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2 and "signed for operator abab" in res.output
    doc["operator"] = OPERATOR_HEX
    doc["epoch"] = 2
    p.write_text(json.dumps(doc))
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2 and "for epoch 2, the header is epoch 1" in res.output


def test_prove_refuses_a_signature_that_does_not_recover(tmp_path: Path) -> None:
    """A signature by the other key put under A0: the prover recovers each one."""
    snap = _signed_snapshot(tmp_path)
    p = snap / "reserves.json"
    doc = json.loads(p.read_text())
    hs = doc["evidence"]["assets"][0]["holdings"]
    hs[0]["signature"] = hs[1]["signature"]
    p.write_text(json.dumps(doc))
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2
    assert "reserves-signature" in res.output and A0 in res.output


def test_prove_refuses_other_chain(tmp_path: Path) -> None:
    snap = _signed_snapshot(tmp_path)
    p = snap / "reserves.json"
    doc = json.loads(p.read_text())
    doc["evidence"]["chain_id"] = 1
    p.write_text(json.dumps(doc))
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2 and "from chain 1, the header names chain 31337" in res.output


def test_stated_reserves_must_agree_with_the_evidence(tmp_path: Path) -> None:
    snap = _signed_snapshot(tmp_path)
    hp = snap / "header.json"
    doc = json.loads(hp.read_text())
    doc["assets"][0]["reserves"] = 4 * ETH
    hp.write_text(json.dumps(doc))
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2
    assert f"states {4 * ETH} base units of ETH" in res.output
    assert f"sums to {3 * ETH}" in res.output
    doc["assets"][0]["reserves"] = 3 * ETH
    hp.write_text(json.dumps(doc))
    prove(snap, tmp_path / "b")


# --- bundle version 6 and verify without a node -------------------------------------------

def test_v6_bundle_verifies_offline_and_says_balances_not_checked(tmp_path: Path) -> None:
    snap = _signed_snapshot(tmp_path)
    prove(snap, tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["version"] == 6
    assert m["assets"][0]["reserves"] == 3 * ETH            # the evidence's sum
    assert m["chain_reserves"]["block_number"] == 7
    code, out = verify_json(tmp_path / "b")
    assert code == 0
    r = out["bundles"][0]["reserves"]
    assert r["from_chain"] and r["signatures"] == "checked" and r["rpc"] is None
    assert [(a["symbol"], a["balances"]) for a in r["assets"]] == [
        ("ETH", "not-checked"), ("USDC", "asserted")]
    assert "reserves-signature" in out["bundles"][0]["checks"]
    res = run("verify", tmp_path / "b")
    assert res.exit_code == 0
    assert "from chain: balances NOT checked (no --rpc)" in res.output
    assert "balances NOT checked: give --rpc URL" in res.output
    assert "USDC: reserves asserted" in res.output


def test_v6_header_binds_the_evidence(tmp_path: Path) -> None:
    """Editing chain_reserves (re-signed) breaks the proofs: D binds it."""
    from test_epoch_support import read_manifest, write_manifest

    snap = _signed_snapshot(tmp_path)
    prove(snap, tmp_path / "b")
    m = read_manifest(tmp_path / "b")
    m["chain_reserves"]["block_number"] = 8
    write_manifest(tmp_path / "b", m)
    code, out = verify_json(tmp_path / "b")
    assert code == 1 and out["check"] == "leaf-range"


@pytest.mark.parametrize("version, drop", [(6, True), (4, False)])
def test_version_6_exactly_with_chain_reserves(tmp_path: Path, version: int,
                                               drop: bool) -> None:
    from test_epoch_support import read_manifest, write_manifest

    snap = _signed_snapshot(tmp_path)
    prove(snap, tmp_path / "b")
    m = read_manifest(tmp_path / "b")
    m["version"] = version
    if drop:
        del m["chain_reserves"]
    write_manifest(tmp_path / "b", m)
    code, out = verify_json(tmp_path / "b")
    assert code == 1 and out["check"] == "manifest-format"
    assert "version 6 is exactly the bundle with them" in out["error"]


def test_v4_bundle_says_reserves_asserted(tmp_path: Path) -> None:
    snap = make_snapshot(tmp_path / "s", [("alice", (5, 6))])
    prove(snap, tmp_path / "b")
    code, out = verify_json(tmp_path / "b")
    assert code == 0
    b = out["bundles"][0]
    assert b["version"] == 4 and b["reserves"]["from_chain"] is False
    assert {a["balances"] for a in b["reserves"]["assets"]} == {"asserted"}
    res = run("verify", tmp_path / "b")
    assert "reserves asserted" in res.output


# --- the reserves commands ------------------------------------------------------------------

def test_sign_refuses_a_key_that_holds_nothing(tmp_path: Path) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0, "account")])
    write_evidence(snap, [(A0, "account", ETH)])
    res = run("reserves", "sign", snap, "--eth-key", _key_file(tmp_path, 1),
              "--operator", OPERATOR_HEX)
    assert res.exit_code == 2 and "holds none of the sourced assets" in res.output


def test_typed_data_then_import(tmp_path: Path) -> None:
    """The hardware-wallet path: the typed data signed elsewhere, imported."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    snap = sourced_snapshot(tmp_path / "s", [(A0, "account")])
    write_evidence(snap, [(A0, "account", 3 * ETH)])
    out = tmp_path / "td.json"
    res = run("reserves", "typed-data", snap, "--address", A0, "--operator", OPERATOR_HEX,
              "-o", out)
    assert res.exit_code == 0, res.output
    td = json.loads(out.read_text())
    assert td["message"]["epoch"] == 1 and td["domain"]["chainId"] == 31337
    sig = Account.sign_message(encode_typed_data(full_message=td),
                               bytes.fromhex(ETH_KEYS[0])).signature
    sigs = tmp_path / "sigs.json"
    # a signature by another key is refused and nothing is written
    bad = Account.sign_message(encode_typed_data(full_message=td),
                               bytes.fromhex(ETH_KEYS[1])).signature
    sigs.write_text(json.dumps({"signatures": [{"address": A0, "signature": "0x" + bad.hex()}]}))
    before = (snap / "reserves.json").read_bytes()
    res = run("reserves", "import", snap, sigs, "--operator", OPERATOR_HEX)
    assert res.exit_code == 2 and "reserves.json" not in res.output.split("error:")[0]
    assert (snap / "reserves.json").read_bytes() == before
    sigs.write_text(json.dumps({"signatures": [{"address": A0, "signature": "0x" + sig.hex()}]}))
    res = run("reserves", "import", snap, sigs, "--operator", OPERATOR_HEX)
    assert res.exit_code == 0, res.output
    assert run("reserves", "check", snap).exit_code == 0
    prove(snap, tmp_path / "b")
    assert verify_json(tmp_path / "b")[0] == 0


def test_without_the_chain_extra_signatures_are_said_not_checked(tmp_path: Path) -> None:
    """A holder's install without zksolv[chain] (its libraries made
    unimportable): the proofs verify and the verdict says the ownership
    signatures were not checked (the vector's are for another epoch, which
    the extra catches: test_spec_vectors); --rpc and prove say to install it."""
    import subprocess
    import sys

    from test_chain_extra import BLOCK

    vec = Path(__file__).parent / "vectors" / "spec" / "chain-signature-epoch"
    snap = _signed_snapshot(tmp_path)
    code = BLOCK + (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from zksolv.cli.main import cli\n"
        "import zksolv.chain\n"
        "assert zksolv.chain.available() is False\n"
        "def run(*a):\n"
        "    r = CliRunner().invoke(cli, list(a), env={'ZKSOLV_OPERATOR_KEY': '11' * 32})\n"
        "    return {'code': r.exit_code, 'out': r.output}\n"
        "print(json.dumps([run('verify', sys.argv[1], '--json'), run('verify', sys.argv[1]),\n"
        "                  run('verify', sys.argv[1], '--rpc', 'http://127.0.0.1:9'),\n"
        "                  run('prove', sys.argv[2], '--out', sys.argv[3], '--quiet')]))\n")
    res = subprocess.run([sys.executable, "-c", code, str(vec), str(snap), str(tmp_path / "b")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    as_json, text, rpc, prove_ = json.loads(res.stdout)
    assert as_json["code"] == 0
    b = json.loads(as_json["out"])["bundles"][0]
    assert b["reserves"]["signatures"] == "not-checked: install zksolv[chain]"
    assert "reserves-signature" not in b["checks"]
    assert "reserves: ownership signatures NOT checked (install zksolv[chain])" in text["out"]
    assert rpc["code"] == 2 and "install zksolv[chain]" in rpc["out"]
    assert prove_["code"] == 2 and "install zksolv[chain]" in prove_["out"]
    assert not (tmp_path / "b").exists()


def test_snapshot_check_shows_the_evidence(tmp_path: Path) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0, "account"), ("0x" + "22" * 20, "declared")])
    res = run("snapshot", "check", snap, "--json")
    out = json.loads(res.output)
    assert res.exit_code == 0 and out["reserve_sources"]["fetched"] is False
    assert not out["solvent"]               # ETH reserves not read yet: counted as 0
    write_evidence(snap, [(A0, "account", 3 * ETH), ("0x" + "22" * 20, "declared", ETH)])
    out = json.loads(run("snapshot", "check", snap, "--json").output)
    src = out["reserve_sources"]
    assert src["block_number"] == 7 and src["missing"] == [
        {"symbol": "ETH", "address": A0, "kind": "account"}]
    assert out["solvent"] and out["assets"][0]["reserves"] == 4 * ETH
    text = run("snapshot", "check", snap).output
    assert "signature MISSING" in text and "declared (no signature)" in text


@pytest.mark.parametrize("token", ["native", "0x" + "ab" * 20])
def test_the_sources_not_yet_read_name_their_token_as_the_header_does(
        tmp_path: Path, token: str) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0, "account")], token=token)
    for args in (("snapshot", "check", snap, "--json"), ("reserves", "check", snap, "--json")):
        res = run(*args)
        out = json.loads(res.output)
        src = out.get("reserve_sources", out)
        assert src["fetched"] is False, res.output
        assert src["assets"] == [{"symbol": "ETH", "token": token, "holders": 1}]


def test_holder_checks_inclusion_in_a_v6_bundle(tmp_path: Path) -> None:
    """The holder's check reads the version 6 manifest (its header binds the
    evidence) in both anchor modes."""
    import hashlib

    snap = _signed_snapshot(tmp_path)
    prove(snap, tmp_path / "b")
    res = run("inclusion", "export", "--db", tmp_path / "b.inclusion.sqlite", "--account",
              "alice", "--out", tmp_path / "alice.json")
    assert res.exit_code == 0, res.output
    res = run("inclusion", "verify", tmp_path / "alice.json", "--account", "alice",
              "--bundle", tmp_path / "b", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["complete"], res.output
    bhash = hashlib.sha256((tmp_path / "b" / "manifest.json").read_bytes()).hexdigest()
    res = run("inclusion", "verify", tmp_path / "alice.json", "--account", "alice",
              "--bundle-hash", bhash, "--json")
    assert res.exit_code == 0, res.output


def test_prove_refuses_evidence_too_large_for_a_manifest(tmp_path: Path) -> None:
    """200 contract holders with 4096-byte signatures: the manifest would pass
    the 1 MiB a verifier reads, so prove refuses before any work."""
    holders = [("0x%040x" % (i + 1), "contract") for i in range(200)]
    snap = sourced_snapshot(tmp_path / "s", holders)
    p = write_evidence(snap, [(a, k, ETH) for a, k in holders])
    doc = json.loads(p.read_text())
    doc["operator"] = OPERATOR_HEX
    for h in doc["evidence"]["assets"][0]["holdings"]:
        h["signature"] = "0x" + "ab" * 4096
    p.write_text(json.dumps(doc))
    res = run("prove", snap, "--out", tmp_path / "b", "--quiet")
    assert res.exit_code == 2 and "name fewer holders" in res.output, res.output
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("entry, why", [
    ({"address": A0, "signature": "0x" + "ab" * 64}, "65 bytes, got 64"),
    ({"address": "0x" + "33" * 20, "signature": "0x" + "ab" * 65}, "not a holder"),
    ({"address": A0, "signature": "ab" * 65}, "signatures[0].signature"),
])
def test_import_refuses_unusable_signatures(tmp_path: Path, entry: dict, why: str) -> None:
    snap = sourced_snapshot(tmp_path / "s", [(A0, "account")])
    write_evidence(snap, [(A0, "account", ETH)])
    before = (snap / "reserves.json").read_bytes()
    sigs = tmp_path / "sigs.json"
    sigs.write_text(json.dumps({"signatures": [entry]}))
    res = run("reserves", "import", snap, sigs, "--operator", OPERATOR_HEX)
    assert res.exit_code == 2 and why in res.output, res.output
    assert (snap / "reserves.json").read_bytes() == before


def test_snapshot_check_reads_the_rows_after_a_sources_error(tmp_path: Path) -> None:
    """An error in reserve_sources (which the rows do not need) is reported
    with the rows' errors, in one run."""
    snap = sourced_snapshot(tmp_path / "s", [(A0, "wallet")])
    with open(snap / "accounts.csv", "a") as f:
        f.write("dave,-1,5\n")
    hp = snap / "header.json"
    doc = json.loads(hp.read_text())
    doc["account_count"] += 1
    hp.write_text(json.dumps(doc))
    out = json.loads(run("snapshot", "check", snap, "--json").output)
    wheres = [e["where"] for e in out["errors"]]
    assert any(w.endswith("reserve_sources.assets[...].holders[0].kind") for w in wheres)
    assert any(w.endswith("accounts.csv:5:ETH") for w in wheres), wheres
    assert out["rows_checked"] is True
