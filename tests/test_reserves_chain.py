"""Chain reserves on a real local Ethereum node (anvil, the ``chain``
fixture): addresses → `reserves fetch` → `sign` (and a contract wallet's
EIP-1271 signature through `typed-data`/`import`) → `prove` → `verify --rpc`,
and the attacks the verifier must catch against its own node: an inflated
balance (a dishonest operator's re-signed manifest), signatures from another
key, epoch or operator, a reorg of the pinned block, an unreachable node.
Small snapshots (three accounts), so each case proves in about a second.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import chain_node
import pytest
from reserves_support import ETH_KEYS, eth_address
from test_epoch_support import OPERATOR_HEX, make_snapshot, prove, run, verify_json

from zksolv.snapshot import Asset

ETH = 10**18
K0, K1 = ETH_KEYS                   # K0 is anvil's dev account 0 (funded)
A0, A1 = eth_address(K0), eth_address(K1)
DECLARED = "0x" + "dd" * 20
ASSETS = (Asset("ETH", 18, 3000_00, 9_000, 0, 9, reserves_stated=False),
          Asset("USDC", 6, 1_00, 10_000, 0, reserves_stated=False))
ROWS = [("alice", (2 * ETH, 1_000_000)), ("bob", (10**17, 2_000_000)),
        ("carol", (0, 3_000_000))]


@pytest.fixture
def funded(chain: Any) -> dict[str, Any]:
    """A1 funded with 5 ETH and 5000 USDC (a token deployed here), a contract
    wallet owned by A1 holding 1 ETH, the declared vault 0.5 ETH."""
    chain.send({"to": A1, "value": 5 * ETH})
    wallet = chain_node.deploy_wallet(chain, A1)
    chain.send({"to": wallet, "value": ETH})
    chain.send({"to": DECLARED, "value": 5 * 10**17})
    token = chain_node.deploy_token(chain, "USDC", 6)
    chain_node.token_mint(chain, token, A1, 5_000 * 10**6)
    return {"wallet": wallet, "token": token}


def _key(tmp: Path, i: int) -> Path:
    p = tmp / f"eth{i}.key"
    p.write_text(ETH_KEYS[i] + "\n")
    p.chmod(0o600)
    return p


def _snapshot(tmp: Path, funded: dict[str, Any], *, epoch: int = 1,
              window: int | None = None, timestamp: int | None = None) -> Path:
    snap = make_snapshot(tmp / f"snap{epoch}", ROWS, epoch=epoch, assets=ASSETS)
    hp = snap / "header.json"
    doc = json.loads(hp.read_text())
    if timestamp is not None:
        doc["timestamp"] = timestamp
    doc["reserve_sources"] = {
        "chain_id": 31337,
        "block_window": None if window is None else {"length": window},
        "assets": {
            "ETH": {"token": "native", "holders": [
                {"address": A0, "kind": "account"},
                {"address": A1.upper().replace("0X", "0x"), "kind": "account"},
                {"address": funded["wallet"], "kind": "contract"},
                {"address": DECLARED, "kind": "declared"}]},
            "USDC": {"token": funded["token"], "holders": [
                {"address": A1, "kind": "account"}]},
        },
    }
    hp.write_text(json.dumps(doc, indent=2))
    return snap


def _sign_all(tmp: Path, snap: Path, funded: dict[str, Any], *,
              operator: str = OPERATOR_HEX) -> None:
    """Both accounts sign with their key files; the wallet's owner signs the
    statement's digest, brought in with typed-data and import."""
    from zksolv.chain import ownership

    for i in (0, 1):
        res = run("reserves", "sign", snap, "--eth-key", _key(tmp, i), "--operator", operator)
        assert res.exit_code == 0, res.output
    td = tmp / "wallet-td.json"
    res = run("reserves", "typed-data", snap, "--address", funded["wallet"],
              "--operator", operator, "-o", td)
    assert res.exit_code == 0, res.output
    typed = json.loads(td.read_text())
    m = typed["message"]
    digest = ownership.digest(chain_id=typed["domain"]["chainId"],
                              holder=bytes.fromhex(m["holder"][2:]),
                              block_number=int(m["blockNumber"]),
                              block_hash=bytes.fromhex(m["blockHash"][2:]),
                              epoch=int(m["epoch"]), operator=bytes.fromhex(m["operator"][2:]))
    sig = ownership.sign_digest(bytes.fromhex(K1), digest)
    sigs = tmp / "sigs.json"
    sigs.write_text(json.dumps({"signatures": [{"address": funded["wallet"],
                                                "signature": "0x" + sig.hex()}]}))
    res = run("reserves", "import", snap, sigs, "--operator", operator)
    assert res.exit_code == 0, res.output


def _fetch(snap: Path, chain: Any, *extra: str) -> dict[str, Any]:
    res = run("reserves", "fetch", snap, "--rpc", chain.url, "--json", *extra)
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.output))


