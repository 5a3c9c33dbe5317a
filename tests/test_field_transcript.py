"""Scalar field encoding, batch inversion, galois cross-check; transcript."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zksolv.core import field
from zksolv.core.field import R, batch_inv, scalar_from_bytes, scalar_to_bytes
from zksolv.core.transcript import Transcript
from zksolv.errors import FormatError

scalars = st.integers(min_value=0, max_value=R - 1)
nonzero = st.integers(min_value=1, max_value=R - 1)


@given(scalars)
def test_scalar_encoding_round_trips(k: int) -> None:
    data = scalar_to_bytes(k)
    assert len(data) == 32
    assert scalar_from_bytes(data) == k


@given(st.integers(min_value=R, max_value=(1 << 256) - 1))
def test_non_canonical_scalar_is_refused(k: int) -> None:
    with pytest.raises(FormatError, match="non-canonical"):
        scalar_from_bytes(k.to_bytes(32, "little"))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_length_scalar_is_refused(length: int) -> None:
    with pytest.raises(FormatError, match="expected 32 bytes"):
        scalar_from_bytes(bytes(length))


def test_zero_scalar_refused_where_forbidden() -> None:
    with pytest.raises(FormatError, match="zero"):
        scalar_from_bytes(bytes(32), allow_zero=False)


@given(st.lists(nonzero, min_size=1, max_size=20))
def test_batch_inversion_matches_single_inversions(values: list[int]) -> None:
    assert batch_inv(values) == [pow(v, -1, R) for v in values]


def test_batch_inversion_refuses_zero() -> None:
    with pytest.raises(ZeroDivisionError):
        batch_inv([1, 0, 2])


@given(st.lists(scalars, min_size=1, max_size=16), st.lists(scalars, min_size=1, max_size=16))
def test_inner_product_agrees_with_galois(a: list[int], b: list[int]) -> None:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    GF = field.galois_field()
    expected = int((GF(a) * GF(b)).sum())
    assert field.inner_product(a, b) == expected


def test_galois_field_is_built_fast_with_known_primitive_element() -> None:
    GF = field.galois_field()
    assert GF.order == R
    assert int(GF.primitive_element) == field.PRIMITIVE_ELEMENT


def _transcript(*ops: tuple[bytes, bytes]) -> bytes:
    t = Transcript(b"test")
    for label, msg in ops:
        t.append_message(label, msg)
    return t.challenge_bytes(b"c", 32)


def test_transcript_is_deterministic() -> None:
    assert _transcript((b"a", b"1")) == _transcript((b"a", b"1"))


def test_transcript_framing_is_injective() -> None:
    # Moving bytes between label and message, or between two messages,
    # must change every later challenge.
    assert _transcript((b"ab", b"c")) != _transcript((b"a", b"bc"))
    assert _transcript((b"a", b"xy"), (b"a", b"")) != _transcript((b"a", b"x"), (b"a", b"y"))
    assert _transcript((b"a", b"1")) != _transcript((b"b", b"1"))


def test_transcript_protocol_label_separates_domains() -> None:
    t1, t2 = Transcript(b"one"), Transcript(b"two")
    assert t1.challenge_bytes(b"c", 32) != t2.challenge_bytes(b"c", 32)


def test_successive_challenges_differ_and_are_nonzero() -> None:
    t = Transcript(b"test")
    cs = [t.challenge_scalar(b"x") for _ in range(5)]
    assert len(set(cs)) == 5 and all(0 < c < R for c in cs)
    shorts = [t.challenge_short(b"u") for _ in range(5)]
    assert all(0 < s < 1 << 128 for s in shorts)


def test_random_scalars_in_bulk() -> None:
    import random

    from zksolv.core.field import random_scalar, random_scalars

    # seeded: the same sequence as one call at a time (seeded proofs keep their bytes)
    assert random_scalars(5, random.Random(3)) == [random_scalar(r) for r in [random.Random(3)]
                                                   for _ in range(5)]
    bulk = random_scalars(1000)
    assert all(0 < k < R for k in bulk) and len(set(bulk)) == 1000
    # spread over the whole field, not a short range
    assert max(bulk).bit_length() == R.bit_length()
