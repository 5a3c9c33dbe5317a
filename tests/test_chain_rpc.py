"""The JSON-RPC client against hostile nodes: a tiny HTTP server on
127.0.0.1 answers each request as the test says (huge, malformed, deep,
slow, the wrong id, the wrong types, HTTP errors, another chain). Every case
must end in a ``ChainError`` naming the RPC method and the node (never its
credentials), quickly and within bounded memory; and the client reads a well
behaved node's answers exactly."""

from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from zksolv.chain import evidence as ev
from zksolv.chain.rpc import RpcClient, RpcError, eip1271_calldata, redact_url
from zksolv.errors import ChainError, InputError

Handler = Callable[[Any, socket.socket], None]

BLOCK_HASH = bytes(range(32))
ADDR = bytes.fromhex("11" * 20)
TOKEN = bytes.fromhex("22" * 20)


def _read_request(conn: socket.socket) -> Any:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return json.loads(body)


def respond(conn: socket.socket, body: bytes, *, status: str = "200 OK",
            headers: tuple[str, ...] = ()) -> None:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}",
            "Content-Type: application/json", "Connection: close", *headers]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def answer(request: Any, result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()


class HostileNode:
    """Serves one connection at a time; ``handler(request_json, conn)``
    writes whatever answer the test wants."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(10)
                    request = _read_request(conn)
                    if request is not None:
                        self.requests.append(request)
                        self.handler(request, conn)
                except OSError:
                    pass  # the client hung up: what a bounded client does

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Handler], HostileNode]]:
    nodes: list[HostileNode] = []

    def start(handler: Handler) -> HostileNode:
        nodes.append(HostileNode(handler))
        return nodes[-1]

    yield start
    for n in nodes:
        n.close()


def fails(call: Callable[[], Any], method: str, node: HostileNode | str,
          *words: str, within: float = 5.0) -> ChainError:
    """``call`` raises a ChainError naming ``method`` and the node, within
    ``within`` seconds, its message holding each of ``words``."""
    url = node if isinstance(node, str) else node.url
    t0 = time.monotonic()
    with pytest.raises(ChainError) as info:
        call()
    elapsed = time.monotonic() - t0
    assert elapsed < within, f"took {elapsed:.1f} s"
    err = info.value
    text = str(err)
    assert err.exit_code == 2 and isinstance(err, InputError)
    assert text.startswith(f"{method} at {redact_url(url)}: "), text
    for w in words:
        assert w in text, text
    assert "\n" not in text
    return err


# -- size, time, transport ------------------------------------------------------------


def test_huge_answer_is_cut_off_at_the_bound(hostile: Any) -> None:
    def flood(request: Any, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\n\r\n")
        conn.sendall(b'{"jsonrpc":"2.0","id":1,"result":"0x')
        junk = b"1" * 65536
        for _ in range(100 * 16):  # 100 MiB unless the client stops reading
            conn.sendall(junk)

    node = hostile(flood)
    limit = 1024 * 1024
    client = RpcClient(node.url, max_response_bytes=limit)  # imports before measuring
    tracemalloc.start()
    try:
        fails(client.chain_id,
              "eth_chainId", node, "more than the 1 MiB allowed")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit, f"peak {peak} bytes"


def test_declared_huge_length_is_refused_before_reading(hostile: Any) -> None:
    def declare(request: Any, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n{")

    node = hostile(declare)
    fails(lambda: RpcClient(node.url).chain_id(), "eth_chainId", node,
          "node answered 4768.4 MiB, more than the 4 MiB allowed")


def test_slow_drip_is_cut_off_by_the_total_timeout(hostile: Any) -> None:
    def drip(request: Any, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(1000):
            conn.sendall(b" ")
            time.sleep(0.1)

    node = hostile(drip)
    fails(lambda: RpcClient(node.url, timeout=1.0).chain_id(), "eth_chainId", node,
          "no complete answer within 1 s", within=1.4)


def test_headers_then_silence_is_cut_off_by_the_total_timeout(hostile: Any) -> None:
    """Headers at 0.6 s, then nothing: each wait is under the timeout, but
    the call as a whole is not allowed more than 1 s."""
    def late(request: Any, conn: socket.socket) -> None:
        time.sleep(0.6)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(1.5)

    node = hostile(late)
    fails(lambda: RpcClient(node.url, timeout=1.0).chain_id(), "eth_chainId", node,
          "within 1 s", within=1.4)


def test_silent_node_times_out(hostile: Any) -> None:
    node = hostile(lambda request, conn: time.sleep(1.5))
    fails(lambda: RpcClient(node.url, timeout=0.5).chain_id(), "eth_chainId", node,
          "within 0.5 s", within=0.9)


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    fails(lambda: RpcClient(url).chain_id(), "eth_chainId", url, "cannot connect",
          "refused")


def test_http_500(hostile: Any) -> None:
    node = hostile(lambda r, c: respond(c, b"oops", status="500 Internal Server Error"))
    fails(lambda: RpcClient(node.url).chain_id(), "eth_chainId", node,
          "HTTP 500 Internal Server Error")


def test_compressed_answer_refused(hostile: Any) -> None:
    import gzip

    node = hostile(lambda r, c: respond(c, gzip.compress(answer(r, "0x1")),
                                        headers=("Content-Encoding: gzip",)))
    fails(lambda: RpcClient(node.url).chain_id(), "eth_chainId", node, "compressed")


def test_credentials_never_printed(hostile: Any) -> None:
    node = hostile(lambda r, c: respond(c, b"x", status="502 Bad Gateway"))
    port = node.url.rsplit(":", 1)[1]
    url = f"http://alice:s3cret@127.0.0.1:{port}/v3/APIKEY123?key=K456"
    err = fails(lambda: RpcClient(url).chain_id(), "eth_chainId", url, "HTTP 502")
    for secret in ("alice", "s3cret", "APIKEY123", "K456"):
        assert secret not in str(err)
    assert f"http://127.0.0.1:{port}/…" in str(err)


def test_bad_url_refused() -> None:
    for url in ("ftp://127.0.0.1/", "127.0.0.1:8545", "http://", "http://h:notaport/"):
        with pytest.raises(ChainError, match="must be http"):
            RpcClient(url)


# -- malformed JSON-RPC -------------------------------------------------------------


@pytest.mark.parametrize("body, words", [
    (b'{"jsonrpc":"2.0","id":1,"result":', "malformed JSON"),
    (b"<html>not json</html>", "malformed JSON"),
    (b'{"jsonrpc":"2.0","id":1,"result":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "malformed"),
    (b'{"jsonrpc":"2.0","id":1,"x":' + b"[" * 100_000 + b"]" * 100_000 + b',"result":"0x1"}',
     "nested too deeply"),
    (b'{"jsonrpc":"1.0","id":1,"result":"0x1"}', "not JSON-RPC 2.0"),
    (b'{"jsonrpc":"2.0","id":1}', "exactly one of result and error"),
    (b'{"jsonrpc":"2.0","id":1,"result":"0x1","error":{"code":1,"message":"m"}}',
     "exactly one of result and error"),
    (b'{"jsonrpc":"2.0","id":999,"result":"0x1"}', "id 999"),
    (b'{"jsonrpc":"2.0","id":"1","result":"0x1"}', "malformed answer"),
    (b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no such method\\n"}}',
     "node error -32601: no such method?"),
    (b'[{"jsonrpc":"2.0","id":1,"result":"0x1"}]', "malformed answer"),
])
def test_malformed_answers(hostile: Any, body: bytes, words: str) -> None:
    node = hostile(lambda r, c: respond(c, body))
    fails(lambda: RpcClient(node.url).chain_id(), "eth_chainId", node, words)


@pytest.mark.parametrize("result", [
    "0x01", "0x", "0X1", "0xA", " 0x1", "0x1 ", "1", 1, 1.0, True, None, "0x" + "f" * 65,
    ["0x1"], {"v": "0x1"},
])
def test_quantities_must_be_exact(hostile: Any, result: Any) -> None:
    node = hostile(lambda r, c: respond(c, answer(r, result)))
    fails(lambda: RpcClient(node.url).chain_id(), "eth_chainId", node, "chain id")


def test_quantities_read_exactly(hostile: Any) -> None:
    for text, value in (("0x0", 0), ("0x1", 1), ("0xa", 10), ("0x" + "f" * 64, 2**256 - 1)):
        node = hostile(lambda r, c, t=text: respond(c, answer(r, t)))
        assert RpcClient(node.url).chain_id() == value


def test_wrong_chain_id(hostile: Any) -> None:
    node = hostile(lambda r, c: respond(c, answer(r, "0x5")))
    fails(lambda: RpcClient(node.url).expect_chain(1), "eth_chainId", node,
          "the node is on chain 5, not 1")
    sources = ev.ReserveSources(1, None, (ev.AssetSource("ETH", None, (
        ev.HolderSource(ADDR, "account"),)),))
    fails(lambda: ev.fetch(RpcClient(node.url), sources, block=1), "eth_chainId", node,
          "chain 5, not 1")


# -- batches ------------------------------------------------------------------------


def batch_node(hostile: Any, shape: Callable[[list[Any]], Any]) -> HostileNode:
    return hostile(lambda r, c: respond(c, json.dumps(shape(r)).encode()))


def ok(req: Any, result: Any = "0x7") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req["id"], "result": result}


@pytest.mark.parametrize("shape, words", [
    (lambda rs: [ok(r) for r in rs[:-1]], "answered 2 of a batch of 3"),
    (lambda rs: [ok(r) for r in rs] + [ok(rs[0])], "answered 4 of a batch of 3"),
    (lambda rs: [ok(rs[0]), ok(rs[0]), ok(rs[2])], "answers id"),
    (lambda rs: [ok(rs[0]), ok(rs[1]), {**ok(rs[2]), "id": 12345}], "id 12345"),
    (lambda rs: {"jsonrpc": "2.0", "id": None,
                 "error": {"code": -32005, "message": "batch too large"}},
     "-32005 batch too large"),
    (lambda rs: [ok(rs[0]), ok(rs[1]), ok(rs[2], "0x007")], "is not a hex quantity"),
    (lambda rs: [ok(rs[0]), ok(rs[1]), ok(rs[2], 7)], "malformed answer"),
    (lambda rs: [ok(rs[0]), ok(rs[1]), {"jsonrpc": "2.0", "id": rs[2]["id"], "error": {
        "code": -32000, "message": "header not found"}}], "header not found"),
])
def test_batch_answers_matched_exactly(hostile: Any, shape: Any, words: str) -> None:
    node = batch_node(hostile, shape)
    fails(lambda: RpcClient(node.url).balances([ADDR] * 3, BLOCK_HASH), "eth_getBalance",
          node, words)


def test_batch_in_any_order_and_split(hostile: Any) -> None:
    node = batch_node(hostile, lambda rs: [ok(r, hex(r["id"])) for r in reversed(rs)])
    client = RpcClient(node.url, max_batch=2)
    addresses = [bytes([i]) * 20 for i in range(5)]
    got = client.balances(addresses, BLOCK_HASH)
    assert got == [1, 2, 3, 4, 5]  # ids 1..5, answered reversed in chunks of 2, 2, 1
    assert [len(r) for r in node.requests] == [2, 2, 1]
    for i, req in enumerate(r for chunk in node.requests for r in chunk):
        assert req["method"] == "eth_getBalance"
        assert req["params"] == ["0x" + addresses[i].hex(), {
            "blockHash": "0x" + BLOCK_HASH.hex(), "requireCanonical": True}]


# -- ERC-20 and EIP-1271 answers -----------------------------------------------------


def call_node(hostile: Any, result: Any = None, error: dict[str, Any] | None = None) -> Any:
    def shape(rs: list[Any]) -> Any:
        if error is not None:
            return [{"jsonrpc": "2.0", "id": r["id"], "error": error} for r in rs]
        return [ok(r, result) for r in rs]
    return batch_node(hostile, shape)


@pytest.mark.parametrize("result, error, words", [
    ("0x", None, "answered nothing: is 0x2222"),
    ("0x" + "00" * 31, None, "answered 31 bytes, not 32"),
    ("0x" + "00" * 64, None, "answered 64 bytes, not 32"),
    ("0x0", None, "not hex data"),
    ("0x" + "AB" * 32, None, "not hex data"),
    (None, {"code": 3, "message": "execution reverted: nope"}, "reverted: execution reverted"),
    (None, {"code": -32000, "message": "out of gas"}, "out of gas"),
])
def test_erc20_answers_must_be_one_word(hostile: Any, result: Any, error: Any,
                                        words: str) -> None:
    node = call_node(hostile, result, error)
    err = fails(lambda: RpcClient(node.url).erc20_balances(TOKEN, [ADDR], BLOCK_HASH),
                "eth_call", node, words)
    assert "0x" + TOKEN.hex() in str(err)


def test_erc20_balance_read(hostile: Any) -> None:
    node = call_node(hostile, "0x" + (12345).to_bytes(32, "big").hex())
    assert RpcClient(node.url).erc20_balances(TOKEN, [ADDR, ADDR], BLOCK_HASH) == [12345] * 2
    req = node.requests[0][0]
    assert req["params"][0] == {"to": "0x" + TOKEN.hex(),
                                "data": "0x70a08231" + "00" * 12 + ADDR.hex()}


@pytest.mark.parametrize("result, error, valid", [
    ("0x1626ba7e" + "00" * 28, None, True),
    ("0x1626ba7e" + "00" * 27 + "01", None, False),
    ("0x1626ba7e", None, False),
    ("0x" + "00" * 32, None, False),
    ("0x", None, False),
    ("0xffffffff" + "00" * 28, None, False),
    (None, {"code": 3, "message": "execution reverted"}, False),
    (None, {"code": -32000, "message": "execution reverted"}, False),
])
def test_eip1271_answers(hostile: Any, result: Any, error: Any, valid: bool) -> None:
    node = call_node(hostile, result, error)
    assert RpcClient(node.url).is_valid_signature(TOKEN, b"\x01" * 32, b"\x02" * 65,
                                                  BLOCK_HASH) is valid


def test_eip1271_node_failure_is_an_error_not_a_no(hostile: Any) -> None:
    node = call_node(hostile, None, {"code": -32000, "message": "header not found"})
    fails(lambda: RpcClient(node.url).is_valid_signature(TOKEN, b"\x01" * 32, b"\x02" * 65,
                                                         BLOCK_HASH),
          "eth_call", node, "header not found")


def test_eip1271_calldata_layout() -> None:
    data = eip1271_calldata(b"\xaa" * 32, b"\xbb" * 65)
    assert data[:4].hex() == "1626ba7e"
    assert data[4:36] == b"\xaa" * 32
    assert int.from_bytes(data[36:68], "big") == 64
    assert int.from_bytes(data[68:100], "big") == 65
    assert data[100:165] == b"\xbb" * 65 and data[165:] == bytes(31)


# -- blocks ---------------------------------------------------------------------------


def block_json(number: int, h: bytes = BLOCK_HASH, **over: Any) -> dict[str, Any]:
    return {"number": hex(number), "hash": "0x" + h.hex(), "parentHash": "0x" + "00" * 32,
            "timestamp": "0x64", "stateRoot": "0x" + "ee" * 32,
            "transactions": [], "miner": "0x" + "00" * 20, **over}


@pytest.mark.parametrize("block, words", [
    (block_json(8), "asked for block 7, node answered block 8"),
    (block_json(7, hash="0x12"), "is not a 32-byte hash"),
    (block_json(7, timestamp="0x064"), "timestamp"),
    ({**block_json(7), "number": 7}, "malformed answer"),
    ({"number": "0x7"}, "malformed answer"),
    (True, "malformed answer"),
])
def test_block_answers_must_be_exact(hostile: Any, block: Any, words: str) -> None:
    node = hostile(lambda r, c: respond(c, answer(r, block)))
    fails(lambda: RpcClient(node.url).block_by_number(7), "eth_getBlockByNumber", node, words)


def test_block_read_and_missing_block(hostile: Any) -> None:
    node = hostile(lambda r, c: respond(c, answer(r, block_json(7))))
    block = RpcClient(node.url).block_by_number(7)
    assert (block.number, block.hash, block.timestamp, block.state_root) == (
        7, BLOCK_HASH, 100, b"\xee" * 32)
    none = hostile(lambda r, c: respond(c, answer(r, None)))
    assert RpcClient(none.url).try_block_by_number(7) is None
    fails(lambda: RpcClient(none.url).block_by_number(7), "eth_getBlockByNumber", none,
          "the node has no block 7")


def test_any_method_keeps_the_node_error_data(hostile: Any) -> None:
    """``request``: any method, its result as JSON values; a node error
    raises RpcError holding the error's data (a contract's revert reason,
    which the registry decodes), still named and bounded as every call."""
    revert = "0x08c379a0" + "00" * 32

    def node(request: Any, conn: socket.socket) -> None:
        if request["method"] == "eth_call":
            body = {"jsonrpc": "2.0", "id": request["id"],
                    "error": {"code": 3, "message": "execution reverted", "data": revert}}
            respond(conn, json.dumps(body).encode())
        else:
            respond(conn, answer(request, {"number": "0x5", "list": [1, "a", None]}))

    n = hostile(node)
    with RpcClient(n.url, timeout=2) as client:
        assert client.request("eth_getBlockByNumber", ["latest", False]) == {
            "number": "0x5", "list": [1, "a", None]}
        err = fails(lambda: client.request("eth_call", [{}, "latest"]), "eth_call", n,
                    "node error 3: execution reverted")
        assert isinstance(err, RpcError) and err.data == revert


def test_any_method_refuses_a_deep_answer(hostile: Any) -> None:
    def node(request: Any, conn: socket.socket) -> None:
        respond(conn, b'{"jsonrpc": "2.0", "id": %d, "result": %s}'
                % (request["id"], b"[" * 100_000 + b"]" * 100_000))

    n = hostile(node)
    with RpcClient(n.url, timeout=2) as client:
        fails(lambda: client.request("eth_foo", []), "eth_foo", n, "malformed")
