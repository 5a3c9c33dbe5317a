"""The chain extra stays optional: with eth-account, eth-keys, eth-hash and
httpx missing, every zksolv module still imports (a holder's install runs
``verify`` and ``inclusion verify``), ``zksolv.chain.available()`` says
False, and a call that needs them is a ``ChainExtraMissing`` naming the
extra. The import-linter contract keeps zksolv.chain below the prover,
verifier, engine and command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_imports_contracts import _installed_layout, _lint

ROOT = Path(__file__).resolve().parent.parent

BLOCK = ("import sys\n"
         "for m in ('eth_account', 'eth_keys', 'eth_hash', 'eth_utils', 'eth_abi', 'httpx'):\n"
         "    sys.modules[m] = None  # import fails as if not installed\n")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_every_module_imports_without_the_extra() -> None:
    code = (
        "import importlib, pkgutil, zksolv\n"
        "names = [m.name for m in pkgutil.walk_packages(zksolv.__path__, 'zksolv.')\n"
        "         if '.vectors' not in m.name]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert 'zksolv.chain.rpc' in names and 'zksolv.cli.bench_reserves' in names\n"
        "import zksolv.chain\n"
        "assert zksolv.chain.available() is False\n"
        "print(len(names))\n"
    )
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) > 40


def test_calls_that_need_the_extra_say_so() -> None:
    code = (
        "from zksolv.errors import ChainExtraMissing\n"
        "from zksolv.chain import ownership\n"
        "from zksolv.chain.rpc import RpcClient\n"
        "for call in (lambda: RpcClient('http://127.0.0.1:1'),\n"
        "             lambda: ownership.digest(chain_id=1, holder=bytes(20), block_number=0,\n"
        "                                      block_hash=bytes(32), epoch=0,\n"
        "                                      operator=bytes(32)),\n"
        "             lambda: ownership.address_of(b'\\x01' * 32)):\n"
        "    try:\n"
        "        call()\n"
        "    except ChainExtraMissing as exc:\n"
        "        assert \"pip install 'zksolv[chain]'\" in str(exc) and exc.exit_code == 2\n"
        "    else:\n"
        "        raise AssertionError('no ChainExtraMissing')\n"
    )
    res = _run(code)
    assert res.returncode == 0, res.stderr


def test_chain_import_contract_holds_and_catches_a_violation(tmp_path: Path) -> None:
    pkg = _installed_layout(tmp_path / "good")
    res = _lint(tmp_path / "good")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "The chain package reads nodes and signatures only" in res.stdout
    bad = _installed_layout(tmp_path / "bad") / "chain" / "window.py"
    bad.write_text(bad.read_text() + "\nfrom zksolv.verifier import bundle as _b  # noqa\n")
    res = _lint(tmp_path / "bad")
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and "zksolv.chain" in res.stdout
    assert pkg.is_dir()
