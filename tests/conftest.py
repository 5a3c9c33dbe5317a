"""Shared fixtures: the group backends (mcl where it loads, arkworks, py_ecc)."""

from __future__ import annotations

import pytest
from hypothesis import settings

from zksolv.core import mcl
from zksolv.core.group import Backend, get_backend

# Timing is a benchmark's business, never a test's: machines here are shared.
settings.register_profile("zksolv", deadline=None, print_blob=True)
settings.load_profile("zksolv")


@pytest.fixture(params=["mcl", "arkworks", "py_ecc"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "mcl" and not mcl.available():
        pytest.skip("mcl not loadable here: the reference backends carry the test")
    return get_backend(request.param)


@pytest.fixture
def ark() -> Backend:
    return get_backend("arkworks")


@pytest.fixture
def pyecc() -> Backend:
    return get_backend("py_ecc")
