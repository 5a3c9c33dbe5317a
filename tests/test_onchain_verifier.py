"""The on-chain solvency verifier (ZksolvSolvencyVerifier) against zksolv's
own verifier, on a real node: its SHAKE-256 is hashlib's; every valid vector
bundle is accepted, with the header digest zksolv computes; every tampered
solvency proof that zksolv verify rejects, the contract rejects too."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from test_epoch_support import copy_bundle, read_manifest, write_manifest

from zksolv.chain import artifacts
from zksolv.chain import registry as reg
from zksolv.chain.rpc import RpcClient
from zksolv.chain.solvency import uncompressed
from zksolv.circuits import bundle as layout
from zksolv.errors import FormatError, InputError, VerificationError
from zksolv.verifier.bundle import verify_bundle
from zksolv.verifier.registry import verify_call

VECTORS = Path(__file__).parent / "vectors"
NAME = "ZksolvSolvencyVerifier"
DEPLOYER = bytes([0x31]) * 32
CALL_GAS = 1_000_000_000


def valid_bundles() -> list[Path]:
    index = json.loads((VECTORS / "bundles" / "index.json").read_text())
    names = {b for v in index["vectors"] if v["expect"] == "valid" for b in v["bundles"]}
    spec = json.loads((VECTORS / "spec" / "index.json").read_text())
    out = [VECTORS / "bundles" / n for n in sorted(names)]
    out += [VECTORS / b["bundle"] for b in spec["bundles"] if b["expect"] == "valid"]
    out += [VECTORS / h["bundle"] for h in spec["header_digests"]]
    return sorted(set(out))


@pytest.fixture(scope="module")
def verifier(anvil_node) -> reg.Contract:  # noqa: ANN001 - the session's node
    anvil_node.rpc("anvil_setBalance", reg.hex_address(reg.eth_address(DEPLOYER)), hex(10**21))
    rpc = RpcClient(anvil_node.url, timeout=300)
    receipt = reg.send_transaction(rpc, DEPLOYER, to=None,
                                   data=artifacts.load(NAME).bytecode)
    return reg.Contract(rpc, bytes.fromhex(receipt["contractAddress"][2:]), NAME)


def on_chain(verifier: reg.Contract, bundle: Path, solvency: bytes | None = None) -> bytes:
    call = verify_call(bundle, solvency=solvency)
    (digest,) = verifier.call("verify", *call.args(), gas=CALL_GAS)
    return bytes(digest)


def test_shake256_is_hashlibs(verifier: reg.Contract) -> None:
    rng = random.Random(5)
    for length in (0, 1, 31, 135, 136, 137, 271, 272, 500):
        data = rng.randbytes(length)
        for n in (1, 16, 32, 64):
            (out,) = verifier.call("shake256", data, n)
            assert out == hashlib.shake_256(data).digest(n), (length, n)


@pytest.mark.parametrize("bundle", valid_bundles(), ids=lambda p: p.name)
def test_every_valid_bundle_is_accepted(verifier: reg.Contract, bundle: Path) -> None:
    report = verify_bundle(bundle)
    from zksolv.verifier.registry import read_signed_manifest

    parsed, _ = read_signed_manifest(bundle)
    assert report.bundle_hash == parsed.bundle_hash
    assert on_chain(verifier, bundle) == parsed.header.digest()


def tampered(bundle: Path, tmp: Path, solvency: bytes) -> Path:
    """The bundle with other solvency.bin bytes, its manifest re-hashed and
    re-signed by the operator key: only the proofs can catch it."""
    out = copy_bundle(bundle, tmp / "t")
    (out / layout.SOLVENCY_FILE).write_bytes(solvency)
    write_manifest(out, read_manifest(out))
    return out


def flips(solvency: bytes, k: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """Tampered solvency.bin bytes: a bit flipped in every field kind of both
    proofs (points, the three scalars, the final a and b), and the two
    proofs' points exchanged with another valid encoding of a point."""
    asset_len, _ = layout.solvency_sizes(k)
    out = []
    for base, name, length in ((0, "asset", asset_len), (asset_len, "valued",
                                                        len(solvency) - asset_len)):
        rounds = (length - 352) // 96
        fields = {"A": 0, "S": 48, "T1": 96, "T2": 144, "t_hat": 192, "tau_x": 224, "mu": 256,
                  "L1": 288, "R1": 336, f"R{rounds}": 288 + 96 * (rounds - 1) + 48,
                  "a": 288 + 96 * rounds, "b": 320 + 96 * rounds}
        scalars = ("t_hat", "tau_x", "mu", "a", "b")
        for field, at in fields.items():
            # a point: a bit of x (not the flags byte); a scalar: its low
            # byte (little-endian), so that it stays below r
            pos = base + at + (0 if field in scalars else rng.randrange(1, 48))
            data = bytearray(solvency)
            data[pos] ^= 1 << rng.randrange(8)
            out.append((f"{name}.{field}@{pos - base}", bytes(data)))
    return out


