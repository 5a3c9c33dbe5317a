"""The reserves statement: what a bundle's reserves rest on.

Version 4 and 5 bundles state each asset's reserves as the operator's
assertion (reported "asserted"). A version 6 bundle's manifest carries
``chain_reserves``, the evidence of its sourced assets' reserves (its
SHA-256 is bound into the epoch header, so the proofs are bound to it):
every holding's balance at one block pinned by its hash, and each holder's
EIP-712 ownership signature for this chain, block, epoch and operator key
(docs/bundle-format.md, docs/epoch.md). Checks, in this order, each failure a
``VerificationError`` with one of these tags:

==================  ======================================================
tag                 what is checked
==================  ======================================================
reserves-balance    (offline) each sourced asset's ``reserves`` in the
                    manifest is the sum of its holdings in the evidence,
                    and every evidence asset is a manifest asset
reserves-block      (offline) with a block window, the reserves block is
                    first_number + 1 + (first_hash mod length)
reserves-signature  (offline, needs the ``chain`` extra) every account
                    holder's signature recovers to its address for this
                    chain id, block number and hash, epoch and operator
reserves-chain      (--rpc) the node's chain id is the evidence's
reserves-block      (--rpc) the block hash is the node's block at that
                    number; the window's first block is the first whose
                    timestamp is at least the epoch's
reserves-balance    (--rpc) every balance equals the node's at the pinned
                    block hash
reserves-signature  (--rpc) every contract holder's EIP-1271
                    ``isValidSignature`` at the pinned block says yes
==================  ======================================================

An unreachable or hostile node is an ``InputError`` (``ChainError``, exit 2),
never a verdict. Without ``--rpc`` the report says that balances were not
checked; without the ``chain`` extra, that signatures were not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zksolv.circuits import epoch as circ
from zksolv.errors import InputError, VerificationError
from zksolv.reserves_format import NATIVE, EvidenceJSON, to_evidence

# the order online findings are reported in (the first one fails the bundle)
ONLINE_ORDER = ("reserves-chain", "reserves-block", "reserves-balance", "reserves-signature")
CHAIN_EXTRA = "install zksolv[chain]"


@dataclass(frozen=True)
class AssetReserves:
    """One asset's reserves and what they rest on: ``"asserted"`` (the
    operator's number), ``"checked"`` (from chain, every balance re-read at
    the pinned block) or ``"not-checked"`` (from chain, no node asked)."""

    symbol: str
    reserves: int
    balances: str
    holders: int = 0
    declared: int = 0          # holders declared as the protocol's own contracts


@dataclass(frozen=True)
class ReservesReport:
    """What was checked of a bundle's reserves."""

    from_chain: bool
    assets: tuple[AssetReserves, ...]
    chain_id: int | None = None
    block_number: int | None = None
    block_hash: str | None = None
    window: bool = False
    # "checked", or why not ("not-checked: install zksolv[chain]")
    signatures: str = "asserted"
    contracts: str = "asserted"
    rpc: str | None = None
    checks: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "from_chain": self.from_chain,
            "chain_id": self.chain_id,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "block_window": self.window,
            "signatures": self.signatures,
            "contract_signatures": self.contracts,
            "rpc": self.rpc,
            "assets": [{"symbol": a.symbol, "reserves": a.reserves,
                        "source": "chain" if a.balances != "asserted" else "asserted",
                        "balances": a.balances, "holders": a.holders,
                        "declared": a.declared,
                        "text": asset_text(a, self.block_number)}
                       for a in self.assets],
        }

    def lines(self) -> list[str]:
        """For people: one line per asset, and what was and was not checked."""
        out = []
        for a in self.assets:
            out.append(f"  reserves {a.symbol}: {asset_text(a, self.block_number)}")
        if not self.from_chain:
            return out
        out.append(f"  reserves block {self.block_number} {self.block_hash} on chain "
                   f"{self.chain_id}" + (" (derived from its window)" if self.window else ""))
        if self.signatures == "checked":
            out.append("  ownership: every account holder's signature for this epoch, block "
                       "and operator key recovers to its address (checked)")
        else:
            out.append(f"  reserves: ownership signatures NOT checked ({CHAIN_EXTRA})")
        if self.contracts == "checked":
            out.append("  contract holders: EIP-1271 isValidSignature at the pinned block "
                       "(checked)")
        elif any(a.holders - a.declared for a in self.assets):
            out.append("  contract holders' signatures NOT checked (needs --rpc)")
        if any(a.declared for a in self.assets):
            out.append("  declared holders: the operator's own contracts, balances only, no "
                       "signature")
        if self.rpc is None:
            out.append("  balances NOT checked: give --rpc URL (a node of chain "
                       f"{self.chain_id}, keeping state at block {self.block_number})")
        return out


def asset_text(a: AssetReserves, block: int | None) -> str:
    if a.balances == "asserted":
        return "reserves asserted (the operator's number, not read from a chain)"
    if a.balances == "checked":
        return f"from chain: balances checked at block {block}"
    return "from chain: balances NOT checked (no --rpc)"


