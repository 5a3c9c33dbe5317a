"""The page's proof checks in a real headless Chromium: checkworker.js started
as a module Web Worker beside the page (with its helper workers), on a
served bundle of four shards; progress messages, then the result the API
documents; a forged shard found by the sample; a lending protocol's bundle
(version 5) whose margin proofs the page checks, and an underwater account
it finds; no request leaving the served origin. Skipped like
tests/test_site_browser.py when Playwright or Chromium is missing (unless
ZKSOLV_REQUIRE_SITE_TESTS=1)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_site_browser import Tab, browser  # noqa: F401 - the browser fixture

from zksolv.circuits.inclusion import InclusionProof
from zksolv.cli.bench_site import check_in_page, run_worker
from zksolv.cli.site import generator_table
from zksolv.site import serving, words


@pytest.fixture(scope="module")
def shard_site(site_shards: Path) -> Iterator[str]:
    with serving(site_shards, extra=generator_table()) as url:
        yield url


@pytest.fixture
def tab(browser: Any, shard_site: str) -> Iterator[Tab]:  # noqa: F811
    t = Tab(browser, shard_site, worker=True)
    yield t
    assert t.foreign == [], f"requests left the origin: {t.foreign}"
    t.context.close()


@pytest.fixture(scope="module")
def margin_site(site_margin: Path) -> Iterator[str]:
    with serving(site_margin, extra=generator_table()) as url:
        yield url


@pytest.fixture
def margin_tab(browser: Any, margin_site: str) -> Iterator[Tab]:  # noqa: F811
    t = Tab(browser, margin_site, worker=True)
    yield t
    assert t.foreign == [], f"requests left the origin: {t.foreign}"
    t.context.close()


def _request(d: Path, bundle: str, doc: str | None, sample: int, shard: int | None = None
             ) -> dict[str, Any]:
    manifest = (d / bundle / "manifest.json").read_text()
    inclusion = None if doc is None else (d / doc).read_text()
    if shard is None:
        assert inclusion is not None
        leaf = InclusionProof.from_bytes(bytes.fromhex(json.loads(inclusion)["proof"]))
        shard = leaf.leaf_index // json.loads(manifest)["tree"]["shard_leaves"]
    return {"type": "check", "bundleUrl": bundle, "manifest": manifest, "shard": shard,
            "sample": sample, "inclusion": inclusion}


def test_worker_checks_own_shard_sample_and_solvency(site_shards: Path, tab: Tab) -> None:
    req = _request(site_shards, "s5", "acct-200-s5.json", sample=2)
    res = run_worker(tab.page, tab.base, req)
    assert res["type"] == "result", res
    assert res["ownShard"] == {"shard": req["shard"], "ok": True, "boundToRoot": True}
    assert len(res["sampled"]) == 2 and all(s["ok"] for s in res["sampled"])
    assert req["shard"] not in {s["shard"] for s in res["sampled"]}
    assert res["solvency"] == {"asset": True, "valued": True} and res["failures"] == []
    assert res["shards"] == 4 and res["escapeProbability"] == pytest.approx(1 / 3)
    assert res["progress"] > 5
    paths = [urlsplit(u).path for u in tab.requests]
    assert "/checkworker.js" in paths and "/generators/chunk-0000.bin" in paths
    assert {"/s5/leaves.bin", "/s5/range.bin", "/s5/solvency.bin"} <= set(paths)


def test_worker_finds_a_forged_shard_in_the_sample(site_shards: Path, tab: Tab) -> None:
    """The operator's forgery (the last shard's range proof does not verify:
    `zksolv verify` says leaf-range) is found when the sample covers it, and
    the holder's own shard still checks; with no sample the page says the
    forgery had every chance to escape."""
    res = run_worker(tab.page, tab.base, _request(site_shards, "s5-forged", None, 3, shard=0))
    assert res["type"] == "result", res
    assert res["ownShard"]["ok"] is True
    assert [s["shard"] for s in res["sampled"] if not s["ok"]] == [3]
    assert res["failures"] == [{"tag": "leaf-range",
                                "detail": "shard 3: range proof does not verify"}]
    assert res["escapeProbability"] == 0
    res = run_worker(tab.page, tab.base, _request(site_shards, "s5-forged", None, 0, shard=0))
    assert (res["failures"], res["escapeProbability"]) == ([], 1)


def test_worker_reports_errors(site_shards: Path, tab: Tab) -> None:
    req = _request(site_shards, "s5", None, 0, shard=9)
    assert run_worker(tab.page, tab.base, req)["tag"] == "input"
    req = _request(site_shards, "s5", None, 0, shard=0)
    req["bundleUrl"] = "https://example.com/s5"
    assert run_worker(tab.page, tab.base, req)["tag"] == "input"


# --- the whole page, with the shipped worker ------------------------------------------


def test_the_page_checks_the_proofs_with_its_worker(site_shards: Path, tab: Tab) -> None:
    """The page as published (its own checkworker.js and the generator
    table): the verdict says the solvency proofs and the range proofs of the
    holder's shard and of the others were checked here, and by what."""
    doc = (site_shards / "acct-200-s5.json").read_text()
    res = check_in_page(tab.page, tab.base, document=doc, account_id="acct-200",
                        bundle="s5")
    assert res["state"] == "valid", res
    assert res["verdict"] == "Your balance is included", res
    checked = res["checked"]
    assert "Solvency proofs\nchecked here" in checked, checked
    assert "Range proofs\nyour shard and all 3 others checked here" in checked, checked
    fetched = {urlsplit(u).path for u in tab.requests}
    assert "/checkworker.js" in fetched and "/generators/chunk-0000.bin" in fetched, fetched


