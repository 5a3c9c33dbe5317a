"""Reserve evidence on a real local node (anvil): balances read at a pinned
block hash and unchanged by later transfers, ownership signatures (accounts
by EIP-712 recovery, a contract wallet by EIP-1271), and every attack the
checks must catch with its tag: an inflated balance, a signature from
another key, epoch, operator or block, a reorged block, another chain, a
wrong window; plus double counting and a hostile node's failure modes on
the real node (a pinned hash that is gone, a token that is no contract)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from chain_node import (
    AnvilNode,
    deploy_token,
    deploy_wallet,
    token_balance,
    token_mint,
)
from eth_utils import keccak

from zksolv.chain import evidence as ev
from zksolv.chain import ownership, window
from zksolv.chain.rpc import RpcClient
from zksolv.errors import ChainError, InputError

EPOCH = 42
OPERATOR = bytes.fromhex("5a" * 32)
ETHER = 10**18


def key(label: str) -> bytes:
    return keccak(text=f"zksolv chain test key {label}")


def hx(address: bytes) -> str:
    return "0x" + address.hex()


def raw(address: str) -> bytes:
    return bytes.fromhex(address.removeprefix("0x"))


@dataclass
class Scene:
    node: AnvilNode
    client: RpcClient
    k1: bytes
    k2: bytes
    owner: bytes  # the contract wallet's owner key
    a1: bytes
    a2: bytes
    wallet: bytes
    vault: bytes
    usdc: bytes
    dai: bytes
    sources: ev.ReserveSources

    def send_from(self, sender: bytes, tx: dict[str, Any]) -> None:
        """A transaction from one of the test's own accounts (impersonated)."""
        self.node.rpc("anvil_impersonateAccount", hx(sender))
        try:
            self.node.send(tx, sender=hx(sender))
        finally:
            self.node.rpc("anvil_stopImpersonatingAccount", hx(sender))


@pytest.fixture
def scene(chain: AnvilNode) -> Scene:
    """Two accounts, a contract wallet (EIP-1271) and a declared vault
    holding ETH, a 6-decimal USDC and an 18-decimal DAI."""
    k1, k2, owner = key("a1"), key("a2"), key("wallet owner")
    a1, a2 = ownership.address_of(k1), ownership.address_of(k2)
    wallet = raw(deploy_wallet(chain, hx(ownership.address_of(owner))))
    vault = raw(deploy_wallet(chain, hx(ownership.address_of(key("vault owner")))))
    usdc = raw(deploy_token(chain, "USDC", 6))
    dai = raw(deploy_token(chain, "DAI", 18))
    for who, wei in ((a1, 3 * ETHER), (a2, 5 * ETHER), (wallet, 7 * ETHER)):
        chain.send({"to": hx(who), "value": wei})
    token_mint(chain, hx(usdc), hx(a1), 1_000_000_000)
    token_mint(chain, hx(usdc), hx(wallet), 250_000_000)
    token_mint(chain, hx(dai), hx(a2), 40 * ETHER)
    token_mint(chain, hx(dai), hx(vault), 60 * ETHER)
    acc = lambda a: ev.HolderSource(a, "account")  # noqa: E731
    sources = ev.ReserveSources(31337, None, (
        ev.AssetSource("ETH", None, (acc(a1), acc(a2), ev.HolderSource(wallet, "contract"))),
        ev.AssetSource("USDC", usdc, (acc(a1), ev.HolderSource(wallet, "contract"))),
        ev.AssetSource("DAI", dai, (acc(a2), ev.HolderSource(vault, "declared"))),
    ))
    return Scene(chain, RpcClient(chain.url), k1, k2, owner, a1, a2, wallet, vault, usdc, dai,
                 sources)


def signed(s: Scene, evidence: ev.ReservesEvidence, *, epoch: int = EPOCH,
           operator: bytes = OPERATOR) -> ev.ReservesEvidence:
    """Every account signs; the wallet's owner signs the wallet's statement."""
    for k in (s.k1, s.k2):
        evidence, count = ev.sign_holdings(evidence, k, epoch=epoch, operator=operator)
        assert count >= 1
    digest = ev.statement_digest(evidence, s.wallet, epoch=epoch, operator=operator)
    wallet_sig = ownership.sign_digest(s.owner, digest)
    return set_signature(evidence, s.wallet, wallet_sig)


def set_signature(evidence: ev.ReservesEvidence, address: bytes,
                  sig: bytes | None) -> ev.ReservesEvidence:
    return replace(evidence, assets=tuple(
        replace(a, holdings=tuple(replace(h, signature=sig) if h.address == address else h
                                  for h in a.holdings)) for a in evidence.assets))


