"""The page's JavaScript under ``node --test`` (tests/js): the BLS12-381
layer against @noble/curves, the strict JSON, and the holder's check against
vectors this test writes with the Python package (tests/site_vectors.py), and the
proof checks (tests/proof_vectors.py: generator table, transcripts, bundles).

Needs node and the test dependencies (``npm ci --prefix tests/js``); skipped
with the reason when they are missing, unless ZKSOLV_REQUIRE_SITE_TESTS=1
(set by .ci/run), which turns a missing tool into a failure."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from proof_vectors import write_proof_vectors
from site_vectors import write_vectors

JS_TESTS = Path(__file__).parent / "js"


def require(what: str, how: str) -> None:
    if os.environ.get("ZKSOLV_REQUIRE_SITE_TESTS") == "1":
        pytest.fail(f"{what} is missing and ZKSOLV_REQUIRE_SITE_TESTS=1: {how}")
    pytest.skip(f"{what} is missing: {how}")


def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        require("node", "apt-get install nodejs npm")
    assert exe is not None
    if not (JS_TESTS / "node_modules" / "@noble" / "curves").is_dir():
        require("@noble/curves", f"npm ci --prefix {JS_TESTS}")
    return exe


def test_node_suite(site_epochs: Path, site_shards: Path, site_margin: Path,
                    tmp_path: Path) -> None:
    exe = node()
    seed = random.randrange(1 << 30)
    vectors = write_vectors(tmp_path / "vectors.json", site_epochs, seed=seed)
    proofs = write_proof_vectors(tmp_path / "proofs.json", site_epochs, site_shards, site_margin,
                                 seed=seed)
    from test_site_registry import write_registry_vectors

    registry_vectors = write_registry_vectors(tmp_path / "registry.json")
    res = subprocess.run(
        [exe, "--test", "--test-reporter=tap"], cwd=JS_TESTS, capture_output=True, text=True,
        timeout=900, env={**os.environ, "ZKSOLV_SITE_VECTORS": str(vectors),
                          "ZKSOLV_PROOF_VECTORS": str(proofs),
                          "ZKSOLV_REGISTRY_VECTORS": str(registry_vectors)},
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped|todo) (\d+)$", out, re.M)}
    assert counts.get("fail") == 0 and counts.get("skipped") == 0, out[-3000:]
    assert counts.get("pass", 0) >= 14, out[-3000:]
