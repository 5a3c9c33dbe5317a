"""The on-chain registry of bundles (docs/registry.md): the binding statement
an operator's Ed25519 key signs, and a client of the ZksolvRegistry contract
(read its entries, deploy it, register, post) over JSON-RPC, with every
transaction signed locally (eth-account).

eth-abi and eth-account come with the ``chain`` extra; they are imported
here only, when a function needs them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zksolv.chain import artifacts
from zksolv.errors import InputError

BINDING_LABEL = b"zksolv/registry-binding/v1"
BINDING_STATEMENT_BYTES = len(BINDING_LABEL) + 32 + 20 + 20  # 98
CONTRACT = "ZksolvRegistry"
VERIFIER = "ZksolvSolvencyVerifier"
# A key's registrations are listed in pages of this many; more than
# MAX_REGISTRANTS is refused rather than read without end.
REGISTRANT_PAGE = 256
MAX_REGISTRANTS = 4096
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

ZERO32 = bytes(32)


class ChainRpc(Protocol):
    """What this module needs of a JSON-RPC connection: one call, its result
    (already checked to be JSON), or ``RegistryError``/``InputError``."""

    url: str

    def request(self, method: str, params: list[Any]) -> Any: ...


class Reverted(InputError):
    """The node refused a call or transaction of the registry; ``error`` is the
    contract's custom error decoded (name, arguments) when it gave one."""

    def __init__(self, where: str, reason: str, error: tuple[str, tuple[Any, ...]] | None):
        super().__init__(where, reason)
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.where, self.reason, self.error)


# -- the binding statement ---------------------------------------------------------------


def binding_statement(chain_id: int, registry: bytes, operator: bytes) -> bytes:
    """"zksolv/registry-binding/v1" || u256be(chain id) || registry (20 bytes)
    || operator address (20 bytes): what the operator's Ed25519 key signs."""
    if len(registry) != 20 or len(operator) != 20:
        raise ValueError("addresses are 20 bytes")
    if not 0 <= chain_id < 1 << 256:
        raise ValueError("chain id out of range")
    return BINDING_LABEL + chain_id.to_bytes(32, "big") + registry + operator


def binding_signature_valid(key: bytes, signature: bytes, chain_id: int, registry: bytes,
                            operator: bytes) -> bool:
    """Whether ``signature`` is ``key``'s Ed25519 signature of the binding
    statement, under the rules every manifest signature meets (a canonical key
    not of small order, S < L: docs/bundle-format.md, manifest.sig)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from zksolv.core import ed25519
    from zksolv.errors import FormatError

    try:
        ed25519.check_public_key(key)
        ed25519.check_signature_encoding(signature)
        Ed25519PublicKey.from_public_bytes(key).verify(
            signature, binding_statement(chain_id, registry, operator))
    except (FormatError, InvalidSignature, ValueError):
        return False
    return True


# -- addresses and keys ------------------------------------------------------------------


def parse_address(text: str, where: str) -> bytes:
    """A 0x-prefixed 20-byte address (any case; a mixed-case one must carry
    a valid EIP-55 checksum)."""
    s = text.strip()
    if not _ADDRESS.fullmatch(s):
        raise InputError(where, f"not an Ethereum address (0x and 40 hex digits): {s[:60]!r}")
    body = s[2:]
    if body != body.lower() and body != body.upper():
        from eth_utils import to_checksum_address

        if to_checksum_address(s) != s:
            raise InputError(where, f"{s}: the mixed-case spelling is not the address's "
                                    "EIP-55 checksum (a typo?)")
    return bytes.fromhex(body)


def hex_address(address: bytes) -> str:
    return "0x" + address.hex()


def eth_address(private_key: bytes) -> bytes:
    from eth_account import Account

    return bytes.fromhex(Account.from_key(private_key).address[2:])


# -- ABI -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    operator: bytes       # 20-byte address
    key: bytes            # Ed25519 public key
    signature: bytes      # R || S, 64 bytes
    block: int            # registration block; 0 means none


@dataclass(frozen=True)
class BundlePost:
    """What a bundle's operator posts for its epoch (docs/registry.md, Entries)."""

    epoch: int
    bundle_hash: bytes
    root_hash: bytes
    header_digest: bytes         # D = SHA-256 of the epoch header bytes
    roots_digest: bytes          # SHA-256 of the root commitments, 48 bytes each
    prev_bundle_hash: bytes | None
    prev_epoch: int | None

    def abi_tuple(self) -> tuple[Any, ...]:
        return (self.epoch, self.bundle_hash, self.root_hash, self.header_digest,
                self.roots_digest, self.prev_bundle_hash is not None,
                self.prev_bundle_hash or ZERO32, self.prev_epoch or 0)


