"""The group layer: both backends, byte-identical encodings, strict decoding,
RFC 9380 hash-to-curve vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksolv.core import mcl
from zksolv.core.field import R
from zksolv.core.generators import GENERATOR_DST, generators
from zksolv.core.group import IDENTITY_BYTES, Backend, P, get_backend
from zksolv.errors import FormatError

# RFC 9380, appendix J.9.1, suite BLS12381G1_XMD:SHA-256_SSWU_RO_.
RFC9380_DST = b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"
RFC9380_VECTORS = [
    (
        b"",
        "052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a1",
        "08ba738453bfed09cb546dbb0783dbb3a5f1f566ed67bb6be0e8c67e2e81a4cc68ee29813bb7994998f3eae0c9c6a265",
    ),
    (
        b"abc",
        "03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903",
        "0b9c15f3fe6e5cf4211f346271d7b01c8f3b28be689c8429c85b67af215533311f0b8dfaaa154fa6b88176c229f2885d",
    ),
    (
        b"abcdef0123456789",
        "11e0b079dea29a68f0383ee94fed1b940995272407e3bb916bbf268c263ddd57a6a27200a784cbc248e84f357ce82d98",
        "03a87ae2caf14e8ee52e51fa2ed8eefe80f02457004ba4d486d6aa1f517c0889501dc7413753f9599b099ebcbbd2d709",
    ),
]


def _compressed(x: int, y: int) -> bytes:
    """ZCash compressed encoding of an affine point (x, y)."""
    flags = 0x80 | (0x20 if y > (P - 1) // 2 else 0)
    data = bytearray(x.to_bytes(48, "big"))
    data[0] |= flags
    return bytes(data)


def _curve_point_outside_subgroup() -> bytes:
    """A point of E(F_p): y^2 = x^3 + 4 that is not in the order-r subgroup
    (the cofactor is ~2^126, so the first point found is outside)."""
    x = 1
    while True:
        rhs = (x**3 + 4) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return _compressed(x, y)
        x += 1


def _x_off_curve() -> bytes:
    x = 1
    while True:
        rhs = (x**3 + 4) % P
        if pow(rhs, (P - 1) // 2, P) == P - 1:  # not a square: no y exists
            return _compressed(x, 0)
        x += 1


@pytest.mark.parametrize("msg,x_hex,y_hex", RFC9380_VECTORS)
def test_hash_to_curve_matches_rfc9380_vectors(
    backend: Backend, msg: bytes, x_hex: str, y_hex: str
) -> None:
    point = backend.hash_to_curve(msg, RFC9380_DST)
    assert backend.encode(point) == _compressed(int(x_hex, 16), int(y_hex, 16))


def test_generators_identical_on_both_backends(ark: Backend, pyecc: Backend) -> None:
    ga, gp = generators(ark), generators(pyecc)
    for a, p in [(ga.g, gp.g), (ga.h, gp.h), (ga.u, gp.u)]:
        assert ark.encode(a) == pyecc.encode(p)
    Ga, Ha = ga.vectors(4)
    Gp, Hp = gp.vectors(4)
    assert [ark.encode(p) for p in Ga[:4] + Ha[:4]] == [pyecc.encode(p) for p in Gp[:4] + Hp[:4]]
    # The generators are distinct and none is the identity.
    encodings = {ark.encode(p) for p in [ga.g, ga.h, ga.u, *Ga[:4], *Ha[:4]]}
    assert len(encodings) == 11 and IDENTITY_BYTES not in encodings
    assert ark.encode(ga.g) == ark.encode(ark.hash_to_curve(b"value", GENERATOR_DST))


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=R - 1), st.integers(min_value=0, max_value=R - 1))
def test_arithmetic_is_byte_identical_across_backends(a: int, b: int) -> None:
    ark, pyecc = get_backend("arkworks"), get_backend("py_ecc")
    ga, gp = generators(ark), generators(pyecc)
    ra = ark.add(ark.mul(ga.g, a), ark.neg(ark.mul(ga.h, b)))
    rp = pyecc.add(pyecc.mul(gp.g, a), pyecc.neg(pyecc.mul(gp.h, b)))
    assert ark.encode(ra) == pyecc.encode(rp)
    assert ark.encode(ark.msm([ga.g, ga.h], [a, -b])) == ark.encode(ra)
    assert pyecc.encode(pyecc.msm([gp.g, gp.h], [a, -b])) == pyecc.encode(rp)
    if mcl.available():
        fast = get_backend("mcl")
        gm = generators(fast)
        rm = fast.add(fast.mul(gm.g, a), fast.neg(fast.mul(gm.h, b)))
        assert fast.encode(rm) == ark.encode(ra)
        assert fast.encode(fast.msm([gm.g, gm.h], [a, -b])) == ark.encode(ra)
        assert fast.encode_many([rm, gm.g]) == [ark.encode(ra), ark.encode(ga.g)]


def test_scalars_are_reduced_mod_r(backend: Backend) -> None:
    g = generators(backend).g
    assert backend.eq(backend.mul(g, R + 5), backend.mul(g, 5))
    assert backend.is_identity(backend.mul(g, R))


def test_encoding_round_trips(backend: Backend) -> None:
    g = generators(backend).g
    for k in (1, 2, R - 1, 123456789):
        data = backend.encode(backend.mul(g, k))
        assert len(data) == 48
        assert backend.encode(backend.decode(data)) == data


def test_identity_refused_unless_allowed(backend: Backend) -> None:
    with pytest.raises(FormatError, match="identity"):
        backend.decode(IDENTITY_BYTES)
    assert backend.is_identity(backend.decode(IDENTITY_BYTES, allow_identity=True))
    assert backend.encode(backend.identity()) == IDENTITY_BYTES


def test_point_outside_subgroup_refused(backend: Backend) -> None:
    # word for word what every backend and the holder's page (bls12381.js) say
    with pytest.raises(FormatError) as exc:
        backend.decode(_curve_point_outside_subgroup(), what="level 5")
    assert str(exc.value) == "level 5: not in the prime-order subgroup"


def test_point_off_curve_refused(backend: Backend) -> None:
    with pytest.raises(FormatError) as exc:
        backend.decode(_x_off_curve(), what="level 5")
    assert str(exc.value) == "level 5: not on the curve"


def test_non_canonical_x_refused(backend: Backend) -> None:
    # x + p has the same residue but is not the canonical encoding.
    good = backend.encode(generators(backend).g)
    x = int.from_bytes(bytes([good[0] & 0x1F]) + good[1:], "big")
    if x + P < 1 << 381:
        bad = bytearray((x + P).to_bytes(48, "big"))
        bad[0] |= good[0] & 0xE0
        with pytest.raises(FormatError, match="modulus"):
            backend.decode(bytes(bad))
    with pytest.raises(FormatError, match="modulus"):
        backend.decode(bytes([0x9F]) + b"\xff" * 47)


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "expected 48 bytes"),
        (bytes(47), "expected 48 bytes"),
        (bytes(49), "expected 48 bytes"),
        (bytes(48), "compression flag"),
        (bytes([0xE0]) + bytes(47), "identity"),  # infinity with sign flag
        (bytes([0xC0]) + bytes(46) + b"\x01", "identity"),  # infinity with x != 0
    ],
)
def test_malformed_encodings_refused(backend: Backend, data: bytes, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        backend.decode(data)


def test_sign_flag_selects_the_other_root(backend: Backend) -> None:
    good = bytearray(backend.encode(generators(backend).g))
    good[0] ^= 0x20
    flipped = backend.decode(bytes(good))
    assert backend.eq(flipped, backend.neg(generators(backend).g))


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("openssl")
