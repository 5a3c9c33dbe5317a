"""The registry contracts' builds: compile zksolv/chain/contracts/*.sol with the
pinned solcjs (tests/js, ``npm ci --prefix tests/js``) and the settings recorded
in each build, and write or compare the checked-in JSON beside the source.

``python tests/registry_build.py`` rewrites the builds from the sources;
tests/test_registry_contract.py recompiles and compares them byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from chain_node import INSTALL_HINT, JS_DIR

from zksolv.chain import artifacts

SOLCJS = JS_DIR / "node_modules" / ".bin" / "solcjs"


COMPILE_JS = (
    "const fs = require('fs'); const solc = require('solc');"
    "fs.writeFileSync(process.argv[1], solc.compile(fs.readFileSync(0, 'utf8')));"
)


class BuildError(RuntimeError):
    """solcjs is missing or refused the source."""


def solcjs_version(exe: Path = SOLCJS) -> str:
    if not exe.exists():
        raise BuildError(f"solcjs is missing: {INSTALL_HINT}")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return out.strip().splitlines()[-1]


def compile_source(name: str, exe: Path = SOLCJS) -> dict[str, Any]:
    """The build record of contract ``name`` (zksolv/chain/contracts/NAME.sol),
    compiled now with its settings (``artifacts.CONTRACTS``)."""
    if not exe.exists():
        raise BuildError(f"solcjs is missing: {INSTALL_HINT}")
    source_name = name + ".sol"
    source = (artifacts.CONTRACTS_DIR / source_name).read_bytes()
    request = {
        "language": "Solidity",
        "sources": {source_name: {"content": source.decode()}},
        "settings": {
            **artifacts.CONTRACTS[name],
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object",
                                            "evm.deployedBytecode.object"]}},
        },
    }
    # solc's standard JSON through node, the answer written to a file: solcjs
    # itself exits before a large answer on a pipe is flushed
    with tempfile.TemporaryDirectory() as tmp:
        answer = Path(tmp) / "out.json"
        proc = subprocess.run(["node", "-e", COMPILE_JS, str(answer)], input=json.dumps(request),
                              capture_output=True, text=True, timeout=600, check=False,
                              cwd=JS_DIR)
        if proc.returncode != 0 or not answer.exists():
            raise BuildError(f"solc failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
        out = json.loads(answer.read_text())
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("solc: " + "; ".join(e.get("formattedMessage", "") for e in errors))
    compiled = out["contracts"][source_name][name]
    return {
        "contract": name,
        "source": source_name,
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "compiler": f"solc {solcjs_version(exe)}",
        "settings": artifacts.CONTRACTS[name],
        "abi": compiled["abi"],
        "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
        "deployed_bytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
    }


def render(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=1, sort_keys=True) + "\n"


def main(names: list[str]) -> None:
    version = solcjs_version()
    if not version.startswith(artifacts.SOLC_VERSION + "+"):
        raise SystemExit(f"solcjs {version} is not the pinned {artifacts.SOLC_VERSION}")
    for name in names or list(artifacts.CONTRACTS):
        path = artifacts.CONTRACTS_DIR / (name + ".json")
        record = compile_source(name)
        path.write_text(render(record))
        print(f"{path}: {len(record['deployed_bytecode']) // 2 - 1} bytes of runtime code")


if __name__ == "__main__":
    main(sys.argv[1:])
