"""The compiled contracts shipped with the package: zksolv/chain/contracts/
holds each contract's Solidity source and its build (ABI, creation and
runtime bytecode, compiler version and settings), a JSON file beside it.
tests/test_registry_contract.py recompiles every source with the pinned
compiler and requires the same build byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zksolv.errors import InputError

CONTRACTS_DIR = Path(__file__).parent / "contracts"
SOLC_VERSION = "0.8.37"
# The IR pipeline (the verifier's functions hold more values than the EVM
# stack reaches without it), and the constant optimiser off: it rebuilds
# large constants from small ones to save bytes, at every use, which costs
# the Keccak permutation of the verifier's transcript a third of its gas.
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200, "details": {"constantOptimizer": False}},
    "evmVersion": "prague",
    "viaIR": True,
}
# contract name -> its compiler settings
CONTRACTS: dict[str, dict[str, Any]] = {
    "ZksolvRegistry": SOLC_SETTINGS,
    "ZksolvSolvencyVerifier": SOLC_SETTINGS,
}


@dataclass(frozen=True)
class Build:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes          # creation code
    deployed_bytecode: bytes  # runtime code, what eth_getCode returns after deployment
    compiler: str


def load(name: str) -> Build:
    """The shipped build of contract ``name``."""
    path = CONTRACTS_DIR / (name + ".json")
    try:
        record = json.loads(path.read_text())
        return Build(record["contract"], record["abi"],
                     bytes.fromhex(record["bytecode"].removeprefix("0x")),
                     bytes.fromhex(record["deployed_bytecode"].removeprefix("0x")),
                     record["compiler"])
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(str(path), f"the shipped contract build is unreadable: {exc}") from exc
