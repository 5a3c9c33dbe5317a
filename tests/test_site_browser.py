"""The account holder's page in a real headless Chromium (Debian's
``chromium``, driven by Playwright for Python; no browser download): valid
proofs show valid with the amounts, epoch and bundle hash; forged ones show
invalid and name the check the CLI names; no request leaves the served origin.

Skipped with the reason when Playwright or Chromium is missing, unless
ZKSOLV_REQUIRE_SITE_TESTS=1 (set by .ci/run). Run locally:
``apt-get install chromium && pip install playwright && pytest tests/test_site_browser.py``
(never ``playwright install``: the system Chromium is used)."""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from site_vectors import OTHER_OPERATOR
from test_site_js import require

from zksolv.circuits import bundle as layout
from zksolv.circuits.inclusion import InclusionProof
from zksolv.cli.bench_site import CHROMIUM_ARGS, check_in_page
from zksolv.site import serving, words

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

    def __init__(self, browser: Any, base: str, *, worker: bool = False) -> None:
        """``worker``: let the page load the shipped checkworker.js; else
        the tab answers it 404, as a site without the checker would (the
        inclusion check alone; tests may route a stand-in over it)."""
        self.context = browser.new_context()
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
        self.requests: list[str] = []
        self.foreign: list[str] = []

        def route(r: Any) -> None:
            url = r.request.url
            if not worker and urlsplit(url).path == "/checkworker.js":
                r.fulfill(status=404, body="not found")
            elif url.startswith(self.origin + "/"):
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


def _lines(res: dict[str, str]) -> str:
    """The verdict's lines of what was and was not checked, one a line."""
    return res["checked"]


def test_debts_are_shown_beside_credits(site_epochs: Path, tab: Tab) -> None:
    """A borrower's page (bundle version 5) lists what they owe, tokens
    first, and says margin health is proven in the bundle; on a site without
    the worker the range, solvency and margin health proofs are said not
    checked (never a pass for them; tests/test_site_worker.py checks them
    with the worker); a saver in the same bundle sees only what they are owed."""
    res = tab.check(_doc(site_epochs, "borrower-l5.json"), "borrower", bundle="l5")
    assert res["state"] == "valid", res
    report = res["report"]
    assert ("\nDAI owed by you\nDAI 2500.000000 (2500000000 units of 10^-6 DAI, rounded down; "
            "the token has 18 decimals)") in report, report
    assert "\nETH\nETH 2.0" in report, report
    assert "\nMargin health\nevery account's margin health" in report
    checked = _lines(res)
    assert "You owe\nDAI 2500.000000" in checked, checked
    not_here = ("not checked here (this site has no checker of the bundle's data files, "
                "checkworker.js)")
    for line in ("Range proofs", "Solvency proofs", "Margin health proofs"):
        assert f"{line}\n{not_here}" in checked, checked
    assert words.unchecked("margin-health") in res["reason"], res["reason"]
    assert words.unchecked("debt-range") in res["reason"], res["reason"]
    states = dict(tab.page.eval_on_selector_all("#checked li", "ls => ls.map(l => "
                                                "[l.dataset.key, l.className])"))
    assert states["range"] == states["solvency"] == states["margin"] == "open", states
    assert "margin.bin" in (tab.page.text_content("#files") or "")
    res = tab.check(_doc(site_epochs, "saver-l5.json"), "saver", bundle="l5")
    assert res["state"] == "valid", res
    assert "owed by you" not in res["report"] and "Margin health\n" not in res["report"]
    assert "You owe" not in _lines(res)
    assert "\nDAI\nDAI 3000.000000" in res["report"], res["report"]


