"""A small JSON-RPC 2.0 client for an Ethereum node, built for hostile nodes.

Every answer is bounded before it is believed:

- bytes: the body is read in chunks and refused as soon as it passes
  ``max_response_bytes`` (4 MiB by default; a ``Content-Length`` above it is
  refused before reading). Compressed answers are not accepted (the client
  asks for ``Accept-Encoding: identity``), so the bound is on what is held
  in memory, not on a compressed size;
- time: every call returns within ``timeout`` seconds (10 by default) of
  its start, whatever the node does (connecting, sending, waiting for the
  headers and reading the body together): a node dripping one byte a
  second is cut off;
- structure: the JSON is decoded with exact types (msgspec, strict); nesting
  deeper than the decoder's limit is refused; an answer object must carry
  ``"jsonrpc": "2.0"``, the request's ``id`` and exactly one of ``result``
  and ``error``;
- values: quantities are ``0x`` + lowercase hex without leading zeros
  (``0x0`` for zero), at most 256 bits, matched whole; data is ``0x`` + an
  even number of lowercase hex digits, hashes exactly 32 bytes; a JSON
  number, ``true`` or ``null`` where a string is due is refused;
- batches: at most ``max_batch`` (100) requests per HTTP request; every
  answer is matched to its request by id, each id exactly once.

A node that fails any of these is a ``ChainError`` (exit 2) naming the RPC
method and the node (scheme, host and port only: a URL's user, password,
path and query may hold an API key and are never printed).

State is read at a block pinned by hash (EIP-1898): the block parameter is
``{"blockHash": "0x…", "requireCanonical": true}``, so a node whose chain no
longer holds that block refuses instead of answering from another one.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from zksolv.errors import ChainError, ChainExtraMissing

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_BATCH = 100

# EIP-1271: isValidSignature(bytes32,bytes) and its magic answer
EIP1271_SELECTOR = bytes.fromhex("1626ba7e")
# ERC-20: balanceOf(address)
BALANCE_OF_SELECTOR = bytes.fromhex("70a08231")

_QUANTITY_RE = re.compile(r"0x(?:0|[1-9a-f][0-9a-f]{0,63})")
_DATA_RE = re.compile(r"0x(?:[0-9a-f]{2})*")
_HASH_RE = re.compile(r"0x[0-9a-f]{64}")
_PRINTABLE_RE = re.compile(r"[^\x20-\x7e]")


class RpcError(ChainError):
    """The node answered a JSON-RPC error object; ``data`` is its error's
    data (a revert's ABI-encoded reason) when it gave some."""

    def __init__(self, method: str, url: str, reason: str, data: Any = None):
        super().__init__(method, url, reason)
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:  # type: ignore[override]
        return type(self), (self.method, self.url, self.reason, self.data)


@dataclass(frozen=True)
class Block:
    """A block as the node describes it (the fields the reserves need)."""

    number: int
    hash: bytes  # 32 bytes
    parent_hash: bytes  # 32 bytes
    timestamp: int  # seconds since the Unix epoch
    state_root: bytes  # 32 bytes


class _Error(msgspec.Struct):
    code: int
    message: str
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class _Answer(msgspec.Struct):
    jsonrpc: str
    id: int | None
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: _Error | msgspec.UnsetType = msgspec.UNSET


class _BlockJson(msgspec.Struct):
    number: str
    hash: str
    parentHash: str  # noqa: N815 (the node's spelling)
    timestamp: str
    stateRoot: str  # noqa: N815


@dataclass(frozen=True)
class _NodeRefusal:
    """A JSON-RPC error object answered for one request."""

    code: int
    message: str
    data: Any = None  # the error object's data (a revert's ABI-encoded reason), if any

    @property
    def is_revert(self) -> bool:
        # EIP-1474 code 3 carries revert data; nodes answer a bare revert as
        # -32000 "execution reverted"
        return self.code == 3 or self.message.lower().startswith("execution reverted")


def redact_url(url: str) -> str:
    """The URL as it may be printed: scheme, host and port, then ``/…`` if
    the URL had a path or query (API keys live there, and in user info)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "the node"
    if ":" in host:
        host = f"[{host}]"
    shown = _PRINTABLE_RE.sub("?", f"{parts.scheme}://{host}"
                              + (f":{port}" if port is not None else ""))
    if parts.path not in ("", "/") or parts.query:
        shown += "/…"
    return shown


def _short(text: str, limit: int = 160) -> str:
    text = _PRINTABLE_RE.sub("?", text)
    return text if len(text) <= limit else text[:limit] + "…"


def block_ref(block_hash: bytes) -> dict[str, Any]:
    """The EIP-1898 block parameter pinning a call to ``block_hash``."""
    return {"blockHash": hex32(block_hash), "requireCanonical": True}


def hex32(value: bytes) -> str:
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return "0x" + value.hex()


def hex_address(address: bytes) -> str:
    if len(address) != 20:
        raise ValueError(f"an address is 20 bytes, got {len(address)}")
    return "0x" + address.hex()


class RpcClient:
    """JSON-RPC 2.0 over HTTP(S) to one Ethereum node.

    ``timeout`` bounds each call (seconds), ``max_response_bytes`` each
    answer, ``max_batch`` the requests sent in one HTTP request. Use as a
    context manager, or call ``close()``."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 max_response_bytes: int = MAX_RESPONSE_BYTES, max_batch: int = MAX_BATCH):
        self.url = redact_url(url)
        try:
            parts = urllib.parse.urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # a port that is not a number raises here
        except ValueError:
            ok = False
        if not ok:
            raise ChainError("connect", self.url, "the RPC URL must be http:// or https:// "
                                                  "with a host")
        if not (0 < timeout <= 3600 and math.isfinite(timeout)):
            raise ValueError("timeout must be in (0, 3600] seconds")
        if not 1 <= max_batch <= 10_000:
            raise ValueError("max_batch must be in [1, 10000]")
        try:
            import httpx
        except ImportError as exc:
            raise ChainExtraMissing("--rpc") from exc
        self.timeout = float(timeout)
        self.max_response_bytes = int(max_response_bytes)
        self.max_batch = int(max_batch)
        self._full_url = url
        self._ids = itertools.count(1)
        self._httpx = httpx
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "Accept-Encoding": "identity"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------

    def _fail(self, method: str, reason: str) -> ChainError:
        return ChainError(method, self.url, reason)

    def _post(self, method: str, body: bytes) -> bytes:
        """POST ``body``; the answer's bytes, bounded in size and time.

        The exchange runs in a daemon thread and the caller waits for it at
        most ``timeout`` seconds: connecting, sending, waiting for headers
        and reading the body together cannot exceed it. A thread given up on
        stops by itself (every wait for bytes is bounded by the timeout, and
        the deadline is checked after every chunk) and holds at most
        ``max_response_bytes``."""
        deadline = time.monotonic() + self.timeout
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["data"] = self._exchange(method, body, deadline)
            except BaseException as exc:  # handed to the caller as is
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="zksolv-rpc", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise self._fail(method, f"no complete answer within {self.timeout:g} s")
        if "error" in box:
            raise box["error"]
        return bytes(box["data"])

    def _exchange(self, method: str, body: bytes, deadline: float) -> bytes:
        httpx = self._httpx
        limit = self.max_response_bytes
        try:
            with self._http.stream("POST", self._full_url, content=body) as resp:
                if resp.status_code != 200:
                    phrase = _short(resp.reason_phrase, 60)
                    raise self._fail(method, f"node answered HTTP {resp.status_code} {phrase}"
                                     .rstrip())
                encoding = resp.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise self._fail(method, f"node answered compressed ({_short(encoding, 30)}) "
                                             "although asked not to")
                length = resp.headers.get("content-length")
                if length is not None and length.strip().isdigit() and int(length) > limit:
                    raise self._fail(method, f"node answered {_size(int(length))}, more than "
                                             f"the {_size(limit)} allowed")
                data = bytearray()
                for chunk in resp.iter_raw():  # as received: no buffering to a size
                    data += chunk
                    if len(data) > limit:
                        raise self._fail(method, f"node answered more than the {_size(limit)} "
                                                 "allowed")
                    if time.monotonic() > deadline:
                        raise self._fail(method, f"no complete answer within {self.timeout:g} s")
                return bytes(data)
        except httpx.TimeoutException as exc:
            raise self._fail(method, f"no answer within {self.timeout:g} s") from exc
        except httpx.ConnectError as exc:
            raise self._fail(method, f"cannot connect: {_short(_root_cause(exc))}") from exc
        except httpx.HTTPError as exc:
            raise self._fail(method, f"{type(exc).__name__}: {_short(_root_cause(exc))}") from exc

    def _decode(self, method: str, data: bytes, schema: Any, what: str = "") -> Any:
        try:
            return msgspec.json.decode(data, type=schema, strict=True)
        except msgspec.ValidationError as exc:
            at = f" ({what})" if what else ""
            raise self._fail(method, f"malformed answer{at}: {_short(str(exc))}") from exc
        except msgspec.DecodeError as exc:
            raise self._fail(method, f"malformed JSON: {_short(str(exc))}") from exc
        except RecursionError as exc:
            raise self._fail(method, "malformed JSON: nested too deeply") from exc

    def _check_answer(self, method: str, answer: _Answer) -> msgspec.Raw | _NodeRefusal:
        if answer.jsonrpc != "2.0":
            raise self._fail(method, f"answer is not JSON-RPC 2.0 ({_short(answer.jsonrpc, 20)!r})")
        has_result = not isinstance(answer.result, msgspec.UnsetType)
        has_error = not isinstance(answer.error, msgspec.UnsetType)
        if has_result == has_error:
            raise self._fail(method, "answer must hold exactly one of result and error")
        if isinstance(answer.error, _Error):
            data = answer.error.data
            return _NodeRefusal(answer.error.code, _short(answer.error.message),
                                None if isinstance(data, msgspec.UnsetType)
                                else self._decode(method, data, Any, "error data"))
        assert isinstance(answer.result, msgspec.Raw)
        return answer.result

    def _call(self, method: str, params: list[Any]) -> msgspec.Raw | _NodeRefusal:
        """One request; its result (raw JSON) or the node's error object."""
        request_id = next(self._ids)
        body = msgspec.json.encode({"jsonrpc": "2.0", "id": request_id, "method": method,
                                    "params": params})
        answer = self._decode(method, self._post(method, body), _Answer)
        if answer.id != request_id:
            raise self._fail(method, f"answer has id {answer.id}, the request {request_id}")
        return self._check_answer(method, answer)

    def _call_batch(self, method: str,
                    params_list: Sequence[list[Any]]) -> list[msgspec.Raw | _NodeRefusal]:
        """Many requests of one method, ``max_batch`` per HTTP request; the
        answers in the order of ``params_list``."""
        out: list[msgspec.Raw | _NodeRefusal] = []
        for start in range(0, len(params_list), self.max_batch):
            chunk = params_list[start:start + self.max_batch]
            ids = [next(self._ids) for _ in chunk]
            body = msgspec.json.encode([
                {"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                for i, p in zip(ids, chunk, strict=True)
            ])
            data = self._post(method, body)
            if data.lstrip()[:1] == b"{":  # one error object for the whole batch
                single = self._decode(method, data, _Answer)
                refusal = self._check_answer(method, single)
                detail = (f"{refusal.code} {refusal.message}"
                          if isinstance(refusal, _NodeRefusal) else "a single result")
                raise self._fail(method, f"node answered a batch of {len(chunk)} with {detail}")
            answers = self._decode(method, data, list[_Answer])
            if len(answers) != len(chunk):
                raise self._fail(method, f"node answered {len(answers)} of a batch of "
                                         f"{len(chunk)} requests")
            by_id: dict[int, msgspec.Raw | _NodeRefusal] = {}
            wanted = set(ids)
            for answer in answers:
                if answer.id not in wanted:
                    raise self._fail(method, f"batch answer has id {answer.id}, which no "
                                             "request had")
                if answer.id in by_id:
                    raise self._fail(method, f"batch answers id {answer.id} twice")
                by_id[answer.id] = self._check_answer(method, answer)
            out.extend(by_id[i] for i in ids)
        return out

    def request(self, method: str, params: list[Any]) -> Any:
        """One call of any method, bounded as every call is; its result as
        plain JSON values, or ``RpcError`` (with the node's ``data``, e.g. a
        contract's revert reason) when the node answers an error."""
        raw = self._call(method, params)
        if isinstance(raw, _NodeRefusal):
            raise RpcError(method, self.url, f"node error {raw.code}: {raw.message}", raw.data)
        return self._decode(method, raw, Any)

    # -- strict values ---------------------------------------------------------------

    def _value(self, method: str, raw: msgspec.Raw | _NodeRefusal, what: str) -> Any:
        if isinstance(raw, _NodeRefusal):
            raise self._fail(method, f"{what}: node error {raw.code}: {raw.message}")
        return self._decode(method, raw, str | None, what)

    def _quantity(self, method: str, raw: msgspec.Raw | _NodeRefusal, what: str) -> int:
        text = self._value(method, raw, what)
        if text is None or not _QUANTITY_RE.fullmatch(text):
            raise self._fail(method, f"{what}: {_show(text)} is not a hex quantity (0x, "
                                     "lowercase, no leading zeros, at most 256 bits)")
        return int(text, 16)

    def _data(self, method: str, raw: msgspec.Raw | _NodeRefusal, what: str) -> bytes:
        text = self._value(method, raw, what)
        if text is None or not _DATA_RE.fullmatch(text):
            raise self._fail(method, f"{what}: {_show(text)} is not hex data (0x, lowercase, "
                                     "whole bytes)")
        return bytes.fromhex(text[2:])

    def _hash(self, method: str, text: str, what: str) -> bytes:
        if not _HASH_RE.fullmatch(text):
            raise self._fail(method, f"{what}: {_show(text)} is not a 32-byte hash")
        return bytes.fromhex(text[2:])

    def _block(self, method: str, raw: msgspec.Raw | _NodeRefusal, what: str) -> Block | None:
        if isinstance(raw, _NodeRefusal):
            raise self._fail(method, f"{what}: node error {raw.code}: {raw.message}")
        obj = self._decode(method, raw, _BlockJson | None, what)
        if obj is None:
            return None

        def quantity(text: str, field: str) -> int:
            if not _QUANTITY_RE.fullmatch(text) or len(text) > 2 + 16:
                raise self._fail(method, f"{what}: {field} {_show(text)} is not a hex "
                                         "quantity of at most 64 bits")
            return int(text, 16)

        return Block(
            number=quantity(obj.number, "number"),
            hash=self._hash(method, obj.hash, f"{what}: hash"),
            parent_hash=self._hash(method, obj.parentHash, f"{what}: parentHash"),
            timestamp=quantity(obj.timestamp, "timestamp"),
            state_root=self._hash(method, obj.stateRoot, f"{what}: stateRoot"),
        )

    # -- calls -------------------------------------------------------------------------

    def chain_id(self) -> int:
        """The node's chain id (EIP-695 ``eth_chainId``)."""
        return self._quantity("eth_chainId", self._call("eth_chainId", []), "chain id")

    def expect_chain(self, chain_id: int) -> None:
        """Refuse a node on another chain than ``chain_id``."""
        got = self.chain_id()
        if got != chain_id:
            raise self._fail("eth_chainId", f"the node is on chain {got}, not {chain_id}")

    def block_number(self) -> int:
        """The number of the node's latest block."""
        return self._quantity("eth_blockNumber", self._call("eth_blockNumber", []),
                              "latest block")

    def try_block_by_number(self, number: int) -> Block | None:
        """Block ``number`` of the node's chain, or None if it has none."""
        if not 0 <= number < 2**64:
            raise ValueError("block number out of range")
        method = "eth_getBlockByNumber"
        block = self._block(method, self._call(method, [hex(number), False]), f"block {number}")
        if block is not None and block.number != number:
            raise self._fail(method, f"asked for block {number}, node answered block "
                                     f"{block.number}")
        return block

    def block_by_number(self, number: int) -> Block:
        """Block ``number`` of the node's chain; a ``ChainError`` if none."""
        block = self.try_block_by_number(number)
        if block is None:
            raise self._fail("eth_getBlockByNumber", f"the node has no block {number}")
        return block

    def latest_block(self) -> Block:
        method = "eth_getBlockByNumber"
        block = self._block(method, self._call(method, ["latest", False]), "latest block")
        if block is None:
            raise self._fail(method, "the node has no latest block")
        return block

    def try_block_by_hash(self, block_hash: bytes) -> Block | None:
        """The block with hash ``block_hash``, or None if the node knows none."""
        method = "eth_getBlockByHash"
        block = self._block(method, self._call(method, [hex32(block_hash), False]),
                            f"block {hex32(block_hash)}")
        if block is not None and block.hash != block_hash:
            raise self._fail(method, f"asked for block {hex32(block_hash)}, node answered "
                                     f"{hex32(block.hash)}")
        return block

    def block_by_hash(self, block_hash: bytes) -> Block:
        block = self.try_block_by_hash(block_hash)
        if block is None:
            raise self._fail("eth_getBlockByHash", f"the node has no block {hex32(block_hash)}")
        return block

    def balances(self, addresses: Sequence[bytes], block_hash: bytes) -> list[int]:
        """The native balance (wei) of each address at the block ``block_hash``
        (EIP-1898, canonical required), in the order given."""
        ref = block_ref(block_hash)
        method = "eth_getBalance"
        answers = self._call_batch(method, [[hex_address(a), ref] for a in addresses])
        return [self._quantity(method, raw, f"balance of {hex_address(a)}")
                for a, raw in zip(addresses, answers, strict=True)]

    def erc20_balances(self, token: bytes, holders: Sequence[bytes],
                       block_hash: bytes) -> list[int]:
        """ERC-20 ``balanceOf(holder)`` of ``token`` for each holder at the
        block ``block_hash``. A token that is not a contract at that block
        (empty answer), answers other than 32 bytes, or reverts is a
        ``ChainError`` naming it."""
        ref = block_ref(block_hash)
        method = "eth_call"
        token_hex = hex_address(token)
        params = [[{"to": token_hex,
                    "data": "0x" + (BALANCE_OF_SELECTOR + bytes(12) + h).hex()}, ref]
                  for h in (_address(a) for a in holders)]
        out = []
        for holder, raw in zip(holders, self._call_batch(method, params), strict=True):
            what = f"token {token_hex} balanceOf({hex_address(holder)})"
            if isinstance(raw, _NodeRefusal) and raw.is_revert:
                raise self._fail(method, f"{what} reverted: {raw.message}")
            data = self._data(method, raw, what)
            if not data:
                raise self._fail(method, f"{what} answered nothing: is {token_hex} a "
                                         "token contract at this block?")
            if len(data) != 32:
                raise self._fail(method, f"{what} answered {len(data)} bytes, not 32")
            out.append(int.from_bytes(data, "big"))
        return out

    def is_valid_signature(self, contract: bytes, digest: bytes, signature: bytes,
                           block_hash: bytes) -> bool:
        """EIP-1271: does ``contract`` accept ``signature`` over ``digest`` at
        the block ``block_hash``? True exactly when the call returns the
        32-byte word ``0x1626ba7e`` followed by 28 zero bytes; a revert, an
        empty or any other answer is False. A node error other than a revert
        is a ``ChainError``."""
        return self.are_valid_signatures([(contract, digest, signature)], block_hash)[0]

    def are_valid_signatures(self, items: Sequence[tuple[bytes, bytes, bytes]],
                             block_hash: bytes) -> list[bool]:
        """``is_valid_signature`` for many (contract, digest, signature), batched."""
        ref = block_ref(block_hash)
        method = "eth_call"
        params = [[{"to": hex_address(c), "data": "0x" + eip1271_calldata(d, s).hex()}, ref]
                  for c, d, s in items]
        magic = EIP1271_SELECTOR + bytes(28)
        out = []
        for (contract, _, _), raw in zip(items, self._call_batch(method, params), strict=True):
            if isinstance(raw, _NodeRefusal) and raw.is_revert:
                out.append(False)
                continue
            what = f"isValidSignature at {hex_address(contract)}"
            out.append(self._data(method, raw, what) == magic)
        return out


def eip1271_calldata(digest: bytes, signature: bytes) -> bytes:
    """ABI encoding of ``isValidSignature(bytes32 digest, bytes signature)``."""
    if len(digest) != 32:
        raise ValueError("the digest is 32 bytes")
    padded = signature + bytes(-len(signature) % 32)
    return (EIP1271_SELECTOR + digest + (64).to_bytes(32, "big")
            + len(signature).to_bytes(32, "big") + padded)


def _address(address: bytes) -> bytes:
    hex_address(address)  # checks the length
    return address


def _show(value: Any) -> str:
    if value is None:
        return "null"
    return repr(_short(str(value), 80))


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    return f"{n} bytes"


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        nxt = exc.__cause__ or exc.__context__
        assert nxt is not None
        exc = nxt
    return str(exc) or type(exc).__name__
