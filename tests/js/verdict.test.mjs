// The holder's verdict: never more than what was checked. The words are the
// shipped words.json, the same file the CLI reads.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { amountText, percent, readResult, reservesText, shortHash, timeText, verdictOf }
  from "../../zksolv/site/verdict.js";

const words = JSON.parse(readFileSync(new URL("../../zksolv/site/words.json", import.meta.url)));

const report = {
  amounts: [{ symbol: "ETH", decimals: 18, proofDecimals: 9, amount: 53090n }],
  signatureChecked: true,
  operatorPinned: true,
};
const result = (over = {}) => ({
  ownShard: { shard: 3, ok: true },
  sampled: [{ shard: 5, ok: true }, { shard: 9, ok: true }],
  shards: 11,
  solvency: { asset: true, valued: true },
  escapeProbability: 0.8,
  failures: [],
  elapsedMs: 10,
  ...over,
});
const line = (v, key) => v.lines.find((l) => l.key === key);

test("amounts read as tokens first, the unit named", () => {
  assert.equal(amountText(report.amounts[0]),
    "ETH 0.000053090 (53090 units of 10^-9 ETH, rounded up; the token has 18 decimals)");
  assert.equal(amountText({ symbol: "USDC", decimals: 6, proofDecimals: 6, amount: 1250000n }),
    "USDC 1.250000 (1250000 units of 10^-6 USDC)");
});

test("percentages never round to a certainty", () => {
  assert.equal(percent(0.998), "99.8%");
  assert.equal(percent(1 - 8 / 4095), "99.8%");
  assert.equal(percent(0.99996), "more than 99.9%");
  assert.equal(percent(0.00001), "less than 0.1%");
  assert.equal(percent(0), "0%");
  assert.equal(percent(1), "100%");
  assert.equal(percent(1.5), null);
  assert.equal(percent("0.5"), null);
});

test("times, hashes, reserves", () => {
  assert.equal(timeText(1700000000n).utc, "2023-11-14 22:13:20 UTC");
  assert.match(timeText(1700000000n, { timeZone: "Asia/Tokyo" }).local, /Nov 15, 2023/);
  assert.equal(timeText((1n << 63n) - 1n).local, null);
  assert.equal(shortHash("ab".repeat(32)), "abababab…abababab");
  const usdc = { symbol: "USDC", decimals: 6, proofDecimals: 6, reserves: 3000000n };
  assert.equal(reservesText(usdc, null),
    "reserves 3.000000 USDC (as the operator states them); total owed hidden by the operator");
  assert.equal(reservesText(usdc, 2000000n), "reserves 3.000000 USDC (as the operator states "
    + "them); owed 2.000000 USDC in total; coverage 150.00%");
  assert.match(reservesText(usdc, 1n), /coverage 300,000,000.00%$/);
});

test("included, with what the worker checked", () => {
  const v = verdictOf(report, { status: "checked", result: result() }, words);
  assert.equal(v.state, "valid");
  assert.equal(v.heading, "Your balance is included");
  assert.equal(line(v, "range").value,
    "your shard and 2 of 10 others checked here (one bad shard escapes this sample with chance 80%)"
    + "; the others' leaves as the server sent them, tied to the signed root for your shard only");
  assert.equal(line(v, "range").ok, true);
  assert.equal(line(v, "solvency").ok, true);
  assert.equal(v.reason, "");
});

test("nothing checked is never called checked", () => {
  const v = verdictOf(report, { status: "unchecked", reason: "no checker here" }, words);
  assert.equal(v.state, "valid");
  assert.equal(line(v, "range").value, "not checked here (no checker here)");
  assert.equal(line(v, "range").ok, null);
  assert.equal(line(v, "solvency").ok, null);
  assert.match(v.reason, /^Not checked here: the range proofs/);
  assert.ok(!/valid/i.test(v.heading + v.lines.map((l) => l.value).join(" ")));
});

test("a failing range or solvency proof is invalid, with what to do", () => {
  for (const [over, tag, key] of [
    [{ sampled: [{ shard: 5, ok: false }] }, "leaf-range", "range"],
    [{ ownShard: { shard: 3, ok: false } }, "leaf-range", "range"],
    [{ solvency: { asset: true, valued: false } }, "solvency-valued", "solvency"],
    [{ failures: [{ tag: "solvency-asset", detail: "x" }] }, "solvency-asset", "solvency"],
  ]) {
    const v = verdictOf(report, { status: "checked", result: result(over) }, words);
    assert.equal(v.state, "invalid", tag);
    assert.equal(v.check, tag);
    assert.equal(line(v, key).ok, false, tag);
    assert.ok(v.reason.startsWith(words.checks[tag].failed), v.reason);
    assert.deepEqual(v.next, words.checks[tag].next.map((k) => words.next[k]));
  }
});

test("a pinned key whose signature this browser cannot check is no pass", () => {
  const nosig = { ...report, signatureChecked: false };
  const v = verdictOf(nosig, { status: "checked", result: result() }, words);
  assert.equal(v.state, "unconfirmed");
  assert.equal(v.heading, words.verdict.unconfirmed);
  assert.equal(line(v, "signature").ok, null);
  assert.match(v.next[0], /Ed25519/);
  // not pinned: what was established, the signature marked not checked
  const w = verdictOf({ ...nosig, operatorPinned: false }, { status: "unchecked" }, words);
  assert.equal(w.state, "valid");
  assert.match(line(w, "signature").value, /^NOT checked/);
  // a failure stays a failure
  const x = verdictOf(nosig, { status: "checked", result: result({ ownShard: { shard: 3, ok: false } }) }, words);
  assert.equal(x.state, "invalid");
});