def set_balance(evidence: ev.ReservesEvidence, symbol: str, address: bytes,
                balance: int) -> ev.ReservesEvidence:
    return replace(evidence, assets=tuple(
        replace(a, holdings=tuple(replace(h, balance=balance)
                                  if a.symbol == symbol and h.address == address else h
                                  for h in a.holdings)) for a in evidence.assets))


def honest(s: Scene) -> ev.ReservesEvidence:
    s.node.mine(1)
    return signed(s, ev.fetch(s.client, s.sources, block=s.node.block_number()))


def online(s: Scene, evidence: ev.ReservesEvidence, **kw: Any) -> list[ev.Finding]:
    args: dict[str, Any] = {"epoch": EPOCH, "operator": OPERATOR, "epoch_timestamp": None}
    return ev.check_online(s.client, evidence, **{**args, **kw})


def tags(findings: list[ev.Finding]) -> list[tuple[str, str]]:
    return [(f.tag, f.where) for f in findings]


# -- the honest flow ------------------------------------------------------------------


def test_honest_flow_verifies_offline_and_online(scene: Scene) -> None:
    s = scene
    evidence = honest(s)
    totals = {a.symbol: a.total() for a in evidence.assets}
    assert totals == {"ETH": 15 * ETHER, "USDC": 1_250_000_000, "DAI": 100 * ETHER}
    assert evidence.block_hash == raw(s.node.block(evidence.block_number)["hash"])
    assert ev.check_offline(evidence, epoch=EPOCH, operator=OPERATOR) == []
    assert online(s, evidence) == []
    kinds = {h.kind: h.signature is not None for a in evidence.assets for h in a.holdings}
    assert kinds == {"account": True, "contract": True, "declared": False}


def test_balances_at_the_pinned_block_survive_later_transfers(scene: Scene) -> None:
    s = scene
    evidence = honest(s)
    pinned = evidence.block_hash
    before = (s.client.balances([s.a1, s.a2], pinned),
              s.client.erc20_balances(s.usdc, [s.a1], pinned))
    # the borrowed funds go back after the block
    s.send_from(s.a1, {"to": hx(s.a2), "value": 2 * ETHER})
    s.send_from(s.a1, {"to": hx(s.usdc), "data": "0xa9059cbb" + "00" * 12 + s.a2.hex()
                       + (999_000_000).to_bytes(32, "big").hex()})
    assert token_balance(s.node, hx(s.usdc), hx(s.a1)) == 1_000_000
    assert s.node.balance(hx(s.a1)) < ETHER
    assert s.node.block_number() > evidence.block_number
    assert (s.client.balances([s.a1, s.a2], pinned),
            s.client.erc20_balances(s.usdc, [s.a1], pinned)) == before
    assert online(s, evidence) == []
    # while a fetch at the new head sees the move
    moved = ev.fetch(s.client, s.sources, block=s.node.block_number())
    assert moved.assets[1].holdings[0].balance == 1_000_000


# -- attacks ----------------------------------------------------------------------------


def test_inflated_balance_fails_reserves_balance(scene: Scene) -> None:
    s = scene
    evidence = set_balance(honest(s), "USDC", s.a1, 1_000_000_001)
    assert ev.check_offline(evidence, epoch=EPOCH, operator=OPERATOR) == []  # needs a node
    found = online(s, evidence)
    assert tags(found) == [("reserves-balance", f"USDC holder {hx(s.a1)}")]
    assert "1000000001" in found[0].detail and "1000000000" in found[0].detail


def test_declared_holder_balance_is_checked_too(scene: Scene) -> None:
    s = scene
    evidence = set_balance(honest(s), "DAI", s.vault, 61 * ETHER)
    assert tags(online(s, evidence)) == [("reserves-balance", f"DAI holder {hx(s.vault)}")]


@pytest.mark.parametrize("how", ["another key", "another epoch", "another operator",
                                 "another block", "another chain"])
