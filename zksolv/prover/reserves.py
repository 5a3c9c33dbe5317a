"""The prover's side of chain reserves: a snapshot that names reserve
sources is proven only with its complete evidence (docs/snapshot-format.md,
*reserves.json*).

``sourced_snapshot`` reads reserves.json and refuses (``InputError``, exit 2,
with the command that fixes it) when it is missing, for another epoch,
chain or set of holders, signed for another operator key, incomplete (an
account or contract holder without a signature; a declared holder needs
none), or when an account's signature does not recover to its address for
this chain, block, epoch and operator. Otherwise each sourced asset's
reserves become the evidence's sum (a header that also states them must
agree), and the evidence goes into the manifest (bundle version 6).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from zksolv.errors import InputError
from zksolv.reserves_format import (
    MAX_EVIDENCE_BYTES,
    EvidenceJSON,
    ReservesFile,
    canonical_json,
    from_evidence,
    to_evidence,
)
from zksolv.snapshot import RESERVES_FILE, Snapshot, evidence_problem, with_chain_reserves

FETCH_HINT = "zksolv reserves fetch SNAPSHOT --rpc URL"
SIGN_HINT = ("zksolv reserves sign SNAPSHOT --eth-key FILE (or reserves typed-data, then "
             "reserves import)")


def sourced_snapshot(snap: Snapshot, operator: bytes) -> tuple[Snapshot, EvidenceJSON | None]:
    """The snapshot with its sourced reserves read from reserves.json, and
    the evidence; unchanged and None when the header names no sources."""
    header = snap.header
    if header.reserve_sources is None:
        return snap, None
    where = str(snap.reserves_path)
    doc = snap.load_reserves()
    if doc is None:
        raise InputError(str(snap.path), f"the header names reserve sources but there is no "
                                         f"{RESERVES_FILE}: read the balances first with "
                                         f"{FETCH_HINT}, then sign with {SIGN_HINT}")
    problem = evidence_problem(header, doc)
    if problem is not None:
        raise InputError(where, f"{problem} ({FETCH_HINT})")
    if doc.operator is not None and doc.operator != operator.hex():
        raise InputError(where, f"signed for operator {doc.operator}, this key is "
                                f"{operator.hex()}: sign again with this key's public key "
                                f"({SIGN_HINT})")
    missing = doc.evidence.missing_signatures()
    if missing:
        shown = ", ".join(f"{sym} {addr} ({kind})" for sym, addr, kind in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(where, f"{len(missing)} holder(s) without an ownership signature: "
                                f"{shown}{more}: {SIGN_HINT}")
    signed = any(h.signature is not None for a in doc.evidence.assets for h in a.holdings)
    if doc.operator is None and signed:
        # every holder declared needs no signature, nor the key they would be for
        raise InputError(where, f"no operator key recorded for the signatures: {SIGN_HINT}")
    from zksolv import chain
    from zksolv.chain import evidence as chain_evidence

    if not chain.available():
        raise InputError(str(snap.path), "proving reserves read from the chain needs the "
                                         "chain extra: install zksolv[chain]")
    findings = chain_evidence.check_offline(to_evidence(doc.evidence), epoch=header.epoch,
                                            operator=operator)
    if findings:
        f = findings[0]
        raise InputError(where, f"{f.where}: {f.detail} [{f.tag}]: {SIGN_HINT}")
    size = len(canonical_json(msgspec.to_builtins(doc.evidence)))
    if size > MAX_EVIDENCE_BYTES:
        raise InputError(where, f"the evidence is {size} bytes as the manifest writes it, more "
                                f"than the {MAX_EVIDENCE_BYTES} a bundle's manifest leaves for it "
                                "(a verifier reads at most 1 MiB): name fewer holders")
    sourced = with_chain_reserves(header, doc, where)
    return Snapshot(snap.path, sourced), doc.evidence


def fetch_reserves(snap: Snapshot, rpc: str, *, block: int | None = None,
                   timeout: float = 10.0,
                   progress: Callable[[int, int], None] | None = None) -> ReservesFile:
    """Read every sourced balance of ``snap`` from the node at ``rpc``: at
    ``block``, or (no ``block``) at the block derived from the header's
    block window. The reserves.json to write (no signatures yet): what
    ``zksolv reserves fetch`` writes, and ``zksolv watch --rpc``.
    ``progress(done, total)``: balances read so far (``chain.evidence.fetch``)."""
    header = snap.header
    if header.reserve_sources is None:
        raise InputError(str(snap.path / "header.json"), "names no reserve_sources")
    from zksolv import chain
    from zksolv.chain import evidence as chain_evidence
    from zksolv.chain.rpc import RpcClient

    if not chain.available():
        raise InputError(str(snap.path), "reading reserves from a chain needs the chain "
                                         "extra: install zksolv[chain]")
    with RpcClient(rpc, timeout=timeout) as client:
        ev = chain_evidence.fetch(client, header.reserve_sources, block=block,
                                  epoch_timestamp=header.timestamp, progress=progress)
    return ReservesFile(format="zksolv-reserves", version=1, epoch=header.epoch,
                        operator=None, evidence=from_evidence(ev))