def asserted(assets: Sequence[circ.AssetTerms]) -> ReservesReport:
    """Version 4 and 5: every asset's reserves are the operator's number."""
    return ReservesReport(False, tuple(AssetReserves(a.symbol, a.reserves, "asserted")
                                       for a in assets))


def _fail(tag: str, detail: str) -> VerificationError:
    return VerificationError(tag, detail)


def check_offline_shape(evidence: EvidenceJSON, assets: Sequence[circ.AssetTerms]) -> None:
    """[reserves-balance] sums; [reserves-block] the window's derivation;
    [reserves-signature] every account and contract holding has a signature."""
    by_symbol = {a.symbol: a for a in assets}
    for e in evidence.assets:
        a = by_symbol.get(e.symbol)
        if a is None:
            raise _fail("reserves-balance", f"chain_reserves names asset {e.symbol!r}, which "
                                            "the manifest does not list")
        if a.reserves != e.total():
            raise _fail("reserves-balance",
                        f"{e.symbol}: the manifest states reserves {a.reserves}, its evidence "
                        f"at block {evidence.block_number} sums to {e.total()}")
    w = evidence.window
    if w is not None:
        derived = w.first_number + 1 + int(w.first_hash, 16) % w.length
        if derived != evidence.block_number:
            raise _fail("reserves-block",
                        f"the window's first block {w.first_number} ({w.first_hash}) gives "
                        f"block {derived}, the evidence is at block {evidence.block_number}")
    for symbol, address, kind in evidence.missing_signatures():
        raise _fail("reserves-signature", f"{symbol} holder {address} ({kind}): no ownership "
                                          "signature")


def _raise_first(findings: Sequence[Any]) -> None:
    if not findings:
        return
    order = {t: i for i, t in enumerate(ONLINE_ORDER)}
    first = min(findings, key=lambda f: order.get(f.tag, len(order)))
    raise _fail(first.tag, f"{first.where}: {first.detail}")


def _chain_modules() -> Any:
    """zksolv.chain.evidence, or None without the chain extra (the package
    imports without it; ``available()`` says whether its calls can run)."""
    try:
        import zksolv.chain as chain
        from zksolv.chain import evidence as chain_evidence
    except ImportError:
        return None
    return chain_evidence if chain.available() else None


def check_reserves(evidence: EvidenceJSON | None, header: circ.EpochHeader, *,
                   rpc: str | None = None, timeout: float = 10.0) -> ReservesReport:
    """Check what a bundle's reserves rest on (the tags above, in order);
    the report says what was and was not checked."""
    if evidence is None:    # version 4 or 5: nothing to re-read, even with --rpc
        return asserted(header.assets)
    check_offline_shape(evidence, header.assets)
    checks = ["reserves-balance", *(["reserves-block"] if evidence.window else [])]
    ce = _chain_modules()
    signatures = f"not-checked: {CHAIN_EXTRA}"
    if ce is not None:
        _raise_first(ce.check_offline(to_evidence(evidence), epoch=header.epoch,
                                      operator=header.operator))
        signatures = "checked"
        checks.append("reserves-signature")
    contracts = "not-checked: no --rpc"
    if rpc is not None:
        if ce is None:
            raise InputError("--rpc", f"re-reading reserves from a node needs the chain "
                                      f"extra: {CHAIN_EXTRA}")
        from zksolv.chain.rpc import RpcClient

        # the offline findings were none (else raised above): the node's checks
        # alone, each signature recovered once
        with RpcClient(rpc, timeout=timeout) as client:
            findings = ce.check_node(client, to_evidence(evidence), epoch=header.epoch,
                                     operator=header.operator,
                                     epoch_timestamp=header.timestamp)
        _raise_first(findings)
        contracts = "checked"
        checks += list(ONLINE_ORDER)
    sourced = {e.symbol: e for e in evidence.assets}
    assets = []
    for a in header.assets:
        e = sourced.get(a.symbol)
        if e is None:
            assets.append(AssetReserves(a.symbol, a.reserves, "asserted"))
            continue
        assets.append(AssetReserves(
            a.symbol, a.reserves, "checked" if rpc is not None else "not-checked",
            holders=len(e.holdings), declared=sum(h.kind == "declared" for h in e.holdings)))
    return ReservesReport(
        True, tuple(assets), chain_id=evidence.chain_id, block_number=evidence.block_number,
        block_hash=evidence.block_hash, window=evidence.window is not None,
        signatures=signatures, contracts=contracts, rpc=_public_url(rpc), checks=tuple(checks))


def _public_url(url: str | None) -> str | None:
    """The node's scheme and host only, for reports: a URL's credentials
    (user:password@) and path (often an API key) stay out."""
    if url is None:
        return None
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}{sep}{host}"


__all__ = ["NATIVE", "AssetReserves", "ReservesReport", "asserted", "check_reserves"]