@dataclass(frozen=True)
class Entry:
    operator: bytes
    epoch: int
    bundle_hash: bytes
    root_hash: bytes
    header_digest: bytes
    roots_digest: bytes
    prev_bundle_hash: bytes | None
    prev_epoch: int | None
    gap: bool
    solvent: bool
    block: int

    def matches(self, post: BundlePost) -> bool:
        return (self.bundle_hash, self.root_hash, self.header_digest, self.roots_digest,
                self.prev_bundle_hash, self.prev_epoch) == (
            post.bundle_hash, post.root_hash, post.header_digest, post.roots_digest,
            post.prev_bundle_hash, post.prev_epoch)

    def to_json(self) -> dict[str, Any]:
        return {
            "operator": hex_address(self.operator), "epoch": self.epoch,
            "bundle_hash": self.bundle_hash.hex(), "root_hash": self.root_hash.hex(),
            "header_digest": self.header_digest.hex(), "roots_digest": self.roots_digest.hex(),
            "prev_bundle_hash": None if self.prev_bundle_hash is None
            else self.prev_bundle_hash.hex(),
            "prev_epoch": self.prev_epoch, "gap": self.gap,
            "solvent_on_chain": self.solvent, "block": self.block,
        }


def _selector(signature: str) -> bytes:
    from eth_utils import keccak

    return keccak(text=signature)[:4]


def _abi_types(items: Sequence[dict[str, Any]]) -> list[str]:
    out = []
    for item in items:
        if item["type"] == "tuple":
            out.append("(" + ",".join(_abi_types(item["components"])) + ")")
        else:
            out.append(item["type"])
    return out


class _Abi:
    """Functions and custom errors of a contract build, by name."""

    def __init__(self, abi: list[dict[str, Any]]):
        self.functions: dict[str, tuple[list[str], list[str]]] = {}
        self.errors: dict[bytes, tuple[str, list[str]]] = {}
        for item in abi:
            if item["type"] == "function":
                self.functions[item["name"]] = (_abi_types(item["inputs"]),
                                                _abi_types(item["outputs"]))
            elif item["type"] == "error":
                types = _abi_types(item["inputs"])
                self.errors[_selector(f"{item['name']}({','.join(types)})")] = (item["name"],
                                                                                 types)

    def encode(self, name: str, args: Sequence[Any]) -> bytes:
        from eth_abi import encode

        inputs, _ = self.functions[name]
        return _selector(f"{name}({','.join(inputs)})") + encode(inputs, list(args))

    def decode(self, name: str, data: bytes, where: str) -> tuple[Any, ...]:
        from eth_abi import decode
        from eth_abi.exceptions import DecodingError

        _, outputs = self.functions[name]
        try:
            return tuple(decode(outputs, data, strict=True))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise InputError(where, f"{name}: the node's answer does not decode "
                                    f"({exc}); is this a ZksolvRegistry?") from exc

    def decode_error(self, data: bytes) -> tuple[str, tuple[Any, ...]] | None:
        from eth_abi import decode
        from eth_abi.exceptions import DecodingError

        known = self.errors.get(data[:4])
        if known is None:
            return None
        try:
            return known[0], tuple(decode(known[1], data[4:], strict=True))
        except (DecodingError, ValueError, OverflowError):
            return None


def _hex_data(value: Any, where: str, what: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"0x(?:[0-9a-fA-F]{2})*", value):
        raise InputError(where, f"{what}: the node answered {str(value)[:80]!r}, not hex data")
    return bytes.fromhex(value[2:])


def _quantity(value: Any, where: str, what: str) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"0x(?:0|[1-9a-fA-F][0-9a-fA-F]{0,63})",
                                                        value):
        raise InputError(where, f"{what}: the node answered {str(value)[:80]!r}, "
                                "not a hex quantity")
    return int(value, 16)


def _revert_data(exc: InputError) -> bytes | None:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and re.fullmatch(r"0x(?:[0-9a-fA-F]{2})*", data):
        return bytes.fromhex(data[2:])
    return None


# -- the client ------------------------------------------------------------------------------