def test_valid_proof_shows_included(site_epochs: Path, tab: Tab) -> None:
    """A site without the checker of the data files (checkworker.js
    answers 404): the verdict is headed by what was established and says the range
    and solvency proofs were not checked here, never 'valid'."""
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert res["state"] == "valid", res
    assert res["verdict"] == "Your balance is included", res
    assert "valid" not in (res["verdict"] + res["checked"]).lower(), res
    checked = _lines(res)
    assert "Your balance\nUSD 0.005000 (5000 units of 10^-6 USD)" in checked, checked
    assert "Operator signature\nchecked; operator key not pinned" in checked, checked
    assert ("Range proofs\nnot checked here (this site has no checker of the bundle's data "
            "files, checkworker.js)") in checked, checked
    assert res["reason"] == (f"Not checked here: {words.unchecked('range')}; "
                             f"{words.unchecked('solvency')}. The full check below checks them.")
    assert "Solvency proofs\nnot checked here" in checked, checked
    assert "Full check\nzksolv inclusion verify proof.json --account acct-4 --bundle b2 " \
        in checked, checked
    states = tab.page.eval_on_selector_all("#checked li", "ls => ls.map(l => [l.dataset.key, "
                                           "l.className])")
    assert dict(states) == {"balance": "ok", "signature": "ok", "solvency": "open",
                            "range": "open", "reserves": "open", "full": "open"}, states
    # a version 4 bundle: its reserves are the operator's number, and the page says so
    assert f"Reserves\n{words.unchecked('reserves-asserted')}" in checked, checked
    report = res["report"]
    assert "\nUSD\nUSD 0.005000 (5000 units of 10^-6 USD)\n" in report, report
    # every check that passed, named by what it means, never by its tag
    passed = tab.page.eval_on_selector_all("#passed li", "ls => ls.map(l => [l.dataset.tag, "
                                           "l.textContent])")
    # in the order of docs/epoch.md, "The holder's check"
    assert [tag for tag, _ in passed][:4] == ["inclusion-format", "inclusion-account",
                                              "inclusion-bundle", "manifest-format"], passed
    assert all(text == words.passed(tag) != tag for tag, text in passed), passed
    assert ("suite-mismatch", "the bundle uses the proof system this checker knows") in \
        [tuple(p) for p in passed]
    assert tab.page.get_attribute("dd[data-full]", "data-full") == _bundle_hash(site_epochs / "b2")
    assert _bundle_hash(site_epochs / "b2") in report  # whole on a wide screen
    assert "\nManifest signature\nchecked\n" in report, report  # Ed25519 in WebCrypto
    # the page tried the checker, and fetched exactly the manifest and its
    # signature of that bundle, no data file
    fetched = {urlsplit(u).path for u in tab.requests}
    assert {"/b2/manifest.json", "/b2/manifest.sig", "/checkworker.js"} <= fetched, fetched
    assert not any(p.endswith((".bin", ".sqlite")) for p in fetched), fetched


def test_the_epoch_its_time_reserves_and_files(site_epochs: Path, tab: Tab) -> None:
    """The context a holder needs: the epoch's time (UTC, and local), each
    asset's reserves, the totals hidden, whether a later epoch is known,
    and links to download the bundle's files."""
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    manifest = json.loads((site_epochs / "b2" / "manifest.json").read_bytes())
    when = datetime.datetime.fromtimestamp(manifest["timestamp"], datetime.UTC)
    report = res["report"]
    assert (f"\nEpoch\n2: the state at {when:%Y-%m-%d %H:%M:%S} UTC (your time: ") in report, report
    assert "\nUSD reserves\nreserves 1000000.000000 USD (as the operator states them); total " \
           "owed hidden by the operator\n" in report, report
    assert "\nTotals\nhidden by the operator\n" in report
    assert "\nLater epoch\nnot known: this page does not list the operator's bundles" in report
    links = tab.page.eval_on_selector_all("#files a", "as => as.map(a => [a.textContent, "
                                          "a.getAttribute('href'), a.download])")
    sizes = {n: e["bytes"] for n, e in manifest["files"].items()}
    assert [name for name, _, _ in links] == [
        "manifest.json", "manifest.sig", *(f"{n} ({sizes[n]} bytes)" for n in
                                           ("leaves.bin", "range.bin", "solvency.bin"))]
    for text, href, download in links:
        name = text.split(" ")[0]
        assert href == f"{tab.base}b2/{name}" and download == name
        status = tab.page.evaluate("(u) => fetch(u).then(r => r.status)", href)
        assert status == 200, (href, status)


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


def test_file_picker_keeps_a_byte_order_mark(site_epochs: Path, tab: Tab,
                                              tmp_path: Path) -> None:
    """A proof file that starts with a UTF-8 byte-order mark is refused
    (inclusion-format), as `zksolv inclusion verify` refuses it: the page
    does not drop the mark when it reads the file."""
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + (site_epochs / "acct-4-e2.json").read_bytes())
    tab.page.goto(tab.base + "?bundle=b2")
    tab.page.wait_for_selector("body[data-ready='1']")
    tab.page.set_input_files("#proof-file", str(bom))
    tab.page.fill("#account", "acct-4")
    tab.page.click("#verify")
    tab.page.wait_for_function("() => ['valid', 'invalid', 'error'].includes("
                               "document.getElementById('result').dataset.state)")
    assert tab.page.get_attribute("#result", "data-state") == "invalid"
    assert tab.page.get_attribute("#result", "data-check") == "inclusion-format"


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
    # what it means and what to do, in the words the CLI uses for that tag
    meaning, steps = words.failure(check)
    assert res["verdict"] == words.verdict("invalid")
    assert res["reason"].startswith(meaning) and f"check {check} failed" in res["reason"], res
    assert res["next"].splitlines() == steps, res


