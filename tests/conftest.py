"""Shared fixtures: the group backends (mcl where it loads, arkworks, py_ecc),
and a real local Ethereum node (anvil) for the chain tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from zksolv.core import mcl
from zksolv.core.group import Backend, get_backend

if TYPE_CHECKING:
    from chain_node import AnvilNode

# Timing is a benchmark's business, never a test's: machines here are shared.
settings.register_profile("zksolv", deadline=None, print_blob=True)
settings.load_profile("zksolv")


@pytest.fixture(scope="session", autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The private data directory ($ZKSOLV_DATA_DIR) of every test: default
    inclusion databases and work areas go to a temporary folder, never the
    user's ~/.local/share/zksolv (child processes inherit it)."""
    from zksolv.prover.inclusion_db import DATA_DIR_ENV

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("zksolv-data")
    mp.setenv(DATA_DIR_ENV, str(folder))
    yield folder
    mp.undo()


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


@pytest.fixture(scope="session")
def site_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bundles and inclusion proofs for the holder's page tests: b1, b2 (one
    asset, chained epochs 1 and 2), m3 (two assets, epoch 3) and g4 (epoch 4,
    linked to b2 with a declared gap: epoch 3 not proven solvent) and l5 (a
    lending protocol, bundle version 5: ETH, DAI borrowable), with the
    proofs of acct-0 and acct-4 (``acct-4-e2.json``, ``acct-4-m3.json``, ...)
    and of l5's borrower and saver (``borrower-l5.json``, ``saver-l5.json``)."""
    from margin_support import margin_snapshot
    from test_epoch_support import ASSETS1, ASSETS2, make_snapshot, prove, rows_for, run

    d = tmp_path_factory.mktemp("site-epochs")
    rows = rows_for(9, 1)
    prove(make_snapshot(d / "s1", rows, epoch=1, assets=ASSETS1), d / "b1")
    prove(make_snapshot(d / "s2", rows, epoch=2, assets=ASSETS1), d / "b2", "--prev", str(d / "b1"))
    prove(make_snapshot(d / "s3", rows_for(5, 2), epoch=3, assets=ASSETS2), d / "m3")
    prove(make_snapshot(d / "s4", rows, epoch=4, assets=ASSETS1), d / "g4",
          "--prev", str(d / "b2"), "--allow-gap")
    for bundle, tag in (("b1", "e1"), ("b2", "e2"), ("m3", "m3"), ("g4", "g4")):
        for acc in ("acct-0", "acct-4"):
            res = run("inclusion", "export", "--db", d / f"{bundle}.inclusion.sqlite",
                      "--account", acc, "--out", d / f"{acc}-{tag}.json")
            assert res.exit_code == 0, res.output
    prove(margin_snapshot(d / "s5", epoch=5), d / "l5")
    for acc in ("borrower", "saver"):
        res = run("inclusion", "export", "--db", d / "l5.inclusion.sqlite", "--account", acc,
                  "--out", d / f"{acc}-l5.json")
        assert res.exit_code == 0, res.output
    return d


@pytest.fixture(scope="session")
def site_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of four shards for the page's proof checks: ``s5`` (two
    assets, depth 9, 128 leaves a shard), ``s5-forged`` (the last shard's
    range proof altered, the manifest re-hashed and re-signed: what an
    operator hiding a negative leaf publishes) and the proofs of acct-0 and
    acct-200 (``acct-0-s5.json``, ...)."""
    from test_epoch_support import (
        ASSETS2,
        copy_bundle,
        make_snapshot,
        prove,
        read_manifest,
        rows_for,
        run,
        write_manifest,
    )

    from zksolv.circuits import bundle as layout

    d = tmp_path_factory.mktemp("site-shards")
    prove(make_snapshot(d / "s5-snap", rows_for(260, 2), epoch=5, assets=ASSETS2), d / "s5")
    for acc in ("acct-0", "acct-200"):
        res = run("inclusion", "export", "--db", d / "s5.inclusion.sqlite", "--account", acc,
                  "--out", d / f"{acc}-s5.json")
        assert res.exit_code == 0, res.output
    forged = copy_bundle(d / "s5", d / "s5-forged")
    data = bytearray((forged / layout.RANGE_FILE).read_bytes())
    data[-40] ^= 0x01  # inside the last shard's proof: its scalar a
    (forged / layout.RANGE_FILE).write_bytes(bytes(data))
    write_manifest(forged, read_manifest(forged))
    return d


def require_tool(what: str, how: str) -> None:
    """Skip a test whose tool is missing, with the command that installs it;
    fail instead under ZKSOLV_REQUIRE_SITE_TESTS=1 (.ci/run sets it), so
    that CI never skips the page's or the chain's tests silently."""
    if os.environ.get("ZKSOLV_REQUIRE_SITE_TESTS") == "1":
        pytest.fail(f"{what} is missing and ZKSOLV_REQUIRE_SITE_TESTS=1: {how}")
    pytest.skip(f"{what} is missing: {how}")


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    """One anvil node (tests/js: ``npm ci --prefix tests/js``) for the whole
    session, on 127.0.0.1 at a free port; stopped at the end. Tests use
    ``chain``, which undoes each test's blocks."""
    from chain_node import INSTALL_HINT, AnvilNode, anvil_path

    exe = anvil_path()
    if exe is None:
        require_tool("anvil (npm @foundry-rs/anvil)", INSTALL_HINT)
    assert exe is not None
    node = AnvilNode(exe)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def chain(anvil_node: AnvilNode) -> Iterator[AnvilNode]:
    """The session's anvil node, reverted after the test to the state it had
    before (blocks, balances, contracts and time)."""
    snapshot = anvil_node.snapshot()
    try:
        yield anvil_node
    finally:
        anvil_node.revert(snapshot)
