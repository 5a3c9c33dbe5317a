"""The verifier stands alone: import-linter checks the contracts in
pyproject.toml (the verifier imports no prover, engine or cli).

``cli/`` and ``circuits/`` install as ``zksolv.cli`` and ``zksolv.circuits``
(setuptools package-dir); in the source tree ``zksolv/cli`` and
``zksolv/circuits`` link to them. The test copies the package (links
followed, as an install lays it out) to a temporary directory and runs
``lint-imports`` on that with the project's own contracts. A negative
control plants a forbidden import and expects a broken contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _installed_layout(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    pkg = dest / "zksolv"
    shutil.copytree(ROOT / "zksolv", pkg, ignore=ignore)  # follows the two links
    assert (pkg / "cli" / "main.py").is_file() and (pkg / "circuits" / "epoch.py").is_file()
    return pkg


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is a test dependency"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [exe, "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120,
    )


def test_import_contracts_hold(tmp_path: Path) -> None:
    _installed_layout(tmp_path)
    res = _lint(tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "The verifier stands alone" in res.stdout
    assert "BROKEN" not in res.stdout


def test_import_contract_catches_a_violation(tmp_path: Path) -> None:
    pkg = _installed_layout(tmp_path)
    bad = pkg / "verifier" / "bundle.py"
    bad.write_text(bad.read_text() + "\nfrom zksolv.prover import keys as _keys  # noqa\n")
    res = _lint(tmp_path)
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and "zksolv.prover" in res.stdout


def test_runtime_needs_no_galois() -> None:
    """galois (with numba and llvmlite, ~200 MB) is a test dependency only:
    nothing a command runs imports it, and the package does not require it."""
    import sys
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.startswith("galois")]
    code = ("import sys; import zksolv.cli.main, zksolv.cli.epoch, zksolv.cli.snapshot, "
            "zksolv.prover.epoch, zksolv.prover.export, zksolv.verifier.inclusion, "
            "zksolv.engine.simulator, zksolv.core.field, zksolv.core.rangeproof; "
            "assert 'galois' not in sys.modules and 'numba' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