def test_another_accounts_id(site_epochs: Path, tab: Tab) -> None:
    res = tab.check(_doc(site_epochs, "acct-0-e2.json"), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-account"), res
    # relabelling acct-0's proof as acct-4's breaks the leaf hash
    forged = _forge(_doc(site_epochs, "acct-0-e2.json"), account_id="acct-4")
    res = tab.check(json.dumps({**json.loads(forged), "account_id": "acct-4"}), "acct-4",
                    bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-root"), res


def test_another_epochs_manifest(site_epochs: Path, tab: Tab) -> None:
    """One verdict per document: another epoch's proof fails the anchor check
    with a bundle path as with a bundle hash (docs/epoch.md, step 5)."""
    res = tab.check(_doc(site_epochs, "acct-4-e1.json"), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "inclusion-bundle"), res
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
    assert "Operator signature\nchecked; the operator key you pinned" in res["checked"], res
    res = tab.check(document, "acct-4", bundle="b2", operator=OTHER_OPERATOR)
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


# --- the data-file check in a Web Worker ------------------------------------
#
# The page runs checkworker.js (its own shard's range proof, a random sample
# of the other shards', the solvency proofs) when the site has it. Until that
# worker ships, these tests serve a stand-in that answers with the message
# API the page speaks, so the page's side is tested: what it sends, the
# progress it shows and the verdict it draws from each answer.

FAKE_WORKER = """
self.onmessage = async (ev) => {
  const m = ev.data;
  const shards = SHARDS ?? JSON.parse(m.manifest).tree.shards;
  // the bundle's data files are where the page says they are
  const range = await fetch(new URL("range.bin", m.bundleUrl));
  for (let i = 0; i <= 3; i++) {
    postMessage({type: "progress", done: i, total: 3, what: "range proofs"});
  }
  const sampled = [];
  for (let i = 1; i <= Math.min(m.sample, shards - 1); i++) {
    sampled.push({shard: (m.shard + i) % shards, ok: true});
  }
  const reply = {type: "result", ownShard: {shard: m.shard, ok: range.ok}, sampled, shards,
                 solvency: {asset: true, valued: true},
                 escapeProbability: 1 - sampled.length / Math.max(1, shards - 1),
                 failures: [], elapsedMs: 3, echo: {sample: m.sample, shard: m.shard}};
  ANSWER
};
"""


def _serve_worker(tab: Tab, *, shards: int | None = None,
                  answer: str = "postMessage(reply);") -> None:
    body = FAKE_WORKER.replace("SHARDS", "null" if shards is None else str(shards)) \
        .replace("ANSWER", answer)
    tab.context.route("**/checkworker.js", lambda r: r.fulfill(
        status=200, body=body, headers={"Content-Type": "text/javascript; charset=utf-8"}))


def test_worker_result_makes_the_verdict(site_epochs: Path, tab: Tab) -> None:
    _serve_worker(tab, shards=41)
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert res["state"] == "valid", res
    assert res["verdict"] == "Your balance is included"
    checked = res["checked"]
    assert ("Solvency proofs\nchecked here: reserves cover what is owed, per asset and in "
            "value") in checked, checked
    # 8 of the 40 other shards: a bad one escapes with chance 32/40
    assert ("Range proofs\nyour shard and 8 of 40 others checked here (one bad shard escapes "
            "this sample with chance 80%)") in checked, checked
    assert res["reason"] == ""  # nothing left unchecked to explain
    states = dict(tab.page.eval_on_selector_all(
        "#checked li", "ls => ls.map(l => [l.dataset.key, l.className])"))
    assert states["range"] == states["solvency"] == "ok", states
    assert tab.page.is_hidden("#work")  # the progress bar is gone once done


def test_worker_sees_its_shard_and_all_others(site_epochs: Path, tab: Tab) -> None:
    _serve_worker(tab)  # the bundle's own shard count: one shard
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert "Range proofs\nyour shard, the only one, checked here" in res["checked"], res
    _serve_worker(tab, shards=5)
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert ("Range proofs\nyour shard and all 4 others checked here; the others' leaves as the "
            "server sent them, tied to the signed root for your shard only\n"
            ) in res["checked"], res


def test_worker_progress_is_shown(site_epochs: Path, tab: Tab) -> None:
    """While the worker runs the verdict says 'checking' with a bar; the
    stand-in waits after its progress so the page can be looked at."""
    _serve_worker(tab, shards=41, answer="setTimeout(() => postMessage(reply), 1500);")
    tab.page.goto(tab.base + "?bundle=b2")
    tab.page.wait_for_selector("body[data-ready='1']")
    tab.page.fill("#proof-text", _doc(site_epochs, "acct-4-e2.json").decode())
    tab.page.fill("#account", "acct-4")
    tab.page.click("#verify")
    tab.page.wait_for_function("() => document.getElementById('work-what').textContent"
                               ".includes('3 of 3')")
    assert tab.page.get_attribute("#result", "data-state") == "checking"
    assert tab.page.is_visible("#work-progress")
    assert tab.page.evaluate("document.getElementById('work-progress').value") == 1
    assert "Range proofs\nchecking, 3 of 3" in tab.page.inner_text("#checked")
    tab.page.wait_for_function("() => document.getElementById('result').dataset.state "
                               "=== 'valid'")


@pytest.mark.parametrize("failure,tag", [
    ("reply.failures = [{tag: 'leaf-range', detail: 'shard 3: range-equation'}]; "
     "reply.sampled[2].ok = false;", "leaf-range"),
    ("reply.solvency.valued = false;", "solvency-valued"),
    ("reply.ownShard.ok = false;", "leaf-range"),
])
def test_worker_failure_is_invalid(site_epochs: Path, tab: Tab, failure: str, tag: str) -> None:
    """A range or solvency proof that fails in the worker makes the verdict
    invalid, in the words the CLI uses for that tag, with what to do."""
    _serve_worker(tab, shards=41, answer=failure + " postMessage(reply);")
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", tag), res
    meaning, steps = words.failure(tag)
    assert res["verdict"] == words.verdict("bundle-invalid")
    states = dict(tab.page.eval_on_selector_all(
        "#checked li", "ls => ls.map(l => [l.dataset.key, l.className])"))
    assert states["range" if tag == "leaf-range" else "solvency"] == "bad", states
    assert res["reason"].startswith(meaning), res
    assert res["next"].splitlines() == steps
    assert "FAILED" in res["checked"]


@pytest.mark.parametrize("answer,reason", [
    ("postMessage({type: 'error', tag: 'manifest-hash', detail: 'range.bin: HTTP 404'});",
     "the checker stopped: manifest-hash: range.bin: HTTP 404"),
    ("postMessage({type: 'result', ownShard: {shard: 0, ok: 'yes'}});",
     "the checker gave an unreadable result"),
    ("throw new Error('boom');", "the checker stopped answering (nothing for 1 s)"),
    ("SYNC", "the checker failed: Uncaught Error: boom"),
])
def test_worker_error_says_not_checked(site_epochs: Path, tab: Tab, answer: str,
                                       reason: str) -> None:
    """A worker that stops, falls silent, fails to load or answers what the
    page cannot read checked nothing as far as the page is concerned: it
    says so."""
    tab.context.add_init_script("globalThis.zksolvWorkerStallMs = 1000;")
    if answer == "SYNC":  # an error event on the worker (as for a 404)
        tab.context.route("**/checkworker.js", lambda r: r.fulfill(
            status=200, body="self.onmessage = () => { throw new Error('boom'); };",
            headers={"Content-Type": "text/javascript; charset=utf-8"}))
    else:
        _serve_worker(tab, answer=answer)
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert res["state"] == "valid" and res["verdict"] == "Your balance is included", res
    assert f"Range proofs\nnot checked here ({reason}" in res["checked"], res
    assert f"Solvency proofs\nnot checked here ({reason}" in res["checked"], res


def test_worker_refusing_the_shape_is_invalid(site_epochs: Path, tab: Tab) -> None:
    """The worker refuses a manifest whose listed data-file sizes its shape
    does not allow (zksolv verify: bundle-shape): the page says invalid,
    with that tag, never included-but-unchecked."""
    _serve_worker(tab, answer="postMessage({type: 'error', tag: 'bundle-shape', detail: "
                  "'leaves.bin: listed size 384, the shape needs 512'});")
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="b2")
    assert (res["state"], res["check"]) == ("invalid", "bundle-shape"), res
    assert res["reason"].startswith(words.failure("bundle-shape")[0]), res
    assert "leaves.bin: listed size 384, the shape needs 512" in res["reason"], res
    assert "Range proofs\nnot checked here (the bundle failed bundle-shape)" in res["checked"], res


def test_bundle_hash_alone_checks_no_data_file(site_epochs: Path, tab: Tab) -> None:
    _serve_worker(tab, shards=41)
    res = tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4",
                    bundle_hash=_bundle_hash(site_epochs / "b2"))
    assert res["state"] == "valid", res
    assert ("Range proofs\nnot checked here (give the bundle's path on this site to check "
            "them)") in res["checked"], res
    assert not any(urlsplit(u).path == "/checkworker.js" for u in tab.requests)
    assert "you gave a bundle hash" in (tab.page.text_content("#files-note") or "").lower()