class Contract:
    """A shipped contract (``artifacts``) at ``address`` through ``rpc``."""

    def __init__(self, rpc: ChainRpc, address: bytes, name: str):
        self.rpc = rpc
        self.address = address
        self.name = name
        self.abi = _Abi(artifacts.load(name).abi)
        self.where = f"{name} {hex_address(address)} at {rpc.url}"

    def call(self, fn: str, *args: Any, block: str = "latest",
             gas: int | None = None) -> tuple[Any, ...]:
        data = self.abi.encode(fn, args)
        request: dict[str, Any] = {"to": hex_address(self.address), "data": "0x" + data.hex()}
        if gas is not None:
            request["gas"] = hex(gas)
        try:
            answer = self.rpc.request("eth_call", [request, block])
        except InputError as exc:
            raise self._reverted(fn, exc) from exc
        raw = _hex_data(answer, self.where, fn)
        if not raw:
            raise InputError(self.where, f"{fn}: no contract code answers there (empty "
                                         f"result); is the address a {self.name} on this "
                                         "chain?")
        return self.abi.decode(fn, raw, self.where)

    def estimate_gas(self, fn: str, *args: Any) -> int:
        data = self.abi.encode(fn, args)
        try:
            answer = self.rpc.request("eth_estimateGas", [{"to": hex_address(self.address),
                                                           "data": "0x" + data.hex()}])
        except InputError as exc:
            raise self._reverted(fn, exc) from exc
        return _quantity(answer, self.where, "eth_estimateGas")

    def code_problem(self) -> str | None:
        """None if the address holds exactly the shipped contract's runtime
        code, else what it holds."""
        code = _hex_data(self.rpc.request("eth_getCode", [hex_address(self.address), "latest"]),
                         self.where, "eth_getCode")
        if code == artifacts.load(self.name).deployed_bytecode:
            return None
        return (f"the code at {hex_address(self.address)} ({len(code)} bytes) is not the "
                f"{self.name} this version of zksolv ships" if code else
                f"no contract at {hex_address(self.address)} on this chain")

    def check_code(self) -> None:
        problem = self.code_problem()
        if problem is not None:
            raise InputError(self.where, problem)

    def chain_id(self) -> int:
        return _quantity(self.rpc.request("eth_chainId", []), self.where, "eth_chainId")

    def _reverted(self, fn: str, exc: InputError) -> InputError:
        data = _revert_data(exc)
        if data is None:
            return exc
        decoded = self.abi.decode_error(data)
        what = (f"{decoded[0]}({', '.join(_show(a) for a in decoded[1])})" if decoded
                else f"revert data 0x{data.hex()[:80]}")
        return Reverted(self.where, f"{fn} reverted: {what}", decoded)

    def send(self, key: bytes, fn: str, *args: Any, wait: float = 120.0) -> dict[str, Any]:
        data = self.abi.encode(fn, args)
        try:
            return send_transaction(self.rpc, key, to=self.address, data=data, wait=wait)
        except InputError as exc:
            raise self._reverted(fn, exc) from exc


class Registry(Contract):
    """A ZksolvRegistry at ``address`` through ``rpc``."""

    def __init__(self, rpc: ChainRpc, address: bytes):
        super().__init__(rpc, address, CONTRACT)
        # proveSolvent passes the verifier's reverts on: decode its errors too
        self.abi.errors.update(_Abi(artifacts.load(VERIFIER).abi).errors)

    def binding(self, operator: bytes) -> Binding | None:
        key, r, s, block = self.call("bindingOf", hex_address(operator))
        if block == 0:
            return None
        return Binding(operator, bytes(key), bytes(r) + bytes(s), int(block))

    def registrants(self, key: bytes) -> list[bytes]:
        (count,) = self.call("registrantCount", key)
        if count > MAX_REGISTRANTS:
            raise InputError(self.where, f"{count} addresses registered key {key.hex()}, "
                                         f"more than the {MAX_REGISTRANTS} this check reads")
        out: list[bytes] = []
        while len(out) < count:
            (page,) = self.call("registrantsOf", key, len(out), REGISTRANT_PAGE)
            if not page:
                break
            out.extend(bytes.fromhex(a[2:]) for a in page)
        return out

    def latest_epoch(self, operator: bytes) -> int | None:
        has, epoch = self.call("latestEpoch", hex_address(operator))
        return int(epoch) if has else None

    def entry(self, operator: bytes, epoch: int) -> Entry | None:
        ((bundle, root, header, roots, prev, prev_epoch, has_prev, gap, solvent, block),) = (
            self.call("entry", hex_address(operator), epoch))
        if bytes(bundle) == ZERO32:
            return None
        return Entry(operator, epoch, bytes(bundle), bytes(root), bytes(header), bytes(roots),
                     bytes(prev) if has_prev else None, int(prev_epoch) if has_prev else None,
                     bool(gap), bool(solvent), int(block))

    def verifier(self) -> Contract:
        """The solvency verifier this registry calls."""
        (address,) = self.call("verifier")
        return Contract(self.rpc, bytes.fromhex(address[2:]), VERIFIER)

    def register(self, key: bytes, ed_key: bytes, signature: bytes, *,
                 wait: float = 120.0) -> dict[str, Any]:
        return self.send(key, "register", ed_key, signature[:32], signature[32:], wait=wait)

    def post(self, key: bytes, post: BundlePost, *, wait: float = 120.0) -> dict[str, Any]:
        return self.send(key, "post", post.abi_tuple(), wait=wait)

    def prove_solvent(self, key: bytes, operator: bytes, epoch: int, args: Sequence[Any], *,
                      wait: float = 600.0) -> dict[str, Any]:
        """Send proveSolvent with the verifier's arguments (header, roots,
        solvency, points, gens: ``solvency.VerifyCall``, without the root hash)."""
        return self.send(key, "proveSolvent", hex_address(operator), epoch, *args, wait=wait)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _deploy_one(rpc: ChainRpc, key: bytes, code: bytes, wait: float) -> tuple[bytes, int]:
    receipt = send_transaction(rpc, key, to=None, data=code, wait=wait)
    address = receipt.get("contractAddress")
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise InputError(f"deployment at {rpc.url}", "the receipt names no contract address")
    return bytes.fromhex(address[2:]), _quantity(receipt.get("gasUsed"), rpc.url, "gasUsed")


