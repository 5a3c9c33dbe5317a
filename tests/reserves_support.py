"""Helpers for the chain-reserves tests: a snapshot whose header names
reserve sources, and its evidence (reserves.json) written by hand."""

from __future__ import annotations

import json
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
    from zksolv.chain import ownership

    return "0x" + ownership.address_of(bytes.fromhex(key_hex)).hex()


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


def inflating_reserves(extra: int) -> Any:
    """A stand-in for the prover's ``with_chain_reserves`` that states the
    first asset's reserves ``extra`` base units above the evidence's sum, so
    a dishonest prover makes proofs for that number (the verifier must refuse
    it: reserves-balance)."""
    from zksolv import snapshot as snapshot_mod

    real = snapshot_mod.with_chain_reserves

    def inflated(header: Any, doc: Any, where: str) -> Any:
        h = real(header, doc, where)
        a = h.assets[0]
        more = Asset(a.symbol, a.decimals, a.price, a.haircut_bps, a.reserves + extra,
                     a.proof_decimals, a.borrowable)
        return snapshot_mod.SnapshotHeader(h.epoch, h.timestamp, h.price_decimals,
                                           (more, *h.assets[1:]), h.account_count,
                                           h.reserve_sources)

    return inflated