def rejected_on_chain(verifier: reg.Contract, bundle: Path, original: Path | None = None) -> str:
    """Why the contract refused the bundle. A compressed point that does not
    decode has no uncompressed form: the original bundle's points stand in
    for it, and the encodings disagree."""
    try:
        call = verify_call(bundle)
        points = call.points
    except FormatError:
        assert original is not None
        call = verify_call(bundle, solvency=(bundle / layout.SOLVENCY_FILE).read_bytes(),
                           points_from=original)
        points = call.points
    try:
        verifier.call("verify", call.header, call.root_hash, call.roots, call.solvency, points,
                      call.gens, gas=CALL_GAS)
    except reg.Reverted as exc:
        assert exc.error is not None
        return exc.error[0]
    except InputError as exc:                  # a point the precompile refuses
        return str(exc)
    raise AssertionError(f"the contract accepted {bundle}")


@pytest.mark.parametrize("bundle", [VECTORS / "bundles" / "valid-epoch1",
                                    VECTORS / "bundles" / "margin-valid",
                                    VECTORS / "spec" / "chain-valid",
                                    VECTORS / "spec" / "haircut-0"], ids=lambda p: p.name)
def test_every_tampered_solvency_proof_rejected(verifier: reg.Contract, bundle: Path,
                                                tmp_path: Path) -> None:
    original = (bundle / layout.SOLVENCY_FILE).read_bytes()
    k = len(read_manifest(bundle)["assets"])
    rng = random.Random(bundle.name)
    cases = flips(original, k, rng)
    assert len(cases) == 24
    for i, (what, data) in enumerate(cases):
        t = tampered(bundle, tmp_path / str(i), data)
        with pytest.raises(VerificationError) as info:
            verify_bundle(t)
        assert info.value.check.startswith("solvency"), (what, info.value)
        reason = rejected_on_chain(verifier, t, bundle)
        assert reason, what


def test_the_vectors_tampered_solvency_bundles(verifier: reg.Contract) -> None:
    for name in ("solvency-asset", "solvency-valued", "reserves-raised"):
        bundle = VECTORS / "bundles" / name
        with pytest.raises(VerificationError):
            verify_bundle(bundle)
        assert rejected_on_chain(verifier, bundle), name


