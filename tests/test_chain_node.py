"""The tests' local Ethereum node and contracts: anvil starts, answers,
deploys the test token and wallet, reverts to snapshots and stops for sure;
the checked-in contract builds are exactly what the pinned solcjs makes from
the sources beside them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chain_node import (
    BUILD_DIR,
    CONTRACTS,
    CONTRACTS_DIR,
    INSTALL_HINT,
    SOLC_SETTINGS,
    SOLC_VERSION,
    AnvilNode,
    anvil_path,
    build_record,
    compile_contract,
    deploy_token,
    deploy_wallet,
    encode_args,
    selector,
    solcjs_path,
    solcjs_version,
    token_balance,
    token_mint,
    token_transfer,
)
from conftest import require_tool


def test_node_is_prague_and_chain_31337(chain: AnvilNode) -> None:
    assert int(chain.rpc("eth_chainId"), 16) == 31337
    assert chain.url.startswith("http://127.0.0.1:")
    # Prague blocks carry the EIP-7685 requests hash
    assert "requestsHash" in chain.block("latest")
    assert len(chain.accounts) == 10


def test_token_deploys_mints_and_transfers(chain: AnvilNode) -> None:
    token = deploy_token(chain, "USDT", 6)
    alice, bob = chain.accounts[1], chain.accounts[2]
    decimals = chain.call(token, selector("decimals()"))
    assert int(decimals, 16) == 6
    token_mint(chain, token, alice, 1_000_000)
    token_transfer(chain, token, bob, 250_000, sender=alice)
    assert token_balance(chain, token, alice) == 750_000
    assert token_balance(chain, token, bob) == 250_000
    assert int(chain.call(token, selector("totalSupply()")), 16) == 1_000_000


def test_only_the_deployer_mints(chain: AnvilNode) -> None:
    from chain_node import NodeError

    token = deploy_token(chain, "DAI", 18)
    with pytest.raises(NodeError):
        chain.send({"to": token, "data": selector("mint(address,uint256)")
                    + encode_args(["address", "uint256"], [chain.accounts[1], 1])},
                   sender=chain.accounts[1])
    assert token_balance(chain, token, chain.accounts[1]) == 0


def test_wallet_1271_answers_magic_only_for_its_owner(chain: AnvilNode) -> None:
    from eth_account import Account

    owner = Account.from_key("0x" + "11" * 32)
    other = Account.from_key("0x" + "22" * 32)
    wallet = deploy_wallet(chain, owner.address)
    digest = bytes(range(32))
    call = selector("isValidSignature(bytes32,bytes)")

    def answer(sig: bytes) -> str:
        return chain.call(wallet, call + encode_args(["bytes32", "bytes"], [digest, sig]))[:10]

    good = owner.unsafe_sign_hash(digest).signature
    bad = other.unsafe_sign_hash(digest).signature
    assert answer(bytes(good)) == "0x1626ba7e"
    assert answer(bytes(bad)) == "0xffffffff"
    assert answer(bytes(good)[:64]) == "0xffffffff"
    assert answer(b"\x00" * 65) == "0xffffffff"


def test_snapshot_and_revert_undo_blocks(chain: AnvilNode) -> None:
    before = chain.block_number()
    snap = chain.snapshot()
    chain.mine(3)
    assert chain.block_number() == before + 3
    chain.revert(snap)
    assert chain.block_number() == before


def test_stop_kills_the_node() -> None:
    exe = anvil_path()
    if exe is None:
        require_tool("anvil (npm @foundry-rs/anvil)", INSTALL_HINT)
    assert exe is not None
    node = AnvilNode(exe, chain_id=1337)
    pid = node._proc.pid
    assert int(node.rpc("eth_chainId"), 16) == 1337
    node.stop()
    assert not node.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # signal 0: does the process still exist?


@pytest.mark.parametrize("source", sorted(CONTRACTS))
def test_checked_in_build_is_what_pinned_solcjs_makes(source: str) -> None:
    if solcjs_path() is None:
        require_tool("solcjs (npm solc)", INSTALL_HINT)
    version = solcjs_version()
    assert version.startswith(SOLC_VERSION + "+"), version
    path = BUILD_DIR / (source.removesuffix(".sol") + ".json")
    recorded = json.loads(path.read_text())
    assert recorded["compiler"] == f"solc {version}"
    assert recorded["settings"] == SOLC_SETTINGS
    fresh = build_record(source, compile_contract(source), version)
    assert fresh["source_sha256"] == recorded["source_sha256"], f"{source} changed: rebuild"
    assert fresh["bytecode"] == recorded["bytecode"]
    assert fresh["abi"] == recorded["abi"]
    assert (CONTRACTS_DIR / source).is_file()


def test_node_dies_with_its_test_process(tmp_path: Path) -> None:
    """A test process killed with SIGKILL (no cleanup runs) takes its anvil
    with it."""
    exe = anvil_path()
    if exe is None:
        require_tool("anvil (npm @foundry-rs/anvil)", INSTALL_HINT)
    pid_file = tmp_path / "pid"
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); "
            "from chain_node import AnvilNode, anvil_path; "
            "node = AnvilNode(anvil_path()); "
            "open(sys.argv[2], 'w').write(str(node._proc.pid)); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent),
                             str(pid_file)])
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        anvil_pid = int(pid_file.read_text())
        os.kill(anvil_pid, 0)  # running
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while _alive(anvil_pid):
        assert time.monotonic() < deadline, "anvil outlived its test process"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that may not exist in a
    container counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" not in status
