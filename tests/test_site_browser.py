"""The account holder's page in a real headless Chromium (Debian's
``chromium``, driven by Playwright for Python; no browser download): valid
proofs show valid with the amounts, epoch and bundle hash; forged ones show
invalid and name the check the CLI names; no request leaves the served origin.

Skipped with the reason when Playwright or Chromium is missing, unless
ZKSOLV_REQUIRE_SITE_TESTS=1 (set by .ci/run). Run locally:
``apt-get install chromium && pip install playwright && pytest tests/test_site_browser.py``
(never ``playwright install``: the system Chromium is used)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_site_js import require

from zksolv.circuits import bundle as layout
from zksolv.circuits.inclusion import InclusionProof
from zksolv.cli.bench_site import CHROMIUM_ARGS, check_in_page
from zksolv.site import serving

CHROMIUM = os.environ.get("ZKSOLV_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("Playwright for Python", "pip install playwright (no `playwright install`)")
    if not os.access(CHROMIUM, os.X_OK):
        require(f"Chromium at {CHROMIUM}", "apt-get install chromium (or set ZKSOLV_CHROMIUM)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(site_epochs: Path) -> Iterator[str]:
    with serving(site_epochs) as url:
        yield url


class Tab:
    """One page, recording every request it makes and refusing (and
    recording) any that would leave the served origin."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context()
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
        self.requests: list[str] = []
        self.foreign: list[str] = []

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith(self.origin + "/"):
                r.continue_()
            else:
                self.foreign.append(url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.base = base

    def check(self, document: str | bytes, account: str, **kw: str) -> dict[str, str]:
        text = document.decode() if isinstance(document, bytes) else document
        return check_in_page(self.page, self.base, document=text, account_id=account, **kw)


@pytest.fixture
def tab(browser: Any, site: str) -> Iterator[Tab]:
    t = Tab(browser, site)
    yield t
    assert t.foreign == [], f"requests left the origin: {t.foreign}"
    assert t.requests and all(u.startswith(t.origin + "/") for u in t.requests), t.requests
    t.context.close()


def _doc(d: Path, name: str) -> bytes:
    return (d / name).read_bytes()


def _forge(document: bytes, **changes: Any) -> str:
    doc = json.loads(document)
    pf = InclusionProof.from_bytes(bytes.fromhex(doc["proof"]))
    fields = {**pf.__dict__, **changes}
    doc["proof"] = InclusionProof(**fields).to_bytes().hex()
    return json.dumps(doc)


def _flip(document: bytes, pos: int) -> str:
    doc = json.loads(document)
    raw = bytearray(bytes.fromhex(doc["proof"]))
    raw[pos] ^= 0x01
    doc["proof"] = raw.hex()
    return json.dumps(doc)


def _bundle_hash(bundle: Path) -> str:
    return layout.bundle_hash((bundle / layout.MANIFEST_FILE).read_bytes()).hex()


def test_debts_are_shown_beside_credits(site_epochs: Path, tab: Tab) -> None:
    """A borrower's page (bundle version 5) lists what they owe and says
    margin health is proven in the bundle, not checked by the page; a saver
    in the same bundle sees only what they are owed."""
    res = tab.check(_doc(site_epochs, "borrower-l5.json"), "borrower", bundle="l5")
    assert res["state"] == "valid", res
    report = res["report"]
    assert "\nDAI owed by you\n2500 DAI (2500000000 units of 10^-6, rounded down" in report
    assert "\nETH\n2 ETH" in report
    assert "\nMargin health\nevery account's margin health" in report
    res = tab.check(_doc(site_epochs, "saver-l5.json"), "saver", bundle="l5")
    assert res["state"] == "valid", res
    assert "owed by you" not in res["report"] and "Margin health" not in res["report"]
    assert "\nDAI\n3000 DAI" in res["report"]


def test_valid_proof_shows_valid(site_epochs: Path, tab: Tab) -> None:
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert res["state"] == "valid", res
    report = res["report"]
    assert "0.005 USD" in report and "5000 base units" in report  # 5000 at 6 decimals
    assert _bundle_hash(site_epochs / "b2") in report
    assert "\nEpoch\n2\n" in report, report
    assert "\nManifest signature\nchecked\n" in report, report  # Ed25519 in WebCrypto
    assert "inclusion-root" in report.split("Checks passed\n")[1]
    assert "not checked here" in report
    command = tab.page.text_content("#full-command") or ""
    assert command.startswith("zksolv inclusion verify proof.json --account acct-4 --bundle b2 ")
    assert tab.page.is_visible("#unchecked")
    # the page fetched exactly the manifest and its signature of that bundle
    fetched = {urlsplit(u).path for u in tab.requests}
    assert {"/b2/manifest.json", "/b2/manifest.sig"} <= fetched
    assert not any(p.endswith((".bin", ".sqlite")) for p in fetched), fetched


def test_the_chain_link_and_a_declared_gap_are_shown(site_epochs: Path, tab: Tab) -> None:
    """The page shows what the signed header links to, and that it did not
    check that link (the operator alone wrote it: epoch - 1 with a made-up
    hash would hide a gap); a bundle that links past a refused epoch shows
    that epoch as not proven solvent."""
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert res["state"] == "valid", res
    assert (f"\nChain\nlinks to epoch 1 (bundle {_bundle_hash(site_epochs / 'b1')}) as its "
            "signed header states; link not checked here (zksolv verify --chain checks it)\n") \
        in res["report"], res["report"]
    assert "NOT proven solvent" not in res["report"]
    res = tab.check(_doc(site_epochs, "acct-4-g4.json"), "acct-4", bundle="g4")
    assert res["state"] == "valid", res
    assert (f"\nChain\nlinks to epoch 2 (bundle {_bundle_hash(site_epochs / 'b2')}) as its "
            "signed header states; epoch 3 was NOT proven solvent; link not checked here "
            "(zksolv verify --chain checks it)\n") in res["report"], res["report"]
    assert tab.page.get_attribute("dd[data-gap]", "data-gap") == "3-3"
    res = tab.check(_doc(site_epochs, "acct-4-e1.json"), "acct-4", bundle="b1")
    assert "\nChain\nfirst bundle of its chain (links to no earlier epoch)\n" in res["report"]


def test_valid_by_bundle_hash_and_two_assets(site_epochs: Path, tab: Tab) -> None:
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4",
                    bundle_hash=_bundle_hash(site_epochs / "b2"))
    assert res["state"] == "valid", res
    res = tab.check(_doc(site_epochs, "acct-4-m3.json"), "acct-4", bundle="m3")
    assert res["state"] == "valid", res
    assert "USDC" in res["report"] and "BTC" in res["report"]


