"""Chain reserves as JSON: the snapshot header's ``reserve_sources``, the
evidence (``reserves.json`` of a snapshot, ``chain_reserves`` of a version 6
bundle's manifest) and the signatures file ``zksolv reserves import`` reads.

Formats: ``docs/snapshot-format.md`` (*Reserve sources*, *reserves.json*)
and ``docs/bundle-format.md`` (*chain_reserves*). Decoding is strict
(msgspec, exact types, no unknown keys, every string matched whole); the
checks that need the chain (EIP-712 recovery, balances at the pinned block)
live in ``zksolv.chain``. The header's sources decode straight into that
package's types (``zksolv.chain.evidence.ReserveSources``, addresses as
bytes), which import without the ``chain`` extra; ``to_evidence`` and
``from_evidence`` convert the evidence.

One spelling per value: addresses, token addresses, block hashes and
signatures are lowercase ``0x`` hex, matched whole. The header accepts a
mixed-case (checksummed) address and lowercases it; the evidence does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

from zksolv.chain import evidence as chain_evidence
from zksolv.chain.evidence import AssetSource, HolderSource, ReserveSources

NATIVE = "native"
KINDS = ("account", "contract", "declared")
Kind = Literal["account", "contract", "declared"]
ADDRESS_PATTERN = r"^0x[0-9a-f]{40}\Z"
ADDRESS_ANY_CASE = r"^0x[0-9a-fA-F]{40}\Z"
MAX_CHAIN_ID = (1 << 63) - 1
MAX_WINDOW = 10_000
MAX_HOLDERS = 1_000           # per asset
MAX_BALANCE_BITS = 256
ACCOUNT_SIGNATURE_BYTES = 65
MAX_CONTRACT_SIGNATURE_BYTES = 4096
RESERVES_FORMAT = "zksolv-reserves"
RESERVES_VERSION = 1
# 255 assets x 1000 holders would be far beyond; a file past this is refused.
MAX_RESERVES_BYTES = 16 << 20
MAX_SIGNATURES_BYTES = 4 << 20
# The evidence goes into the manifest, which a verifier reads up to 1 MiB
# (bundle-format.md); the rest of a manifest takes at most ~80 kB.
MAX_EVIDENCE_BYTES = 768 << 10
MAX_SIGNATURES = 100_000

Address = Annotated[str, msgspec.Meta(pattern=ADDRESS_PATTERN)]
AnyCaseAddress = Annotated[str, msgspec.Meta(pattern=ADDRESS_ANY_CASE)]
BlockHash = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-f]{64}\Z")]
# a contract's EIP-1271 signature: up to 4096 bytes; an account's: 65
SignatureHex = Annotated[str, msgspec.Meta(pattern=r"^0x(?:[0-9a-f]{2}){1,4096}\Z")]
OperatorHex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]
U63 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
ChainId = Annotated[int, msgspec.Meta(ge=1, le=MAX_CHAIN_ID)]
WindowLength = Annotated[int, msgspec.Meta(ge=1, le=MAX_WINDOW)]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}\Z")]
Token = Annotated[str, msgspec.Meta(pattern=r"^(?:native|0x[0-9a-f]{40})\Z")]
AnyCaseToken = Annotated[str, msgspec.Meta(pattern=r"^(?:native|0x[0-9a-fA-F]{40})\Z")]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


# --- header.json: reserve_sources -------------------------------------------------------

class HolderSpec(_Strict, frozen=True, forbid_unknown_fields=True):
    address: AnyCaseAddress
    kind: Kind


class AssetSourceSpec(_Strict, frozen=True, forbid_unknown_fields=True):
    token: AnyCaseToken
    holders: Annotated[list[HolderSpec], msgspec.Meta(min_length=1, max_length=MAX_HOLDERS)]


class WindowSpec(_Strict, frozen=True, forbid_unknown_fields=True):
    length: WindowLength


class SourcesSpec(_Strict, frozen=True, forbid_unknown_fields=True):
    """header.json's ``reserve_sources``: where each sourced asset's reserves are."""

    chain_id: ChainId
    block_window: WindowSpec | None
    assets: Annotated[dict[str, AssetSourceSpec], msgspec.Meta(min_length=1, max_length=255)]


def _b(hex0x: str) -> bytes:
    return bytes.fromhex(hex0x[2:])


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def token_text(token: bytes | None) -> str:
    """A token as the JSON files spell it: "native", or lowercase 0x hex."""
    return NATIVE if token is None else _hex(token)


def sources_json(sources: ReserveSources) -> dict[str, Any]:
    """``reserve_sources`` as header.json writes it (addresses lowercase)."""
    return {
        "chain_id": sources.chain_id,
        "block_window": None if sources.window_length is None
        else {"length": sources.window_length},
        "assets": {a.symbol: {"token": token_text(a.token),
                              "holders": [{"address": _hex(h.address), "kind": h.kind}
                                          for h in a.holders]}
                   for a in sources.assets},
    }


def sources_from_spec(spec: SourcesSpec, symbols: Sequence[str], where: str) -> ReserveSources:
    """Check the decoded ``reserve_sources`` against the header's assets (in
    asset order), lowercase the addresses, refuse duplicates. ``where`` is the
    JSON path of ``reserve_sources`` (``header.json.reserve_sources``)."""
    from zksolv.errors import InputError

    assets = []
    tokens: dict[str, str] = {}
    for sym in spec.assets:
        if sym not in symbols:
            raise InputError(f"{where}.assets.{sym[:40]}",
                             f"no asset {sym[:40]!r} in the header's assets "
                             f"({', '.join(symbols)})")
    for sym in symbols:           # asset order, not the object's key order
        a = spec.assets.get(sym)
        if a is None:
            continue
        token = a.token.lower()
        if token in tokens:
            raise InputError(f"{where}.assets.{sym}.token",
                             f"{token} is already the token of {tokens[token]}: one token "
                             "serves one asset (its funds would count twice)")
        tokens[token] = sym
        seen: set[str] = set()
        holders = []
        for i, h in enumerate(a.holders):
            addr = h.address.lower()
            if addr in seen:
                raise InputError(f"{where}.assets.{sym}.holders[{i}].address",
                                 f"duplicate holder {addr}")
            seen.add(addr)
            holders.append(HolderSource(_b(addr), h.kind))
        assets.append(AssetSource(sym, None if token == NATIVE else _b(token), tuple(holders)))
    return ReserveSources(spec.chain_id, None if spec.block_window is None
                          else spec.block_window.length, tuple(assets))


# --- the evidence: reserves.json and the manifest's chain_reserves ----------------------

class HoldingJSON(_Strict, frozen=True, forbid_unknown_fields=True):
    address: Address
    kind: Kind
    balance: Annotated[int, msgspec.Meta(ge=0)]
    signature: SignatureHex | None

    def __post_init__(self) -> None:
        if self.balance >= 1 << MAX_BALANCE_BITS:
            raise ValueError(f"balance out of range (must be < 2^{MAX_BALANCE_BITS})")
        if self.signature is None:
            return
        size = (len(self.signature) - 2) // 2
        if self.kind == "account" and size != ACCOUNT_SIGNATURE_BYTES:
            raise ValueError(f"an account's signature is {ACCOUNT_SIGNATURE_BYTES} bytes, "
                             f"got {size}")
        if self.kind == "declared":
            raise ValueError("a declared holder has no signature (null)")


class AssetEvidenceJSON(_Strict, frozen=True, forbid_unknown_fields=True):
    symbol: Symbol
    token: Token
    holdings: Annotated[list[HoldingJSON], msgspec.Meta(min_length=1, max_length=MAX_HOLDERS)]

    def total(self) -> int:
        return sum(h.balance for h in self.holdings)


class WindowJSON(_Strict, frozen=True, forbid_unknown_fields=True):
    length: WindowLength
    first_number: U63
    first_hash: BlockHash


class EvidenceJSON(_Strict, frozen=True, forbid_unknown_fields=True):
    """The evidence: every holding's balance at one block, pinned by its hash,
    and (once signed) each holder's ownership signature."""

    chain_id: ChainId
    block_number: U63
    block_hash: BlockHash
    window: WindowJSON | None
    assets: Annotated[list[AssetEvidenceJSON], msgspec.Meta(min_length=1, max_length=255)]

    def __post_init__(self) -> None:
        symbols = [a.symbol for a in self.assets]
        for i, s in enumerate(symbols):
            if s in symbols[:i]:
                raise ValueError(f"duplicate asset {s!r}")
        for a in self.assets:
            addrs = [h.address for h in a.holdings]
            for i, addr in enumerate(addrs):
                if addr in addrs[:i]:
                    raise ValueError(f"{a.symbol}: duplicate holder {addr}")

    def asset(self, symbol: str) -> AssetEvidenceJSON | None:
        for a in self.assets:
            if a.symbol == symbol:
                return a
        return None

    def missing_signatures(self) -> list[tuple[str, str, str]]:
        """(symbol, address, kind) of every account or contract holder
        without a signature; a declared holder needs none."""
        return [(a.symbol, h.address, h.kind) for a in self.assets for h in a.holdings
                if h.signature is None and h.kind != "declared"]