def test_encodings_must_agree(verifier: reg.Contract) -> None:
    bundle = VECTORS / "bundles" / "valid-epoch1"
    call = verify_call(bundle)
    # the uncompressed A replaced by -A (y -> p - y): the sign bit disagrees
    pts = bytearray(call.points)
    y = int.from_bytes(pts[64:128], "big")
    from zksolv.core.group import P

    pts[64:128] = (P - y).to_bytes(64, "big")
    with pytest.raises(reg.Reverted) as info:
        verifier.call("verify", call.header, call.root_hash, call.roots, call.solvency,
                      bytes(pts), call.gens, gas=CALL_GAS)
    assert info.value.error is not None and info.value.error[0] == "BadEncoding"
    # other generators than the pinned ones
    gens = bytearray(call.gens)
    gens[384:512] = uncompressed(bytes.fromhex(read_manifest(bundle)["tree"]
                                               ["root_commitments"][0]))
    with pytest.raises(reg.Reverted) as info:
        verifier.call("verify", call.header, call.root_hash, call.roots, call.solvency,
                      call.points, bytes(gens), gas=CALL_GAS)
    assert info.value.error is not None and info.value.error[0] == "BadGenerators"
    # another root hash than the one the proofs are bound to
    with pytest.raises(reg.Reverted) as info:
        verifier.call("verify", call.header, bytes(32), call.roots, call.solvency,
                      call.points, call.gens, gas=CALL_GAS)
    assert info.value.error is not None and info.value.error[0] == "SolvencyAsset"


def assets(k: int) -> tuple:
    from zksolv.snapshot import Asset

    return tuple(Asset(f"T{j}", 6, 100 + j, 9_000 + j, 10**12) for j in range(k))


@pytest.mark.slow
def test_gas_for_1_4_16_assets(chain, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    """Prove 1-, 4- and 16-asset epochs, verify each on chain and print the
    gas of the verification (eth_estimateGas of a call to verify: calldata
    and execution; the block gas limit raised to 300M for the 16-asset one)."""
    from test_epoch_support import make_snapshot, prove, rows_for

    chain.rpc("anvil_setBlockGasLimit", hex(300_000_000))
    chain.rpc("anvil_setBalance", reg.hex_address(reg.eth_address(DEPLOYER)), hex(10**21))
    rpc = RpcClient(chain.url, timeout=600)
    receipt = reg.send_transaction(rpc, DEPLOYER, to=None, data=artifacts.load(NAME).bytecode)
    verifier = reg.Contract(rpc, bytes.fromhex(receipt["contractAddress"][2:]), NAME)
    figures = []
    for k in (1, 4, 16):
        bundle = tmp_path / f"b{k}"
        prove(make_snapshot(tmp_path / f"s{k}", rows_for(4, k), assets=assets(k)), bundle)
        call = verify_call(bundle)
        gas = verifier.estimate_gas("verify", *call.args())
        calldata = len(verifier.abi.encode("verify", call.args()))
        assert on_chain(verifier, bundle) == hashlib.sha256(call.header).digest()
        assert verify_bundle(bundle).bundle_hash
        figures.append((k, gas, calldata))
    with capsys.disabled():
        for k, gas, calldata in figures:
            print(f"\non-chain solvency verification, {k} asset(s): {gas:,} gas, "
                  f"{calldata:,} bytes of calldata")
    assert figures[0][1] < figures[1][1] < figures[2][1]


def test_headers_zksolv_refuses_are_refused(verifier: reg.Contract) -> None:
    """All prices 0 (spec vector all-prices-0): solvency-bounds for zksolv
    verify, SolvencyBounds on chain; a header cut short or with a byte more,
    or of an unknown version: refused before any proof is read."""
    bundle = VECTORS / "spec" / "all-prices-0"
    with pytest.raises(VerificationError) as info:
        verify_bundle(bundle)
    assert info.value.check == "solvency-bounds"
    call = verify_call(bundle)
    with pytest.raises(reg.Reverted) as rev:
        verifier.call("verify", *call.args(), gas=CALL_GAS)
    assert rev.value.error == ("SolvencyBounds", ("every asset has price 0",))
    good = verify_call(VECTORS / "bundles" / "valid-epoch1")
    for header, error in ((good.header[:-1], "BadHeader"), (good.header + b"\0", "BadHeader"),
                          (b"zksolv/epoch-header/v9" + good.header[22:], "Unsupported")):
        with pytest.raises(reg.Reverted) as rev:
            verifier.call("verify", header, *good.args()[1:], gas=CALL_GAS)
        assert rev.value.error is not None and rev.value.error[0] == error
