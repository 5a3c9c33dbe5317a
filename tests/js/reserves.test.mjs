// Version 6 bundles on the holder's page (reserves.js, inclusion.js's
// checkManifest, proofcheck.js's header, verdict.js's lines) against the
// spec vectors `zksolv verify` is tested on (tests/vectors/spec, made by
// tests/vectors/make_spec_vectors.py --chain): the evidence decoded as
// strictly, refused with the CLI's tags, its digest the one the worked
// example's header ends with, and what the holder is told of it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { canonical, parse } from "../../zksolv/site/strictjson.js";
import { VerificationError, checkManifest } from "../../zksolv/site/inclusion.js";
import { bundleTerms, epochHeaderBytes } from "../../zksolv/site/proofcheck.js";
import { evidenceBytes, reservesProblem, reservesView, tokenText } from "../../zksolv/site/reserves.js";
import { reservesLines, verdictOf } from "../../zksolv/site/verdict.js";

const SPEC = new URL("../vectors/spec/", import.meta.url);
const INDEX = JSON.parse(readFileSync(new URL("index.json", SPEC), "utf8"));
const WORDS = JSON.parse(readFileSync(new URL("../../zksolv/site/words.json", import.meta.url), "utf8"));
const bundleDir = (name) => new URL(`${INDEX.bundles.find((b) => b.name === name).bundle.replace(/^spec\//, "")}/`, SPEC);
const read = (name, file) => new Uint8Array(readFileSync(new URL(file, bundleDir(name))));
const sha = (b) => createHash("sha256").update(b).digest("hex");
const CHAIN = INDEX.bundles.filter((b) => b.name.startsWith("chain-"));

/** The page's manifest check of a spec bundle: its report, or {tag}. */
async function manifestOutcome(name) {
  try {
    return await checkManifest(read(name, "manifest.json"), read(name, "manifest.sig"));
  } catch (e) {
    if (e instanceof VerificationError) return { tag: e.check, detail: e.detail };
    throw e;
  }
}

test("every chain-* spec vector: the page's manifest check reaches the CLI's tag (or leaves it to what it says it does not check)", async () => {
  assert.ok(CHAIN.length >= 6, "the version 6 spec vectors");
  const seen = new Set();
  for (const v of CHAIN) {
    const out = await manifestOutcome(v.name);
    const tag = out.tag ?? out.reservesProblem?.tag ?? "valid";
    seen.add(tag);
    assert.equal(tag, v.expect, `${v.name}: ${JSON.stringify(out.detail ?? out.reservesProblem)}`);
  }
  for (const tag of ["valid", "manifest-format", "reserves-balance", "reserves-block", "reserves-signature"]) {
    assert.ok(seen.has(tag), tag);
  }
});

test("a version 6 header ends with SHA-256 of chain_reserves as the manifest serialises it: the spec's worked example", async () => {
  const examples = INDEX.header_digests.filter((h) => h.bundle.startsWith("spec/chain-"));
  assert.ok(examples.length >= 1);
  for (const h of examples) {
    const raw = readFileSync(new URL(`${h.bundle.replace(/^spec\//, "")}/manifest.json`, SPEC));
    const terms = bundleTerms(new Uint8Array(raw));
    const bytes = await epochHeaderBytes(terms);
    assert.equal(Buffer.from(bytes).toString("hex"), h.header);
    assert.equal(sha(bytes), h.digest);
    assert.equal(Buffer.from(bytes.subarray(bytes.length - 32)).toString("hex"), sha(terms.evidence));
    // the evidence's bytes are exactly its lines in the (canonical) manifest,
    // unindented by the two spaces of its nesting
    const text = raw.toString("utf8");
    const start = text.indexOf('\n  "chain_reserves": ') + '\n  "chain_reserves": '.length;
    const end = text.indexOf("\n  }", start) + 4;
    const inManifest = text.slice(start, end).replace(/\n {2}/g, "\n") + "\n";
    assert.equal(Buffer.from(terms.evidence).toString("utf8"), inManifest);
  }
});

