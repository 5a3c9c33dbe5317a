"""The holder's page and the public registry the operator's site names
(``zksolv site --registry --rpc --chain-id``, docs/holder-page.md, *The
public registry*): registry.js's ABI against the Python side's bytes under
node, and in a real headless Chromium against a real anvil node, a bundle
posted (shown posted by its address), a split view (another bundle posted
for the epoch: registry-mismatch, never "included") and an unreachable node
("not checked here" with the command, the verdict unchanged). Skipped like
tests/test_site_browser.py when node, Playwright or Chromium is missing
(unless ZKSOLV_REQUIRE_SITE_TESTS=1)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).parent / "js"


def write_registry_vectors(path: Path) -> Path:
    """Calldata and answers encoded by zksolv/chain/registry.py's ABI
    (eth_abi), and binding statements, for tests/js/registry.test.mjs."""
    import zksolv.chain as chain

    if not chain.available():
        pytest.skip("the chain extra is missing: pip install 'zksolv[chain]'")
    from eth_abi import encode

    from zksolv.chain import artifacts
    from zksolv.chain import registry as reg

    abi = reg._Abi(artifacts.load(reg.CONTRACT).abi)
    outputs = {name: out for name, (_, out) in abi.functions.items()}
    key, addr = bytes(range(32)), bytes(range(100, 120))
    calls = [("registrantsOf", [key, 0, 16]), ("registrantsOf", [key, 32, 16]),
             ("bindingOf", [reg.hex_address(addr)]), ("entry", [reg.hex_address(addr), 7]),
             ("entry", [reg.hex_address(addr), (1 << 64) - 1])]
    addresses = [[], [addr], [addr, bytes(20), b"\xff" * 20]]
    bindings = [(key, b"\x01" * 32, b"\xfe" * 32, 12), (bytes(32), bytes(32), bytes(32), 0)]
    entries = [(b"\x11" * 32, b"\x22" * 32, b"\x33" * 32, b"\x44" * 32, b"\x55" * 32, 6, True, True,
                False, 99),
               (bytes(32),) * 5 + (0, False, False, False, 0),
               (b"\xaa" * 32,) * 5 + ((1 << 64) - 1, True, False, True, (1 << 64) - 1)]
    doc = {
        "calls": [{"name": n, "args": ["0x" + a.hex() if isinstance(a, bytes) else str(a)
                                             for a in args],
                   "data": abi.encode(n, args).hex()} for n, args in calls],
        "addresses": [{"value": [a.hex() for a in v],
                       "data": encode(outputs["registrantsOf"],
                                      [[reg.hex_address(a) for a in v]]).hex()} for v in addresses],
        "bindings": [{"key": b[0].hex(), "signature": (b[1] + b[2]).hex(), "block": str(b[3]),
                      "data": encode(outputs["bindingOf"], list(b)).hex()} for b in bindings],
        "entries": [{"value": [*(h.hex() for h in e[:5]), str(e[5]), *e[6:9], str(e[9])],
                     "data": encode(outputs["entry"], [e]).hex()} for e in entries],
        "statements": [{"chain_id": str(c), "registry": addr.hex(), "operator": op.hex(),
                        "statement": reg.binding_statement(c, addr, op).hex()}
                       for c, op in ((31337, b"\x07" * 20), ((1 << 63) - 1, bytes(20)))],
    }
    # the Python side decodes its own bytes to the same values
    for e in doc["entries"]:
        assert abi.decode("entry", bytes.fromhex(e["data"]), "vectors")[0][5] == int(e["value"][5])
    path.write_text(json.dumps(doc))
    return path


def test_registry_abi_under_node(tmp_path: Path) -> None:
    from test_site_js import node

    exe = node()
    vectors = write_registry_vectors(tmp_path / "registry.json")
    res = subprocess.run([exe, "--test", "--test-reporter=tap", "registry.test.mjs"], cwd=JS_TESTS,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "ZKSOLV_REGISTRY_VECTORS": str(vectors)})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "# pass 5" in out and "# fail 0" in out, out[-3000:]
