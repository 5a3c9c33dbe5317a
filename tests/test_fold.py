"""The two generator folders produce the same proofs, byte for byte."""

from __future__ import annotations

import platform
import sys

import pytest
from rangeproof_util import make_proof

from zksolv.core import fold
from zksolv.core import rangeproof as rp
from zksolv.core.group import get_backend

ARK = get_backend("arkworks")
MCL_EXPECTED = platform.machine() == "x86_64" and sys.version_info < (3, 13)


def test_mcl_folder_is_installed_where_the_package_promises_it() -> None:
    if not MCL_EXPECTED:
        pytest.skip("pymcl wheels exist for x86_64 CPython 3.11-3.12 only")
    assert fold._pymcl() is not None


def test_default_folder_on_arkworks_is_the_fast_one(monkeypatch) -> None:
    monkeypatch.delenv(fold.FOLDER_ENV, raising=False)
    gens = ARK.identity()
    chosen = fold.make_folder(ARK, [gens, gens], [gens, gens], [gens, gens], [gens, gens])
    expected = fold.MclFolder if fold._pymcl() is not None else fold.GenericFolder
    assert type(chosen) is expected
    monkeypatch.setenv(fold.FOLDER_ENV, "generic")
    assert type(fold.make_folder(ARK, [gens], [gens], [gens], [gens])) is fold.GenericFolder


CASES = [([5], 8), ([1, 2, 3], 16), ([7] * 8, 64), ([1 << 90], 128)]


@pytest.mark.parametrize("values,bits", CASES)
def test_folders_give_byte_identical_proofs(monkeypatch, values: list[int], bits: int) -> None:
    if fold._pymcl() is None:
        pytest.skip("pymcl not installed on this platform")
    proofs = {}
    for mode in ("generic", "auto"):
        monkeypatch.setenv(fold.FOLDER_ENV, mode)
        statement, proof, _ = make_proof(ARK, values, bits, seed=1234)
        rp.verify(statement, proof, backend=ARK)
        proofs[mode] = proof.to_bytes()
    assert proofs["generic"] == proofs["auto"]


def test_py_ecc_always_uses_the_generic_folder(monkeypatch) -> None:
    monkeypatch.delenv(fold.FOLDER_ENV, raising=False)
    be = get_backend("py_ecc")
    g = be.identity()
    assert type(fold.make_folder(be, [g], [g], [g], [g])) is fold.GenericFolder


def test_prepare_copies_the_generators_ahead_of_time(monkeypatch) -> None:
    if fold._pymcl() is None:
        pytest.skip("pymcl not installed on this platform")
    monkeypatch.delenv(fold.FOLDER_ENV, raising=False)
    from zksolv.core.generators import generators

    G_all, H_all = generators(ARK).vectors(16)
    fold.prepare(ARK, G_all, H_all)
    assert len(fold._MCL_CACHE[id(G_all)]) >= 16
    assert len(fold._MCL_CACHE[id(H_all)]) >= 16
