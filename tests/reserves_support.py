"""Helpers for the chain-reserves tests: a snapshot whose header names
reserve sources, its evidence, and (while the ``zksolv.chain`` package is not
in this tree) a stand-in for the part of its interface the format side calls
offline: the evidence dataclasses, ``check_offline`` and the EIP-712
statement (docs/snapshot-format.md), built on eth-account. ``chain_modules``
uses the real package whenever it imports.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from test_epoch_support import make_snapshot

from zksolv.snapshot import Asset

# two fixed secp256k1 test keys (the first is anvil's well-known account 0)
ETH_KEYS = (
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "1f" * 32,
)
CHAIN_ID = 31337
BLOCK_HASH = "0x" + "ab" * 32


def eth_address(key_hex: str) -> str:
    from eth_account import Account

    return str(Account.from_key(bytes.fromhex(key_hex)).address).lower()


# --- stand-in for zksolv.chain (evidence, ownership), offline part only ----------------

@dataclass(frozen=True)
class HolderSource:
    address: bytes
    kind: str


@dataclass(frozen=True)
class AssetSource:
    symbol: str
    token: bytes | None
    holders: tuple[HolderSource, ...]


@dataclass(frozen=True)
class ReserveSources:
    chain_id: int
    window_length: int | None
    assets: tuple[AssetSource, ...]


@dataclass(frozen=True)
class Holding:
    address: bytes
    kind: str
    balance: int
    signature: bytes | None


@dataclass(frozen=True)
class AssetEvidence:
    symbol: str
    token: bytes | None
    holdings: tuple[Holding, ...]

    def total(self) -> int:
        return sum(h.balance for h in self.holdings)


@dataclass(frozen=True)
class WindowEvidence:
    length: int
    first_number: int
    first_hash: bytes


@dataclass(frozen=True)
class ReservesEvidence:
    chain_id: int
    block_number: int
    block_hash: bytes
    window: WindowEvidence | None
    assets: tuple[AssetEvidence, ...]


@dataclass(frozen=True)
class Finding:
    tag: str
    where: str
    detail: str


def typed_data(*, chain_id: int, holder: bytes, block_number: int, block_hash: bytes,
               epoch: int, operator: bytes) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}],
            "ReserveOwnership": [{"name": "holder", "type": "address"},
                                 {"name": "blockNumber", "type": "uint256"},
                                 {"name": "blockHash", "type": "bytes32"},
                                 {"name": "epoch", "type": "uint64"},
                                 {"name": "operator", "type": "bytes32"}],
        },
        "primaryType": "ReserveOwnership",
        "domain": {"name": "zksolv reserves", "version": "1", "chainId": chain_id},
        "message": {"holder": "0x" + holder.hex(), "blockNumber": block_number,
                    "blockHash": "0x" + block_hash.hex(), "epoch": epoch,
                    "operator": "0x" + operator.hex()},
    }


def sign(key: bytes, **statement: Any) -> bytes:
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    msg = encode_typed_data(full_message=typed_data(**statement))
    return bytes(Account.sign_message(msg, key).signature)


def recover(signature: bytes, **statement: Any) -> bytes:
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    msg = encode_typed_data(full_message=typed_data(**statement))
    return bytes.fromhex(Account.recover_message(msg, signature=signature)[2:])


def load_eth_key(path: str, warn: Any = None) -> bytes:
    return bytes.fromhex(Path(path).read_text().strip().removeprefix("0x"))


def address_of(key: bytes) -> bytes:
    from eth_account import Account

    return bytes.fromhex(str(Account.from_key(key).address)[2:])


def holder_where(symbol: str, address: bytes) -> str:
    return f"{symbol} holder 0x{address.hex()}"


def check_offline(evidence: ReservesEvidence, *, epoch: int, operator: bytes) -> list[Finding]:
    out = []
    for a in evidence.assets:
        for h in a.holdings:
            if h.kind != "account":
                continue
            where = holder_where(a.symbol, h.address)
            if h.signature is None:
                out.append(Finding("reserves-signature", where, "missing signature"))
                continue
            got = recover(h.signature, chain_id=evidence.chain_id, holder=h.address,
                          block_number=evidence.block_number, block_hash=evidence.block_hash,
                          epoch=epoch, operator=operator)
            if got != h.address:
                out.append(Finding("reserves-signature", where,
                                   f"signature recovers to 0x{got.hex()}"))
    return out


def install_stand_in(monkeypatch: Any) -> None:
    """Make ``zksolv.chain.evidence``/``ownership`` importable from this stand-in
    when the real package is absent."""
    try:
        import zksolv.chain.evidence  # noqa: F401
        import zksolv.chain.ownership  # noqa: F401
        return
    except ImportError:
        pass
    me = sys.modules[__name__]
    pkg = types.ModuleType("zksolv.chain")
    ev = types.ModuleType("zksolv.chain.evidence")
    own = types.ModuleType("zksolv.chain.ownership")
    for name in ("HolderSource", "AssetSource", "ReserveSources", "Holding", "AssetEvidence",
                 "WindowEvidence", "ReservesEvidence", "Finding", "check_offline",
                 "holder_where"):
        setattr(ev, name, getattr(me, name))
    for name in ("typed_data", "sign", "recover", "load_eth_key", "address_of"):
        setattr(own, name, getattr(me, name))
    pkg.available = lambda: True  # type: ignore[attr-defined]
    pkg.evidence = ev  # type: ignore[attr-defined]
    pkg.ownership = own  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zksolv.chain", pkg)
    monkeypatch.setitem(sys.modules, "zksolv.chain.evidence", ev)
    monkeypatch.setitem(sys.modules, "zksolv.chain.ownership", own)


# --- snapshots ----------------------------------------------------------------------------

ASSETS = (Asset("ETH", 18, 3000_00, 9_000, 0, 9, reserves_stated=False),
          Asset("USDC", 6, 1_00, 10_000, 5 * 10**9))
ROWS = [("alice", (2 * 10**18, 1_000_000)), ("bob", (10**17, 2_000_000)),
        ("carol", (0, 3_000_000))]


def sourced_snapshot(path: Path, holders: list[tuple[str, str]], *, epoch: int = 1,
                     window: int | None = None, rows: list[Any] | None = None,
                     token: str = "native") -> Path:
    """A snapshot whose ETH reserves come from ``holders`` [(address, kind)]."""
    snap = make_snapshot(path, rows or ROWS, epoch=epoch, assets=ASSETS)
    hp = snap / "header.json"
    doc = json.loads(hp.read_text())
    doc["reserve_sources"] = {
        "chain_id": CHAIN_ID,
        "block_window": None if window is None else {"length": window},
        "assets": {"ETH": {"token": token,
                           "holders": [{"address": a, "kind": k} for a, k in holders]}},
    }
    hp.write_text(json.dumps(doc, indent=2) + "\n")
    return snap


def write_evidence(snap: Path, balances: list[tuple[str, str, int]], *, epoch: int = 1,
                   block: int = 7, block_hash: str = BLOCK_HASH, token: str = "native",
                   window: dict[str, Any] | None = None) -> Path:
    """reserves.json with unsigned holdings [(address, kind, balance)] for ETH."""
    doc = {"format": "zksolv-reserves", "version": 1, "epoch": epoch, "operator": None,
           "evidence": {"chain_id": CHAIN_ID, "block_number": block, "block_hash": block_hash,
                        "window": window,
                        "assets": [{"symbol": "ETH", "token": token, "holdings": [
                            {"address": a, "kind": k, "balance": b, "signature": None}
                            for a, k, b in balances]}]}}
    p = snap / "reserves.json"
    p.write_text(json.dumps(doc, indent=2) + "\n")
    return p
