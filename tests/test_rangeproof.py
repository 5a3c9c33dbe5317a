"""Aggregated range proofs: completeness, soundness checks, Frozen-Heart
resistance, strict decoding, batch verification, regression vectors."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rangeproof_util import STATEMENT_ID, make_proof

from zksolv.core import rangeproof as rp
from zksolv.core.field import R
from zksolv.core.generators import generators
from zksolv.core.group import get_backend
from zksolv.core.pedersen import commit
from zksolv.errors import FormatError, InvalidBitsize, ValueOutOfRange, VerificationError

VECTORS = Path(__file__).parent / "vectors" / "rangeproof_v1.json"
ARK = get_backend("arkworks")


@st.composite
def values_and_bits(draw: st.DrawFn, max_m: int = 5, bit_choices=(8, 16, 32, 64)):
    bits = draw(st.sampled_from(bit_choices))
    m = draw(st.integers(min_value=1, max_value=max_m))
    edge = st.sampled_from([0, 1, (1 << bits) - 1, (1 << bits) - 2, 1 << (bits - 1)])
    value = st.one_of(edge, st.integers(min_value=0, max_value=(1 << bits) - 1))
    return draw(st.lists(value, min_size=m, max_size=m)), bits


@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(values_and_bits())
def test_values_in_range_prove_and_verify_arkworks(case: tuple[list[int], int]) -> None:
    values, bits = case
    statement, proof, _ = make_proof(ARK, values, bits)
    rp.verify(statement, proof, backend=ARK)
    assert rp.RangeProof.from_bytes(proof.to_bytes()) == proof
    assert len(proof.to_bytes()) == rp.RangeProof.size(statement.rounds)


@settings(max_examples=3, suppress_health_check=[HealthCheck.too_slow])
@given(values_and_bits(max_m=2, bit_choices=(8,)))
def test_values_in_range_prove_and_verify_py_ecc(case: tuple[list[int], int]) -> None:
    values, bits = case
    backend = get_backend("py_ecc")
    statement, proof, _ = make_proof(backend, values, bits)
    rp.verify(statement, proof, backend=backend)


def test_128_bit_values_and_large_aggregation() -> None:
    statement, proof, _ = make_proof(ARK, [(1 << 128) - 1, 0, 7], 128)
    rp.verify(statement, proof, backend=ARK)
    statement, proof, _ = make_proof(ARK, list(range(32)), 8)
    rp.verify(statement, proof, backend=ARK)


@pytest.mark.parametrize("maker,checker", [("arkworks", "py_ecc"), ("py_ecc", "arkworks")])
def test_proof_from_one_backend_verifies_with_the_other(maker: str, checker: str) -> None:
    statement, proof, _ = make_proof(get_backend(maker), [200, 3], 8)
    rp.verify(statement, rp.RangeProof.from_bytes(proof.to_bytes()), backend=get_backend(checker))


@pytest.mark.parametrize("bits", [8, 64])
def test_prover_refuses_values_out_of_range(bits: int) -> None:
    for bad in (1 << bits, (1 << bits) + 5, -1, R - 1):
        with pytest.raises(ValueOutOfRange, match=f"2\\^{bits}"):
            make_proof(ARK, [5, bad], bits)


@pytest.mark.parametrize("bad", [256, 257, 1 << 20, R - 1, R - 255])
def test_cheating_prover_with_out_of_range_value_is_caught(monkeypatch, bad: int) -> None:
    """With the prover's own guard switched off, a proof for a value outside
    [0, 2^8) (including 'negative' values r - k) must fail verification."""
    monkeypatch.setattr(rp, "_check_values", lambda values, n: None)
    statement, proof, _ = make_proof(ARK, [3, bad % R], 8)
    with pytest.raises(VerificationError):
        rp.verify(statement, proof, backend=ARK)


@pytest.mark.parametrize("bits", [0, 7, 12, 256])
def test_invalid_bit_width_refused(bits: int) -> None:
    statement = rp.RangeStatement(STATEMENT_ID, (bytes(48),), bits)
    with pytest.raises(InvalidBitsize):
        rp.prove(statement, [0], [1], backend=ARK)


def test_wrapped_value_does_not_verify() -> None:
    """A commitment to r - 1 (i.e. -1) opened as if it were small: the proof
    made for the honest opening 2^8 - 1 must not verify against it."""
    statement, proof, blindings = make_proof(ARK, [255], 8)
    gens = generators(ARK)
    negative = ARK.encode(ARK.msm([gens.g, gens.h], [R - 1, blindings[0]]))
    forged = dataclasses.replace(statement, commitments=(negative,))
    with pytest.raises(VerificationError):
        rp.verify(forged, proof, backend=ARK)


def test_mismatched_opening_gives_a_proof_that_fails() -> None:
    statement, _, blindings = make_proof(ARK, [10], 8)
    proof = rp.prove(statement, [11], blindings, backend=ARK)
    with pytest.raises(VerificationError):
        rp.verify(statement, proof, backend=ARK)


@pytest.fixture(scope="module")
def small_proof() -> tuple[rp.RangeStatement, rp.RangeProof]:
    statement, proof, _ = make_proof(ARK, [77, 200], 8, seed=7)
    return statement, proof


def test_every_flipped_proof_byte_is_rejected(small_proof) -> None:
    statement, proof = small_proof
    data = proof.to_bytes()
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= mask
            with pytest.raises((FormatError, VerificationError)):
                rp.verify(statement, rp.RangeProof.from_bytes(bytes(bad)), backend=ARK)


def test_every_flipped_commitment_byte_is_rejected(small_proof) -> None:
    statement, proof = small_proof
    for j, c in enumerate(statement.commitments):
        for pos in range(len(c)):
            bad = bytearray(c)
            bad[pos] ^= 0x04
            commitments = list(statement.commitments)
            commitments[j] = bytes(bad)
            forged = dataclasses.replace(statement, commitments=tuple(commitments))
            with pytest.raises((FormatError, VerificationError)):
                rp.verify(forged, proof, backend=ARK)


@pytest.mark.parametrize("cut", [1, 32, 48, 95, 300])
def test_truncated_or_extended_proof_is_a_format_error(small_proof, cut: int) -> None:
    _, proof = small_proof
    data = proof.to_bytes()
    with pytest.raises(FormatError, match="352 \\+ 96k"):
        rp.RangeProof.from_bytes(data[:-cut])
    with pytest.raises(FormatError, match="352 \\+ 96k"):
        rp.RangeProof.from_bytes(data + bytes(cut))


def test_proof_with_a_round_missing_or_added_is_refused(small_proof) -> None:
    statement, proof = small_proof
    data = proof.to_bytes()
    shorter = data[: 352 - 64] + data[352 - 64 + 96 :]
    for changed in (shorter, data[:-64] + data[-160:-64] + data[-64:]):
        with pytest.raises(VerificationError, match="range-shape"):
            rp.verify(statement, rp.RangeProof.from_bytes(changed), backend=ARK)


def test_every_changed_public_input_breaks_the_proof(small_proof) -> None:
    """Frozen Heart: the whole statement is in the transcript, so a proof
    cannot be re-targeted at any other statement."""
    statement, proof = small_proof
    other = ARK.encode(commit(ARK, 77, 12345))
    changes = {
        "commitment": dataclasses.replace(statement, commitments=(other, statement.commitments[1])),
        "swapped commitments": dataclasses.replace(
            statement, commitments=statement.commitments[::-1]
        ),
        "n": dataclasses.replace(statement, bits=16),
        "m (dropped)": dataclasses.replace(statement, commitments=statement.commitments[:1]),
        "m (added)": dataclasses.replace(statement, commitments=(*statement.commitments, other)),
        "context": dataclasses.replace(statement, context=b"another epoch"),
        "statement id": dataclasses.replace(statement, statement_id=b"zksolv/other/v1"),
    }
    for name, changed in changes.items():
        with pytest.raises(VerificationError):
            rp.verify(changed, proof, backend=ARK)
            pytest.fail(f"proof verified under a changed {name}")


def test_identity_commitment_is_refused(small_proof) -> None:
    statement, proof = small_proof
    forged = dataclasses.replace(statement, commitments=(bytes([0xC0]) + bytes(47),) * 2)
    with pytest.raises(FormatError, match="identity"):
        rp.verify(forged, proof, backend=ARK)


def test_batch_verification_accepts_good_and_rejects_one_bad() -> None:
    items = [
        make_proof(ARK, [1, 2, 3], 16)[:2],
        make_proof(ARK, [5], 64)[:2],
        make_proof(ARK, [9, 8], 8)[:2],
    ]
    rp.batch_verify(items, backend=ARK)
    statement, proof = items[1]
    bad = dataclasses.replace(proof, t_hat=(proof.t_hat + 1) % R)
    spoiled = [items[0], (statement, bad), items[2]]
    with pytest.raises(VerificationError, match="range-batch"):
        rp.batch_verify(spoiled, backend=ARK)
    assert rp.find_invalid(spoiled, backend=ARK) == 1
    # A proof moved onto another proof's statement also fails the batch.
    with pytest.raises(VerificationError):
        rp.batch_verify([(items[0][0], items[2][1]), items[1]], backend=ARK)


def _vector_cases() -> list[tuple[list[int], int, int]]:
    return [([0], 8, 1), ([255, 1], 8, 2), ([12345678901234, 0, 1], 64, 3), ([1 << 100], 128, 4)]


def _make_vectors() -> dict:
    out = []
    for values, bits, seed in _vector_cases():
        statement, proof, _ = make_proof(ARK, values, bits, seed=seed)
        out.append(
            {
                "values": values,
                "bits": bits,
                "seed": seed,
                "statement_id": statement.statement_id.hex(),
                "context": statement.context.hex(),
                "commitments": [c.hex() for c in statement.commitments],
                "proof": proof.to_bytes().hex(),
            }
        )
    return {"scheme": rp.RANGE_SCHEME_ID.decode(), "cases": out}


def test_regression_vectors_keep_verifying() -> None:
    vectors = json.loads(VECTORS.read_text())
    assert vectors["scheme"] == rp.RANGE_SCHEME_ID.decode()
    for case in vectors["cases"]:
        statement = rp.RangeStatement(
            bytes.fromhex(case["statement_id"]),
            tuple(bytes.fromhex(c) for c in case["commitments"]),
            case["bits"],
            bytes.fromhex(case["context"]),
        )
        rp.verify(statement, rp.RangeProof.from_bytes(bytes.fromhex(case["proof"])), backend=ARK)


def test_regression_vector_bytes_do_not_change_silently() -> None:
    """Same seed, same bytes: a change here is a format change and needs a
    new scheme id, not an edited vector file."""
    assert _make_vectors() == json.loads(VECTORS.read_text())


def test_seeded_proofs_are_identical_on_both_backends() -> None:
    _, proof_a, _ = make_proof(ARK, [42], 8, seed=99)
    _, proof_p, _ = make_proof(get_backend("py_ecc"), [42], 8, seed=99)
    assert proof_a.to_bytes() == proof_p.to_bytes()


def test_default_randomness_gives_distinct_proofs() -> None:
    _, p1, _ = make_proof(ARK, [42], 8)
    _, p2, _ = make_proof(ARK, [42], 8)
    assert p1.to_bytes() != p2.to_bytes()


if __name__ == "__main__":  # regenerate only for a new scheme id
    VECTORS.parent.mkdir(exist_ok=True)
    VECTORS.write_text(json.dumps(_make_vectors(), indent=1) + "\n")
    random.seed(0)


def test_scheme_registry_round_trips_through_its_id() -> None:
    from zksolv.core.range_scheme import DEFAULT_SCHEME, get_scheme

    scheme = get_scheme(rp.RANGE_SCHEME_ID)
    assert scheme is DEFAULT_SCHEME
    statement, proof, blindings = make_proof(ARK, [5, 6], 8)
    again = scheme.proof_from_bytes(scheme.prove(statement, [5, 6], blindings).to_bytes())
    scheme.verify(statement, again, backend=ARK)
    scheme.batch_verify([(statement, again)], backend=ARK)
    with pytest.raises(FormatError, match="unknown range-proof scheme"):
        get_scheme(b"zksolv/range/none/v0")
