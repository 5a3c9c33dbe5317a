"""The reserves block an operator cannot pick: derived from a block window.

Borrowing funds for the snapshot block and returning them after is the
classic attack on proofs of reserves. The defence is a block nobody knows in
advance. With a window of length L (1 <= L <= 10000) named in the snapshot's
sources, and the epoch's timestamp T (seconds since the Unix epoch):

    F = the first block whose timestamp >= T      (the window's first block)
    reserves block = F + 1 + (uint256(hash(F)) mod L)

``uint256(hash(F))`` reads the 32-byte block hash as a big-endian integer.
Nobody chooses F (time does), and its hash is unknown until F is mined, so
the reserves block is known only once the window has begun; it lies in
[F + 1, F + L].

A verifier re-checks, against its own node: block F has the recorded hash,
F's timestamp >= T, block F - 1's timestamp < T (when F > 0), and the
reserves block is the one derived. Offline, only the derivation from the
recorded F and hash is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from zksolv.chain.rpc import Block, RpcClient
from zksolv.errors import ChainError, InputError

MIN_LENGTH = 1
MAX_LENGTH = 10_000


@dataclass(frozen=True)
class WindowEvidence:
    """The window the reserves block was derived from."""

    length: int  # L
    first_number: int  # F
    first_hash: bytes  # hash of block F, 32 bytes


def check_length(length: int, where: str = "block window") -> None:
    if not (isinstance(length, int) and MIN_LENGTH <= length <= MAX_LENGTH):
        raise InputError(where, f"the window length must be in [{MIN_LENGTH}, {MAX_LENGTH}], "
                                f"not {length}")


def reserves_block_number(first_number: int, first_hash: bytes, length: int) -> int:
    """F + 1 + (uint256(hash(F)) mod L)."""
    check_length(length)
    if len(first_hash) != 32:
        raise ValueError("a block hash is 32 bytes")
    return first_number + 1 + int.from_bytes(first_hash, "big") % length


def find_first_block(client: RpcClient, epoch_timestamp: int) -> Block:
    """The first block of the node's chain whose timestamp >= ``epoch_timestamp``
    (binary search on block numbers: timestamps never decrease along a chain).
    A ``ChainError`` if no such block is mined yet."""
    latest = client.latest_block()
    if latest.timestamp < epoch_timestamp:
        raise ChainError("eth_getBlockByNumber", client.url,
                         f"the window has not begun: the latest block {latest.number} has "
                         f"timestamp {latest.timestamp}, before the epoch's {epoch_timestamp}")
    lo, hi = 0, latest.number  # the answer is in [lo, hi]
    found = latest
    while lo < hi:
        mid = (lo + hi) // 2
        block = client.block_by_number(mid)
        if block.timestamp >= epoch_timestamp:
            hi, found = mid, block
        else:
            lo = mid + 1
    if found.number != lo:
        found = client.block_by_number(lo)
    return found


def derive(client: RpcClient, epoch_timestamp: int, length: int) -> tuple[WindowEvidence, Block]:
    """The window and the reserves block derived from it on the node's chain.
    A ``ChainError`` if the window has not begun or the derived block is not
    mined yet (the operator waits and fetches again)."""
    check_length(length)
    first = find_first_block(client, epoch_timestamp)
    number = reserves_block_number(first.number, first.hash, length)
    block = client.try_block_by_number(number)
    if block is None:
        raise ChainError("eth_getBlockByNumber", client.url,
                         f"the reserves block {number} (derived from window block "
                         f"{first.number}) is not mined yet: fetch again later")
    return WindowEvidence(length, first.number, first.hash), block


def check_derivation(window: WindowEvidence, block_number: int) -> str | None:
    """Offline: None if ``block_number`` is the block derived from the
    recorded window, else why not."""
    if not MIN_LENGTH <= window.length <= MAX_LENGTH:
        return f"the window length {window.length} is outside [{MIN_LENGTH}, {MAX_LENGTH}]"
    want = reserves_block_number(window.first_number, window.first_hash, window.length)
    if block_number != want:
        return (f"the reserves block is {block_number}, but the window starting at block "
                f"{window.first_number} (hash 0x{window.first_hash.hex()}) and length "
                f"{window.length} gives block {want}")
    return None


def check_online(client: RpcClient, window: WindowEvidence,
                 epoch_timestamp: int) -> list[str]:
    """Against the node: F's hash, and F being the first block at or after
    the epoch's timestamp (the derivation itself is ``check_derivation``'s,
    offline). The reasons it fails (empty: it holds)."""
    problems: list[str] = []
    first = client.try_block_by_number(window.first_number)
    if first is None:
        problems.append(f"the node has no window block {window.first_number}")
        return problems
    if first.hash != window.first_hash:
        problems.append(f"the node's block {window.first_number} has hash 0x{first.hash.hex()}, "
                        f"not the recorded 0x{window.first_hash.hex()}")
        return problems
    if first.timestamp < epoch_timestamp:
        problems.append(f"window block {first.number} has timestamp {first.timestamp}, before "
                        f"the epoch's {epoch_timestamp}")
    if first.number > 0:
        before = client.block_by_number(first.number - 1)
        if before.timestamp >= epoch_timestamp:
            problems.append(f"block {before.number} already has timestamp {before.timestamp} "
                            f">= the epoch's {epoch_timestamp}: the window begins earlier "
                            f"than block {first.number}")
    return problems
