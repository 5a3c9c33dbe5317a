"""Circuit building blocks: hashes, tree sums, header digest, coefficient
bounds, key derivation and the keyed shuffle."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_epoch_support import make_snapshot, rows_for, run

from zksolv.circuits import epoch as circ
from zksolv.core.field import R
from zksolv.core.group import get_backend
from zksolv.core.pedersen import commit
from zksolv.prover import keys
from zksolv.snapshot import Asset
from zksolv.verifier.bundle import recompute_root

HEADER = circ.EpochHeader(
    epoch=9, timestamp=1, price_decimals=2,
    assets=(circ.AssetTerms("USD", 6, 100, 10_000, 10**9),),
    prev_bundle_hash=None, prev_epoch=None, depth=3, shard_leaves=8, reveal_totals=False,
    operator=bytes(32),
)


def test_hashes_are_domain_separated_and_bind_every_input() -> None:
    salt = bytes(range(32))
    base = circ.leaf_hash(1, "alice", salt)
    assert base != circ.leaf_hash(2, "alice", salt)
    assert base != circ.leaf_hash(1, "alicf", salt)
    assert base != circ.leaf_hash(1, "alice", bytes(32))
    c, h = bytes(48), bytes(32)
    node = circ.node_hash(c, h, c, h)
    assert node != circ.node_hash(b"\x01" + c[1:], h, c, h)   # left commitment
    assert node != circ.node_hash(c, h, b"\x01" + c[1:], h)   # right commitment
    assert node != circ.node_hash(c, b"\x01" + h[1:], c, h)
    assert circ.LEAF_TAG != circ.NODE_TAG


def test_header_digest_covers_every_field() -> None:
    d = HEADER.digest()
    changes = {
        "epoch": 10, "timestamp": 2, "price_decimals": 3,
        "depth": 4, "shard_leaves": 4, "reveal_totals": True, "operator": bytes([1]) * 32,
        "assets": (circ.AssetTerms("USD", 6, 100, 10_000, 10**9 + 1),),
    }
    for field, value in changes.items():
        assert dataclasses.replace(HEADER, **{field: value}).digest() != d, field
    # the link: the previous bundle's hash and its epoch (a gap is in the header)
    links = [dataclasses.replace(HEADER, prev_bundle_hash=h, prev_epoch=e)
             for h, e in ((None, None), (bytes(32), 8), (bytes(32), 7), (bytes(32), 0),
                          (b"\x01" * 32, 8))]
    assert len({h.digest() for h in links}) == len(links)
    assert links[0].digest() == d


def test_header_link_fields_agree() -> None:
    """prev_epoch is given exactly when the previous hash is, and is before
    the epoch; a prev_epoch below epoch - 1 declares a gap."""
    for h, e in ((bytes(32), None), (None, 8), (bytes(32), 9), (bytes(32), 10)):
        with pytest.raises(ValueError, match="prev_epoch"):
            dataclasses.replace(HEADER, prev_bundle_hash=h, prev_epoch=e)
    assert dataclasses.replace(HEADER, prev_bundle_hash=bytes(32), prev_epoch=8).gap is None
    assert dataclasses.replace(HEADER, prev_bundle_hash=bytes(32), prev_epoch=5).gap == (6, 8)
    assert dataclasses.replace(HEADER, prev_bundle_hash=bytes(32), prev_epoch=0).gap == (1, 8)
    assert HEADER.gap is None
    raw = dataclasses.replace(HEADER, prev_bundle_hash=b"\xab" * 32, prev_epoch=5).to_bytes()
    assert raw.startswith(circ.HEADER_TAG) and circ.HEADER_TAG == b"zksolv/epoch-header/v4"
    # flag, hash, then the previous epoch as u64
    at = len(circ.HEADER_TAG) + 32 + 17
    assert raw[at : at + 1 + 32 + 8] == b"\x01" + b"\xab" * 32 + (5).to_bytes(8, "big")


def test_shard_and_depth_rules() -> None:
    assert circ.depth_for(1) == 1 and circ.depth_for(2) == 1 and circ.depth_for(3) == 2
    assert circ.depth_for(1 << 16) == 16 and circ.depth_for((1 << 16) + 1) == 17
    assert circ.shard_leaves_for(16, 1) == 256
    assert circ.shard_leaves_for(16, 2) == 128 and circ.shard_leaves_for(16, 3) == 64
    assert circ.shard_leaves_for(3, 1) == 8


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(1, R - 1)),
                min_size=1, max_size=3).map(lambda xs: xs * 2))
def test_root_opens_to_the_sums(leaves: list[tuple[int, int]]) -> None:
    backend = get_backend("arkworks")
    while len(leaves) & (len(leaves) - 1):
        leaves = leaves + [(0, 1)]
    pts = [[commit(backend, v, r)] for v, r in leaves]
    enc = [backend.encode(p[0]) for p in pts]
    roots, _ = recompute_root(backend, 1, pts, enc, [bytes(32)] * len(pts))
    total = sum(v for v, _ in leaves)
    assert total < R  # never wraps
    assert backend.eq(roots[0], commit(backend, total, sum(r for _, r in leaves)))


def test_valued_coefficients_and_bounds() -> None:
    assets = (circ.AssetTerms("USDC", 6, 100, 10_000, 10**12),
              circ.AssetTerms("BTC", 8, 6_000_000, 9_000, 10**9))
    coef = circ.valued_coefficients(assets, 16)
    # USDC: a = 100 * 10^2, BTC: a = 6e6; reserve weight a*haircut, liability a*10000
    ratio_c = coef.reserve[0] * 6_000_000 * 9_000
    assert ratio_c == coef.reserve[1] * 100 * 100 * 10_000
    assert coef.liability[0] * 6_000_000 == coef.liability[1] * 100 * 100
    huge = (circ.AssetTerms("A", 0, 2**64 - 1, 10_000, 2**64 - 1),
            circ.AssetTerms("B", 30, 1, 10_000, 1))
    try:
        circ.valued_coefficients(huge, 32)
    except circ.BoundsError:
        pass
    else:
        raise AssertionError("expected BoundsError")


def test_prove_refuses_unsound_coefficients(tmp_path: Path) -> None:
    assets = (Asset("A", 0, 2**64 - 1, 10_000, 2**64 - 1), Asset("B", 30, 1, 10_000, 2**40))
    snap = make_snapshot(tmp_path / "s", rows_for(2, 2), assets=assets)
    res = run("prove", snap, "--out", tmp_path / "b", "--jobs", "1", "--quiet")
    assert res.exit_code == 2 and "decimals" in res.output
    assert not (tmp_path / "b").exists()


def test_hkdf_rfc5869_case_1() -> None:
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(13))
    info = bytes(range(0xF0, 0xFA))
    prk = keys.hkdf_extract(ikm, salt)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    assert keys.hkdf_expand(prk, info, 42).hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db0"
        "2d56ecc4c5bf34007208d5b887185865"
    )


def test_salts_fresh_per_epoch_and_shuffle_keyed() -> None:
    prk = keys.hkdf_extract(bytes(32))
    assert keys.account_salt(prk, 1, "a") != keys.account_salt(prk, 2, "a")
    assert keys.account_salt(prk, 1, "a") != keys.account_salt(prk, 1, "b")
    p1 = keys.keyed_permutation(keys.shuffle_key(prk, 1), 1024)
    p2 = keys.keyed_permutation(keys.shuffle_key(prk, 2), 1024)
    assert sorted(p1) == list(range(1024)) and list(p1) != list(p2)
    assert list(p1) == list(keys.keyed_permutation(keys.shuffle_key(prk, 1), 1024))


def test_zero_prices_and_zero_haircuts() -> None:
    """[solvency-bounds] g0 is 0 exactly when every price is 0: refused,
    and the message says so; a haircut of 0 (one asset or all) is allowed
    and weighs that asset's reserves by 0 while its liabilities still count
    (docs/epoch.md, *Valued solvency*)."""
    with pytest.raises(circ.BoundsError, match="every asset has price 0: "):
        circ.valued_coefficients((circ.AssetTerms("A", 6, 0, 10_000, 10**6),
                                  circ.AssetTerms("B", 8, 0, 0, 10**8)), 4)
    coef = circ.valued_coefficients((circ.AssetTerms("A", 6, 3, 0, 10**6),), 4)
    assert (coef.reserve, coef.liability) == ((0,), (1,))
    coef = circ.valued_coefficients((circ.AssetTerms("A", 6, 3, 0, 10**6),
                                     circ.AssetTerms("B", 6, 0, 10_000, 10**6)), 4)
    assert (coef.reserve, coef.liability) == ((0, 0), (1, 0))