test("every chain-* bundle's header digest is bound to its own evidence (each byte of it matters)", async () => {
  for (const v of CHAIN.filter((x) => x.expect !== "manifest-format")) {
    const terms = bundleTerms(read(v.name, "manifest.json"));
    const before = sha(await epochHeaderBytes(terms));
    const changed = { ...terms, evidence: Uint8Array.from(terms.evidence) };
    changed.evidence[changed.evidence.length - 5] ^= 1;
    assert.notEqual(sha(await epochHeaderBytes(changed)), before, v.name);
  }
});

test("balances up to 2^256 - 1 keep every digit through the strict parser and the canonical form", () => {
  const max = (1n << 256n) - 1n;
  const text = `{"holdings": [{"balance": ${max}}, {"balance": ${1n << 200n}}, {"balance": 0}]}`;
  const out = Buffer.from(evidenceBytes(parse(text))).toString("utf8");
  assert.ok(out.includes(`"balance": ${max}\n`));
  assert.ok(out.includes(`"balance": ${1n << 200n}\n`));
  assert.ok(out.endsWith("}\n"));
  assert.equal(canonical(parse(out)) + "\n", out, "canonical bytes are a fixed point");
});

/** chain-valid's manifest with `edit(chain_reserves)` applied, re-serialised
 * canonically (not re-signed: the shape is refused before the signature). */
function edited(edit) {
  const m = parse(Buffer.from(read("chain-valid", "manifest.json")).toString("utf8"));
  edit(m.get("chain_reserves"), m);
  return new TextEncoder().encode(canonical(m) + "\n");
}