def test_the_page_says_invalid_for_a_forged_shard(site_shards: Path, tab: Tab) -> None:
    """The operator hides a negative leaf in the last shard (its range proof
    fails) and re-signs: the holder of shard 0 is included, but the page's
    verdict is that a proof in this bundle fails, naming leaf-range."""
    forged = site_shards / "s5-forged"
    manifest = (forged / "manifest.json").read_bytes()
    bundle_hash = hashlib.sha256(manifest).digest()
    doc = json.loads((site_shards / "acct-0-s5.json").read_text())
    proof = InclusionProof.from_bytes(bytes.fromhex(doc["proof"]))
    doc.update(manifest=manifest.decode(), signature=(forged / "manifest.sig").read_bytes().hex(),
               bundle_hash=bundle_hash.hex(),
               proof=dataclasses.replace(proof, bundle_hash=bundle_hash).to_bytes().hex())
    res = check_in_page(tab.page, tab.base, document=json.dumps(doc),
                        account_id="acct-0", bundle="s5-forged")
    assert res["state"] == "invalid", res
    assert "leaf-range" in res["reason"], res
    assert "Range proofs\nFAILED" in res["checked"], res


# --- version 5: a lending protocol's bundle -------------------------------------------


def test_worker_checks_margin_proofs(site_margin: Path, margin_tab: Tab) -> None:
    """The worker fetches each checked shard's margin.bin record and checks
    its debt range and margin-health proofs beside its leaf range proof."""
    req = _request(site_margin, "l6", "borrower-0-l6.json", sample=3)
    res = run_worker(margin_tab.page, margin_tab.base, req)
    assert res["type"] == "result", res
    assert res["failures"] == [] and res["margin"] == {"debtRange": True, "health": True}, res
    assert res["ownShard"] == {"shard": req["shard"], "ok": True, "margin": True,
                               "boundToRoot": True}
    assert [s["margin"] for s in res["sampled"]] == [True] * 3
    assert res["solvency"] == {"asset": True, "valued": True}
    assert "/l6/margin.bin" in {urlsplit(u).path for u in margin_tab.requests}


def test_the_page_shows_the_margin_checks(site_margin: Path, margin_tab: Tab) -> None:
    """A borrower's page: the verdict says the margin-health proofs of their
    shard and every other were checked here, and that the solvency proofs
    count the proven debts."""
    doc = (site_margin / "borrower-0-l6.json").read_text()
    res = check_in_page(margin_tab.page, margin_tab.base, document=doc, account_id="borrower-0",
                        bundle="l6")
    assert res["state"] == "valid", res
    checked = res["checked"]
    assert "You owe\nDAI 10.000000" in checked, checked
    assert ("Margin health proofs\nyour shard and all 3 others checked here; the others' leaves "
            "as the server sent them, tied to the signed root for your shard only; in the shards "
            "checked no debt is negative, and every account's haircut collateral covers its "
            "debts") in checked, checked
    assert "Range proofs\nyour shard and all 3 others checked here" in checked, checked
    assert ("Solvency proofs\nchecked here: reserves and the proven debts cover what is owed"
            in checked), checked
    assert "not checked" not in checked.lower(), checked
    states = dict(margin_tab.page.eval_on_selector_all(
        "#checked li", "ls => ls.map(l => [l.dataset.key, l.className])"))
    assert states["margin"] == states["range"] == states["solvency"] == "ok", states


def test_the_page_finds_an_underwater_account(site_margin: Path, margin_tab: Tab) -> None:
    """The operator proves an account whose debt its collateral does not
    cover (`zksolv verify` says margin-health): that account's own page, and
    another holder's page whose sample covers the shard, say invalid and
    name margin-health; the credits' range proofs still read as checked."""
    for doc, account in (("underwater-l6-forged.json", "underwater"),
                         ("borrower-0-l6-forged.json", "borrower-0")):
        res = check_in_page(margin_tab.page, margin_tab.base,
                            document=(site_margin / doc).read_text(), account_id=account,
                            bundle="l6-forged")
        assert res["state"] == "invalid" and res["check"] == "margin-health", res
        assert res["reason"].startswith(words.failure("margin-health")[0]), res
        assert "margin-health proof does not verify" in res["reason"], res
        assert "Margin health proofs\nFAILED" in res["checked"], res
        assert "Range proofs\nyour shard and all 3 others checked here" in res["checked"], res
