"""A version 6 bundle (reserves read from a chain) on the holder's page in a
real headless Chromium, with the shipped checkworker.js: the proofs checked
as for version 4, the evidence shown (chain, block, each holding, the
total), and beside the verdict what was checked here (the sum, the
ownership signatures) and what was not (the balances at the block), with the
command that checks them; an evidence whose sum is not the reserves is refused with
the CLI's tag, and so is a signature for another epoch; a version 4 page
says its reserves are asserted; on a phone
nothing is wider than the screen. Needs the chain extra to sign the
evidence (as the spec vectors do). Skipped like tests/test_site_browser.py
when Playwright or Chromium is missing (unless ZKSOLV_REQUIRE_SITE_TESTS=1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_site_browser import Tab, browser  # noqa: F401 - the browser fixture

from zksolv.cli.bench_site import check_in_page
from zksolv.cli.site import generator_table
from zksolv.site import serving, words

DECLARED = "0x" + "22" * 20


@pytest.fixture(scope="module")
def chain_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``c1``: version 6, ETH from chain 31337 at block 7 (two signing
    accounts and a declared contract), USDC asserted; ``c1-sum``: the same
    evidence with the manifest's ETH reserves 1 ETH more (a dishonest
    prover: every proof made for that number, zksolv verify says
    reserves-balance, as for spec/chain-sum); ``c1-epoch``: the accounts'
    signatures made for epoch 2 (reserves-signature, as
    spec/chain-signature-epoch); ``a1``: version 4; and alice's proofs
    (``alice-c1.json``, ...)."""
    import zksolv.chain as chain

    if not chain.available():
        pytest.skip("the chain extra is missing: pip install 'zksolv[chain]'")
    from reserves_support import ETH_KEYS, eth_address, sourced_snapshot, write_evidence
    from test_epoch_support import OPERATOR_HEX, make_snapshot, prove, run

    d = tmp_path_factory.mktemp("site-chain")
    a0, a1 = eth_address(ETH_KEYS[0]), eth_address(ETH_KEYS[1])

    def sourced(name: str, declared_balance: int, sign_epoch: int = 1) -> Path:
        snap = sourced_snapshot(d / name, [(a0, "account"), (a1, "account"),
                                           (DECLARED, "declared")], epoch=sign_epoch)
        write_evidence(snap, [(a0, "account", 2 * 10**18), (a1, "account", 10**18),
                              (DECLARED, "declared", declared_balance)], epoch=sign_epoch)
        for i in (0, 1):
            key = d / f"eth{i}.key"
            key.write_text(ETH_KEYS[i])
            key.chmod(0o600)
            res = run("reserves", "sign", snap, "--eth-key", key, "--operator", OPERATOR_HEX)
            assert res.exit_code == 0, res.output
        if sign_epoch != 1:      # signed for another epoch, then relabelled epoch 1
            for f in ("reserves.json", "header.json"):
                doc = json.loads((snap / f).read_text())
                doc["epoch"] = 1
                (snap / f).write_text(json.dumps(doc))
        return snap

    prove(sourced("s1", 5 * 10**17), d / "c1")
    from reserves_support import ASSETS, ROWS, inflating_reserves

    from zksolv.snapshot import Asset

    stated = (Asset("ETH", 18, 3000_00, 9_000, 3 * 10**18, 9), *ASSETS[1:])
    prove(make_snapshot(d / "s4", ROWS, epoch=1, assets=stated), d / "a1")
    import zksolv.prover.epoch as prover_epoch
    import zksolv.prover.reserves as prover_reserves
    from zksolv.chain import evidence as chain_evidence

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prover_epoch, "verify_bundle", lambda *a, **k: None)
        mp.setattr(chain_evidence, "check_offline", lambda *a, **k: [])
        prove(sourced("s1-epoch", 5 * 10**17, sign_epoch=2), d / "c1-epoch")
        mp.setattr(prover_reserves, "with_chain_reserves", inflating_reserves(10**18))
        prove(sourced("s1-sum", 5 * 10**17), d / "c1-sum")
    for bundle in ("c1", "a1", "c1-sum", "c1-epoch"):
        res = run("inclusion", "export", "--db", d / f"{bundle}.inclusion.sqlite",
                  "--account", "alice", "--out", d / f"alice-{bundle}.json")
        assert res.exit_code == 0, res.output
    return d