def _honest(tmp: Path, chain: Any, funded: dict[str, Any]) -> tuple[Path, int]:
    snap = _snapshot(tmp, funded)
    block = chain.block_number()
    state = _fetch(snap, chain, "--block", str(block))
    assert state["block_number"] == block
    _sign_all(tmp, snap, funded)
    prove(snap, tmp / "bundle")
    return tmp / "bundle", block


def test_honest_flow_verifies_against_the_node(tmp_path: Path, chain: Any,
                                               funded: dict[str, Any]) -> None:
    bundle, block = _honest(tmp_path, chain, funded)
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["version"] == 6
    a0_balance = chain.balance(A0, hex(block))
    assert m["assets"][0]["reserves"] == a0_balance + 5 * ETH + ETH + 5 * 10**17
    assert m["assets"][1]["reserves"] == 5_000 * 10**6
    code, out = verify_json(bundle, "--rpc", chain.url)
    assert code == 0, out
    r = out["bundles"][0]["reserves"]
    assert r["contract_signatures"] == "checked" and r["signatures"] == "checked"
    assert [(a["symbol"], a["balances"]) for a in r["assets"]] == [("ETH", "checked"),
                                                                   ("USDC", "checked")]
    assert r["rpc"] == chain.url and r["block_number"] == block
    checks = out["bundles"][0]["checks"]
    assert checks[-4:] == ["reserves-chain", "reserves-block", "reserves-balance",
                           "reserves-signature"]
    text = run("verify", bundle, "--rpc", chain.url).output
    assert f"ETH: from chain: balances checked at block {block}" in text
    assert "NOT checked" not in text
    assert run("reserves", "check", tmp_path / "snap1", "--rpc", chain.url).exit_code == 0


def test_check_with_a_node_before_every_holder_signed(tmp_path: Path, chain: Any,
                                                     funded: dict[str, Any]) -> None:
    """reserves check --rpc on incomplete evidence: the node agrees, the
    missing signatures are listed (exit 2), none is called a failure."""
    snap = _snapshot(tmp_path, funded)
    _fetch(snap, chain, "--block", str(chain.block_number()))
    res = run("reserves", "check", snap, "--rpc", chain.url, "--json")
    out = json.loads(res.output)
    assert res.exit_code == 2 and out["findings"] == [] and len(out["missing"]) == 4, out
    res = run("reserves", "sign", snap, "--eth-key", _key(tmp_path, 0), "--operator",
              OPERATOR_HEX)
    assert res.exit_code == 0, res.output
    res = run("reserves", "check", snap, "--rpc", chain.url, "--json")
    out = json.loads(res.output)
    assert res.exit_code == 2 and out["findings"] == [] and len(out["missing"]) == 3, out


def test_funds_moved_after_the_block_still_verify(tmp_path: Path, chain: Any,
                                                  funded: dict[str, Any]) -> None:
    bundle, _ = _honest(tmp_path, chain, funded)
    chain.rpc("anvil_impersonateAccount", A1)      # A1 is not one of the node's accounts
    chain.send({"to": "0x" + "ee" * 20, "value": 4 * ETH}, sender=A1)
    chain_node.token_transfer(chain, funded["token"], "0x" + "ee" * 20, 10**6, sender=A1)
    chain.mine(3)
    code, out = verify_json(bundle, "--rpc", chain.url)
    assert code == 0, out


def test_inflated_balance_fails_reserves_balance(tmp_path: Path, chain: Any,
                                                 funded: dict[str, Any]) -> None:
    """A dishonest operator writes a larger balance into the evidence and
    proves (and signs the manifest) with it: the signatures still recover
    (they do not cover balances), offline it verifies and says balances were
    not checked; the node's balance at the pinned block differs."""
    snap = _snapshot(tmp_path, funded)
    _fetch(snap, chain, "--block", str(chain.block_number()))
    _sign_all(tmp_path, snap, funded)
    p = snap / "reserves.json"
    doc = json.loads(p.read_text())
    doc["evidence"]["assets"][1]["holdings"][0]["balance"] += 10**12
    p.write_text(json.dumps(doc))
    prove(snap, tmp_path / "bundle")
    code, out = verify_json(tmp_path / "bundle")
    assert code == 0 and out["bundles"][0]["reserves"]["assets"][1]["balances"] == "not-checked"
    code, out = verify_json(tmp_path / "bundle", "--rpc", chain.url)
    assert (code, out["check"]) == (1, "reserves-balance"), out
    assert A1 in out["detail"]
    res = run("reserves", "check", snap, "--rpc", chain.url)
    assert res.exit_code == 1 and "reserves-balance" in res.output