def test_file_picker(site_epochs: Path, tab: Tab) -> None:
    tab.page.goto(tab.base + "?bundle=b2")
    tab.page.wait_for_selector("body[data-ready='1']")
    tab.page.set_input_files("#proof-file", str(site_epochs / "acct-4-e2.json"))
    tab.page.fill("#account", "acct-4")
    tab.page.click("#verify")
    tab.page.wait_for_function("() => ['valid', 'invalid', 'error'].includes("
                               "document.getElementById('result').dataset.state)")
    assert tab.page.get_attribute("#result", "data-state") == "valid"


@pytest.mark.parametrize("what,pos,check", [
    ("salt", -1, "inclusion-root"),
    ("path hash", -2, "inclusion-root"),
    ("path commitment", -60, "inclusion-encoding"),
    ("bundle hash", 20, "inclusion-bundle"),
    ("magic", 0, "inclusion-format"),
])
def test_flipped_byte_shows_invalid(site_epochs: Path, tab: Tab, what: str, pos: int,
                                    check: str) -> None:
    document = _doc(site_epochs, "acct-4-e2.json")
    raw = bytes.fromhex(json.loads(document)["proof"])
    depth, k = 4, 1
    salt_end = len(raw) - depth * (48 * k + 32)
    at = {"salt": salt_end - 1, "path hash": len(raw) - 1,
          "path commitment": len(raw) - 32 - 20}.get(what, pos)
    res = tab.check(_flip(document, at), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", check), res
    assert check in res["verdict"]


def test_another_accounts_id(site_epochs: Path, tab: Tab) -> None:
    res = tab.check(_doc(site_epochs, "acct-0-e2.json"), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-account"), res
    # relabelling acct-0's proof as acct-4's breaks the leaf hash
    forged = _forge(_doc(site_epochs, "acct-0-e2.json"), account_id="acct-4")
    res = tab.check(json.dumps({**json.loads(forged), "account_id": "acct-4"}), "acct-4",
                    bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-root"), res


def test_another_epochs_manifest(site_epochs: Path, tab: Tab) -> None:
    res = tab.check(_doc(site_epochs, "acct-4-e1.json"), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-epoch"), res
    res = tab.check(_doc(site_epochs, "acct-4-e1.json"), "acct-4",
                    bundle_hash=_bundle_hash(site_epochs / "b2"))
    assert (res["state"], res["check"]) == ("invalid", "inclusion-bundle"), res


def test_inflated_amount(site_epochs: Path, tab: Tab) -> None:
    document = _doc(site_epochs, "acct-4-e2.json")
    pf = InclusionProof.from_bytes(bytes.fromhex(json.loads(document)["proof"]))
    res = tab.check(_forge(document, amounts=(pf.amounts[0] * 1000,)), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-root"), res


def test_pinned_operator(site_epochs: Path, tab: Tab) -> None:
    document = _doc(site_epochs, "acct-4-e2.json")
    operator = json.loads(json.loads(document)["manifest"])["operator"]
    res = tab.check(document, "acct-4", bundle="b2", operator=operator)
    assert res["state"] == "valid" and "pinned: matches" in res["report"], res
    res = tab.check(document, "acct-4", bundle="b2", operator="ab" * 32)
    assert (res["state"], res["check"]) == ("invalid", "operator-mismatch"), res


def test_missing_bundle_and_unusable_input(site_epochs: Path, tab: Tab) -> None:
    document = _doc(site_epochs, "acct-4-e2.json")
    res = tab.check(document, "acct-4", bundle="no-such-bundle")
    assert (res["state"], res["check"]) == ("invalid", "manifest-missing"), res
    res = tab.check(document, "acct-4")
    assert (res["state"], res["check"]) == ("error", "input"), res
    res = tab.check("{not json", "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-format"), res


def test_no_request_leaves_the_origin(site_epochs: Path, tab: Tab) -> None:
    """A bundle 'path' that is another site's address is refused before any
    request; the tab fixture then asserts every request the page made (page,
    modules, stylesheet, manifest) stayed on the served origin."""
    document = _doc(site_epochs, "acct-4-e2.json")
    for elsewhere in ("https://example.com/b2", "//example.com/b2", "http:example.com/b2"):
        res = tab.check(document, "acct-4", bundle=elsewhere)
        assert (res["state"], res["check"]) == ("error", "input"), (elsewhere, res)
    res = tab.check(document, "acct-4", bundle="b2")
    assert res["state"] == "valid"
    paths = {urlsplit(u).path for u in tab.requests}
    assert {"/", "/app.js", "/inclusion.js", "/bls12381.js", "/strictjson.js",
            "/style.css"} <= paths, paths