class ReservesFile(_Strict, frozen=True, forbid_unknown_fields=True):
    """A snapshot's reserves.json: the evidence for its epoch, and the
    operator key the signatures in it are for (null before ``sign``)."""

    format: Literal["zksolv-reserves"]
    version: Literal[1]
    epoch: U63
    operator: OperatorHex | None
    evidence: EvidenceJSON


class SignatureEntry(_Strict, frozen=True, forbid_unknown_fields=True):
    address: AnyCaseAddress
    signature: Annotated[str, msgspec.Meta(
        pattern=r"^0x(?:[0-9a-fA-F]{2}){1,4096}\Z")]


class SignaturesFile(_Strict, frozen=True, forbid_unknown_fields=True):
    """What ``zksolv reserves import`` reads: signatures by address."""

    signatures: Annotated[list[SignatureEntry], msgspec.Meta(max_length=MAX_SIGNATURES)]


def canonical_json(obj: Any) -> bytes:
    """The manifest's serialisation (sorted keys, indent 2, ASCII, newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def evidence_digest(evidence: EvidenceJSON) -> bytes:
    """SHA-256 of the evidence's canonical JSON: what the version 6 epoch
    header binds (docs/bundle-format.md)."""
    return hashlib.sha256(canonical_json(msgspec.to_builtins(evidence))).digest()


def reserves_file_bytes(doc: ReservesFile) -> bytes:
    return canonical_json(msgspec.to_builtins(doc))


def with_signatures(evidence: EvidenceJSON, signatures: dict[tuple[str, str], str]
                    ) -> EvidenceJSON:
    """The evidence with ``signatures[(symbol, address)]`` set (others kept)."""
    return msgspec.structs.replace(evidence, assets=[
        msgspec.structs.replace(a, holdings=[
            msgspec.structs.replace(h, signature=signatures.get((a.symbol, h.address),
                                                                h.signature))
            for h in a.holdings])
        for a in evidence.assets])


def without_signatures(evidence: EvidenceJSON) -> EvidenceJSON:
    return msgspec.structs.replace(evidence, assets=[
        msgspec.structs.replace(a, holdings=[msgspec.structs.replace(h, signature=None)
                                             for h in a.holdings])
        for a in evidence.assets])


def signed_only(evidence: EvidenceJSON) -> EvidenceJSON:
    """The evidence with only its signed (and declared) holdings: what
    ``check_offline`` can check before every holder has signed."""
    return msgspec.structs.replace(evidence, assets=[
        msgspec.structs.replace(a, holdings=[h for h in a.holdings
                                             if h.signature is not None or h.kind == "declared"])
        for a in evidence.assets])


def evidence_matches_sources(evidence: EvidenceJSON, sources: ReserveSources) -> str | None:
    """Why the evidence is not the reading of these sources (None if it is):
    same chain, same assets in order, same token, same holders and kinds."""
    if evidence.chain_id != sources.chain_id:
        return (f"the evidence is from chain {evidence.chain_id}, the header names chain "
                f"{sources.chain_id}")
    if (evidence.window is None) != (sources.window_length is None) or (
            evidence.window is not None and evidence.window.length != sources.window_length):
        return "the evidence's block window differs from the header's block_window"
    got = [a.symbol for a in evidence.assets]
    if got != list(sources.symbols()):
        return (f"the evidence covers {', '.join(got)}; the header sources "
                f"{', '.join(sources.symbols())}")
    for a, s in zip(evidence.assets, sources.assets, strict=True):
        if a.token != token_text(s.token):
            return (f"{a.symbol}: the evidence reads token {a.token}, the header names "
                    f"{token_text(s.token)}")
        if ([(h.address, h.kind) for h in a.holdings]
                != [(_hex(h.address), h.kind) for h in s.holders]):
            return f"{a.symbol}: the evidence's holders differ from the header's"
    return None


# --- the evidence as zksolv.chain's types ------------------------------------------------

def to_evidence(evidence: EvidenceJSON) -> chain_evidence.ReservesEvidence:
    ce = chain_evidence
    window = evidence.window
    return ce.ReservesEvidence(
        chain_id=evidence.chain_id, block_number=evidence.block_number,
        block_hash=_b(evidence.block_hash),
        window=None if window is None else ce.WindowEvidence(
            length=window.length, first_number=window.first_number,
            first_hash=_b(window.first_hash)),
        assets=tuple(ce.AssetEvidence(
            symbol=a.symbol, token=None if a.token == NATIVE else _b(a.token),
            holdings=tuple(ce.Holding(address=_b(h.address), kind=h.kind, balance=h.balance,
                                      signature=None if h.signature is None
                                      else _b(h.signature))
                           for h in a.holdings))
            for a in evidence.assets))


def from_evidence(ev: chain_evidence.ReservesEvidence) -> EvidenceJSON:
    def hx(b: bytes) -> str:
        return "0x" + b.hex()

    w = ev.window
    return EvidenceJSON(
        chain_id=ev.chain_id, block_number=ev.block_number, block_hash=hx(ev.block_hash),
        window=None if w is None else WindowJSON(length=w.length, first_number=w.first_number,
                                                 first_hash=hx(w.first_hash)),
        assets=[AssetEvidenceJSON(
            symbol=a.symbol, token=NATIVE if a.token is None else hx(a.token),
            holdings=[HoldingJSON(address=hx(h.address), kind=h.kind, balance=h.balance,
                                  signature=None if h.signature is None else hx(h.signature))
                      for h in a.holdings])
            for a in ev.assets])
