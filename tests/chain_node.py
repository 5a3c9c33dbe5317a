"""A real local Ethereum node for the tests, and the Solidity compiler.

``AnvilNode`` runs anvil (npm ``@foundry-rs/anvil``, pinned in
tests/js/package.json) on 127.0.0.1 at a free port, with the Prague hardfork,
and talks to it over plain ``urllib`` JSON-RPC: deliberately not through
``zksolv.chain.rpc``, so the tests' view of the chain is independent of the
client under test.

``compile_contract`` compiles a test contract (tests/contracts/*.sol) with the
pinned solcjs through its standard JSON interface, with the settings recorded
beside the checked-in build (``SOLC_SETTINGS``). ``python tests/chain_node.py``
rewrites tests/contracts/build/*.json from the sources.

Both tools come from ``npm ci --prefix tests/js``; ``anvil_path()`` and
``solcjs_path()`` return None when it has not been run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).parent / "js"
CONTRACTS_DIR = Path(__file__).parent / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
INSTALL_HINT = "npm ci --prefix tests/js"

SOLC_VERSION = "0.8.37"
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "prague",
}
CONTRACTS = {"TestToken.sol": "TestToken", "TestWallet1271.sol": "TestWallet1271"}

# anvil's default accounts come from the well-known test mnemonic; the first
# one sends the tests' transactions. Its key is public knowledge, by design.
DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


class NodeError(RuntimeError):
    """The test node failed to start or answered with an error."""


def _platform_package() -> str:
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(
        platform.system(), platform.system().lower()
    )
    return f"anvil-{system}-{machine}"


def anvil_path() -> Path | None:
    """The anvil binary installed by npm: the platform package's native binary
    (so that stopping the node stops anvil itself, not a node.js wrapper),
    else the wrapper in node_modules/.bin, else None."""
    native = JS_DIR / "node_modules" / "@foundry-rs" / _platform_package() / "bin" / "anvil"
    if native.is_file() and os.access(native, os.X_OK):
        return native
    wrapper = JS_DIR / "node_modules" / ".bin" / "anvil"
    if wrapper.exists():
        return wrapper
    return None


def solcjs_path() -> Path | None:
    exe = JS_DIR / "node_modules" / ".bin" / "solcjs"
    return exe if exe.exists() else None


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGKILL when the test process dies,
    even by SIGKILL, so that no anvil outlives its tests."""
    if sys.platform == "linux":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, payload: Any, timeout: float) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class AnvilNode:
    """One anvil process. ``url`` is its JSON-RPC endpoint; ``stop()`` ends it
    (SIGTERM to its process group, SIGKILL after 5 s); if the test process
    dies first, the kernel kills anvil (Linux: PR_SET_PDEATHSIG)."""

    def __init__(self, exe: Path, *, chain_id: int = 31337, start_timeout: float = 30.0):
        self.exe = exe
        self.chain_id = chain_id
        last_error = ""
        for _ in range(3):  # a free port can be taken between probe and bind
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self._proc = subprocess.Popen(
                [str(exe), "--host", "127.0.0.1", "--port", str(self.port),
                 "--hardfork", "prague", "--chain-id", str(chain_id), "--silent"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
            try:
                self._wait_ready(start_timeout)
                self._accounts: list[str] = self.rpc("eth_accounts")
                return
            except NodeError as exc:
                last_error = str(exc)
                self.stop()
        raise NodeError(f"anvil did not start: {last_error}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise NodeError(f"exited with {self._proc.returncode}: {err.strip()[:500]}")
            try:
                if int(self.rpc("eth_chainId"), 16) == self.chain_id:
                    return
            except (OSError, NodeError):
                pass
            time.sleep(0.05)
        raise NodeError(f"no answer at {self.url} within {timeout} s")

    def stop(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    # -- JSON-RPC --------------------------------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        try:
            answer = _post(self.url, {"jsonrpc": "2.0", "id": 1, "method": method,
                                      "params": list(params)}, timeout=30)
        except urllib.error.URLError as exc:
            raise NodeError(f"{method}: {exc}") from exc
        if "error" in answer:
            raise NodeError(f"{method}: {answer['error']}")
        return answer["result"]

    @property
    def accounts(self) -> list[str]:
        """The node's unlocked dev accounts (lowercase 0x hex)."""
        return [a.lower() for a in self._accounts]

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        if self.rpc("evm_revert", snapshot_id) is not True:
            raise NodeError(f"evm_revert {snapshot_id} refused")

    def mine(self, n: int = 1, interval: int | None = None) -> None:
        """Mine n empty blocks (``interval`` seconds apart, when given)."""
        if interval is None:
            self.rpc("anvil_mine", hex(n))
        else:
            self.rpc("anvil_mine", hex(n), hex(interval))

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block(self, tag: int | str = "latest") -> dict[str, Any]:
        block = self.rpc("eth_getBlockByNumber", hex(tag) if isinstance(tag, int) else tag, False)
        if block is None:
            raise NodeError(f"no block {tag}")
        return dict(block)

    def send(self, tx: dict[str, Any], *, sender: str | None = None) -> dict[str, Any]:
        """Send a transaction from an unlocked dev account (the first unless
        ``sender``); anvil mines it at once. Returns the receipt; a reverted
        transaction raises."""
        full = {"from": sender or self.accounts[0], **tx}
        for key in ("value", "gas"):
            if isinstance(full.get(key), int):
                full[key] = hex(full[key])
        tx_hash = self.rpc("eth_sendTransaction", full)
        # anvil mines each transaction at once, but answers before the block is in
        deadline = time.monotonic() + 10
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None:
            if time.monotonic() > deadline:
                raise NodeError(f"no receipt for {tx_hash} within 10 s (is automine off?)")
            time.sleep(0.005)
        if int(receipt["status"], 16) != 1:
            raise NodeError(f"transaction {tx_hash} reverted")
        return dict(receipt)

    def deploy(self, bytecode_hex: str, constructor_args_hex: str = "", *,
               sender: str | None = None) -> str:
        """Deploy creation code (+ ABI-encoded constructor arguments); returns
        the new contract's address (lowercase 0x hex)."""
        code = bytecode_hex.removeprefix("0x") + constructor_args_hex.removeprefix("0x")
        receipt = self.send({"data": "0x" + code, "gas": 5_000_000}, sender=sender)
        address = receipt.get("contractAddress")
        if not address:
            raise NodeError("deployment returned no contract address")
        return str(address).lower()

    def call(self, to: str, data: str, block: str = "latest") -> str:
        return str(self.rpc("eth_call", {"to": to, "data": data}, block))

    def balance(self, address: str, block: str = "latest") -> int:
        return int(self.rpc("eth_getBalance", address, block), 16)


# -- Solidity ----------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # creation code, 0x hex


def standard_json_input(source_name: str) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {source_name: {"content": (CONTRACTS_DIR / source_name).read_text()}},
        "settings": {
            **SOLC_SETTINGS,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }


def compile_contract(source_name: str, contract: str | None = None) -> CompiledContract:
    """Compile tests/contracts/<source_name> with the pinned solcjs (standard
    JSON, ``SOLC_SETTINGS``); the contract named like the file unless given."""
    exe = solcjs_path()
    if exe is None:
        raise NodeError(f"solcjs is missing: {INSTALL_HINT}")
    contract = contract or CONTRACTS.get(source_name, source_name.removesuffix(".sol"))
    proc = subprocess.run(
        [str(exe), "--standard-json"], input=json.dumps(standard_json_input(source_name)),
        capture_output=True, text=True, timeout=300, check=False,
    )
    # solcjs may print a notice line before the JSON document
    start = proc.stdout.find("{")
    if proc.returncode != 0 or start < 0:
        raise NodeError(f"solcjs failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    out = json.loads(proc.stdout[start:])
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise NodeError("solc: " + "; ".join(e.get("formattedMessage", "") for e in errors))
    entry = out["contracts"][source_name][contract]
    return CompiledContract(contract, entry["abi"], "0x" + entry["evm"]["bytecode"]["object"])


def solcjs_version() -> str:
    exe = solcjs_path()
    if exe is None:
        raise NodeError(f"solcjs is missing: {INSTALL_HINT}")
    return subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                          timeout=60, check=True).stdout.strip().splitlines()[-1]


def build_record(source_name: str, compiled: CompiledContract, version: str) -> dict[str, Any]:
    source = (CONTRACTS_DIR / source_name).read_bytes()
    return {
        "contract": compiled.name,
        "source": source_name,
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "compiler": f"solc {version}",
        "settings": SOLC_SETTINGS,
        "abi": compiled.abi,
        "bytecode": compiled.bytecode,
    }


def load_build(source_name: str) -> CompiledContract:
    """The checked-in build of a test contract (no compiler needed)."""
    record = json.loads((BUILD_DIR / (source_name.removesuffix(".sol") + ".json")).read_text())
    return CompiledContract(record["contract"], record["abi"], record["bytecode"])


# -- ABI encoding for the test contracts (independent of zksolv.chain) ----------------


def selector(signature: str) -> str:
    from eth_utils import keccak

    return "0x" + keccak(text=signature)[:4].hex()


def encode_args(types: list[str], values: list[Any]) -> str:
    from eth_abi import encode

    return encode(types, values).hex()


def deploy_token(node: AnvilNode, symbol: str = "TTK", decimals: int = 18) -> str:
    build = load_build("TestToken.sol")
    return node.deploy(build.bytecode,
                       encode_args(["string", "string", "uint8"], [f"Test {symbol}", symbol,
                                                                   decimals]))


def deploy_wallet(node: AnvilNode, owner: str) -> str:
    build = load_build("TestWallet1271.sol")
    return node.deploy(build.bytecode, encode_args(["address"], [owner]))


def token_mint(node: AnvilNode, token: str, to: str, amount: int) -> None:
    node.send({"to": token, "data": selector("mint(address,uint256)")
               + encode_args(["address", "uint256"], [to, amount])})


def token_transfer(node: AnvilNode, token: str, to: str, amount: int, *, sender: str) -> None:
    node.send({"to": token, "data": selector("transfer(address,uint256)")
               + encode_args(["address", "uint256"], [to, amount])}, sender=sender)


def token_balance(node: AnvilNode, token: str, holder: str, block: str = "latest") -> int:
    return int(node.call(token, selector("balanceOf(address)")
                         + encode_args(["address"], [holder]), block), 16)


def main() -> None:
    """Rewrite tests/contracts/build/*.json from the sources (pinned solcjs)."""
    version = solcjs_version()
    if not version.startswith(SOLC_VERSION + "+"):
        raise SystemExit(f"solcjs {version} is not the pinned {SOLC_VERSION}")
    BUILD_DIR.mkdir(exist_ok=True)
    for source_name in CONTRACTS:
        record = build_record(source_name, compile_contract(source_name), version)
        path = BUILD_DIR / (source_name.removesuffix(".sol") + ".json")
        path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{path}: {len(record['bytecode']) // 2 - 1} bytes of creation code")


if __name__ == "__main__":
    main()