test("a result the page cannot read counts for nothing", () => {
  assert.equal(readResult(null), null);
  assert.equal(readResult(result({ ownShard: { shard: 1, ok: "yes" } })), null);
  assert.equal(readResult(result({ sampled: [{ shard: 1 }] })), null);
  assert.equal(readResult(result({ solvency: { asset: true } })), null);
  assert.ok(readResult(result()));
});

// version 5 (an asset borrowable): the holder owes DAI; the worker checks the
// debt range and margin-health proofs of the same shards as the range proofs
const borrower = {
  ...report,
  amounts: [...report.amounts, { asset: "DAI", debt: true, decimals: 18, proofDecimals: 6, amount: 2500000000n }],
  marginHealth: "unchecked",
};
const marginResult = (margin, over = {}) => result({
  ownShard: { shard: 3, ok: true, margin: margin.health !== false && margin.debtRange !== false },
  margin, ...over,
});

test("version 5: margin health checked for the shards the worker checked, and said so", () => {
  const v = verdictOf(borrower, { status: "checked", result: marginResult({ debtRange: true, health: true }) }, words);
  assert.equal(v.state, "valid");
  assert.equal(line(v, "margin").ok, true);
  assert.equal(line(v, "margin").value, "your shard and 2 of 10 others checked here (one bad shard escapes "
    + "this sample with chance 80%); the others' leaves as the server sent them, tied to the signed root for "
    + "your shard only; in the shards checked no debt is negative, and every account's haircut "
    + "collateral covers its debts");
  assert.match(line(v, "solvency").value, /proven debts/);
  assert.equal(v.reason, "");
  // every shard checked
  const all = verdictOf(borrower, { status: "checked", result: marginResult({ debtRange: true, health: true },
    { sampled: Array.from({ length: 10 }, (_, i) => ({ shard: i + 4, ok: true, margin: true })), escapeProbability: 0 }) }, words);
  assert.match(line(all, "margin").value, /^your shard and all 10 others checked here; /);
  // while the worker runs, the margin line says so
  assert.equal(line(verdictOf(borrower, { status: "running", done: 1, total: 9 }, words), "margin").ok, null);
});

test("version 5: a failing debt range or margin-health proof is invalid, naming it", () => {
  for (const [margin, failures, tag] of [
    [{ debtRange: false, health: true }, [{ tag: "debt-range", detail: "shard 5: debt range proof does not verify" }], "debt-range"],
    [{ debtRange: true, health: false }, [{ tag: "margin-health", detail: "shard 3: margin-health proof does not verify" }], "margin-health"],
    [{ debtRange: true, health: false }, [], "margin-health"], // the booleans alone suffice
  ]) {
    const v = verdictOf(borrower, { status: "checked", result: marginResult(margin, { failures }) }, words);
    assert.equal(v.state, "invalid", tag);
    assert.equal(v.check, tag);
    assert.deepEqual([line(v, "margin").value, line(v, "margin").ok], ["FAILED", false], tag);
    assert.equal(line(v, "range").ok, true, tag); // the credits' proofs passed
    assert.ok(v.reason.startsWith(words.checks[tag].failed), v.reason);
  }
});

test("version 5: margin proofs the worker did not check are never called checked", () => {
  for (const [res, why] of [
    [result(), "this checker did not check them"], // a worker that knows no margin
    [marginResult({ debtRange: null, health: null }), "this checker did not check them"],
    [marginResult({ debtRange: null, health: null }, { failures: [{ tag: "solvency-bounds", detail: "x" }] }),
      "the prices and haircuts give no usable weights"],
  ]) {
    const v = verdictOf(borrower, { status: "checked", result: res }, words);
    assert.deepEqual([line(v, "margin").value, line(v, "margin").ok], [`not checked here (${why})`, null]);
    if (!res.failures.length) {
      assert.equal(v.state, "valid");
      assert.equal(v.reason, `Not checked here: ${words.unchecked["debt-range"]}; ${words.unchecked["margin-health"]}. `
        + "The full check below checks them.");
    }
  }
  // a version 4 result and report: no margin line at all
  assert.equal(line(verdictOf(report, { status: "checked", result: result() }, words), "margin"), undefined);
  // a margin result the page cannot read counts for nothing
  assert.equal(readResult(result({ margin: { debtRange: "yes", health: true } })), null);
  assert.equal(readResult(result({ margin: true })), null);
  assert.ok(readResult(marginResult({ debtRange: true, health: null })));
});

test("a worker that refuses the bundle's shape makes it invalid, its proofs not checked", () => {
  const v = verdictOf(borrower, { status: "refused", tag: "bundle-shape", detail: "leaves.bin: listed size 384, the shape needs 512" }, words);
  assert.deepEqual([v.state, v.check], ["invalid", "bundle-shape"]);
  assert.ok(v.reason.startsWith(words.checks["bundle-shape"].failed), v.reason);
  for (const key of ["range", "solvency", "margin"]) {
    assert.deepEqual([line(v, key).value, line(v, key).ok], ["not checked here (the bundle failed bundle-shape)", null], key);
  }
});
