"""The registry contract (zksolv/chain/contracts/ZksolvRegistry.sol) on a real
node: its shipped build is what the pinned compiler makes of its source, and
its rules hold: one binding per address, one entry per (operator, epoch),
immutable, epochs increasing, each post linked to the operator's previous one,
a declared gap recorded as such."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_utils import keccak

from zksolv.chain import artifacts
from zksolv.chain import registry as reg
from zksolv.chain.rpc import RpcClient

# test accounts, funded by the fixture (anvil_setBalance)
DEV_KEYS = [bytes([0x11 * (i + 1)]) * 32 for i in range(3)]
H = [bytes([i]) * 32 for i in range(256)]


def ed_key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def ed_public(sk: Ed25519PrivateKey) -> bytes:
    return sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def registry(chain):  # noqa: ANN001 - the chain fixture's node
    for key in DEV_KEYS:
        chain.rpc("anvil_setBalance", reg.hex_address(reg.eth_address(key)), hex(10**21))
    rpc = RpcClient(chain.url)
    address, _, _ = reg.deploy(rpc, DEV_KEYS[0])
    return reg.Registry(rpc, address)


def register(registry: reg.Registry, eth_key: bytes, sk: Ed25519PrivateKey) -> None:
    me = reg.eth_address(eth_key)
    statement = reg.binding_statement(registry.chain_id(), registry.address, me)
    registry.register(eth_key, ed_public(sk), sk.sign(statement))


def post(registry: reg.Registry, eth_key: bytes, epoch: int, bundle: bytes,
         prev: bytes | None = None, prev_epoch: int | None = None, *,
         header: bytes = H[98]) -> dict:
    return registry.post(eth_key, reg.BundlePost(epoch, bundle, H[99], header, H[97], prev,
                                                 prev_epoch))


def reverts_with(name: str, call, *args, **kw) -> tuple:  # noqa: ANN001
    with pytest.raises(reg.Reverted) as info:
        call(*args, **kw)
    assert info.value.error is not None and info.value.error[0] == name, info.value
    return info.value.error[1]


# -- the build ---------------------------------------------------------------------------


def test_shipped_build_is_the_pinned_compilers_output() -> None:
    from registry_build import SOLCJS, compile_source, render

    if not SOLCJS.exists():
        from conftest import require_tool

        require_tool("solcjs (npm solc)", "npm ci --prefix tests/js")
    for name in artifacts.CONTRACTS:
        shipped = (artifacts.CONTRACTS_DIR / (name + ".json")).read_text()
        fresh = compile_source(name)
        assert fresh["compiler"].startswith(f"solc {artifacts.SOLC_VERSION}+")
        assert render(fresh) == shipped, f"{name}.json differs from a fresh compile of {name}.sol"


def test_shipped_build_matches_its_source_hash() -> None:
    import hashlib

    for name in artifacts.CONTRACTS:
        record = json.loads((artifacts.CONTRACTS_DIR / (name + ".json")).read_text())
        source = (artifacts.CONTRACTS_DIR / (name + ".sol")).read_bytes()
        assert record["source_sha256"] == hashlib.sha256(source).hexdigest()
        assert record["settings"] == artifacts.CONTRACTS[name]


# -- the binding -------------------------------------------------------------------------


def test_binding_statement_bytes_on_chain_and_off(registry: reg.Registry) -> None:
    me = reg.eth_address(DEV_KEYS[0])
    chain_id = registry.chain_id()
    expected = (b"zksolv/registry-binding/v1" + chain_id.to_bytes(32, "big")
                + registry.address + me)
    assert len(expected) == reg.BINDING_STATEMENT_BYTES == 98
    assert reg.binding_statement(chain_id, registry.address, me) == expected
    (on_chain,) = registry.call("bindingStatement", reg.hex_address(me))
    assert on_chain == expected


def test_register_once_and_read_back(registry: reg.Registry) -> None:
    sk = ed_key(7)
    me = reg.eth_address(DEV_KEYS[1])
    assert registry.binding(me) is None
    register(registry, DEV_KEYS[1], sk)
    b = registry.binding(me)
    assert b is not None and b.key == ed_public(sk)
    assert reg.binding_signature_valid(b.key, b.signature, registry.chain_id(),
                                       registry.address, me)
    # a binding is for this address only, on this registry and this chain
    other = reg.eth_address(DEV_KEYS[2])
    assert not reg.binding_signature_valid(b.key, b.signature, registry.chain_id(),
                                           registry.address, other)
    assert not reg.binding_signature_valid(b.key, b.signature, registry.chain_id() + 1,
                                           registry.address, me)
    assert not reg.binding_signature_valid(b.key, b.signature, registry.chain_id(),
                                           H[5][:20], me)
    args = reverts_with("AlreadyRegistered", register, registry, DEV_KEYS[1], ed_key(8))
    assert args[1] == ed_public(sk)
    assert registry.registrants(ed_public(sk)) == [me]


def test_anyone_may_claim_a_key_but_only_its_signature_binds(registry: reg.Registry) -> None:
    sk = ed_key(7)
    register(registry, DEV_KEYS[1], sk)
    # address 2 claims the same key with a signature over its own statement
    # made by another key: the contract records it (it cannot check Ed25519) ...
    thief = reg.eth_address(DEV_KEYS[2])
    forged = ed_key(9).sign(reg.binding_statement(registry.chain_id(), registry.address, thief))
    registry.register(DEV_KEYS[2], ed_public(sk), forged)
    assert registry.registrants(ed_public(sk)) == [reg.eth_address(DEV_KEYS[1]), thief]
    # ... and every verifier refuses it
    b = registry.binding(thief)
    assert b is not None
    assert not reg.binding_signature_valid(b.key, b.signature, registry.chain_id(),
                                           registry.address, thief)


# -- posts -------------------------------------------------------------------------------


def test_post_requires_registration(registry: reg.Registry) -> None:
    reverts_with("NotRegistered", post, registry, DEV_KEYS[1], 1, H[1])


def test_one_entry_per_epoch_immutable_and_idempotent(registry: reg.Registry, chain) -> None:  # noqa: ANN001
    register(registry, DEV_KEYS[1], ed_key(7))
    me = reg.eth_address(DEV_KEYS[1])
    receipt = post(registry, DEV_KEYS[1], 5, H[1])
    topic = "0x" + keccak(text="Posted(address,uint64,bytes32,bytes32,bytes32,uint64,bool,bool)"
                          ).hex()
    logs = [log for log in receipt["logs"] if log["topics"][0] == topic]
    assert len(logs) == 1 and logs[0]["topics"][3] == "0x" + H[1].hex()
    first = registry.entry(me, 5)
    assert first is not None and first.bundle_hash == H[1] and first.prev_bundle_hash is None
    assert (first.header_digest, first.roots_digest, first.solvent) == (H[98], H[97], False)
    # the same bundle again: nothing changes, no event
    again = post(registry, DEV_KEYS[1], 5, H[1])
    assert not [log for log in again["logs"] if log["topics"][0] == topic]
    assert registry.entry(me, 5) == first
    # another bundle for the epoch: refused, naming both hashes
    args = reverts_with("EpochTaken", post, registry, DEV_KEYS[1], 5, H[2])
    assert args[2:] == (H[1], H[2])
    # the same bundle hash with another header digest is another post too
    reverts_with("EpochTaken", post, registry, DEV_KEYS[1], 5, H[1], header=H[96])
    assert registry.entry(me, 5) == first
    # another address's post leaves this one untouched
    register(registry, DEV_KEYS[2], ed_key(8))
    post(registry, DEV_KEYS[2], 5, H[3])
    assert registry.entry(me, 5) == first
    other = registry.entry(reg.eth_address(DEV_KEYS[2]), 5)
    assert other is not None and other.bundle_hash == H[3]


def test_epochs_increase_and_link(registry: reg.Registry) -> None:
    register(registry, DEV_KEYS[1], ed_key(7))
    me = reg.eth_address(DEV_KEYS[1])
    assert registry.latest_epoch(me) is None
    post(registry, DEV_KEYS[1], 5, H[1])
    assert registry.latest_epoch(me) == 5
    reverts_with("EpochNotAfterLatest", post, registry, DEV_KEYS[1], 4, H[2], H[1], 3)
    # a later post must link to the previous post, hash and epoch
    args = reverts_with("BadLink", post, registry, DEV_KEYS[1], 6, H[2], H[9], 5)
    assert args[2:] == (H[1], 5)
    reverts_with("BadLink", post, registry, DEV_KEYS[1], 6, H[2], H[1], 4)
    reverts_with("BadLink", post, registry, DEV_KEYS[1], 6, H[2])
    post(registry, DEV_KEYS[1], 6, H[2], H[1], 5)
    e6 = registry.entry(me, 6)
    assert e6 is not None and not e6.gap and e6.prev_bundle_hash == H[1]
    assert registry.latest_epoch(me) == 6


def test_declared_gap_is_recorded(registry: reg.Registry) -> None:
    register(registry, DEV_KEYS[1], ed_key(7))
    me = reg.eth_address(DEV_KEYS[1])
    post(registry, DEV_KEYS[1], 2, H[1])
    post(registry, DEV_KEYS[1], 5, H[2], H[1], 2)
    e = registry.entry(me, 5)
    assert e is not None and e.gap and e.prev_epoch == 2


def test_malformed_links_refused(registry: reg.Registry) -> None:
    register(registry, DEV_KEYS[1], ed_key(7))
    reverts_with("BadPrevious", post, registry, DEV_KEYS[1], 5, H[1], H[2], 5)
    reverts_with("BadPrevious", post, registry, DEV_KEYS[1], 5, H[1], H[0], 4)
    reverts_with("ZeroHash", post, registry, DEV_KEYS[1], 5, H[0])


def test_prove_solvent_needs_a_post(registry: reg.Registry) -> None:
    me = reg.eth_address(DEV_KEYS[1])
    args = reverts_with("NoEntry", registry.prove_solvent, DEV_KEYS[1], me, 5,
                        [b"", b"", b"", b"", b""])
    assert args == (reg.hex_address(me), 5)
    assert registry.call("isSolvent", reg.hex_address(me), 5) == (False,)


def test_code_check(registry: reg.Registry, chain) -> None:  # noqa: ANN001
    registry.check_code()
    registry.verifier().check_code()
    from zksolv.errors import InputError

    empty = reg.Registry(registry.rpc, H[4][:20])
    with pytest.raises(InputError, match="no contract"):
        empty.check_code()
    with pytest.raises(InputError, match="no contract code answers there"):
        empty.latest_epoch(H[5][:20])


def test_the_documented_binding_example() -> None:
    """docs/registry.md's worked example: statement bytes and the vectors'
    operator key's signature, checked as a verifier checks them."""
    import re
    from pathlib import Path

    from zksolv.prover.keys import public_key_bytes, signing_key

    doc = (Path(__file__).parents[1] / "docs" / "registry.md").read_text()
    found = [re.search(rf"^ +{name} ([0-9a-f]+)$", doc, re.M) for name in ("statement",
                                                                          "signature")]
    assert found[0] is not None and found[1] is not None
    statement, signature = (bytes.fromhex(m.group(1)) for m in found if m is not None)
    registry = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
    operator = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
    assert statement == reg.binding_statement(31337, registry, operator)
    key = public_key_bytes(signing_key(bytes.fromhex("11" * 32)))
    assert key.hex() in doc
    assert reg.binding_signature_valid(key, signature, 31337, registry, operator)
    assert not reg.binding_signature_valid(key, signature, 1, registry, operator)