@pytest.fixture(scope="module")
def site(chain_site: Path) -> Iterator[str]:
    with serving(chain_site, extra=generator_table()) as url:
        yield url


@pytest.fixture
def tab(browser: Any, site: str) -> Iterator[Tab]:  # noqa: F811
    t = Tab(browser, site, worker=True)
    yield t
    assert t.foreign == [], f"requests left the origin: {t.foreign}"
    t.context.close()


def _states(tab: Tab) -> dict[str, str]:
    return dict(tab.page.eval_on_selector_all(
        "#checked li", "ls => ls.map(l => [l.dataset.key, l.className])"))


def test_a_version_6_page_shows_the_evidence_and_what_was_not_checked(
        chain_site: Path, tab: Tab) -> None:
    manifest = json.loads((chain_site / "c1" / "manifest.json").read_text())
    assert manifest["version"] == 6
    res = tab.check((chain_site / "alice-c1.json").read_text(), "alice", bundle="c1")
    assert res["state"] == "valid", res
    checked = res["checked"]
    # the proofs, checked here by the worker as for version 4
    assert "Solvency proofs\nchecked here: reserves cover what is owed" in checked, checked
    assert "Range proofs\nyour shard" in checked, checked
    # the sum: checked here; the rest: not, with the commands that check it
    assert ("Reserves\nETH read from chain 31337, block 7: the sum of the balances listed "
            "equals the proven reserves (checked here)") in checked, checked
    assert (f"Balances at that block\nnot checked here: {words.unchecked('reserves-balances')}; "
            "zksolv verify c1 --rpc URL checks them") in checked, checked
    assert ("Ownership signatures\nevery account holder's EIP-712 signature for this chain, "
            "block, epoch and operator key recovers to its address (checked here)") in checked
    states = _states(tab)
    assert states["reserves-sum"] == states["reserves-signatures"] == "ok", states
    assert states["reserves-balances"] == "open", states
    assert "reserves-contracts" not in states, "no contract holder"
    for line in checked.splitlines():
        if "not checked" in line:
            assert "valid" not in line.lower() and "verified" not in line.lower(), line
    # the evidence: chain, block, block hash, every holding in tokens, the total
    assert tab.page.is_visible("#evidence")
    block = tab.page.inner_text("#evidence-block")
    assert "Chain id\n31337" in block and "Block\n7" in block, block
    ev = manifest["chain_reserves"]
    assert tab.page.get_attribute("#evidence-block dd[data-full]", "data-full") == ev["block_hash"]
    holdings = tab.page.eval_on_selector_all(
        "#evidence-assets section[data-asset='ETH'] li",
        "ls => ls.map(l => [l.dataset.address, l.dataset.kind, "
        "l.querySelector('.balance').textContent])")
    assert holdings == [[h["address"], h["kind"], f"{h['balance'] / 10**18:.18f} ETH"]
                        for h in ev["assets"][0]["holdings"]], holdings
    assert [h[2] for h in holdings] == ["2.000000000000000000 ETH", "1.000000000000000000 ETH",
                                        "0.500000000000000000 ETH"]
    total = tab.page.inner_text("#evidence-assets section[data-asset='ETH'] .total")
    assert total == "Total: 3.500000000000000000 ETH (3500000000000000000 base units)", total
    assert tab.page.inner_text("#evidence-command") == "zksolv verify c1 --rpc URL"
    # only the sourced asset is in the evidence; USDC stays asserted
    assert tab.page.query_selector("#evidence-assets section[data-asset='USDC']") is None
    sources = dict(tab.page.eval_on_selector_all(
        "#report dd[data-reserves]", "ds => ds.map(d => [d.dataset.reserves, d.dataset.source])"))
    assert sources == {"ETH": "chain", "USDC": "asserted"}, sources
    assert "the sum of 3 balances read at block 7" in res["report"], res["report"]


