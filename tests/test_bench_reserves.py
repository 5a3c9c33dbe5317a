"""``zksolv bench reserves``: a small run on its own anvil gives every
figure, and an unreachable node is one clear line with exit 2."""

from __future__ import annotations

import json
import socket

from chain_node import INSTALL_HINT, anvil_path
from click.testing import CliRunner
from conftest import require_tool

from zksolv.cli.main import cli


def test_bench_reserves_json_on_its_own_anvil() -> None:
    exe = anvil_path()
    if exe is None:
        require_tool("anvil (npm @foundry-rs/anvil)", INSTALL_HINT)
    res = CliRunner().invoke(cli, ["bench", "reserves", "--anvil", str(exe), "--addresses", "4",
                                   "--tokens", "2", "--distinct-holders", "--repeat", "2",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["addresses"], out["tokens"], out["balances"], out["accounts"]) == (4, 2, 12, 12)
    for name in ("fetch", "sign", "check_offline", "check_online"):
        assert out[f"{name}_s"] > 0 and len(out[f"{name}_runs_s"]) == 2


def test_bench_reserves_unreachable_node_exits_2() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    res = CliRunner().invoke(cli, ["bench", "reserves", "--rpc", url, "--addresses", "2"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: eth_chainId at {url}: cannot connect")
    assert res.output.count("\n") == 1 and "Traceback" not in res.output


def test_bench_reserves_help_says_which_node() -> None:
    res = CliRunner().invoke(cli, ["bench", "reserves", "--help"])
    assert res.exit_code == 0
    assert "--rpc URL" in res.output and "--anvil" in res.output and "deploy" in res.output