NO_ED25519 = """
const importKey = crypto.subtle.importKey.bind(crypto.subtle);
crypto.subtle.importKey = (format, data, alg, ...rest) => {
  if ((alg && alg.name || alg) === 'Ed25519') {
    return Promise.reject(new DOMException('no Ed25519', 'NotSupportedError'));
  }
  return importKey(format, data, alg, ...rest);
};
"""


def test_signature_not_checkable_with_a_pinned_key_is_no_pass(site_epochs: Path,
                                                               tab: Tab) -> None:
    """A browser without Ed25519 in WebCrypto, the operator key pinned and
    manifest.sig zeroed: the page cannot tell the bundle is that operator's,
    so the verdict is not a pass and says what to do."""
    tab.context.add_init_script(NO_ED25519)
    bundle = site_epochs / "zeroed-sig"
    if not bundle.exists():
        shutil.copytree(site_epochs / "b2", bundle)
        (bundle / layout.SIGNATURE_FILE).write_bytes(bytes(64))
    document = _doc(site_epochs, "acct-4-e2.json")
    operator = json.loads(json.loads(document)["manifest"])["operator"]
    res = tab.check(document, "acct-4", bundle="zeroed-sig", operator=operator)
    assert res["state"] == "unconfirmed", res
    assert res["verdict"] == words.verdict("unconfirmed")
    assert "Operator signature\nNOT checked: the operator's signature: this browser has no " \
           "Ed25519" in res["checked"], res
    assert "Ed25519" in res["next"] and "full check" in res["next"], res
    # not pinned: the signature line says NOT checked, the verdict what was established
    res = tab.check(document, "acct-4", bundle="zeroed-sig")
    assert res["state"] == "valid" and res["verdict"] == "Your balance is included", res
    assert "Operator signature\nNOT checked" in res["checked"], res