def deploy(rpc: ChainRpc, key: bytes, *, wait: float = 120.0) -> tuple[bytes, bytes, int]:
    """Deploy the shipped ZksolvSolvencyVerifier, then a ZksolvRegistry that
    calls it: (registry address, verifier address, gas used by both)."""
    from eth_abi import encode

    verifier, gas1 = _deploy_one(rpc, key, artifacts.load(VERIFIER).bytecode, wait)
    code = artifacts.load(CONTRACT).bytecode + encode(["address"], [hex_address(verifier)])
    registry, gas2 = _deploy_one(rpc, key, code, wait)
    return registry, verifier, gas1 + gas2


def send_transaction(rpc: ChainRpc, key: bytes, *, to: bytes | None, data: bytes,
                     wait: float = 120.0) -> dict[str, Any]:
    """Sign an EIP-1559 transaction locally with ``key`` and send it; wait
    (at most ``wait`` seconds) for its receipt; a reverted transaction is an
    error. The gas limit is the node's estimate plus a fifth."""
    from eth_account import Account
    from eth_utils import to_checksum_address

    where = f"transaction at {rpc.url}"
    sender = "0x" + eth_address(key).hex()
    chain_id = _quantity(rpc.request("eth_chainId", []), where, "eth_chainId")
    nonce = _quantity(rpc.request("eth_getTransactionCount", [sender, "pending"]), where,
                      "eth_getTransactionCount")
    call: dict[str, Any] = {"from": sender, "data": "0x" + data.hex()}
    if to is not None:
        call["to"] = hex_address(to)
    gas = _quantity(rpc.request("eth_estimateGas", [call]), where, "eth_estimateGas")
    block = rpc.request("eth_getBlockByNumber", ["latest", False])
    base = _quantity(block.get("baseFeePerGas") if isinstance(block, dict) else None, where,
                     "baseFeePerGas of the latest block")
    tip = _quantity(rpc.request("eth_maxPriorityFeePerGas", []), where,
                    "eth_maxPriorityFeePerGas")
    tx: dict[str, Any] = {
        "type": 2, "chainId": chain_id, "nonce": nonce, "value": 0,
        "data": "0x" + data.hex(), "gas": gas + gas // 5,
        "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip,
    }
    if to is not None:
        tx["to"] = to_checksum_address(hex_address(to))
    raw = Account.sign_transaction(tx, key).raw_transaction
    tx_hash = rpc.request("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
    if not isinstance(tx_hash, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", tx_hash):
        raise InputError(where, f"eth_sendRawTransaction answered {str(tx_hash)[:80]!r}")
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        receipt = rpc.request("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            break
        if time.monotonic() > deadline:
            raise InputError(where, f"no receipt for {tx_hash} within {wait:g} s (it may "
                                    "still be mined: look it up before sending again)")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    if not isinstance(receipt, dict):
        raise InputError(where, f"eth_getTransactionReceipt answered {str(receipt)[:80]!r}")
    if _quantity(receipt.get("status"), where, "receipt status") != 1:
        raise InputError(where, f"transaction {tx_hash} was mined but reverted")
    return receipt