test("a malformed chain_reserves is manifest-format, as zksolv verify's schema refuses it", async () => {
  const sig = read("chain-valid", "manifest.sig");
  const holding = (e, i = 0) => e.get("assets")[0].get("holdings")[i];
  const cases = {
    "unknown key": (e) => e.set("extra", 1n),
    "missing window": (e) => e.delete("window"),
    "chain id 0": (e) => e.set("chain_id", 0n),
    "block number 2^63": (e) => e.set("block_number", 1n << 63n),
    "upper-case block hash": (e) => e.set("block_hash", e.get("block_hash").toUpperCase().replace("0X", "0x")),
    "balance 2^256": (e) => holding(e).set("balance", 1n << 256n),
    "negative balance": (e) => holding(e).set("balance", -1n),
    "balance as a string": (e) => holding(e).set("balance", "1"),
    "checksummed address": (e) => holding(e).set("address", "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
    "unknown kind": (e) => holding(e).set("kind", "vault"),
    "account signature of 64 bytes": (e) => holding(e).set("signature", "0x" + "11".repeat(64)),
    "declared holder with a signature": (e) => holding(e, 2).set("signature", "0x" + "11".repeat(65)),
    "duplicate holder": (e) => e.get("assets")[0].get("holdings").push(holding(e)),
    "no holdings": (e) => e.get("assets")[0].set("holdings", []),
    "token in upper case": (e) => e.get("assets")[0].set("token", "0x" + "AB".repeat(20)),
    "window of length 0": (e) => e.set("window", new Map([["length", 0n], ["first_number", 3n], ["first_hash", "0x" + "0f".repeat(32)]])),
    "window of length 10001": (e) => e.set("window", new Map([["length", 10001n], ["first_number", 3n], ["first_hash", "0x" + "0f".repeat(32)]])),
    "chain_reserves null": (e, m) => m.set("chain_reserves", null),
    "version 5 with chain_reserves": (e, m) => m.set("version", 5n),
    "version 6 without chain_reserves": (e, m) => m.delete("chain_reserves"),
  };
  for (const [name, edit] of Object.entries(cases)) {
    await assert.rejects(checkManifest(edited(edit), sig), (e) => e instanceof VerificationError
      && e.check === "manifest-format", name);
  }
  // the unedited bytes pass (the edits, not the round trip, are refused)
  assert.equal((await checkManifest(edited(() => {}), sig)).version, 6);
});

test("the offline checks of the evidence, in zksolv verify's order and with its tags", async () => {
  const ok = await checkManifest(read("chain-valid", "manifest.json"), read("chain-valid", "manifest.sig"));
  assert.equal(reservesProblem(ok.evidence, ok.assets), null);
  const ev = structuredClone(ok.evidence);
  const assets = ok.assets.map((a) => ({ ...a }));
  ev.assets[0].total += 1n;
  assert.equal(reservesProblem(ev, assets).tag, "reserves-balance");
  assert.equal(reservesProblem({ ...ok.evidence, assets: [{ ...ok.evidence.assets[0], symbol: "WBTC" }] }, assets).tag,
    "reserves-balance", "an evidence asset the manifest does not list");
  // a window that derives another block
  const window = { length: 16n, firstNumber: 3n, firstHash: "0x" + "0f".repeat(32) };
  assert.equal(reservesProblem({ ...ok.evidence, window }, assets).tag, "reserves-block");
  assert.equal(reservesProblem({ ...ok.evidence, window, blockNumber: 19n }, assets), null, "3 + 1 + 15 = 19");
  // an account holding without its signature (a declared one needs none)
  const unsigned = structuredClone(ok.evidence);
  unsigned.assets[0].holdings[1].signature = null;
  assert.match(reservesProblem(unsigned, assets).detail, /0xa88b710fafff68e3d7bb4b3dd72c358b5bdb9a18 \(account\): no ownership signature/);
  assert.equal(reservesProblem(unsigned, assets).tag, "reserves-signature");
  // the sum is checked first, as the CLI does
  unsigned.assets[0].total += 1n;
  assert.equal(reservesProblem(unsigned, assets).tag, "reserves-balance");
});

test("what the page shows of a version 6 bundle's reserves: chain, block, each holding in tokens, the total", async () => {
  const m = await checkManifest(read("chain-valid", "manifest.json"), read("chain-valid", "manifest.sig"));
  const view = m.reserves;
  assert.deepEqual([view.fromChain, view.chainId, view.blockNumber, view.blockHash, view.window],
    [true, 31337n, 7n, "0x" + "ab".repeat(32), null]);
  assert.deepEqual(view.assets.map((a) => [a.symbol, a.source]), [["ETH", "chain"], ["USDC", "asserted"]]);
  const eth = view.assets[0];
  assert.equal(eth.token, "native");
  assert.deepEqual(eth.holdings.map((h) => [h.address, h.kind, h.tokens, h.signature]), [
    ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "account", "2.000000000000000000", "signed"],
    ["0xa88b710fafff68e3d7bb4b3dd72c358b5bdb9a18", "account", "1.000000000000000000", "signed"],
    ["0x2222222222222222222222222222222222222222", "declared", "0.500000000000000000", "declared"],
  ]);
  assert.deepEqual([eth.total, eth.totalTokens], [3500000000000000000n, "3.500000000000000000"]);
  assert.equal(eth.total, m.assets[0].reserves, "the total is the manifest's reserves");
  assert.equal(tokenText(5n, 0), "5");
  assert.equal(tokenText(5n, 3), "0.005");
  // a version 4 bundle: every asset asserted
  const v4 = await checkManifest(read("haircut-0", "manifest.json"), read("haircut-0", "manifest.sig"));
  assert.equal(v4.reserves.fromChain, false);
  assert.ok(v4.reserves.assets.every((a) => a.source === "asserted"));
  assert.equal(v4.evidence, null);
  assert.equal(v4.reservesProblem, null);
  assert.deepEqual(reservesView(v4.assets, null).assets.map((a) => a.source), v4.assets.map(() => "asserted"));
});

const RESULT = { shards: 1, sampled: [], ownShard: { shard: 0, ok: true }, solvency: { asset: true, valued: true }, failures: [] };