def test_a_later_epoch_is_found_beside_it(site_epochs: Path, browser: Any,
                                          tmp_path: Path) -> None:
    """Bundles named by their epoch: the page looks for the next one beside
    the one checked and says what it found; elsewhere it says 'not known'."""
    for name, src in (("1", "b1"), ("2", "b2")):
        shutil.copytree(site_epochs / src, tmp_path / "bundles" / name)
    with serving(tmp_path) as url:
        tab = Tab(browser, url)
        res = tab.check(_doc(site_epochs, "acct-4-e1.json"), "acct-4", bundle="bundles/1")
        tab.page.wait_for_function("() => document.querySelector('dd[data-later]').dataset.later"
                                   " !== 'unknown' || !document.querySelector('dd[data-later]')"
                                   ".textContent.startsWith('looking')")
        later = tab.page.text_content("dd[data-later]")
        assert later == ("yes: epoch 2 is published at bundles/2, signed by the same operator key "
                         "(not otherwise checked here)"), (later, res)
        tab.check(_doc(site_epochs, "acct-4-e2.json"), "acct-4", bundle="bundles/2")
        tab.page.wait_for_function("() => document.querySelector('dd[data-later]').dataset.later"
                                   " === 'none'")
        assert tab.page.text_content("dd[data-later]") == (
            "none at bundles/3 (epoch 3) when checked; not known whether one is published "
            "elsewhere")
        assert tab.foreign == []
        tab.context.close()


# --- on a phone -----------------------------------------------------------------


