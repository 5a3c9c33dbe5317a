"""JSON-RPC calls of the registry commands, over ``RpcClient``'s bounded
transport (every answer bounded in bytes and every call in time, the URL
named without credentials: ``zksolv.chain.rpc``), for the calls its typed
methods do not cover: ``eth_call`` and ``eth_estimateGas`` with the revert's
data kept (a contract's custom error), ``eth_sendRawTransaction``,
receipts, nonces and fees. Errors are ``RpcError`` (a ``ChainError``,
exit 2), with the node's ``data`` when it gave some.
"""

from __future__ import annotations

import json
from typing import Any

from zksolv.chain.rpc import RpcClient
from zksolv.errors import ChainError

MAX_JSON_DEPTH = 64


class RpcError(ChainError):
    """The node answered a JSON-RPC error; ``data`` is its error's data (a
    revert's ABI-encoded reason) when it gave some."""

    def __init__(self, method: str, url: str, reason: str, data: Any = None):
        super().__init__(method, url, reason)
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:  # type: ignore[override]
        return type(self), (self.method, self.url, self.reason, self.data)


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


class HttpRpc(RpcClient):
    def request(self, method: str, params: list[Any]) -> Any:
        """One call; its result as JSON values."""
        request_id = next(self._ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                           "params": params}).encode()
        data = self._post(method, body)
        try:
            answer = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise self._fail(method, "malformed JSON") from exc
        if _depth(answer, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise self._fail(method, "malformed JSON: nested too deeply")
        if (not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0"
                or answer.get("id") != request_id):
            raise self._fail(method, "the answer is not JSON-RPC 2.0 for this request")
        if ("result" in answer) == ("error" in answer):
            raise self._fail(method, "answer must hold exactly one of result and error")
        if "error" in answer:
            err = answer["error"]
            if not isinstance(err, dict):
                raise self._fail(method, "malformed error object")
            raise RpcError(method, self.url, f"node error {err.get('code')}: "
                                             f"{str(err.get('message', ''))[:200]}",
                           err.get("data"))
        return answer["result"]
