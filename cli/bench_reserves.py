"""``zksolv bench reserves``: chain reserves of N addresses x M tokens on a
development node: fetch (batched balance reads at a pinned block hash), sign
(every account's EIP-712 statement), the offline check (every signature
recovered) and the online check (every balance re-read, the block and chain
checked, signatures recovered), each the median of repeated runs.

The node must let the benchmark deploy contracts and send transactions from
an unlocked account (anvil, or a dev-mode geth): ``--rpc URL``; or
``--anvil PATH`` starts that anvil binary on 127.0.0.1 and stops it after.
Without either, the anvil that ``npm ci --prefix tests/js`` installs in a
source checkout is used. The token deployed is the tests' ERC-20
(tests/contracts/build/TestToken.json, or ``--token-build``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from zksolv.cli.common import echo_json, reports_errors
from zksolv.errors import InputError

SOURCE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOKEN_BUILD = SOURCE_ROOT / "tests" / "contracts" / "build" / "TestToken.json"
NODE_MODULES = SOURCE_ROOT / "tests" / "js" / "node_modules"


def default_anvil() -> Path:
    """npm's anvil in a source checkout: the platform's native binary (so
    stopping it stops anvil itself), else the node.js launcher."""
    for native in sorted((NODE_MODULES / "@foundry-rs").glob("anvil-*/bin/anvil")):
        if os.access(native, os.X_OK):
            try:
                subprocess.run([str(native), "--version"], capture_output=True, timeout=30,
                               check=True)
                return native
            except (OSError, subprocess.SubprocessError):
                continue
    return NODE_MODULES / ".bin" / "anvil"


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _abi_string(text: str) -> bytes:
    data = text.encode()
    return _word(len(data)) + data + bytes(-len(data) % 32)


def token_constructor_args(name: str, symbol: str, decimals: int) -> bytes:
    """ABI encoding of (string name, string symbol, uint8 decimals)."""
    name_enc = _abi_string(name)
    return (_word(96) + _word(96 + len(name_enc)) + _word(decimals) + name_enc
            + _abi_string(symbol))


class _Dev:
    """Setup transactions on a development node (stdlib HTTP: the timed
    work goes through zksolv.chain's client, not this)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._id = 0

    def _post(self, payload: Any) -> Any:
        req = urllib.request.Request(self.url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read(64 * 1024 * 1024))
        except (OSError, ValueError) as exc:
            raise InputError("--rpc", f"cannot set up the benchmark on the node: {exc}") from exc

    def rpc(self, method: str, *params: Any) -> Any:
        self._id += 1
        answer = self._post({"jsonrpc": "2.0", "id": self._id, "method": method,
                             "params": list(params)})
        if "error" in answer:
            raise InputError("--rpc", f"{method}: {answer['error']}")
        return answer["result"]

    def send_many(self, txs: list[dict[str, Any]]) -> None:
        """Send transactions one by one (a batch's requests may run
        concurrently, and out-of-order nonces wait in the pool); wait for the
        last receipt."""
        last = None
        for tx in txs:
            try:
                last = self.rpc("eth_sendTransaction", tx)
            except InputError as exc:
                raise InputError("--rpc", f"{exc.reason} (the node must have an unlocked "
                                          "account: a dev node)") from exc
        deadline = time.monotonic() + 60
        while last is not None and self.rpc("eth_getTransactionReceipt", last) is None:
            if time.monotonic() > deadline:
                raise InputError("--rpc", "the node does not mine the setup transactions")
            time.sleep(0.01)

    def deploy(self, sender: str, code: str) -> str:
        tx = self.rpc("eth_sendTransaction", {"from": sender, "data": code, "gas": "0x4c4b40"})
        deadline = time.monotonic() + 60
        while (receipt := self.rpc("eth_getTransactionReceipt", tx)) is None:
            if time.monotonic() > deadline:
                raise InputError("--rpc", "the node does not mine the deployment")
            time.sleep(0.01)
        return str(receipt["contractAddress"]).lower()


@contextmanager
def _anvil(path: Path) -> Iterator[str]:
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise InputError("--anvil", f"{path} is not an executable file (install it: "
                                    "npm ci --prefix tests/js)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(path), "--host", "127.0.0.1", "--port", str(port),
                             "--hardfork", "prague", "--silent"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise InputError("--anvil", f"{path} exited with {proc.returncode}")
            try:
                _Dev(url).rpc("eth_chainId")
                break
            except InputError:
                if time.monotonic() > deadline:
                    raise InputError("--anvil", f"{path} did not answer within 30 s") from None
                time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _token_code(path: Path) -> str:
    from zksolv.safeio import read_bounded

    data, _ = read_bounded(path, 1 << 20, what="token build")
    try:
        code = json.loads(data)["bytecode"]
        assert isinstance(code, str) and code.startswith("0x")
        bytes.fromhex(code[2:])
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise InputError(str(path), "not a contract build (JSON with a 0x bytecode)") from exc
    return code


def _setup(url: str, addresses: int, tokens: int, code: str,
           distinct: bool) -> tuple[Any, list[bytes]]:
    """Deploy the tokens, fund and mint to N fresh accounts (N for each
    asset if ``distinct``); the sources and the accounts' keys."""
    from zksolv.chain import AssetSource, HolderSource, ReserveSources, ownership

    dev = _Dev(url)
    chain_id = int(dev.rpc("eth_chainId"), 16)
    sender = dev.rpc("eth_accounts")[0]
    groups = tokens + 1 if distinct else 1
    keys = [ownership.keccak256(f"zksolv bench reserves {i}".encode())
            for i in range(addresses * groups)]
    every = [ownership.address_of(k) for k in keys]
    group = [every[g * addresses:(g + 1) * addresses] for g in range(groups)]
    token_addrs = []
    for t in range(tokens):
        args = token_constructor_args(f"Bench {t}", f"B{t}", 18).hex()
        token_addrs.append(bytes.fromhex(dev.deploy(sender, code + args)[2:]))
    txs = [{"from": sender, "to": "0x" + h.hex(), "value": hex(10**15 * (i + 1))}
           for i, h in enumerate(group[0])]
    mint = ownership.keccak256(b"mint(address,uint256)")[:4].hex()
    for t, token in enumerate(token_addrs):
        txs += [{"from": sender, "to": "0x" + token.hex(), "gas": "0x30000",
                 "data": "0x" + mint + (bytes(12) + h + _word(10**18 + i)).hex()}
                for i, h in enumerate(group[(t + 1) % groups])]
    dev.send_many(txs)
    dev.rpc("evm_mine")  # the pinned block: every setup transaction before it

    def acc(g: int) -> tuple[HolderSource, ...]:
        return tuple(HolderSource(h, "account") for h in group[g % groups])

    assets = (AssetSource("ETH", None, acc(0)),
              *(AssetSource(f"B{t}", token, acc(t + 1)) for t, token in enumerate(token_addrs)))
    return ReserveSources(chain_id, None, assets), keys


@click.command()
@click.option("--rpc", "rpc_url", default=None, metavar="URL",
              help="A development node where the benchmark may deploy tokens and send "
                   "transactions from an unlocked account (anvil, geth --dev).")
@click.option("--anvil", "anvil_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Start this anvil binary on 127.0.0.1 instead (default "
                                 "without --rpc: the one npm ci --prefix tests/js installs).")
@click.option("--addresses", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--tokens", type=click.IntRange(0, 20), default=3, show_default=True,
              help="ERC-20 tokens, besides the native coin.")
@click.option("--distinct-holders", is_flag=True,
              help="Other addresses for each asset (N x (M + 1) accounts and statements) "
                   "instead of the same N holding every asset (N statements).")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--token-build", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_TOKEN_BUILD, show_default=False,
              help="The ERC-20 to deploy (JSON with a bytecode field; default: the "
                   "tests' TestToken build).")
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def reserves(rpc_url: str | None, anvil_path: Path | None, addresses: int, tokens: int,
             distinct_holders: bool, repeat: int, token_build: Path, as_json: bool) -> None:
    """Fetch, sign and check chain reserves: N addresses x (native + M tokens).

    fetch: every balance read at the pinned block (batched); sign: every
    account's EIP-712 statement; check_offline: every signature recovered
    (one per account and statement); check_online: the chain, the block,
    every balance re-read and the signatures, against the node.

    Needs the chain extra (pip install 'zksolv[chain]') and a development
    node: --rpc URL (one that lets it deploy and send), or --anvil PATH to
    start one. Figures are medians of --repeat runs, in seconds."""
    from zksolv.chain import (
        ChainExtraMissing,
        RpcClient,
        available,
        check_offline,
        check_online,
        fetch,
        sign_holdings,
    )

    if not available():
        raise ChainExtraMissing("bench reserves")
    if rpc_url is not None and anvil_path is not None:
        raise InputError("--rpc", "give --rpc or --anvil, not both")
    code = _token_code(token_build)
    epoch, operator = 1, bytes(range(32))

    @contextmanager
    def node() -> Iterator[str]:
        if rpc_url is not None:
            yield rpc_url
        else:
            with _anvil(anvil_path or default_anvil()) as url:
                yield url

    times: dict[str, list[float]] = {"fetch": [], "sign": [], "check_offline": [],
                                     "check_online": []}
    with node() as url:
        client = RpcClient(url)
        client.chain_id()  # an unreachable node fails here, before any setup
        sources, keys = _setup(url, addresses, tokens, code, distinct_holders)
        block = client.block_number()
        for _ in range(repeat):
            t0 = time.perf_counter()
            evidence = fetch(client, sources, block=block)
            times["fetch"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for k in keys:
                evidence, _ = sign_holdings(evidence, k, epoch=epoch, operator=operator)
            times["sign"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            offline = check_offline(evidence, epoch=epoch, operator=operator)
            times["check_offline"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            online = check_online(client, evidence, epoch=epoch, operator=operator,
                                  epoch_timestamp=None)
            times["check_online"].append(time.perf_counter() - t0)
            if offline or online:
                raise InputError("bench", f"the honest evidence did not check: "
                                          f"{(offline or online)[0]}")
        client.close()
    balances = addresses * (tokens + 1)
    out: dict[str, Any] = {
        "addresses": addresses, "tokens": tokens, "balances": balances,
        "accounts": len(keys), "statements_signed": len(keys), "repeat": repeat,
        "node": "rpc" if rpc_url else "anvil",
        **{f"{k}_s": round(statistics.median(v), 3) for k, v in times.items()},
        **{f"{k}_runs_s": [round(x, 3) for x in v] for k, v in times.items()},
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if as_json:
        echo_json(out)
        return
    click.echo(f"chain reserves: {addresses} addresses x {tokens + 1} assets (native + "
               f"{tokens} ERC-20) = {balances} balances, {len(keys)} accounts signing, "
               f"median of {repeat}")
    for name in times:
        click.echo(f"  {name:<14} {out[name + '_s']:8.3f} s")