@pytest.mark.parametrize("case", ["included", "checked", "invalid", "unconfirmed"])
def test_phone_layout(site_epochs: Path, browser: Any, site: str, case: str) -> None:
    """At 390x844: nothing wider than the screen, the verdict's heading and
    its lines of what was checked on the first screen, each label above its
    value, hashes shortened with a copy button that copies them whole."""
    tab = Tab(browser, site)
    tab.context.close()
    tab.context = browser.new_context(viewport={"width": 390, "height": 844},
                                      permissions=["clipboard-read", "clipboard-write"])
    tab.page = tab.context.new_page()
    document = _doc(site_epochs, "acct-4-e2.json")
    operator = ""
    bundle = "b2"
    if case == "checked":
        _serve_worker(tab, shards=4096)
    elif case == "invalid":
        _serve_worker(tab, shards=4096, answer="reply.failures = [{tag: 'leaf-range', detail: "
                      "'shard 3'}]; postMessage(reply);")
    elif case == "unconfirmed":
        tab.context.add_init_script(NO_ED25519)
        operator = json.loads(json.loads(document)["manifest"])["operator"]
    res = tab.check(document, "acct-4", bundle=bundle, operator=operator)
    assert res["state"] == {"included": "valid", "checked": "valid"}.get(case, case), res
    page = tab.page
    width = page.evaluate("[document.documentElement.scrollWidth, "
                          "document.documentElement.clientWidth, window.innerWidth]")
    assert width[0] <= width[1] == 390, width
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                     && e.getClientRects().length)
        .map(e => e.tagName + '#' + e.id + '.' + e.className)""")
    assert wide == [], wide
    top = page.evaluate("document.getElementById('verdict').getBoundingClientRect().top")
    last = page.evaluate("""() => { const ls = document.querySelectorAll('#checked li');
        return ls.length ? ls[ls.length - 1].getBoundingClientRect().bottom
                         : document.getElementById('reason').getBoundingClientRect().bottom; }""")
    assert 0 <= top and last <= 844, (top, last)
    if case == "invalid":
        return
    # stacked: each label above its value
    dt = page.eval_on_selector("#report dt", "e => e.getBoundingClientRect().toJSON()")
    dd = page.eval_on_selector("#report dd", "e => e.getBoundingClientRect().toJSON()")
    assert dd["top"] >= dt["bottom"] - 0.5 and abs(dd["left"] - dt["left"]) < 1, (dt, dd)
    full = _bundle_hash(site_epochs / "b2")
    shown = page.inner_text(f"dd[data-full='{full}']")
    assert shown.startswith(f"{full[:8]}…{full[-8:]}") and full not in shown, shown
    page.click(f"dd[data-full='{full}'] button.copy")
    assert page.evaluate("navigator.clipboard.readText()") == full
    tab.context.close()


def test_worker_is_asked_for_the_holders_own_shard(browser: Any, tmp_path: Path) -> None:
    """The page sends the worker the bundle's URL, its manifest, the
    holder's own shard (leaf index // shard_leaves) and the sample size."""
    import random

    from zksolv.cli.bench_site import synthetic_inclusion

    syn = synthetic_inclusion(12, leaf_index=1000, rng=random.Random(5))
    syn.write_bundle(tmp_path / "bundles" / "7")
    (tmp_path / "bundles" / "7" / "range.bin").write_bytes(b"stand-in")  # the stand-in reads it
    (tmp_path / "bundles" / "7" / "range.bin").chmod(0o644)
    manifest = json.loads(syn.manifest)
    shard = 1000 // manifest["tree"]["shard_leaves"]
    assert 0 < shard < manifest["tree"]["shards"] - 1
    with serving(tmp_path) as url:
        tab = Tab(browser, url)
        asked = []
        tab.page.on("console", lambda m: asked.append(m.text))
        _serve_worker(tab, answer="console.log(JSON.stringify({url: m.bundleUrl, shard: m.shard, "
                      "sample: m.sample, manifest: m.manifest})); postMessage(reply);")
        res = tab.check(syn.document.decode(), syn.account_id, bundle="bundles/7")
        assert res["state"] == "valid", res
        got = json.loads(asked[-1])
        assert got == {"url": f"{url}bundles/7/", "shard": shard, "sample": 8,
                       "manifest": syn.manifest.decode()}, got
        assert f"in range-proof shard {shard} of {manifest['tree']['shards']}" in res["report"]
        assert ("Range proofs\nyour shard and 8 of 15 others checked here (one bad shard "
                "escapes this sample with chance 46.7%)") in res["checked"], res
        tab.context.close()