test("beside the verdict: what was and was not checked of the reserves, never 'valid' or 'verified' for the rest", async () => {
  const m = await checkManifest(read("chain-valid", "manifest.json"), read("chain-valid", "manifest.sig"));
  const report = { amounts: [], signatureChecked: true, operatorPinned: false, marginHealth: null,
    reserves: m.reserves, reservesProblem: m.reservesProblem };
  const v = verdictOf(report, { status: "checked", result: RESULT }, WORDS, { bundleDir: "bundles/7" });
  assert.equal(v.state, "valid");
  const line = (key) => v.lines.find((l) => l.key === key);
  assert.deepEqual([line("reserves-sum").ok, line("reserves-balances").ok, line("reserves-signatures").ok], [true, null, true]);
  assert.match(line("reserves-sum").value, /^ETH read from chain 31337, block 7: the sum of the balances listed equals the proven reserves \(checked here\)$/);
  assert.equal(line("reserves-balances").value,
    `not checked here: ${WORDS.unchecked["reserves-balances"]}; zksolv verify bundles/7 --rpc URL checks them`);
  assert.equal(line("reserves-signatures").value, "every account holder's EIP-712 signature for this chain, block, "
    + "epoch and operator key recovers to its address (checked here)");
  const forged = verdictOf({ ...report, reservesProblem: { tag: "reserves-signature", detail: "..." } },
    { status: "checked", result: RESULT }, WORDS);
  assert.deepEqual([forged.state, forged.check, forged.lines.find((l) => l.key === "reserves-signatures").ok],
    ["invalid", "reserves-signature", false]);
  assert.equal(line("reserves-contracts"), undefined, "no contract holder in this bundle");
  assert.equal(line("reserves-block"), undefined, "no window");
  for (const l of v.lines.filter((x) => x.key.startsWith("reserves"))) {
    if (l.ok !== true) assert.ok(!/\bvalid\b|verified/i.test(l.value), l.value);
  }
  // a contract holder and a window
  const withContract = structuredClone(m.reserves);
  withContract.assets[0].holdings[2].kind = "contract";
  withContract.window = { length: 16n, firstNumber: 3n, firstHash: "0x" + "0f".repeat(32) };
  const lines = reservesLines(withContract, null, WORDS);
  assert.match(lines.find((l) => l.key === "reserves-contracts").value, /^not checked here: .*EIP-1271.*zksolv verify BUNDLE --rpc URL checks them$/);
  assert.match(lines.find((l) => l.key === "reserves-block").value, /\(checked here\)$/);
  // the evidence's sum fails after valid proofs: invalid, with the CLI's tag and words
  const bad = verdictOf({ ...report, reservesProblem: { tag: "reserves-balance", detail: "ETH: ..." } },
    { status: "checked", result: RESULT }, WORDS);
  assert.deepEqual([bad.state, bad.check, bad.lines.find((l) => l.key === "reserves-sum").value], ["invalid", "reserves-balance", "FAILED"]);
  assert.ok(bad.reason.startsWith(WORDS.checks["reserves-balance"].failed));
  // ... and when the proofs could not be checked here
  const unchecked = verdictOf({ ...report, reservesProblem: { tag: "reserves-block", detail: "..." } },
    { status: "unchecked", reason: "no worker" }, WORDS);
  assert.deepEqual([unchecked.state, unchecked.check], ["invalid", "reserves-block"]);
  // a failing proof is reported first, as zksolv verify orders it
  const both = verdictOf({ ...report, reservesProblem: { tag: "reserves-balance", detail: "..." } },
    { status: "checked", result: { ...RESULT, solvency: { asset: false, valued: true } } }, WORDS);
  assert.equal(both.check, "solvency-asset");
});

test("a version 4 or 5 bundle's verdict says its reserves are asserted", async () => {
  const m = await checkManifest(read("haircut-0", "manifest.json"), read("haircut-0", "manifest.sig"));
  const report = { amounts: [], signatureChecked: true, operatorPinned: false, marginHealth: null,
    reserves: m.reserves, reservesProblem: m.reservesProblem };
  const v = verdictOf(report, { status: "checked", result: RESULT }, WORDS);
  const lines = v.lines.filter((l) => l.key.startsWith("reserves"));
  assert.deepEqual(lines.map((l) => [l.key, l.value, l.ok]), [["reserves", WORDS.unchecked["reserves-asserted"], null]]);
  assert.match(WORDS.unchecked["reserves-asserted"], /^reserves asserted/);
});
