"""Collateral read from a chain: reserves at a pinned block, ownership
signed for the epoch, re-checked against any node.

- ``rpc``: a JSON-RPC client bounded against hostile nodes (``RpcClient``);
- ``ownership``: the EIP-712 ReserveOwnership statement, signing and strict
  recovery;
- ``window``: the reserves block derived from a window of blocks after the
  epoch's end, so the operator cannot pick it;
- ``evidence``: the sources, the evidence read at the block, and the checks
  (findings tagged ``reserves-signature``, ``reserves-balance``,
  ``reserves-block``, ``reserves-chain``).

The rules, with the exact type strings, domain and bounds, are in
docs/chain.md. This package imports nothing from the prover, the verifier,
the engine or the command line (import-linter contract). Its third-party
dependencies (eth-keys and eth-hash from eth-account, httpx) come with the
``zksolv[chain]`` extra and are imported on first use, so that importing
``zksolv.chain`` (for the evidence's types) works without them; a call that
needs them raises ``ChainExtraMissing``.
"""

from __future__ import annotations

import importlib.util

from zksolv.chain.evidence import (
    TAG_BALANCE,
    TAG_BLOCK,
    TAG_CHAIN,
    TAG_SIGNATURE,
    TAGS,
    AssetEvidence,
    AssetSource,
    Finding,
    HolderKind,
    HolderSource,
    Holding,
    ReservesEvidence,
    ReserveSources,
    check_node,
    check_offline,
    check_online,
    fetch,
    sign_holdings,
    statement_digest,
)
from zksolv.chain.rpc import Block, RpcClient
from zksolv.chain.window import WindowEvidence
from zksolv.errors import ChainError, ChainExtraMissing, SignatureError


def available() -> bool:
    """True if the ``zksolv[chain]`` extra is installed (signatures can be
    recovered and nodes asked)."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("eth_keys", "eth_hash", "httpx"))


__all__ = [
    "TAGS", "TAG_BALANCE", "TAG_BLOCK", "TAG_CHAIN", "TAG_SIGNATURE", "AssetEvidence",
    "AssetSource", "Block", "ChainError", "ChainExtraMissing", "Finding", "HolderKind",
    "HolderSource", "Holding", "ReserveSources", "ReservesEvidence", "RpcClient",
    "SignatureError", "WindowEvidence", "available", "check_node", "check_offline",
    "check_online", "fetch", "sign_holdings", "statement_digest",
]
