"""Reserve evidence: balances read at a pinned block, with ownership signatures,
and the checks a verifier makes on them.

The snapshot names, per asset, where its reserves are (``ReserveSources``):
a chain id, a token (the native coin, or an ERC-20 contract) and the holding
addresses, each of one kind:

- ``account``: an externally owned account; it signs the EIP-712
  ReserveOwnership statement (``zksolv.chain.ownership``) for this chain,
  block, epoch and operator; the signature is recovered offline;
- ``contract``: a contract wallet; its signature is whatever its
  ``isValidSignature`` (EIP-1271) accepts for the statement's digest, asked
  at the pinned block (online only);
- ``declared``: the protocol's own contract (a vault, a pool), declared by
  the operator and reported as declared, not signed.

``fetch`` reads every balance at one block, pinned by hash (EIP-1898), into
``ReservesEvidence``; an asset's reserves are the sum of its holdings.
``check_offline`` and ``check_online`` return ``Finding``s, each with a
stable tag:

- ``reserves-signature``: an account's signature is missing, malformed, or
  does not recover to its address for this chain, block, epoch and
  operator; a contract's signature is missing or its EIP-1271 call says no;
- ``reserves-balance``: a balance differs from the node's at the pinned
  block; or an address is counted twice (twice in an asset, or one token
  serving as two assets), which would count the same funds twice;
- ``reserves-block``: the pinned hash is not the node's block at that number
  (a reorg, or another chain's block), or the window derivation does not
  hold (``zksolv.chain.window``);
- ``reserves-chain``: the node's chain id is not the evidence's.

An unreachable or hostile node is a ``ChainError`` (exit 2), never a finding.

Offline, accounts' signatures, the window derivation and double counting are
checked; contracts' signatures and every balance need a node, and are not
checked. ``check_online`` makes every check, offline ones included;
``check_node`` only the node's, for a caller that has run ``check_offline``
(each signature then recovered once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from zksolv.chain import ownership, window
from zksolv.chain.rpc import RpcClient
from zksolv.chain.window import WindowEvidence
from zksolv.errors import InputError, SignatureError

HolderKind = Literal["account", "contract", "declared"]
HOLDER_KINDS: tuple[HolderKind, ...] = ("account", "contract", "declared")
MAX_CONTRACT_SIGNATURE_BYTES = 4096

TAG_SIGNATURE = "reserves-signature"
TAG_BALANCE = "reserves-balance"
TAG_BLOCK = "reserves-block"
TAG_CHAIN = "reserves-chain"
TAGS = (TAG_SIGNATURE, TAG_BALANCE, TAG_BLOCK, TAG_CHAIN)

__all__ = [
    "AssetEvidence", "AssetSource", "Finding", "HolderKind", "HolderSource", "Holding",
    "ReserveSources", "ReservesEvidence", "WindowEvidence", "check_node", "check_offline",
    "check_online",
    "eip55", "fetch", "parse_address", "sign_holdings", "statement_digest",
]


@dataclass(frozen=True)
class HolderSource:
    address: bytes  # 20 bytes
    kind: HolderKind

    def __post_init__(self) -> None:
        _check_address(self.address)
        if self.kind not in HOLDER_KINDS:
            raise ValueError(f"holder kind must be one of {HOLDER_KINDS}")


@dataclass(frozen=True)
class AssetSource:
    symbol: str
    token: bytes | None  # ERC-20 contract address (20 bytes); None = the native coin
    holders: tuple[HolderSource, ...]

    def __post_init__(self) -> None:
        if self.token is not None:
            _check_address(self.token)


@dataclass(frozen=True)
class ReserveSources:
    chain_id: int
    window_length: int | None  # None: the block is given (--block)
    assets: tuple[AssetSource, ...]

    def symbols(self) -> tuple[str, ...]:
        return tuple(a.symbol for a in self.assets)


@dataclass(frozen=True)
class Holding:
    address: bytes  # 20 bytes
    kind: HolderKind
    balance: int  # base units of the token (wei for the native coin)
    signature: bytes | None  # account: 65 bytes; contract: <= 4096 bytes; declared: None


@dataclass(frozen=True)
class AssetEvidence:
    symbol: str
    token: bytes | None  # None = the native coin
    holdings: tuple[Holding, ...]

    def total(self) -> int:
        """The asset's reserves: the sum of its holdings' balances."""
        return sum(h.balance for h in self.holdings)


@dataclass(frozen=True)
class ReservesEvidence:
    chain_id: int
    block_number: int
    block_hash: bytes  # 32 bytes
    window: WindowEvidence | None
    assets: tuple[AssetEvidence, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Finding:
    """One difference found: ``tag`` (one of ``TAGS``), ``where`` (e.g.
    ``"ETH holder 0xab…"``), ``detail`` (what differs, in words)."""

    tag: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.tag}: {self.where}: {self.detail}"


def _check_address(address: bytes) -> None:
    if not (isinstance(address, bytes) and len(address) == 20):
        raise ValueError("an address is 20 bytes")


def address_hex(address: bytes) -> str:
    """An address as JSON carries it: lowercase ``0x`` + 40 hex digits."""
    _check_address(address)
    return "0x" + address.hex()


_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


def parse_address(text: str, *, where: str, allow_checksummed: bool = False) -> bytes:
    """An address from JSON: ``0x`` + 40 lowercase hex digits, matched whole.
    With ``allow_checksummed`` (the snapshot header), a mixed-case address
    is accepted when its EIP-55 checksum holds (a wrong one is a typo) and
    read as lowercase; the bundle allows one spelling only (lowercase)."""
    if not isinstance(text, str) or not _ADDRESS_RE.fullmatch(text):
        raise InputError(where, f"an address is 0x and 40 hex digits, not {text!r:.60}")
    digits = text[2:]
    if digits != digits.lower():
        if not allow_checksummed:
            raise InputError(where, f"address {text} must be lowercase here")
        if eip55(bytes.fromhex(digits)) != text:
            raise InputError(where, f"address {text} has a wrong EIP-55 checksum (a typo?)")
    return bytes.fromhex(digits)


def eip55(address: bytes) -> str:
    """The EIP-55 mixed-case spelling of an address (needs the chain extra)."""
    digits = address.hex()
    h = ownership.keccak256(digits.encode()).hex()
    return "0x" + "".join(c.upper() if int(h[i], 16) >= 8 else c for i, c in enumerate(digits))


def holder_where(symbol: str, address: bytes) -> str:
    return f"{symbol} holder {address_hex(address)}"


def token_name(token: bytes | None) -> str:
    return "native" if token is None else address_hex(token)


# -- fetch ---------------------------------------------------------------------------


FetchProgress = Callable[[int, int], None]


def fetch(client: RpcClient, sources: ReserveSources, *, block: int | None = None,
          epoch_timestamp: int | None = None,
          progress: FetchProgress | None = None) -> ReservesEvidence:
    """Read every holder's balance at one block into evidence (signatures
    None; ``ownership`` signs, or the holders do).

    ``progress(done, total)`` is told the balances read so far of all the
    assets' holders: once with 0 when the block is known, then after each
    batch (``client.max_batch`` reads in one HTTP request), the last call
    with ``done == total``.

    The block: ``block`` if given; else the block derived from the sources'
    window (``window_length``) and ``epoch_timestamp``. Giving both a block
    and a window is refused (the window decides), so is giving neither. The
    node must be on the sources' chain. Balances are read at the block's
    hash (EIP-1898, canonical required), so a reorg during the fetch is a
    ``ChainError``, never a mix of two chains."""
    client.expect_chain(sources.chain_id)
    win: WindowEvidence | None = None
    if sources.window_length is not None:
        if block is not None:
            raise InputError("--block", "the sources name a block window: the reserves "
                                        "block is derived from it, not given")
        if epoch_timestamp is None:
            raise InputError("reserve sources", "a block window needs the epoch's timestamp")
        win, pinned = window.derive(client, epoch_timestamp, sources.window_length)
    else:
        if block is None:
            raise InputError("--block", "the sources name no block window: give the block "
                                        "to read the reserves at (--block N)")
        pinned = client.block_by_number(block)
    total = sum(len(a.holders) for a in sources.assets)
    done = 0
    if progress is not None:
        progress(done, total)
    assets = []
    for asset in sources.assets:
        addresses = [h.address for h in asset.holders]
        balances: list[int] = []
        for start in range(0, len(addresses), client.max_batch):
            batch = addresses[start:start + client.max_batch]
            if asset.token is None:
                balances += client.balances(batch, pinned.hash)
            else:
                balances += client.erc20_balances(asset.token, batch, pinned.hash)
            done += len(batch)
            if progress is not None:
                progress(done, total)
        assets.append(AssetEvidence(asset.symbol, asset.token, tuple(
            Holding(h.address, h.kind, b, None)
            for h, b in zip(asset.holders, balances, strict=True))))
    return ReservesEvidence(sources.chain_id, pinned.number, pinned.hash, win, tuple(assets))


def sign_holdings(evidence: ReservesEvidence, eth_private_key: bytes, *, epoch: int,
                  operator: bytes) -> tuple[ReservesEvidence, int]:
    """Sign the statement for every ``account`` holding whose address is the
    key's, in every asset (an existing signature is replaced). Returns the
    new evidence and how many holdings were signed (0: the key holds none)."""
    me = ownership.address_of(eth_private_key)
    sig: bytes | None = None
    signed = 0
    assets = []
    for asset in evidence.assets:
        holdings = []
        for h in asset.holdings:
            if h.kind == "account" and h.address == me:
                if sig is None:  # one statement per holder, whatever the asset
                    sig = ownership.sign_digest(eth_private_key,
                                                _statement_digest(evidence, me, epoch, operator))
                h = Holding(h.address, h.kind, h.balance, sig)
                signed += 1
            holdings.append(h)
        assets.append(AssetEvidence(asset.symbol, asset.token, tuple(holdings)))
    return replace(evidence, assets=tuple(assets)), signed


def statement_digest(evidence: ReservesEvidence, holder: bytes, *, epoch: int,
                     operator: bytes) -> bytes:
    """The EIP-712 digest ``holder`` signs for this evidence (an EIP-1271
    contract's owner signs the same)."""
    return _statement_digest(evidence, holder, epoch, operator)


# -- checks --------------------------------------------------------------------------


def _statement_digest(evidence: ReservesEvidence, holder: bytes, epoch: int,
                      operator: bytes) -> bytes:
    return ownership.digest(chain_id=evidence.chain_id, holder=holder,
                            block_number=evidence.block_number, block_hash=evidence.block_hash,
                            epoch=epoch, operator=operator)


def _double_counting(evidence: ReservesEvidence) -> Iterable[Finding]:
    tokens: dict[bytes | None, str] = {}
    for asset in evidence.assets:
        other = tokens.setdefault(asset.token, asset.symbol)
        if other != asset.symbol:
            yield Finding(TAG_BALANCE, f"{asset.symbol} token {token_name(asset.token)}",
                          f"the same token is also asset {other}: its balances would count "
                          "twice")
        seen: set[bytes] = set()
        for h in asset.holdings:
            if h.address in seen:
                yield Finding(TAG_BALANCE, holder_where(asset.symbol, h.address),
                              "listed twice: its balance would count twice")
            seen.add(h.address)


_Recovered = dict[tuple[bytes, bytes], "bytes | SignatureError"]


def _account_signature(evidence: ReservesEvidence, symbol: str, h: Holding, epoch: int,
                       operator: bytes, recovered: _Recovered) -> Finding | None:
    where = holder_where(symbol, h.address)
    if h.signature is None:
        return Finding(TAG_SIGNATURE, where, "no ownership signature")
    # An account holding several assets signs one statement: recover it once.
    key = (h.signature, _statement_digest(evidence, h.address, epoch, operator))
    if key not in recovered:
        try:
            recovered[key] = ownership.recover_digest(*key)
        except SignatureError as exc:
            recovered[key] = exc
    signer = recovered[key]
    if isinstance(signer, SignatureError):
        return Finding(TAG_SIGNATURE, where, f"signature refused: {signer}")
    if signer != h.address:
        return Finding(TAG_SIGNATURE, where,
                       f"the signature recovers to {address_hex(signer)}, not the holder: "
                       f"another key, or a statement for another chain, block, epoch or "
                       f"operator than chain {evidence.chain_id}, block {evidence.block_number}, "
                       f"epoch {epoch}, operator {operator.hex()}")
    return None


def _contract_signature_shape(symbol: str, h: Holding) -> Finding | None:
    if h.signature is None:
        return Finding(TAG_SIGNATURE, holder_where(symbol, h.address),
                       "no ownership signature for the contract's EIP-1271 check")
    if len(h.signature) > MAX_CONTRACT_SIGNATURE_BYTES:
        return Finding(TAG_SIGNATURE, holder_where(symbol, h.address),
                       f"signature of {len(h.signature)} bytes, more than the "
                       f"{MAX_CONTRACT_SIGNATURE_BYTES} allowed")
    return None


def check_offline(evidence: ReservesEvidence, *, epoch: int,
                  operator: bytes) -> list[Finding]:
    """What can be checked without a node: every account's signature
    (recovered), the window derivation, no address or token counted twice.
    Contracts' signatures and all balances are not checked here."""
    findings = list(_double_counting(evidence))
    if evidence.window is not None:
        problem = window.check_derivation(evidence.window, evidence.block_number)
        if problem is not None:
            findings.append(Finding(TAG_BLOCK, f"block {evidence.block_number}", problem))
    recovered: _Recovered = {}
    for asset in evidence.assets:
        for h in asset.holdings:
            if h.kind == "account":
                found = _account_signature(evidence, asset.symbol, h, epoch, operator,
                                           recovered)
            elif h.kind == "contract":
                found = _contract_signature_shape(asset.symbol, h)
            else:
                found = None
            if found is not None:
                findings.append(found)
    return findings


def check_online(client: RpcClient, evidence: ReservesEvidence, *, epoch: int,
                 operator: bytes, epoch_timestamp: int | None) -> list[Finding]:
    """Every check against the verifier's own node, ``check_offline``'s
    included: ``check_offline``'s findings, then ``check_node``'s. When the
    node is on another chain, that finding comes alone."""
    return _check_online(client, evidence, epoch=epoch, operator=operator,
                         epoch_timestamp=epoch_timestamp, offline=True)


def check_node(client: RpcClient, evidence: ReservesEvidence, *, epoch: int,
               operator: bytes, epoch_timestamp: int | None) -> list[Finding]:
    """The checks only a node can make, for a caller that has made
    ``check_offline`` already (each signature is recovered once): the chain
    id, the pinned block hash on the node's chain, the window (F's hash and
    timestamps, when the evidence has a window; it needs
    ``epoch_timestamp``), every balance at the pinned hash, every contract's
    EIP-1271 answer at the pinned hash. When the chain or the block is wrong,
    balances cannot be read at that block: those findings come alone.
    ``check_offline`` + ``check_node`` finds what ``check_online`` finds."""
    return _check_online(client, evidence, epoch=epoch, operator=operator,
                         epoch_timestamp=epoch_timestamp, offline=False)


def _check_online(client: RpcClient, evidence: ReservesEvidence, *, epoch: int,
                  operator: bytes, epoch_timestamp: int | None,
                  offline: bool) -> list[Finding]:
    node_chain = client.chain_id()
    if node_chain != evidence.chain_id:
        return [Finding(TAG_CHAIN, f"chain {evidence.chain_id}",
                        f"the node is on chain {node_chain}")]
    findings = check_offline(evidence, epoch=epoch, operator=operator) if offline else []
    where = f"block {evidence.block_number}"
    block = client.try_block_by_number(evidence.block_number)
    if block is None:
        return [*findings, Finding(TAG_BLOCK, where, "the node has no block at this height")]
    if block.hash != evidence.block_hash:
        return [*findings, Finding(
            TAG_BLOCK, where, f"the node's block {block.number} is 0x{block.hash.hex()}, not "
                              f"0x{evidence.block_hash.hex()} (a reorg, or another chain)")]
    if evidence.window is not None:
        if epoch_timestamp is None:
            raise InputError("reserves", "checking a block window needs the epoch's timestamp")
        for problem in window.check_online(client, evidence.window, epoch_timestamp):
            findings.append(Finding(TAG_BLOCK, f"window block {evidence.window.first_number}",
                                    problem))
    for asset in evidence.assets:
        addresses = [h.address for h in asset.holdings]
        if asset.token is None:
            node_balances = client.balances(addresses, evidence.block_hash)
        else:
            node_balances = client.erc20_balances(asset.token, addresses, evidence.block_hash)
        for h, node_balance in zip(asset.holdings, node_balances, strict=True):
            if h.balance != node_balance:
                findings.append(Finding(TAG_BALANCE, holder_where(asset.symbol, h.address),
                                        f"the evidence says {h.balance}, the node "
                                        f"{node_balance} at block {evidence.block_number}"))
    asks = [(asset.symbol, h) for asset in evidence.assets for h in asset.holdings
            if h.kind == "contract" and h.signature is not None
            and len(h.signature) <= MAX_CONTRACT_SIGNATURE_BYTES]
    answers = client.are_valid_signatures(
        [(h.address, _statement_digest(evidence, h.address, epoch, operator), h.signature or b"")
         for _, h in asks], evidence.block_hash)
    for (symbol, h), ok in zip(asks, answers, strict=True):
        if not ok:
            findings.append(Finding(TAG_SIGNATURE, holder_where(symbol, h.address),
                                    "the contract's isValidSignature (EIP-1271) does not "
                                    "accept the signature at the pinned block"))
    return findings
