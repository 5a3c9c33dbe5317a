"""A small bounded JSON-RPC 2.0 client for the registry commands: one call at
a time over httpx, the answer read up to ``max_response_bytes`` and the whole
call bounded in time. An unreachable node, an HTTP error, an answer too large,
too slow or not JSON-RPC is ``RpcError`` (exit 2) naming the method and the
URL (without credentials); a JSON-RPC error answer is ``RpcError`` too, with
the node's ``data`` (a contract's revert data) kept.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from zksolv.errors import InputError

MAX_RESPONSE_BYTES = 4 << 20
MAX_JSON_DEPTH = 64


class RpcError(InputError):
    """The node could not be asked, or answered an error."""

    def __init__(self, where: str, reason: str, data: Any = None, unreachable: bool = False):
        super().__init__(where, reason)
        self.data = data
        self.unreachable = unreachable

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.where, self.reason, self.data, self.unreachable)


def public_url(url: str) -> str:
    """``url`` without user, password or query (they may hold credentials)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


class HttpRpc:
    def __init__(self, url: str, *, timeout: float = 30.0,
                 max_response_bytes: int = MAX_RESPONSE_BYTES):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError("--rpc", f"an RPC URL is http:// or https:// and a host: "
                                      f"{public_url(url)!r}")
        self._url = url
        self.url = public_url(url)
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._next_id = 1

    def request(self, method: str, params: list[Any]) -> Any:
        import httpx

        where = f"{method} at {self.url}"
        ident = self._next_id
        self._next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        try:
            with httpx.Client(timeout=self.timeout) as client, client.stream(
                    "POST", self._url, content=body,
                    headers={"Content-Type": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise RpcError(where, f"the node answered HTTP {resp.status_code}")
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise RpcError(where, f"the node answered more than the "
                                              f"{self.max_response_bytes >> 20} MiB allowed")
                    if time.monotonic() > deadline:
                        raise RpcError(where, f"no complete answer within {self.timeout:g} s")
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise RpcError(where, f"no answer within {self.timeout:g} s",
                           unreachable=True) from exc
        except httpx.HTTPError as exc:
            raise RpcError(where, f"the node cannot be reached ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})", unreachable=True) from exc
        try:
            answer = json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as exc:
            raise RpcError(where, "the node's answer is not JSON") from exc
        if _depth(answer, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise RpcError(where, "the node's answer is nested too deeply")
        if not isinstance(answer, dict) or answer.get("id") != ident \
                or answer.get("jsonrpc") != "2.0":
            raise RpcError(where, "the node's answer is not a JSON-RPC 2.0 answer to this call")
        if "error" in answer:
            err = answer["error"]
            if not isinstance(err, dict):
                raise RpcError(where, "the node answered a malformed error")
            message = str(err.get("message", ""))[:300]
            raise RpcError(where, f"the node refused: {message}", data=err.get("data"))
        if "result" not in answer:
            raise RpcError(where, "the node's answer has neither result nor error")
        return answer["result"]
