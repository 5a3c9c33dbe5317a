"""Ed25519 operator keys: small-order and non-canonical keys are refused at
every boundary (``zksolv/core/ed25519.py``, docs/bundle-format.md).

Under the identity key ``01 00..00`` the signature R = identity, S = 0
verifies for every message ([S]B = R + [k]A holds with both sides the
identity), and OpenSSL accepts both: so a bundle "signed" by that key was
valid for anyone to make, with any content."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_epoch_support import ASSETS1, KEY_HEX, make_snapshot, rows_for, run, verify_json

from zksolv.circuits import bundle as layout
from zksolv.core import ed25519
from zksolv.errors import FormatError, InputError, ProverFault, VerificationError
from zksolv.prover import keys
from zksolv.verifier.bundle import check_signature, parse_operator_key

IDENTITY = bytes([1]) + bytes(31)
FORGED_SIGNATURE = IDENTITY + bytes(32)   # R = identity, S = 0

# The eight points of order dividing 8, canonically encoded (y, sign of x).
SMALL_ORDER = [bytes.fromhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
)]


def non_canonical() -> list[bytes]:
    """y >= p (y + p for the 19 values that have one, with either sign), and
    x = 0 with the sign bit set (the identity's and its negation's)."""
    out = [bytes([1]) + bytes(30) + b"\x80", bytes.fromhex("ec" + "ff" * 31)]
    for y in range(ed25519.P, 1 << 255):
        for sign in (0, 1):
            out.append((y | sign << 255).to_bytes(32, "little"))
    return out


def test_the_eight_small_order_points_are_exactly_those_refused() -> None:
    points = [ed25519.decode_point(k) for k in SMALL_ORDER]
    assert len(set(points)) == 8 and all(ed25519.has_small_order(p) for p in points)
    # they form the group of order 8: closed under addition
    assert {ed25519.add(p, q) for p in points for q in points} == set(points)
    for key in SMALL_ORDER:
        with pytest.raises(FormatError, match="small-order"):
            ed25519.check_public_key(key)


@pytest.mark.parametrize("key", non_canonical(), ids=lambda k: k.hex()[:4] + ".." + k.hex()[-2:])
def test_non_canonical_encodings_are_refused(key: bytes) -> None:
    with pytest.raises(FormatError, match="non-canonical"):
        ed25519.check_public_key(key)


def test_real_keys_pass_and_off_curve_and_short_keys_fail() -> None:
    rng = random.Random(5)
    for _ in range(64):
        key = keys.public_key_bytes(Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)))
        ed25519.check_public_key(key)
        x, y = ed25519.decode_point(key)
        assert (-x * x + y * y - 1 - ed25519.D * x * x * y * y) % ed25519.P == 0
    off = [y.to_bytes(32, "little") for y in range(2, 40)
           if _no_x(y)]
    assert off
    for key in off:
        with pytest.raises(FormatError, match="not an Ed25519 point"):
            ed25519.check_public_key(key)
    with pytest.raises(FormatError, match="32 bytes"):
        ed25519.check_public_key(bytes(31))


def _no_x(y: int) -> bool:
    p = ed25519.P
    u, v = (y * y - 1) % p, (ed25519.D * y * y + 1) % p
    return pow(u * pow(v, -1, p) % p, (p - 1) // 2, p) != 1


def test_signature_scalar_must_be_below_l() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    raw = b'{"any": "manifest"}\n'
    good = key.sign(layout.signature_message(layout.bundle_hash(raw)))
    check_signature(raw, good, keys.public_key_bytes(key))
    s = int.from_bytes(good[32:], "little") + ed25519.L   # same point, S + L < 2^256
    bad = good[:32] + s.to_bytes(32, "little")
    with pytest.raises(VerificationError, match="S is not below L") as err:
        check_signature(raw, bad, keys.public_key_bytes(key))
    assert err.value.check == "signature"


def test_the_forged_signature_under_each_small_order_key_is_refused() -> None:
    raw = b'{"any": "manifest"}\n'
    for key in SMALL_ORDER + [(ed25519.P + 1).to_bytes(32, "little")]:
        with pytest.raises(VerificationError, match="not a usable Ed25519 key") as err:
            check_signature(raw, FORGED_SIGNATURE, key)
        assert err.value.check == "signature"


def test_operator_pins_refuse_unusable_keys(tmp_path: Path) -> None:
    for key in SMALL_ORDER[:2] + non_canonical()[:1]:
        with pytest.raises(InputError, match="not a usable operator public key"):
            parse_operator_key(key.hex())
    pub = tmp_path / "op.pub"
    pub.write_text(IDENTITY.hex() + "\n")
    res = run("verify", tmp_path, "--operator", pub)
    assert res.exit_code == 2 and "not a usable operator public key" in res.output, res.output
    res = run("verify", tmp_path, "--operator", IDENTITY.hex())
    assert res.exit_code == 2 and "small-order" in res.output, res.output


def test_keygen_output_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, public = keys.write_master_key(tmp_path / "op.key")
    ed25519.check_public_key(public)

    class IdentityKey:
        def public_key(self) -> IdentityKey:
            return self

        def public_bytes(self, *_: object) -> bytes:
            return IDENTITY

    with pytest.raises(ProverFault, match="unusable"):
        keys.public_key_bytes(IdentityKey())  # type: ignore[arg-type]


class _IdentitySigner:
    """What anyone can do without a key: name the identity as the operator
    and sign every message with R = identity, S = 0."""

    def sign(self, message: bytes) -> bytes:
        return FORGED_SIGNATURE

    def public_key(self) -> _IdentitySigner:
        return self

    def public_bytes(self, *_: object) -> bytes:
        return IDENTITY


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real bundle (proofs and all) whose manifest names the identity as
    operator and carries the signature (R = identity, S = 0), and acct-2's
    inclusion proof from it (``acct-2.json``)."""
    from zksolv.prover import epoch

    d = tmp_path_factory.mktemp("forged")
    snap = make_snapshot(d / "s5", rows_for(5, 1), epoch=5, assets=ASSETS1)
    with pytest.MonkeyPatch.context() as mp:
        # the rule this file tests switched off, as it was: keys were not checked
        mp.setattr(ed25519, "check_public_key", lambda key: None)
        mp.setattr(keys, "signing_key", lambda master: _IdentitySigner())
        epoch.prove_epoch(snap, d / "b5", master_key=bytes.fromhex(KEY_HEX),
                          inclusion_db=d / "b5.sqlite")
        res = run("inclusion", "export", "--db", d / "b5.sqlite", "--account", "acct-2",
                  "--out", d / "acct-2.json")
        assert res.exit_code == 0, res.output
    assert json.loads((d / "b5" / "manifest.json").read_text())["operator"] == IDENTITY.hex()
    yield d


def test_verify_refuses_a_bundle_signed_by_the_identity_key(forged: Path) -> None:
    code, rep = verify_json(forged / "b5")
    assert (code, rep["check"]) == (1, "signature"), rep
    assert "small-order" in rep["detail"]


def test_inclusion_verify_refuses_a_proof_under_the_identity_key(forged: Path) -> None:
    bundle_hash = layout.bundle_hash((forged / "b5" / "manifest.json").read_bytes()).hex()
    for anchor in (("--bundle", forged / "b5"), ("--bundle-hash", bundle_hash)):
        res = run("inclusion", "verify", forged / "acct-2.json", "--account", "acct-2", *anchor)
        assert res.exit_code == 1, res.output
        assert "signature" in res.output and "small-order" in res.output, res.output