def test_foreign_signature_fails_reserves_signature(scene: Scene, how: str) -> None:
    s = scene
    evidence = honest(s)
    stmt: dict[str, Any] = dict(chain_id=31337, holder=s.a1, block_number=evidence.block_number,
                block_hash=evidence.block_hash, epoch=EPOCH, operator=OPERATOR)
    if how == "another key":
        sig = ownership.sign_digest(s.k2, ownership.digest(**stmt))
    else:
        changes: dict[str, dict[str, Any]] = {
            "another epoch": {"epoch": EPOCH - 1},
            "another operator": {"operator": b"\x01" * 32},
            "another block": {"block_number": evidence.block_number - 1,
                              "block_hash": raw(s.node.block(evidence.block_number - 1)["hash"])},
            "another chain": {"chain_id": 1}}
        change = changes[how]
        sig = ownership.sign(s.k1, **{**stmt, **change})
    forged = set_signature(evidence, s.a1, sig)
    want = [("reserves-signature", f"ETH holder {hx(s.a1)}"),
            ("reserves-signature", f"USDC holder {hx(s.a1)}")]
    assert tags(ev.check_offline(forged, epoch=EPOCH, operator=OPERATOR)) == want
    assert tags(online(s, forged)) == want


def test_signature_checked_against_the_verifiers_epoch_and_operator(scene: Scene) -> None:
    """Honest signatures for epoch 42 do not pass as epoch 43's, nor as
    another operator's: the verifier supplies both from the bundle."""
    s = scene
    evidence = honest(s)
    variants: list[dict[str, Any]] = [{"epoch": EPOCH + 1, "operator": OPERATOR},
                                      {"epoch": EPOCH, "operator": b"\x02" * 32}]
    for kw in variants:
        found = ev.check_offline(evidence, **kw)
        assert {f.tag for f in found} == {"reserves-signature"}
        assert len(found) == 4  # a1 in ETH and USDC, a2 in ETH and DAI
        assert {f.tag for f in online(s, evidence, **kw)} == {"reserves-signature"}