def test_an_evidence_whose_sum_is_not_the_reserves_is_refused(
        chain_site: Path, tab: Tab) -> None:
    """The manifest states 1 ETH more than its evidence sums to: every proof
    holds (made for that number) and zksolv verify says reserves-balance;
    so does the page, after checking the proofs, in the CLI's words."""
    from test_epoch_support import verify_json

    code, out = verify_json(chain_site / "c1-sum")
    assert code == 1 and "reserves-balance" in json.dumps(out), out
    res = check_in_page(tab.page, tab.base,
                        document=(chain_site / "alice-c1-sum.json").read_text(),
                        account_id="alice", bundle="c1-sum")
    assert (res["state"], res["check"]) == ("invalid", "reserves-balance"), res
    assert res["verdict"] == words.verdict("bundle-invalid")
    assert res["reason"].startswith(words.failure("reserves-balance")[0]), res
    states = _states(tab)
    assert states["reserves-sum"] == "bad", states
    # the proofs themselves were checked and hold
    assert states["solvency"] == states["range"] == "ok", states


def test_a_signature_for_another_epoch_is_refused(chain_site: Path, tab: Tab) -> None:
    """The holders signed for epoch 2; the bundle is epoch 1 (its proofs all
    hold): zksolv verify says reserves-signature, and so does the page, from
    its own secp256k1 recovery."""
    from test_epoch_support import verify_json

    code, out = verify_json(chain_site / "c1-epoch")
    assert code == 1 and "reserves-signature" in json.dumps(out), out
    res = tab.check((chain_site / "alice-c1-epoch.json").read_text(), "alice", bundle="c1-epoch")
    assert (res["state"], res["check"]) == ("invalid", "reserves-signature"), res
    assert "recovers to 0x" in res["reason"], res
    states = _states(tab)
    assert states["reserves-signatures"] == "bad", states
    assert states["reserves-sum"] == states["solvency"] == states["range"] == "ok", states


def test_a_version_4_page_says_reserves_asserted(chain_site: Path, tab: Tab) -> None:
    res = tab.check((chain_site / "alice-a1.json").read_text(), "alice", bundle="a1")
    assert res["state"] == "valid", res
    assert f"Reserves\n{words.unchecked('reserves-asserted')}" in res["checked"], res
    assert words.unchecked("reserves-asserted").startswith("reserves asserted")
    assert _states(tab)["reserves"] == "open"
    assert tab.page.is_hidden("#evidence")
    assert "(as the operator states them)" in res["report"], res["report"]


def test_phone_layout_with_the_evidence(chain_site: Path, browser: Any,  # noqa: F811
                                        site: str) -> None:
    """At 390x844 the holdings' 42-character addresses break rather than
    widen the page; the verdict heads the first screen."""
    tab = Tab(browser, site, worker=True)
    tab.context.close()
    tab.context = browser.new_context(viewport={"width": 390, "height": 844})
    tab.page = tab.context.new_page()
    res = tab.check((chain_site / "alice-c1.json").read_text(), "alice", bundle="c1")
    assert res["state"] == "valid", res
    page = tab.page
    assert page.is_visible("#evidence")
    width = page.evaluate("[document.documentElement.scrollWidth, "
                          "document.documentElement.clientWidth]")
    assert width[0] <= width[1] == 390, width
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                     && e.getClientRects().length)
        .map(e => e.tagName + '#' + e.id + '.' + e.className)""")
    assert wide == [], wide
    top = page.evaluate("document.getElementById('verdict').getBoundingClientRect().top")
    last = page.evaluate("""() => { const ls = document.querySelectorAll('#checked li');
        return ls[ls.length - 1].getBoundingClientRect().bottom; }""")
    assert 0 <= top and last <= 844, (top, last)
    # each holding's address whole (it breaks, it is not shortened)
    shown = page.eval_on_selector_all("#evidence .holdings .address",
                                      "cs => cs.map(c => c.textContent)")
    assert all(len(a) == 42 and a.startswith("0x") for a in shown) and len(shown) == 3, shown
    tab.context.close()
