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
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_site_browser import browser  # noqa: F401 - the browser fixture

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


# -- the page, on a real node ------------------------------------------------------------


def _read(page: Any) -> dict[str, str]:
    """The verdict once the registry's line is final (data-registry set)."""
    page.wait_for_function("() => document.getElementById('result').dataset.registry",
                           timeout=60_000)
    out: dict[str, str] = page.evaluate(
        """() => { const r = document.getElementById('result');
                   const line = document.querySelector("#checked li[data-key='registry']");
                   return {state: r.dataset.state, check: r.dataset.check || '',
                           registry: r.dataset.registry,
                           reason: document.getElementById('reason').textContent,
                           line: line ? line.innerText : '',
                           checked: document.getElementById('checked').innerText}; }""")
    return out


class RegistryTab:
    """One page allowed the site's origin and the named node's; the shipped
    checkworker.js answered 404 (the inclusion check alone), as in
    tests/test_site_browser.py. Records requests elsewhere (refused)."""

    def __init__(self, chromium: Any, base: str, rpc: str) -> None:
        origins = ["{0.scheme}://{0.netloc}/".format(urlsplit(u)) for u in (base, rpc)]
        self.foreign: list[str] = []
        self.rpc_requests: list[str] = []
        self.context = chromium.new_context()

        def route(r: Any) -> None:
            url = r.request.url
            if urlsplit(url).path == "/checkworker.js":
                r.fulfill(status=404, body="not found")
            elif url.startswith(origins[0]):
                r.continue_()
            elif url.startswith(origins[1]):
                self.rpc_requests.append(r.request.post_data or "")
                r.continue_()
            else:
                self.foreign.append(url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.base = base

    def check(self, document: bytes, account: str, bundle: str) -> dict[str, str]:
        from zksolv.cli.bench_site import check_in_page

        check_in_page(self.page, self.base, document=document.decode(), account_id=account,
                      bundle=bundle)
        return _read(self.page)


@pytest.fixture
def registry_page(chain: Any, tmp_path: Path, browser: Any,  # noqa: F811, ANN401
                  site_epochs: Path) -> Any:  # noqa: ANN401
    """(setup, open_tab(rpc) -> RegistryTab): a deployed registry with
    eth1 bound to the test operator key (the key of site_epochs' and the
    vector bundles), and the site_epochs bundles served naming it."""
    from test_registry_cli import Setup

    from zksolv.site import serving, site_registry

    setup = Setup(chain, tmp_path)
    assert setup.register(1).exit_code == 0
    tabs: list[RegistryTab] = []
    servers: list[Any] = []

    def open_tab(rpc: str) -> RegistryTab:
        named = site_registry(setup.address, rpc, 31337)
        server = serving(site_epochs, registry=named)
        base = server.__enter__()
        servers.append(server)
        tab = RegistryTab(browser, base, rpc)
        tabs.append(tab)
        return tab

    yield setup, open_tab
    for tab in tabs:
        assert tab.foreign == [], tab.foreign
        tab.context.close()
    for server in servers:
        server.__exit__(None, None, None)


def _publish(setup: Any, bundle: Path) -> None:
    from test_registry_cli import run

    r = run("publish", str(bundle), "--rpc", setup.url, "--registry", setup.address,
            "--eth-key", setup.eth[1], "-j", "1")
    assert r.exit_code == 0, r.output


def _shown_posted(setup: Any, open_tab: Any, site_epochs: Path) -> tuple[Any, dict[str, Any]]:
    """Publish b1 and b2 with the operator's registered address, check
    acct-4's epoch 2 on the page: posted, valid, by that address."""
    from test_registry_cli import ETH_KEYS

    from zksolv.chain import registry as reg

    for name in ("b1", "b2"):
        _publish(setup, site_epochs / name)
    tab = open_tab(setup.url)
    res = tab.check((site_epochs / "acct-4-e2.json").read_bytes(), "acct-4", "b2")
    by = reg.hex_address(reg.eth_address(ETH_KEYS[1]))
    assert (res["registry"], res["state"]) == ("posted", "valid"), res
    assert f"posted in the public registry by {by}" in res["line"], res
    return tab, res


def test_a_posted_bundle_is_shown_posted(registry_page: Any, site_epochs: Path) -> None:
    setup, open_tab = registry_page
    tab, res = _shown_posted(setup, open_tab, site_epochs)
    # what it did not check, and the command for the holder's own node
    assert "not checked here: the registry's code and that the node answers from the real chain" \
        in res["line"], res
    assert f"zksolv verify b2 --rpc URL --registry {setup.address}" in res["line"], res
    # it asked the node: chain id, registrants, binding, entry
    methods = [json.loads(b)["method"] for b in tab.rpc_requests]
    assert methods[0] == "eth_chainId" and methods.count("eth_call") == 3, methods


def test_a_split_view_is_not_valid(registry_page: Any, site_epochs: Path) -> None:
    """The operator posted another epoch 2 bundle (the vector bundles',
    same key) and shows this holder b2: registry-mismatch, not included."""
    from test_registry_cli import VECTORS, bundle_hash

    setup, open_tab = registry_page
    for name in ("valid-epoch1", "valid-epoch2"):
        _publish(setup, VECTORS / name)
    tab = open_tab(setup.url)
    res = tab.check((site_epochs / "acct-4-e2.json").read_bytes(), "acct-4", "b2")
    assert (res["registry"], res["state"], res["check"]) == ("mismatch", "invalid",
                                                             "registry-mismatch"), res
    assert bundle_hash("valid-epoch2") in res["reason"], res
    assert "included" not in res["reason"].lower()
    # an epoch the operator did not post: registry-missing
    res = tab.check((site_epochs / "acct-4-g4.json").read_bytes(), "acct-4", "g4")
    assert (res["registry"], res["state"], res["check"]) == ("missing", "invalid",
                                                             "registry-missing"), res


def test_an_unreachable_node_is_not_checked_here(registry_page: Any, site_epochs: Path) -> None:
    import socket

    setup, open_tab = registry_page
    with socket.socket() as s:          # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tab = open_tab(f"http://127.0.0.1:{port}")
    res = tab.check((site_epochs / "acct-4-e2.json").read_bytes(), "acct-4", "b2")
    assert (res["registry"], res["state"], res["check"]) == ("unchecked", "valid", ""), res
    assert res["line"].startswith("Public registry\nnot checked here (the node at "), res
    assert f"zksolv verify b2 --rpc URL --registry {setup.address}" in res["line"], res


def test_a_registration_without_the_keys_signature_is_ignored(registry_page: Any,
                                                               site_epochs: Path) -> None:
    """Anyone can register the operator's key: an address whose binding
    signature is another key's posts a different epoch 2 bundle; the page
    checks the binding (Ed25519, WebCrypto) and ignores it."""
    from test_registry_cli import ETH_KEYS, OPERATOR

    from zksolv.chain import registry as reg
    from zksolv.prover.keys import signing_key

    setup, open_tab = registry_page
    thief = reg.eth_address(ETH_KEYS[2])
    forged = signing_key(bytes(32)).sign(reg.binding_statement(
        setup.registry.chain_id(), setup.registry.address, thief))
    setup.registry.register(ETH_KEYS[2], OPERATOR, forged)
    setup.registry.post(ETH_KEYS[2], reg.BundlePost(2, b"\x07" * 32, b"\x01" * 32, b"\x02" * 32,
                                                    b"\x03" * 32, None, None))
    _shown_posted(setup, open_tab, site_epochs)   # the thief's post is not the one shown
