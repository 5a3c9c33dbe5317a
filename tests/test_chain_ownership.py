"""The EIP-712 ReserveOwnership statement: its digest against eth-account's
independent EIP-712 encoder, against a signature made by the real node
(anvil's ``eth_signTypedData_v4``) and against the vector in docs/chain.md;
strict recovery (high s, wrong v, wrong length, r or s out of range refused);
a signature over any other chain, block, epoch, operator or holder recovering
to another address; the Ethereum key file read as a hostile file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from chain_node import AnvilNode
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from zksolv.chain import ownership
from zksolv.chain.ownership import SECP256K1_N
from zksolv.errors import InputError, SignatureError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "chain.md"
KEY = bytes.fromhex("11" * 32)
HOLDER = ownership.address_of(KEY)
STATEMENT: dict[str, Any] = dict(chain_id=1, holder=HOLDER, block_number=21_000_000,
                                 block_hash=b"\xaa" * 32, epoch=7, operator=b"\x33" * 32)


def eth_account_digest(td: dict[str, Any]) -> bytes:
    return bytes(_hash_eip191_message(encode_typed_data(full_message=td)))


def doc_value(name: str) -> str:
    """A hex value from the vector in docs/chain.md (``name = hex``, possibly
    wrapped over several lines)."""
    text = DOCS.read_text()
    m = re.search(rf"^{name}\s+=\s+([0-9a-f]+(?:\n\s+[0-9a-f]+)*)", text, re.M)
    assert m, name
    return re.sub(r"\s+", "", m.group(1))


def test_digest_matches_the_docs_vector() -> None:
    assert HOLDER.hex() == "19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"
    assert f"`0x{HOLDER.hex()}`" in DOCS.read_text()
    assert ownership.domain_separator(1).hex() == doc_value("domainSeparator")
    fields = {k: v for k, v in STATEMENT.items() if k != "chain_id"}
    assert ownership.struct_hash(**fields).hex() == doc_value("hashStruct")
    assert ownership.digest(**STATEMENT).hex() == doc_value("digest")
    assert ownership.sign(KEY, **STATEMENT).hex() == doc_value("signature")
    text = DOCS.read_text()
    from eth_utils import keccak

    for type_string in (ownership.DOMAIN_TYPE, ownership.STATEMENT_TYPE):
        assert f"keccak256(\"{type_string}\")" in text
        assert keccak(text=type_string).hex() in text


statements = st.fixed_dictionaries({
    "chain_id": st.integers(1, 2**256 - 1),
    "holder": st.binary(min_size=20, max_size=20),
    "block_number": st.integers(0, 2**256 - 1),
    "block_hash": st.binary(min_size=32, max_size=32),
    "epoch": st.integers(0, 2**64 - 1),
    "operator": st.binary(min_size=32, max_size=32),
})


@given(statements)
def test_digest_agrees_with_eth_account(stmt: dict[str, Any]) -> None:
    """eth-account's encode_typed_data builds the digest from the JSON typed
    data by its own code path: both must agree on every statement."""
    assert ownership.digest(**stmt) == eth_account_digest(ownership.typed_data(**stmt))


def test_digest_is_the_hand_built_keccak() -> None:
    from eth_utils import keccak

    word = lambda x: x.to_bytes(32, "big")  # noqa: E731
    s = STATEMENT
    domain = keccak(keccak(text="EIP712Domain(string name,string version,uint256 chainId)")
                    + keccak(text="zksolv reserves") + keccak(text="1") + word(s["chain_id"]))
    struct = keccak(keccak(text="ReserveOwnership(address holder,uint256 blockNumber,"
                                "bytes32 blockHash,uint64 epoch,bytes32 operator)")
                    + bytes(12) + s["holder"] + word(s["block_number"]) + s["block_hash"]
                    + word(s["epoch"]) + s["operator"])
    assert ownership.digest(**s) == keccak(b"\x19\x01" + domain + struct)


def test_node_signs_the_typed_data_to_the_same_digest(chain: AnvilNode) -> None:
    """anvil signs the eth_signTypedData_v4 JSON with an unlocked account by
    its own EIP-712 code (Rust): our recovery of that signature over our
    digest gives back that account."""
    account = bytes.fromhex(chain.accounts[3][2:])
    stmt = {**STATEMENT, "chain_id": 31337, "holder": account, "epoch": 2**64 - 1}
    sig = chain.rpc("eth_signTypedData_v4", chain.accounts[3], ownership.typed_data(**stmt))
    assert ownership.recover(bytes.fromhex(sig[2:]), **stmt) == account


@given(st.binary(min_size=32, max_size=32).filter(
    lambda k: 0 < int.from_bytes(k, "big") < SECP256K1_N), statements)
def test_sign_recover_round_trip(key: bytes, stmt: dict[str, Any]) -> None:
    stmt = {**stmt, "holder": ownership.address_of(key)}
    sig = ownership.sign(key, **stmt)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
    assert ownership.recover(sig, **stmt) == stmt["holder"]


@pytest.mark.parametrize("change", [
    {"chain_id": 5}, {"block_number": 21_000_001}, {"block_hash": b"\xab" * 32},
    {"epoch": 8}, {"operator": b"\x34" * 32}, {"holder": b"\x01" * 20},
])
def test_another_statement_recovers_another_address(change: dict[str, Any]) -> None:
    sig = ownership.sign(KEY, **STATEMENT)
    assert ownership.recover(sig, **{**STATEMENT, **change}) != HOLDER


def test_signing_for_another_holder_is_refused() -> None:
    with pytest.raises(InputError, match="not the holder"):
        ownership.sign(KEY, **{**STATEMENT, "holder": b"\x01" * 20})


def _with(sig: bytes, *, r: int | None = None, s: int | None = None,
          v: int | None = None) -> bytes:
    r0, s0, v0 = sig[:32], sig[32:64], sig[64]
    return ((r0 if r is None else r.to_bytes(32, "big"))
            + (s0 if s is None else s.to_bytes(32, "big")) + bytes([v0 if v is None else v]))


def test_high_s_twin_is_refused() -> None:
    """(r, n - s, v flipped) is the same ECDSA signature mirrored: it would
    recover to the holder, and is refused so that a statement has one
    signature (EIP-2)."""
    sig = ownership.sign(KEY, **STATEMENT)
    s = int.from_bytes(sig[32:64], "big")
    twin = _with(sig, s=SECP256K1_N - s, v=55 - sig[64])
    from eth_keys import keys  # the twin is a valid signature for a lax checker

    lax = keys.Signature(vrs=(twin[64] - 27, int.from_bytes(twin[:32], "big"), SECP256K1_N - s))
    assert lax.recover_public_key_from_msg_hash(
        ownership.digest(**STATEMENT)).to_canonical_address() == HOLDER
    with pytest.raises(SignatureError, match="upper half"):
        ownership.recover(twin, **STATEMENT)


@pytest.mark.parametrize("mutate, words", [
    (lambda sig: sig[:64], "65 bytes"),
    (lambda sig: sig + b"\x00", "65 bytes"),
    (lambda sig: b"", "65 bytes"),
    (lambda sig: _with(sig, v=0), "v is 0"),
    (lambda sig: _with(sig, v=1), "v is 1"),
    (lambda sig: _with(sig, v=29), "v is 29"),
    (lambda sig: _with(sig, v=37), "v is 37"),  # EIP-155 style v: not for typed data
    (lambda sig: _with(sig, r=0), "r is zero"),
    (lambda sig: _with(sig, r=SECP256K1_N), "r is zero or not below"),
    (lambda sig: _with(sig, r=2**256 - 1), "r is zero or not below"),
    (lambda sig: _with(sig, s=0), "s is zero"),
    (lambda sig: _with(sig, s=SECP256K1_N // 2 + 1), "upper half"),
])
def test_strict_recovery_refuses(mutate: Any, words: str) -> None:
    sig = ownership.sign(KEY, **STATEMENT)
    with pytest.raises(SignatureError, match=words):
        ownership.recover(mutate(sig), **STATEMENT)


def test_recovery_of_an_r_off_the_curve_is_refused() -> None:
    """r = 5 has no curve point with x = 5 (5^3 + 7 = 132 is not a square
    mod p): nothing recovers; a typed refusal, not an exception of the
    library."""
    sig = _with(ownership.sign(KEY, **STATEMENT), r=5)
    with pytest.raises(SignatureError, match="no public key"):
        ownership.recover(sig, **STATEMENT)


@pytest.mark.parametrize("field, value", [
    ("chain_id", 0), ("chain_id", 2**256), ("holder", b"\x00" * 19), ("block_number", -1),
    ("block_hash", b"\x00" * 31), ("epoch", 2**64), ("operator", b"\x00" * 33),
    ("epoch", 1.0), ("epoch", True), ("chain_id", "1"),
])
def test_statement_fields_are_bounded(field: str, value: Any) -> None:
    with pytest.raises(ValueError):
        ownership.digest(**{**STATEMENT, field: value})


# -- the key file -----------------------------------------------------------------------


def _key_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    p = tmp_path / "eth.key"
    p.write_bytes(content)
    p.chmod(mode)
    return p


@pytest.mark.parametrize("content", [
    b"11" * 32, b"0x" + b"11" * 32, b"11" * 32 + b"\n", b"0x" + b"11" * 32 + b"\r\n",
    b"11" * 31 + b"1A",
])
def test_key_file_forms(tmp_path: Path, content: bytes) -> None:
    key = ownership.load_eth_key(_key_file(tmp_path, content))
    assert key.hex().lower() == content.decode().strip().removeprefix("0x").lower()


@pytest.mark.parametrize("content, words", [
    (b"11" * 31, "64 hex digits"),
    (b"11" * 33, "64 hex digits"),
    (b" " + b"11" * 32, "64 hex digits"),
    (b"11" * 32 + b"\n\n", "64 hex digits"),
    (b"0X" + b"11" * 32, "64 hex digits"),
    (b"\xff" * 64, "64 hex digits"),
    (b"00" * 32, "zero or not below"),
    (SECP256K1_N.to_bytes(32, "big").hex().encode(), "zero or not below"),
    (b"1" * 300, "at most 256"),
])
def test_key_file_refusals(tmp_path: Path, content: bytes, words: str) -> None:
    with pytest.raises(InputError, match=words):
        ownership.load_eth_key(_key_file(tmp_path, content))


def test_key_file_must_be_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        ownership.load_eth_key(fifo)
    with pytest.raises(InputError, match="directory"):
        ownership.load_eth_key(tmp_path)
    with pytest.raises(InputError, match="no such"):
        ownership.load_eth_key(tmp_path / "missing")


def test_key_file_readable_by_others_is_warned(tmp_path: Path) -> None:
    warnings: list[str] = []
    ownership.load_eth_key(_key_file(tmp_path, b"11" * 32, 0o644), warn=warnings.append)
    assert len(warnings) == 1 and "chmod 600" in warnings[0]
    warnings.clear()
    ownership.load_eth_key(_key_file(tmp_path, b"11" * 32, 0o600), warn=warnings.append)
    assert warnings == []


# -- addresses ----------------------------------------------------------------------------


def test_parse_address_one_spelling_in_bundles_checksum_in_headers() -> None:
    from eth_utils import to_checksum_address

    from zksolv.chain.evidence import eip55, parse_address

    lower = "0x" + HOLDER.hex()
    mixed = to_checksum_address(lower)  # eth-utils' EIP-55, independent of ours
    assert mixed != lower and eip55(HOLDER) == mixed
    assert parse_address(lower, where="w") == HOLDER
    assert parse_address(mixed, where="w", allow_checksummed=True) == HOLDER
    with pytest.raises(InputError, match="must be lowercase"):
        parse_address(mixed, where="w")
    assert mixed.endswith("A")  # one letter's case changed: a typo the checksum catches
    with pytest.raises(InputError, match="EIP-55 checksum"):
        parse_address(mixed[:-1] + "a", where="w", allow_checksummed=True)
    for bad in (lower[2:], lower + "0", lower[:-1], "0X" + HOLDER.hex(), " " + lower,
                lower + "\n", "0x" + "g" * 40):
        with pytest.raises(InputError, match="40 hex digits"):
            parse_address(bad, where="w", allow_checksummed=True)


def _recover_or_refusal(sig: bytes, digest: bytes, reference: bool) -> bytes | str:
    try:
        return ownership.recover_digest(sig, digest, reference=reference)
    except SignatureError:
        return "refused"


@given(st.binary(min_size=32, max_size=32).filter(
    lambda k: 0 < int.from_bytes(k, "big") < SECP256K1_N),
    st.binary(min_size=32, max_size=32), st.binary(min_size=65, max_size=65))
def test_fast_backend_agrees_with_the_reference(key: bytes, digest: bytes, noise: bytes) -> None:
    """libsecp256k1 (coincurve) and eth-keys' pure-Python backend recover
    the same address from an honest signature, and agree on an arbitrary
    65 bytes (an address or a refusal) and on a signature over another
    digest."""
    assert ownership.backend_name() == "coincurve"  # the extra installs it
    assert ownership.backend_name(reference=True) == "native"
    sig = ownership.sign_digest(key, digest)
    honest = ownership.recover_digest(sig, digest)
    assert honest == ownership.address_of(key)
    assert ownership.recover_digest(sig, digest, reference=True) == honest
    for s, d in ((sig, bytes(32)), (noise[:64] + bytes([27 + noise[64] % 2]), digest),
                 (noise, digest)):
        assert _recover_or_refusal(s, d, False) == _recover_or_refusal(s, d, True)