@pytest.mark.parametrize("how", ["other-key", "other-epoch", "other-operator"])
def test_borrowed_or_replayed_signature_fails_reserves_signature(
        tmp_path: Path, chain: Any, funded: dict[str, Any], how: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A signature by another key, one made for another epoch (a replay) or
    for another operator (lent): a prover whose own check is switched off
    publishes it; every verifier refuses it, with or without a node."""
    import zksolv.prover.epoch as prover_epoch
    from zksolv.chain import evidence as chain_evidence
    from zksolv.chain import ownership

    snap = _snapshot(tmp_path, funded)
    _fetch(snap, chain, "--block", str(chain.block_number()))
    _sign_all(tmp_path, snap, funded)
    p = snap / "reserves.json"
    doc = json.loads(p.read_text())
    ev = doc["evidence"]
    a0 = ev["assets"][0]["holdings"][0]
    statement = {"chain_id": 31337, "holder": bytes.fromhex(A0[2:]),
                 "block_number": ev["block_number"],
                 "block_hash": bytes.fromhex(ev["block_hash"][2:]), "epoch": 1,
                 "operator": bytes.fromhex(OPERATOR_HEX)}
    if how == "other-key":
        sig = ownership.sign_digest(bytes.fromhex(K1), ownership.digest(**statement))
    elif how == "other-epoch":
        sig = ownership.sign(bytes.fromhex(K0), **{**statement, "epoch": 0})
    else:
        sig = ownership.sign(bytes.fromhex(K0), **{**statement, "operator": b"\x07" * 32})
    a0["signature"] = "0x" + sig.hex()
    p.write_text(json.dumps(doc))
    res = run("prove", snap, "--out", tmp_path / "refused", "--quiet")
    assert res.exit_code == 2 and "reserves-signature" in res.output     # the honest prover
    monkeypatch.setattr(prover_epoch, "verify_bundle", lambda *a, **k: None)
    monkeypatch.setattr(chain_evidence, "check_offline", lambda *a, **k: [])
    prove(snap, tmp_path / "bundle")
    monkeypatch.undo()
    code, out = verify_json(tmp_path / "bundle")
    assert (code, out["check"]) == (1, "reserves-signature"), out
    assert A0 in out["detail"]
    code, out = verify_json(tmp_path / "bundle", "--rpc", chain.url)
    assert (code, out["check"]) == (1, "reserves-signature"), out


def test_reorg_of_the_pinned_block_fails_reserves_block(tmp_path: Path, chain: Any,
                                                        funded: dict[str, Any]) -> None:
    """The evidence was read at block N; the node then reorganises (snapshot,
    revert, another block at the same height): N's hash differs."""
    before = chain.snapshot()
    chain.mine(1)
    n = chain.block_number()
    snap = _snapshot(tmp_path, funded)
    _fetch(snap, chain, "--block", str(n))
    _sign_all(tmp_path, snap, funded)
    prove(snap, tmp_path / "bundle")
    assert verify_json(tmp_path / "bundle", "--rpc", chain.url)[0] == 0
    chain.revert(before)
    chain.send({"to": "0x" + "ee" * 20, "value": 1})     # another block at height n
    assert chain.block_number() == n
    code, out = verify_json(tmp_path / "bundle", "--rpc", chain.url)
    assert (code, out["check"]) == (1, "reserves-block"), out


def test_block_from_the_window(tmp_path: Path, chain: Any, funded: dict[str, Any]) -> None:
    """With a block_window the block is derived (no --block), and verify
    --rpc re-derives it on the node."""
    t = int(chain.block("latest")["timestamp"], 16) + 100
    snap = _snapshot(tmp_path, funded, window=4, timestamp=t)
    res = run("reserves", "fetch", snap, "--rpc", chain.url, "--block", "1")
    assert res.exit_code == 2 and "block_window" in res.output
    chain.mine(12, interval=20)
    state = _fetch(snap, chain)
    first = json.loads((snap / "reserves.json").read_text())["evidence"]["window"]
    assert int(chain.block(first["first_number"])["timestamp"], 16) >= t
    assert first["first_number"] < state["block_number"] <= first["first_number"] + 4
    _sign_all(tmp_path, snap, funded)
    prove(snap, tmp_path / "bundle")
    code, out = verify_json(tmp_path / "bundle", "--rpc", chain.url)
    assert code == 0 and out["bundles"][0]["reserves"]["block_window"] is True, out


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_rpc_exits_2_with_one_line(tmp_path: Path, chain: Any,
                                               funded: dict[str, Any]) -> None:
    bundle, _ = _honest(tmp_path, chain, funded)
    url = _closed_port_url()
    res = run("verify", bundle, "--rpc", url)
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and f"127.0.0.1:{url.rsplit(':', 1)[1]}" in lines[0], res.output
    assert "Traceback" not in res.output
    res = run("verify", bundle, "--rpc", url, "--json")
    assert res.exit_code == 2 and json.loads(res.output)["exit_code"] == 2
    res = run("reserves", "fetch", _snapshot(tmp_path, funded, epoch=2), "--rpc", url,
              "--block", "1")
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_older_bundles_say_reserves_asserted_with_rpc(chain: Any) -> None:
    """Versions 4 and 5 verify as before, --rpc or not: reserves asserted."""
    vectors = Path(__file__).parent / "vectors" / "bundles"
    for name in ("valid-epoch1", "margin-valid"):
        code, out = verify_json(vectors / name, "--rpc", chain.url)
        assert code == 0, (name, out)
        r = out["bundles"][0]["reserves"]
        assert r["from_chain"] is False and {a["balances"] for a in r["assets"]} == {"asserted"}
        assert "reserves asserted" in run("verify", vectors / name, "--rpc", chain.url).output
