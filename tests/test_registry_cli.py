"""zksolv registry deploy/register/check and zksolv publish, on a real node,
with the checked-in vector bundles (tests/vectors/bundles, all signed by the
test operator key): a split view is refused at publish and caught at check,
a gap is posted and reported, a registration without a valid signature is
ignored, an unreachable node exits 2."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from zksolv.chain import registry as reg
from zksolv.chain.rpc import RpcClient
from zksolv.circuits import bundle as layout
from zksolv.cli.main import cli
from zksolv.prover.keys import public_key_bytes, signing_key

VECTORS = Path(__file__).parent / "vectors" / "bundles"
OPERATOR_MASTER = "11" * 32          # the vector bundles' operator key
OPERATOR = public_key_bytes(signing_key(bytes.fromhex(OPERATOR_MASTER)))
ETH_KEYS = [bytes([0x21 + i]) * 32 for i in range(4)]


def bundle_hash(name: str) -> str:
    return layout.bundle_hash((VECTORS / name / layout.MANIFEST_FILE).read_bytes()).hex()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def key_file(tmp: Path, name: str, text: str, mode: int = 0o600) -> str:
    p = tmp / name
    p.write_text(text + "\n")
    os.chmod(p, mode)
    return str(p)


class Setup:
    def __init__(self, chain, tmp: Path):  # noqa: ANN001 - the chain fixture's node
        for k in ETH_KEYS:
            chain.rpc("anvil_setBalance", reg.hex_address(reg.eth_address(k)), hex(10**21))
        self.url = chain.url
        self.eth = [key_file(tmp, f"eth{i}.key", k.hex()) for i, k in enumerate(ETH_KEYS)]
        self.operator_key = key_file(tmp, "operator.key", OPERATOR_MASTER)
        r = run("registry", "deploy", "--rpc", self.url, "--eth-key", self.eth[0])
        assert r.exit_code == 0, r.output
        m = re.search(r"deployed at (0x[0-9a-f]{40})", r.output)
        assert m, r.output
        self.address = m.group(1)
        self.registry = reg.Registry(RpcClient(self.url), bytes.fromhex(self.address[2:]))

    def register(self, i: int) -> Result:
        return run("registry", "register", "--rpc", self.url, "--registry", self.address,
                   "--eth-key", self.eth[i], "--key", self.operator_key)

    def publish(self, name: str, i: int = 1) -> Result:
        return run("publish", str(VECTORS / name), "--rpc", self.url, "--registry",
                   self.address, "--eth-key", self.eth[i], "-j", "1")

    def check(self, name: str, *extra: str) -> Result:
        return run("registry", "check", str(VECTORS / name), "--rpc", self.url,
                   "--registry", self.address, *extra)

    def check_json(self, name: str) -> tuple[int, dict]:
        r = self.check(name, "--json")
        return r.exit_code, json.loads(r.output)


@pytest.fixture
def setup(chain, tmp_path: Path) -> Setup:  # noqa: ANN001
    return Setup(chain, tmp_path)


def test_publish_then_check_a_chain_with_a_gap(setup: Setup) -> None:
    r = setup.register(1)
    assert r.exit_code == 0 and OPERATOR.hex() in r.output, r.output
    # registering again with the same key changes nothing
    r = setup.register(1)
    assert r.exit_code == 0 and "nothing to do" in r.output
    # before anything is posted: missing
    code, out = setup.check_json("valid-epoch1")
    assert (code, out["posted"], out["check"]) == (1, False, "registry-missing")
    for name in ("valid-epoch1", "valid-epoch2"):
        r = setup.publish(name)
        assert r.exit_code == 0 and "posted epoch" in r.output, r.output
    r = setup.publish("valid-epoch2")                  # idempotent
    assert r.exit_code == 0 and "already posted" in r.output
    code, out = setup.check_json("valid-epoch2")
    assert code == 0 and out["posted"] and out["gap"] is None
    assert out["posts"][0]["bundle_hash"] == bundle_hash("valid-epoch2")
    assert out["bound_addresses"] == [reg.hex_address(reg.eth_address(ETH_KEYS[1]))]
    # epoch 4 links to epoch 2 and declares epoch 3 not proven solvent
    r = setup.publish("valid-gap-epoch4")
    assert r.exit_code == 0 and "declares epochs 3..3 not proven solvent" in r.output
    r = setup.check("valid-gap-epoch4")
    assert r.exit_code == 0 and "epochs 3..3 NOT proven solvent" in r.output, r.output
    assert "not checked: the bundle's proofs" in r.output
    entry = setup.registry.entry(reg.eth_address(ETH_KEYS[1]), 4)
    assert entry is not None and entry.gap and entry.prev_epoch == 2


def test_split_view_refused_at_publish_and_caught_at_check(setup: Setup) -> None:
    assert setup.register(1).exit_code == 0
    assert setup.publish("valid-epoch1").exit_code == 0
    assert setup.publish("valid-epoch2").exit_code == 0
    # another valid, signed bundle for epoch 2: refused, both hashes named
    r = setup.publish("unlinked-epoch2")
    assert r.exit_code == 1, r.output
    assert bundle_hash("valid-epoch2") in r.output and bundle_hash("unlinked-epoch2") in r.output
    # the holder shown the other bundle finds out from the chain
    code, out = setup.check_json("unlinked-epoch2")
    assert (code, out["check"]) == (1, "registry-mismatch")
    assert bundle_hash("valid-epoch2") in out["detail"]
    assert bundle_hash("unlinked-epoch2") in out["detail"]
    r = setup.check("unlinked-epoch2")
    assert r.exit_code == 1 and "registry-mismatch" in r.output


def test_a_registration_without_the_keys_signature_is_ignored(setup: Setup) -> None:
    # account 2 claims the operator's key with a signature by another key and
    # posts the other epoch-2 bundle in its own slot
    thief = reg.eth_address(ETH_KEYS[2])
    chain_id = setup.registry.chain_id()
    forged = signing_key(bytes(32)).sign(reg.binding_statement(chain_id,
                                                               setup.registry.address, thief))
    setup.registry.register(ETH_KEYS[2], OPERATOR, forged)
    setup.registry.post(ETH_KEYS[2], reg.BundlePost(
        2, bytes.fromhex(bundle_hash("unlinked-epoch2")), b"\x01" * 32, b"\x02" * 32,
        b"\x03" * 32, None, None))
    code, out = setup.check_json("unlinked-epoch2")
    assert (code, out["check"]) == (1, "registry-binding"), out
    # publish from that account is refused before any transaction
    r = setup.publish("valid-epoch1", 2)
    assert r.exit_code == 2 and "no valid signature" in r.output
    # the operator registers and posts: its post counts, the thief's is ignored
    assert setup.register(1).exit_code == 0
    assert setup.publish("valid-epoch1").exit_code == 0
    assert setup.publish("valid-epoch2").exit_code == 0
    code, out = setup.check_json("valid-epoch2")
    assert code == 0 and out["ignored_addresses"] == [reg.hex_address(thief)]
    code, out = setup.check_json("unlinked-epoch2")
    assert (code, out["check"]) == (1, "registry-mismatch")


def test_two_bound_accounts_cannot_show_two_views(setup: Setup) -> None:
    # the operator binds two accounts and posts a different epoch-2 bundle from each
    assert setup.register(1).exit_code == 0 and setup.register(3).exit_code == 0
    assert setup.publish("valid-epoch1").exit_code == 0
    assert setup.publish("valid-epoch2").exit_code == 0
    assert setup.publish("unlinked-epoch2", 3).exit_code == 0
    for name, other in (("valid-epoch2", "unlinked-epoch2"), ("unlinked-epoch2", "valid-epoch2")):
        code, out = setup.check_json(name)
        assert (code, out["check"]) == (1, "registry-mismatch"), out
        assert bundle_hash(other) in out["detail"]


def test_a_branch_inside_a_declared_gap_is_caught(setup: Setup) -> None:
    # account 1 posts 1, 2, 4 (epoch 3 declared not proven); account 3, bound
    # to the same key, posts a bundle for epoch 3: two histories
    assert setup.register(1).exit_code == 0 and setup.register(3).exit_code == 0
    for name in ("valid-epoch1", "valid-epoch2", "valid-gap-epoch4"):
        assert setup.publish(name).exit_code == 0
    assert setup.check("valid-gap-epoch4").exit_code == 0
    assert setup.publish("valid-totals", 3).exit_code == 0      # epoch 3, no link
    code, out = setup.check_json("valid-gap-epoch4")
    assert (code, out["check"]) == (1, "registry-chain"), out


def test_publish_refuses_what_does_not_verify_or_does_not_link(setup: Setup) -> None:
    assert setup.register(1).exit_code == 0
    r = setup.publish("solvency-asset")
    assert r.exit_code == 1 and "solvency-asset" in r.output
    assert setup.publish("valid-epoch2").exit_code == 0           # a first post may link anywhere
    r = setup.publish("valid-epoch1")
    assert r.exit_code == 2 and "epochs only increase" in r.output
    assert setup.publish("valid-totals").exit_code == 2           # epoch 3, not linked to 2
    r = setup.publish("valid-epoch2", 2)
    assert r.exit_code == 2 and "not registered" in r.output


def test_unusable_node_registry_and_key(setup: Setup, tmp_path: Path) -> None:
    r = run("registry", "check", str(VECTORS / "valid-epoch1"), "--rpc", "http://127.0.0.1:9",
            "--registry", setup.address, "--timeout", "5")
    assert r.exit_code == 2 and "cannot connect" in r.output, r.output
    code_r = run("registry", "check", str(VECTORS / "valid-epoch1"), "--rpc", setup.url,
                 "--registry", "0x" + "42" * 20, "--json")
    assert code_r.exit_code == 1 and json.loads(code_r.output)["check"] == "registry-code"
    r = setup.check("valid-epoch1")                 # nobody registered the key yet
    assert r.exit_code == 1 and "registry-binding" in r.output, r.output
    loose = key_file(tmp_path, "loose.key", ETH_KEYS[1].hex(), mode=0o644)
    r = run("publish", str(VECTORS / "valid-epoch1"), "--rpc", setup.url, "--registry",
            setup.address, "--eth-key", loose)
    assert "warning: Ethereum key file" in r.output and "chmod 600" in r.output
    assert r.exit_code == 2 and "not registered" in r.output
    bad = key_file(tmp_path, "bad.key", "zz" * 32)
    r = run("registry", "deploy", "--rpc", setup.url, "--eth-key", bad)
    assert r.exit_code == 2 and "hex digits" in r.output, r.output
    r = run("registry", "check", str(VECTORS / "valid-epoch1"), "--rpc", setup.url,
            "--registry", "0x1234")
    assert r.exit_code == 2 and "not an Ethereum address" in r.output


def test_solvency_proven_on_chain(setup: Setup) -> None:
    assert setup.register(1).exit_code == 0
    me = reg.eth_address(ETH_KEYS[1])
    r = run("publish", str(VECTORS / "valid-epoch1"), "--rpc", setup.url, "--registry",
            setup.address, "--eth-key", setup.eth[1], "-j", "1", "--prove-solvent")
    assert r.exit_code == 0 and "solvency proofs checked on chain" in r.output, r.output
    assert setup.registry.call("isSolvent", reg.hex_address(me), 1) == (True,)
    code, out = setup.check_json("valid-epoch1")
    assert code == 0 and out["solvent_on_chain"] is True
    assert "checked on chain by the registry: yes" in setup.check("valid-epoch1").output
    # epoch 2 posted without it; anyone (account 2) has it checked afterwards
    assert setup.publish("valid-epoch2").exit_code == 0
    assert "registry: no" in setup.check("valid-epoch2").output
    r = run("registry", "prove-solvent", str(VECTORS / "valid-epoch2"), "--rpc", setup.url,
            "--registry", setup.address, "--eth-key", setup.eth[2])
    assert r.exit_code == 0, r.output
    assert setup.registry.call("isSolvent", reg.hex_address(me), 2) == (True,)


def test_prove_solvent_takes_only_the_posted_bundle(setup: Setup, tmp_path: Path) -> None:
    from zksolv.verifier.registry import bundle_post, read_signed_manifest, verify_call

    assert setup.register(1).exit_code == 0
    me = reg.eth_address(ETH_KEYS[1])
    parsed, _ = read_signed_manifest(VECTORS / "valid-epoch1")
    honest = bundle_post(parsed)
    # the operator posts epoch 1 with another header digest than its bundle's
    lying = reg.BundlePost(honest.epoch, honest.bundle_hash, honest.root_hash, b"\x07" * 32,
                           honest.roots_digest, None, None)
    setup.registry.post(ETH_KEYS[1], lying)
    code, out = setup.check_json("valid-epoch1")
    assert (code, out["check"]) == (1, "registry-mismatch")
    call = verify_call(VECTORS / "valid-epoch1")
    args = [call.header, call.roots, call.solvency, call.points, call.gens]
    with pytest.raises(reg.Reverted) as info:
        setup.registry.prove_solvent(ETH_KEYS[2], me, 1, args)
    assert info.value.error == ("NotPosted", ("header digest",))
    # another epoch's header for this entry
    other = verify_call(VECTORS / "valid-epoch2")
    with pytest.raises(reg.Reverted) as info:
        setup.registry.prove_solvent(ETH_KEYS[2], me, 1, [other.header, *args[1:]])
    assert info.value.error == ("NotPosted", ("header operator or epoch",))
    assert setup.registry.call("isSolvent", reg.hex_address(me), 1) == (False,)


def test_prove_solvent_refuses_a_bad_proof(setup: Setup) -> None:
    from zksolv.verifier.registry import verify_call

    assert setup.register(1).exit_code == 0
    assert setup.publish("valid-epoch1").exit_code == 0
    me = reg.eth_address(ETH_KEYS[1])
    call = verify_call(VECTORS / "valid-epoch1")
    solvency = bytearray(call.solvency)
    solvency[200] ^= 1                         # t_hat of the per-asset proof
    args = [call.header, call.roots, bytes(solvency), call.points, call.gens]
    with pytest.raises(reg.Reverted) as info:
        setup.registry.prove_solvent(ETH_KEYS[2], me, 1, args)
    assert info.value.error == ("SolvencyAsset", ())
    assert setup.registry.call("isSolvent", reg.hex_address(me), 1) == (False,)


def test_history_finds_split_views_from_the_chain_alone(setup: Setup) -> None:
    def history() -> tuple[int, dict]:
        r = run("registry", "history", "--operator", OPERATOR.hex(), "--rpc", setup.url,
                "--registry", setup.address, "--json")
        return r.exit_code, json.loads(r.output)

    assert setup.register(1).exit_code == 0 and setup.register(3).exit_code == 0
    for name in ("valid-epoch1", "valid-epoch2", "valid-gap-epoch4"):
        assert setup.publish(name).exit_code == 0
    code, out = history()
    assert code == 0 and out["consistent"] and out["conflicts"] == []
    posts = out["posts"][reg.hex_address(reg.eth_address(ETH_KEYS[1]))]
    assert [p["epoch"] for p in posts] == [4, 2, 1] and posts[0]["gap"]
    text = run("registry", "history", "--operator", OPERATOR.hex(), "--rpc", setup.url,
               "--registry", setup.address).output
    assert "declares epochs 3..3 not proven" in text and "consistent" in text
    # the second account posts epoch 3 (inside the declared gap) and another epoch 2
    assert setup.publish("valid-totals", 3).exit_code == 0            # epoch 3, no link
    code, out = history()
    assert code == 1 and not out["consistent"]
    assert [(c["check"], c["epoch"]) for c in out["conflicts"]] == [("registry-chain", 3)]
    # a third bound account posts another bundle for epoch 2
    assert setup.register(2).exit_code == 0
    assert setup.publish("unlinked-epoch2", 2).exit_code == 0
    code, out = history()
    assert code == 1
    assert [(c["check"], c["epoch"]) for c in out["conflicts"]] == [
        ("registry-mismatch", 2), ("registry-chain", 3)]
    assert bundle_hash("valid-epoch2") in out["conflicts"][0]["detail"]
    assert bundle_hash("unlinked-epoch2") in out["conflicts"][0]["detail"]


def test_verify_with_the_registry(setup: Setup) -> None:
    """zksolv verify --rpc --registry: the proofs, then each bundle against
    the public log; the split view's other bundle verifies alone but fails
    registry-mismatch here; --registry without --rpc is an input error."""
    assert setup.register(1).exit_code == 0
    for name in ("valid-epoch1", "valid-epoch2"):
        assert setup.publish(name).exit_code == 0
    common = ("--rpc", setup.url, "--registry", setup.address, "-q")
    r = run("verify", str(VECTORS / "valid-epoch1"), str(VECTORS / "valid-epoch2"), *common)
    assert r.exit_code == 0, r.output
    assert "every bundle posted for its epoch by " + reg.hex_address(
        reg.eth_address(ETH_KEYS[1])) in r.output
    assert "registry: not checked: that the node answers from the real chain" in r.output
    r = run("verify", str(VECTORS / "valid-epoch2"), *common, "--json")
    out = json.loads(r.output)
    assert r.exit_code == 0 and out["bundles"][0]["registry"]["posts"][0]["bundle_hash"] \
        == bundle_hash("valid-epoch2")
    assert run("verify", str(VECTORS / "unlinked-epoch2"), "-q").exit_code == 0
    r = run("verify", str(VECTORS / "unlinked-epoch2"), *common, "--json")
    out = json.loads(r.output)
    assert (r.exit_code, out["valid"], out["check"]) == (1, False, "registry-mismatch")
    r = run("verify", str(VECTORS / "valid-epoch2"), "--registry", setup.address)
    assert r.exit_code == 2 and "--registry: needs --rpc URL" in r.output