def test_missing_and_malformed_signatures(scene: Scene) -> None:
    s = scene
    evidence = honest(s)
    sig = next(h.signature for h in evidence.assets[0].holdings if h.address == s.a2)
    assert sig is not None
    high_s = sig[:32] + (ownership.SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(
        32, "big") + bytes([55 - sig[64]])
    broken = set_signature(set_signature(evidence, s.a1, None), s.a2, high_s)
    found = ev.check_offline(broken, epoch=EPOCH, operator=OPERATOR)
    assert {f.tag for f in found} == {"reserves-signature"}
    details = {f.where: f.detail for f in found}
    assert details[f"ETH holder {hx(s.a1)}"] == "no ownership signature"
    assert "upper half" in details[f"DAI holder {hx(s.a2)}"]


def test_contract_wallet_eip1271(scene: Scene) -> None:
    """The wallet accepts its owner's signature of the statement and no
    other: another key's, or the owner's over another epoch."""
    s = scene
    evidence = honest(s)
    digest = ev.statement_digest(evidence, s.wallet, epoch=EPOCH, operator=OPERATOR)
    block = evidence.block_hash
    assert s.client.is_valid_signature(s.wallet, digest,
                                       ownership.sign_digest(s.owner, digest), block)
    assert not s.client.is_valid_signature(s.wallet, digest,
                                           ownership.sign_digest(s.k1, digest), block)
    want = [("reserves-signature", f"ETH holder {hx(s.wallet)}"),
            ("reserves-signature", f"USDC holder {hx(s.wallet)}")]
    other_key = set_signature(evidence, s.wallet, ownership.sign_digest(s.k1, digest))
    assert ev.check_offline(other_key, epoch=EPOCH, operator=OPERATOR) == []  # needs a node
    assert tags(online(s, other_key)) == want
    other_epoch = set_signature(evidence, s.wallet, ownership.sign_digest(
        s.owner, ev.statement_digest(evidence, s.wallet, epoch=EPOCH + 1, operator=OPERATOR)))
    assert tags(online(s, other_epoch)) == want
    garbage = set_signature(evidence, s.wallet, b"\x01" * 10)
    assert tags(online(s, garbage)) == want
    missing = set_signature(evidence, s.wallet, None)
    assert tags(ev.check_offline(missing, epoch=EPOCH, operator=OPERATOR)) == want
    huge = set_signature(evidence, s.wallet, b"\x01" * 4097)
    assert tags(online(s, huge)) == want


def test_wallet_asked_at_the_pinned_block(scene: Scene) -> None:
    """A contract's answer is taken at the pinned block: an account that is
    not a contract there (no code) says no."""
    s = scene
    evidence = honest(s)
    as_contract = replace(evidence, assets=tuple(
        replace(a, holdings=tuple(replace(h, kind="contract") if h.address == s.a1 else h
                                  for h in a.holdings)) for a in evidence.assets))
    found = online(s, as_contract)
    assert ("reserves-signature", f"ETH holder {hx(s.a1)}") in tags(found)


def test_reorged_block_fails_reserves_block(scene: Scene) -> None:
    """The evidence pins a block of a branch that is later reverted, and
    another block is mined at the same height: the node refuses reads at
    the old hash, and the check says reserves-block."""
    s = scene
    fork = s.node.snapshot()
    s.send_from(s.a1, {"to": hx(s.a2), "value": ETHER})  # the branch the operator saw
    evidence = signed(s, ev.fetch(s.client, s.sources, block=s.node.block_number()))
    s.node.revert(fork)
    s.node.send({"to": hx(s.a2), "value": 1})  # another block at the same height
    assert s.node.block_number() == evidence.block_number
    assert raw(s.node.block(evidence.block_number)["hash"]) != evidence.block_hash
    with pytest.raises(ChainError, match="eth_getBalance"):
        s.client.balances([s.a1], evidence.block_hash)
    found = online(s, evidence)
    assert tags(found) == [("reserves-block", f"block {evidence.block_number}")]
    assert "reorg" in found[0].detail
    # a block number the node has not reached at all (re-signed for it)
    ahead = signed(s, replace(evidence, block_number=evidence.block_number + 100))
    found = online(s, ahead)
    assert tags(found) == [("reserves-block", f"block {ahead.block_number}")]
    assert "no block at this height" in found[0].detail


def test_another_chain_fails_reserves_chain(scene: Scene) -> None:
    s = scene
    evidence = replace(honest(s), chain_id=1)
    found = online(s, evidence)
    assert tags(found) == [("reserves-chain", "chain 1")]
    assert "31337" in found[0].detail


def test_double_counting_fails_reserves_balance(scene: Scene) -> None:
    s = scene
    evidence = honest(s)
    eth = evidence.assets[0]
    twice = replace(evidence, assets=(replace(eth, holdings=eth.holdings + eth.holdings[:1]),
                                      *evidence.assets[1:]))
    assert ("reserves-balance", f"ETH holder {hx(s.a1)}") in tags(
        ev.check_offline(twice, epoch=EPOCH, operator=OPERATOR))
    usdc = evidence.assets[1]
    two_names = replace(evidence, assets=(*evidence.assets, replace(usdc, symbol="USDC2")))
    assert ("reserves-balance", f"USDC2 token {hx(s.usdc)}") in tags(
        ev.check_offline(two_names, epoch=EPOCH, operator=OPERATOR))


# -- fetching -------------------------------------------------------------------------


def test_fetch_needs_exactly_one_way_to_the_block(scene: Scene) -> None:
    s = scene
    with pytest.raises(InputError, match="give the block"):
        ev.fetch(s.client, s.sources)
    windowed = replace(s.sources, window_length=5)
    with pytest.raises(InputError, match="derived from it"):
        ev.fetch(s.client, windowed, block=1, epoch_timestamp=0)
    with pytest.raises(ChainError, match="no block 99999"):
        ev.fetch(s.client, s.sources, block=99_999)


def test_fetch_refuses_another_chain_and_a_token_that_is_no_contract(scene: Scene) -> None:
    s = scene
    with pytest.raises(ChainError, match="eth_chainId .*chain 31337, not 1"):
        ev.fetch(s.client, replace(s.sources, chain_id=1), block=1)
    bad = replace(s.sources, assets=(ev.AssetSource("BAD", s.a1, (
        ev.HolderSource(s.a2, "account"),)),))
    with pytest.raises(ChainError, match=f"eth_call .*answered nothing: is {hx(s.a1)}"):
        ev.fetch(s.client, bad, block=s.node.block_number())


def test_fetch_of_a_reverted_token_call_names_it(scene: Scene) -> None:
    """A token whose balanceOf reverts (the wallet has no balanceOf and no
    fallback) is an error naming it, not a zero balance."""
    s = scene
    bad = replace(s.sources, assets=(ev.AssetSource("W", s.wallet, (
        ev.HolderSource(s.a2, "account"),)),))
    with pytest.raises(ChainError, match=f"token {hx(s.wallet)} balanceOf"):
        ev.fetch(s.client, bad, block=s.node.block_number())


# -- the block window ---------------------------------------------------------------


def window_scene(s: Scene, length: int = 5) -> tuple[int, int]:
    """Ten blocks 12 s apart; the epoch's timestamp falls between the 2nd
    and 3rd, 6 s after the 2nd. Returns (epoch timestamp, F)."""
    base = s.node.block_number()
    s.node.mine(10, 12)
    t2 = int(s.node.block(base + 2)["timestamp"], 16)
    return t2 + 6, base + 3


def test_window_first_block_found_by_timestamp(scene: Scene) -> None:
    s = scene
    t, first = window_scene(s)
    assert window.find_first_block(s.client, t).number == first
    assert window.find_first_block(s.client, t - 6).number == first - 1  # equal counts
    assert window.find_first_block(s.client, 0).number == 0


def test_window_derivation_and_online_check(scene: Scene) -> None:
    s = scene
    t, first = window_scene(s)
    sources = replace(s.sources, window_length=5)
    evidence = signed(s, ev.fetch(s.client, sources, epoch_timestamp=t))
    assert evidence.window is not None
    h = raw(s.node.block(first)["hash"])
    assert evidence.window == window.WindowEvidence(5, first, h)
    assert evidence.block_number == first + 1 + int.from_bytes(h, "big") % 5
    assert evidence.block_hash == raw(s.node.block(evidence.block_number)["hash"])
    assert ev.check_offline(evidence, epoch=EPOCH, operator=OPERATOR) == []
    assert online(s, evidence, epoch_timestamp=t) == []


def test_wrong_window_fails_reserves_block(scene: Scene) -> None:
    s = scene
    t, first = window_scene(s)
    evidence = signed(s, ev.fetch(s.client, replace(s.sources, window_length=5),
                                  epoch_timestamp=t))
    assert evidence.window is not None

    def rebuilt(f: int, length: int = 5) -> ev.ReservesEvidence:
        """Evidence honest in every way but the window: F = f, derived anew."""
        h = raw(s.node.block(f)["hash"])
        n = window.reserves_block_number(f, h, length)
        again = ev.fetch(s.client, s.sources, block=n)
        return signed(s, replace(again, window=window.WindowEvidence(length, f, h)))

    # a later F (the operator waiting for a block it likes)
    later = rebuilt(first + 1)
    assert ev.check_offline(later, epoch=EPOCH, operator=OPERATOR) == []
    found = online(s, later, epoch_timestamp=t)
    assert [f.tag for f in found] == ["reserves-block"]
    assert "the window begins earlier" in found[0].detail
    # an earlier F (before the epoch's end)
    found = online(s, rebuilt(first - 1), epoch_timestamp=t)
    assert [f.tag for f in found] == ["reserves-block"]
    assert "before the epoch's" in found[0].detail
    # the right F, another block than the one derived
    other = evidence.block_number + 1 if evidence.block_number < first + 5 else first + 1
    moved = signed(s, replace(ev.fetch(s.client, s.sources, block=other),
                              window=evidence.window))
    assert [f.tag for f in ev.check_offline(moved, epoch=EPOCH, operator=OPERATOR)] == [
        "reserves-block"]
    assert [f.tag for f in online(s, moved, epoch_timestamp=t)] == ["reserves-block"]
    # F's hash not the node's
    fake = replace(evidence, window=replace(evidence.window, first_hash=b"\x07" * 32))
    assert "reserves-block" in [f.tag for f in online(s, fake, epoch_timestamp=t)]


def test_window_not_begun_or_not_mined(scene: Scene) -> None:
    s = scene
    t, first = window_scene(s)
    latest = s.node.block("latest")
    with pytest.raises(ChainError, match="the window has not begun"):
        ev.fetch(s.client, replace(s.sources, window_length=5),
                 epoch_timestamp=int(latest["timestamp"], 16) + 1)
    with pytest.raises(ChainError, match="is not mined yet"):
        ev.fetch(s.client, replace(s.sources, window_length=10_000), epoch_timestamp=t)
    with pytest.raises(InputError, match=r"\[1, 10000\]"):
        ev.fetch(s.client, replace(s.sources, window_length=10_001), epoch_timestamp=t)


def test_each_holding_checked_with_its_own_signature(scene: Scene) -> None:
    """One recovery serves every asset an account signed the same statement
    for, but a holding whose own signature differs is checked on its own."""
    s = scene
    evidence = honest(s)
    bad = ownership.sign_digest(s.k2, ev.statement_digest(evidence, s.a1, epoch=EPOCH,
                                                         operator=OPERATOR))
    usdc = evidence.assets[1]
    mixed = replace(evidence, assets=(evidence.assets[0], replace(usdc, holdings=tuple(
        replace(h, signature=bad) if h.address == s.a1 else h for h in usdc.holdings)),
        evidence.assets[2]))
    assert tags(ev.check_offline(mixed, epoch=EPOCH, operator=OPERATOR)) == [
        ("reserves-signature", f"USDC holder {hx(s.a1)}")]
