// The page's proof checks (proofcheck.js and the modules under it):
// SHAKE-256 against node's crypto, the fast curve path against bls12381.js
// and @noble/curves (differential), and, with vectors the Python package
// writes (tests/proof_vectors.py, run by tests/test_site_js.py, which sets
// ZKSOLV_PROOF_VECTORS): the transcript, the generator table, and bundles
// where the page must reach the verdict of `zksolv verify` and name its tag.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { BASE, FormatError, G1, P, R } from "../../zksolv/site/bls12381.js";
import { Shake256, shake256 } from "../../zksolv/site/keccak.js";
import { Transcript } from "../../zksolv/site/transcript.js";
import * as M from "../../zksolv/site/msm.js";
import { BASES, PINNED_CHUNKS, CHUNK, vectorBases, bases as pinnedBases, deriveGenerator, spotCheck } from "../../zksolv/site/generators.js";
import { hashToG1 } from "../../zksolv/site/h2c.js";
import { parseRangeProof, equation, holds, proofSize, roundsFor } from "../../zksolv/site/rangeproof.js";
import {
  CheckError, bundleTerms, checkBundleProofs, epochHeaderBytes, escapeProbability, headerBytes, layout, sampleShards, smallCombination,
  STATEMENTS, SOLVENCY_CONTEXT_TAG,
} from "../../zksolv/site/proofcheck.js";
import { handleCheck } from "../../zksolv/site/checkworker.js";
import { VerificationError, checkManifest, fetchBundle, linkText, parseDocument } from "../../zksolv/site/inclusion.js";
import { verdictOf } from "../../zksolv/site/verdict.js";

const file = process.env.ZKSOLV_PROOF_VECTORS;
const skip = file ? false : "ZKSOLV_PROOF_VECTORS not set (pytest tests/test_site_js.py sets it)";
const V = file ? JSON.parse(readFileSync(file, "utf8")) : null;
const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (h) => new Uint8Array(Buffer.from(h, "hex"));
const randScalar = () => BigInt("0x" + randomBytes(40).toString("hex")) % R;
const N = bls12_381.G1.Point;
const ONE = M.toMont(1n);
const jac = (q) => ({ X: q.x, Y: q.y, Z: ONE });

// ---------------------------------------------------------------- SHAKE-256

test("SHAKE-256 equals node's crypto at every block boundary", () => {
  for (const len of [0, 1, 135, 136, 137, 271, 272, 273, 1000]) {
    for (const n of [1, 16, 32, 64, 135, 136, 137, 400]) {
      const data = randomBytes(len);
      assert.equal(hex(shake256(new Uint8Array(data), n)),
        createHash("shake256", { outputLength: n }).update(data).digest("hex"), `${len}/${n}`);
    }
  }
  // absorbing in pieces, digest from a copy, then absorbing more (as the transcript does)
  const s = new Shake256();
  const parts = [randomBytes(100), randomBytes(50), randomBytes(300)];
  const ref = createHash("shake256", { outputLength: 64 });
  for (const part of parts) {
    s.update(new Uint8Array(part));
    ref.update(part);
    assert.equal(hex(s.digest(64)), ref.copy({ outputLength: 64 }).digest("hex"));
  }
});

test("the transcript gives Python's challenges", { skip }, () => {
  for (const c of V.transcripts) {
    const t = new Transcript(unhex(c.label));
    for (const op of c.ops) {
      const label = unhex(op.label);
      if (op.op === "message") t.appendMessage(label, unhex(op.data));
      else if (op.op === "u64") t.appendU64(label, BigInt(op.value));
      else if (op.op === "bytes") assert.equal(hex(t.challengeBytes(label, op.n)), op.out, `case ${c.case}`);
      else if (op.op === "scalar") assert.equal(t.challengeScalar(label).toString(), op.out);
      else assert.equal(t.challengeShort(label).toString(), op.out);
    }
  }
  assert.ok(V.transcripts.some((c) => c.ops.some((o) => o.op === "scalar")));
});

// ----------------------------------------------------------- the fast path

/** A point of E(F_p) with x the first value at or above `x0` on the curve,
 * in any subgroup. */
function curvePoint(x0) {
  for (let x = x0 % P; ; x = (x + 1n) % P) {
    const rhs = (x * x * x + 4n) % P;
    const y = modSqrt(rhs);
    if (y !== null) return G1.fromAffine(x, y);
  }
}
function modSqrt(a) {
  let y = 1n;
  let b = a % P;
  for (let e = (P + 1n) / 4n; e > 0n; e >>= 1n) {
    if (e & 1n) y = (y * b) % P;
    b = (b * b) % P;
  }
  return (y * y) % P === a % P ? y : null;
}

test("fast decoding gives bls12381.js's points and refusals, every cofactor component included", () => {
  assert.equal(M.BETA ** 3n % P, 1n);
  const g = M.decodePoint(BASE.toBytes());
  const sigma = G1.fromAffine(M.BETA * BASE.toAffine().x % P, BASE.toAffine().y);
  const z = 0xd201000000010000n;
  assert.ok(sigma.equals(BASE.multiply(z * z).negate()), "sigma acts on G1 as -z^2");
  assert.ok(M.toG1(jac(g)).equals(BASE));
  const h = 0x396c8c005555e1568c00aaab0000aaabn; // the cofactor: 3 * 11^2 * 10177^2 * 859267^2 * 52437899^2
  const cases = [];
  for (let i = 0; i < 12; i++) cases.push(BASE.multiply(randScalar()).toBytes());
  for (const [l, e] of [[3n, 1n], [11n, 2n], [10177n, 2n], [859267n, 2n], [52437899n, 2n]]) {
    for (let i = 0; i < 3; i++) {
      const q = curvePoint(randScalar());
      const t = q.multiply((h * R) / l ** e); // the l-primary part of q
      if (t.isIdentity()) continue;
      cases.push(t.toBytes(), BASE.multiply(randScalar()).add(t).toBytes());
    }
  }
  for (let i = 0; i < 6; i++) cases.push(curvePoint(randScalar()).toBytes()); // almost surely not in G1
  const bad = randomBytes(48);
  cases.push(new Uint8Array(bad), Uint8Array.of(0xc0, ...new Uint8Array(47)), Uint8Array.of(0xe0, ...new Uint8Array(47)),
    Uint8Array.of(0x80 | 0x1f, ...new Uint8Array(47).fill(0xff)), BASE.toBytes().subarray(1));
  let refused = 0;
  for (const enc of cases) {
    let want;
    try {
      want = hex(G1.fromBytes(enc, { allowIdentity: true }).toBytes());
    } catch (e) {
      assert.ok(e instanceof FormatError);
      want = e.message;
    }
    let got;
    try {
      const q = M.decodePoint(enc, { allowIdentity: true });
      got = q === null ? hex(G1.identity().toBytes()) : hex(M.toG1(jac(q)).toBytes());
    } catch (e) {
      assert.ok(e instanceof FormatError);
      got = e.message;
    }
    assert.equal(got, want, hex(enc));
    if (want.includes("subgroup")) refused++;
  }
  assert.ok(refused >= 20, `${refused} points outside G1`);
});

test("the multi-scalar multiplication equals the plain sum and @noble/curves", () => {
  for (const n of [1, 2, 3, 5, 16, 40, 130, 300]) {
    const pts = [];
    const ks = [];
    for (let i = 0; i < n; i++) {
      pts.push(M.fromG1(BASE.multiply(randScalar() + 1n)));
      ks.push([0n, 1n, R - 1n, 2n, (1n << 128n) - 1n][i % 7] ?? randScalar());
    }
    if (n >= 5) { // a repeated point, its negation, and a pair summing to zero in one bucket
      pts[1] = pts[0];
      ks[1] = ks[0];
      pts[2] = M.negAffine(pts[0]);
      ks[2] = ks[0];
      pts[4] = pts[3];
      ks[4] = ks[3];
    }
    const fast = M.toG1(M.msm(pts, ks));
    assert.ok(fast.equals(M.msmPlain(pts, ks)), `n=${n}`);
    // the GLV split against the bucket method on the whole scalars, at several windows
    for (const window of [null, 1, 4, 9]) {
      assert.ok(M.toG1(M.bucketMsm(pts, ks, 255, { window })).equals(fast), `n=${n} c=${window}`);
    }
    const noble = pts.reduce((acc, p, i) => {
      const np = N.fromBytes(M.toG1(jac(p)).toBytes());
      return ks[i] === 0n ? acc : acc.add(np.multiply(ks[i]));
    }, N.ZERO);
    assert.equal(hex(fast.toBytes()), hex(noble.toBytes(true)), `n=${n}`);
  }
  assert.ok(M.isIdentity(M.msm([], [])));
  assert.throws(() => M.msm([M.fromG1(BASE)], [R]), RangeError);
});

test("the health combination equals the multi-scalar multiplication (differential)", () => {
  // [margin-health] sum_j w_j*C_j with small signed weights (c_j, -b_j),
  // against msm on the weights mod r; equal and opposite points included
  const p = [1n, 2n, 3n, 4n].map(() => M.fromG1(BASE.multiply(randScalar() + 1n)));
  const cases = [
    [[p[0], p[1], p[2]], [4n, 2n, -5n]],
    [[p[0], p[1], p[2]], [0n, 0n, 0n]],
    [[p[0], p[0], p[1]], [3n, 3n, -1n]], // a repeated point: doublings in the additions
    [[p[0], M.negAffine(p[0])], [7n, 7n]], // sums to the identity
    [[p[0], p[0]], [5n, -5n]],
  ];
  for (let i = 0; i < 12; i++) {
    const bits = [1n, 30n, 64n, 100n][i % 4];
    const w = () => (BigInt("0x" + randomBytes(16).toString("hex")) % (1n << bits)) * (i % 3 === 0 ? -1n : 1n);
    cases.push([p, p.map(w)]);
  }
  for (const [pts, ws] of cases) {
    const want = M.toG1(M.msm(pts, ws.map((x) => ((x % R) + R) % R)));
    assert.ok(M.toG1(smallCombination(pts, ws)).equals(want), ws.join(","));
  }
});

// --------------------------------------------------------- the generators

test("g, h, u are Python's, and the generator table hashes to its pins", { skip }, async () => {
  assert.deepEqual(BASES, V.bases);
  const load = async (name) => new Uint8Array(readFileSync(join(V.table, name)));
  const all = await vectorBases(PINNED_CHUNKS.length * CHUNK, { loadChunk: load });
  assert.equal(all.G.length, 32768);
  for (const i of [0, 1, 1023, 1024, 32767]) { // each on the curve and in G1
    for (const p of [all.G[i], all.H[i]]) assert.ok(M.decodePoint(M.toG1(jac(p)).toBytes()));
  }
  const raw = await load("generators/chunk-0003.bin");
  raw[100] ^= 1;
  await assert.rejects(vectorBases(4 * CHUNK, { loadChunk: async (n) => (n.endsWith("0003.bin") ? raw : load(n)) }),
    /not the pinned generator table/);
});

test("hash-to-curve gives RFC 9380's vectors and the table's points", { skip }, async () => {
  // RFC 9380, appendix J.9.1, suite BLS12381G1_XMD:SHA-256_SSWU_RO_
  const dst = "QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_";
  for (const [msg, x, y] of [
    ["", "052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a1",
      "08ba738453bfed09cb546dbb0783dbb3a5f1f566ed67bb6be0e8c67e2e81a4cc68ee29813bb7994998f3eae0c9c6a265"],
    ["abc", "03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903",
      "0b9c15f3fe6e5cf4211f346271d7b01c8f3b28be689c8429c85b67af215533311f0b8dfaaa154fa6b88176c229f2885d"],
    ["abcdef0123456789", "11e0b079dea29a68f0383ee94fed1b940995272407e3bb916bbf268c263ddd57a6a27200a784cbc248e84f357ce82d98",
      "03a87ae2caf14e8ee52e51fa2ed8eefe80f02457004ba4d486d6aa1f517c0889501dc7413753f9599b099ebcbbd2d709"],
  ]) {
    const p = (await hashToG1(msg, dst)).toAffine();
    assert.deepEqual([p.x.toString(16).padStart(96, "0"), p.y.toString(16).padStart(96, "0")], [x, y], msg);
  }
  for (const [name, msg] of [["g", "value"], ["h", "blinding"], ["u", "ipa"]]) {
    assert.equal(hex((await deriveGenerator(msg)).toBytes()), BASES[name]);
  }
  const load = async (name) => new Uint8Array(readFileSync(join(V.table, name)));
  const vectors = await vectorBases(3 * CHUNK, { loadChunk: load });
  await spotCheck(vectors, [0, 1, 2047, 3071]);
  const altered = { G: vectors.G, H: vectors.H.slice() };
  altered.H[5] = vectors.H[6];
  await assert.rejects(spotCheck(altered, [5]), /H_5 of the table is not hash-to-curve/);
});

// ------------------------------------------------------------- bundles

const files = (dir) => ({
  fetchRange: async (name, offset, length) => new Uint8Array(readFileSync(join(dir, name))).subarray(offset, offset + length),
});
const table = () => async (name) => new Uint8Array(readFileSync(join(V.table, name)));

async function check(dir, { shard = 0, sample = 0, inclusion = null } = {}) {
  return checkBundleProofs({
    manifest: new Uint8Array(readFileSync(join(dir, "manifest.json"))), shard, sample, inclusion,
    ...files(dir), loadChunk: table(),
  });
}

test("published bundle vectors: valid accepted, range, margin and solvency failures named first", { skip }, async () => {
  const index = JSON.parse(readFileSync(join(V.bundleVectors, "index.json"), "utf8"));
  const seen = new Set();
  let margin = 0;
  const named = ["valid", "leaf-range", "debt-range", "margin-health", "solvency-asset", "solvency-valued",
    "totals-opening"];
  for (const v of index.vectors) {
    if (v.bundles.length !== 1 || !named.includes(v.expect)) continue;
    const dir = join(V.bundleVectors, v.bundles[0]);
    const version = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")).version;
    const res = await check(dir);
    const tags = res.failures.map((f) => f.tag);
    if (v.expect === "valid") {
      assert.deepEqual(res.failures, [], v.name);
      assert.ok(res.ownShard.ok && res.solvency.asset && res.solvency.valued, v.name);
    } else {
      // the first failure named is the one zksolv verify reports
      assert.equal(tags[0], v.expect, `${v.name}: ${JSON.stringify(res.failures)}`);
    }
    if (version === 5) {
      margin += 1;
      const ok = v.expect === "valid";
      if (ok || v.expect === "debt-range" || v.expect === "margin-health") {
        assert.deepEqual(res.margin, { debtRange: v.expect !== "debt-range", health: v.expect !== "margin-health" }, v.name);
        assert.equal(res.ownShard.margin, ok, v.name);
        assert.deepEqual([res.ownShard.ok, res.solvency], [true, { asset: true, valued: true }], v.name);
      }
    } else {
      assert.equal(res.margin, null, v.name);
      assert.equal("margin" in res.ownShard, false, v.name);
    }
    if (v.name === "leaf-range") assert.deepEqual([tags, res.ownShard.ok, res.solvency], [["leaf-range"], false, { asset: true, valued: true }]);
    if (v.name === "solvency-asset") assert.deepEqual([tags, res.ownShard.ok, res.solvency], [["solvency-asset"], true, { asset: false, valued: true }]);
    if (v.name === "solvency-valued") assert.deepEqual([tags, res.ownShard.ok, res.solvency], [["solvency-valued"], true, { asset: true, valued: false }]);
    if (v.name === "totals-opening") assert.equal(res.totals, false);
    if (v.name === "valid-totals") assert.equal(res.totals, true);
    seen.add(v.expect);
  }
  assert.deepEqual([...seen].sort(), [...named].sort());
  assert.ok(margin >= 5, `version 5 vectors checked: ${margin}`);
});

test("bundles from the prover: the page reaches the CLI's verdict", { skip }, async () => {
  const lending = new Set();
  for (const c of V.bundles) {
    const inclusion = c.inclusion === null ? null : (await parseDocument(c.inclusion)).proof;
    const res = await check(c.dir, { shard: c.shard, sample: c.sample, inclusion });
    const tags = res.failures.map((f) => f.tag);
    if (c.page === "valid") {
      assert.deepEqual(res.failures, [], c.name);
      assert.deepEqual([res.ownShard.ok, res.ownShard.boundToRoot, res.solvency], [true, inclusion !== null, { asset: true, valued: true }], c.name);
    } else {
      // the first failure is the one zksolv verify reports
      assert.equal(tags[0], c.page, `${c.name}: ${JSON.stringify(res.failures)}`);
      if (c.page === c.expect) assert.equal(res.failures[0].detail, c.detail, c.name);
    }
    assert.equal(res.sampled.length, Math.min(c.sample, res.shards - 1), c.name);
    assert.ok(res.sampled.every((s) => s.shard !== c.shard), c.name);
    assert.equal(res.escapeProbability, (res.shards - 1 - res.sampled.length) / Math.max(1, res.shards - 1) || 0);
    if (c.version === 5) {
      // the margin proofs of every checked shard: all verified, or named
      lending.add(c.expect);
      const shards = [res.ownShard, ...res.sampled];
      if (c.expect === "valid") {
        assert.deepEqual(res.margin, { debtRange: true, health: true }, c.name);
        assert.ok(shards.every((s) => s.ok && s.margin === true), c.name);
      } else {
        assert.ok(["debt-range", "margin-health"].includes(c.expect), c.name);
        assert.equal(res.margin[c.expect === "debt-range" ? "debtRange" : "health"], false, c.name);
        // the credits' range proofs and solvency stand: only margin proofs fail
        assert.ok(shards.every((s) => s.ok), c.name);
        assert.deepEqual(res.solvency, { asset: true, valued: true }, c.name);
        const bad = Number(c.detail.match(/^shard (\d+):/)[1]);
        assert.deepEqual(shards.filter((s) => s.margin === false).map((s) => s.shard).includes(bad), true, c.name);
      }
    } else {
      assert.equal(res.margin, null, c.name);
    }
    if (c.name.startsWith("forged")) {
      assert.equal(c.expect, "leaf-range");
      assert.ok(res.ownShard.ok, "the holder's own shard is sound");
      assert.deepEqual(res.sampled.filter((s) => !s.ok).map((s) => s.shard), [res.shards - 1]);
      // with no sample the forgery escapes, and the page says how likely that was
      const none = await check(c.dir, { shard: c.shard, sample: 0, inclusion });
      assert.deepEqual([none.failures, none.escapeProbability], [[], 1]);
    }
    if (c.name.startsWith("leaves swapped")) assert.equal(c.expect, "manifest-hash");
  }
  assert.ok(V.bundles.some((c) => c.page === "valid") && V.bundles.some((c) => c.page === "leaf-range"));
  // version 5: valid, an unhealthy account, a flipped debt range and health proof, swapped shards
  assert.deepEqual([...lending].sort(), ["debt-range", "margin-health", "valid"]);
  assert.ok(V.bundles.filter((c) => c.version === 5).length >= 7);
});

test("every flipped byte of a proof is rejected", { skip }, async () => {
  // the valued solvency proof of a published vector, checked alone
  const dir = join(V.bundleVectors, "valid-epoch1");
  const raw = new Uint8Array(readFileSync(join(dir, "manifest.json")));
  const terms = bundleTerms(raw);
  const digest = new Uint8Array(createHash("sha256").update(headerBytes(terms)).digest());
  const { assetProof, valuedProof } = layout(terms);
  const solvency = new Uint8Array(readFileSync(join(dir, "solvency.bin")));
  const proofBytes = solvency.slice(assetProof, assetProof + valuedProof);
  assert.equal(proofBytes.length, proofSize(roundsFor(128, 1)));
  const b = pinnedBases();
  const vectors = await vectorBases(128, { loadChunk: table() });
  const roots = terms.rootCommitments.map((c) => M.decodePoint(c));
  // C_valued as docs/epoch.md states it, from the manifest's terms
  const top = Math.max(...terms.assets.map((a) => a.proofDecimals));
  const aj = terms.assets.map((a) => a.price * 10n ** BigInt(top - a.proofDecimals));
  const c = aj.map((x, j) => x * terms.assets[j].haircutBps);
  const bj = aj.map((x) => x * 10000n);
  const gcd = (x, y) => (y ? gcd(y, x % y) : x);
  const g0 = [...c, ...bj].reduce(gcd, 0n);
  const positive = c.reduce((s, x, j) => s + (x / g0) * terms.assets[j].provenReserves, 0n);
  const valued = M.toG1(M.msm([b.g, ...roots.map(M.negAffine)], [positive, ...bj.map((x) => x / g0)])).toBytes();
  const st = {
    statementId: STATEMENTS.solvencyValued, commitments: [valued], bits: 128,
    context: new Uint8Array([...new TextEncoder().encode(SOLVENCY_CONTEXT_TAG), ...digest, ...terms.rootHash]),
  };
  const memo = new Map();
  const decode = (bytes, opts) => {
    const key = hex(bytes) + opts.allowIdentity;
    if (!memo.has(key)) {
      try {
        memo.set(key, { ok: M.decodePoint(bytes, opts) });
      } catch (e) {
        memo.set(key, { err: e });
      }
    }
    const r = memo.get(key);
    if (r.err) throw r.err;
    return r.ok;
  };
  const verifies = async (bytes) => {
    try {
      const eq = equation(st, parseRangeProof(bytes), 1n, randScalar() + 1n, { decode });
      return await holds([eq], b, vectors);
    } catch (e) {
      if (e instanceof FormatError) return false;
      throw e;
    }
  };
  assert.ok(await verifies(proofBytes), "the untouched proof verifies");
  for (let i = 0; i < proofBytes.length; i++) {
    for (const bit of [0x01, 0x80]) {
      if (bit === 0x80 && i % 16) continue; // the high bit on every 16th byte as well
      const flipped = proofBytes.slice();
      flipped[i] ^= bit;
      assert.equal(await verifies(flipped), false, `byte ${i} bit ${bit}`);
    }
  }
  assert.equal(await verifies(proofBytes.slice(0, -1)), false);
});

test("the sample: distinct shards, never the holder's, and the escape chance", () => {
  let seed = 7;
  const random = (n) => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff);
  for (const [shards, own, count] of [[1, 0, 5], [2, 1, 1], [16, 3, 15], [4096, 10, 30], [1 << 20, 5, 8]]) {
    const s = sampleShards(shards, own, count, random);
    assert.equal(s.length, Math.min(count, shards - 1));
    assert.equal(new Set(s).size, s.length);
    assert.ok(s.every((x) => x !== own && x >= 0 && x < shards && Number.isInteger(x)));
  }
  assert.equal(escapeProbability(1, 10), 0);
  assert.equal(escapeProbability(4096, 0), 1);
  assert.equal(escapeProbability(4096, 45), 4050 / 4095);
  const counts = new Array(8).fill(0); // every other shard about equally likely
  for (let i = 0; i < 4000; i++) counts[sampleShards(9, 0, 1)[0] - 1]++;
  assert.ok(counts.every((n) => n > 380 && n < 620), String(counts));
});

// ------------------------------------------------------------- the worker

function fakeServer(dir, { ranges }) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    const u = new URL(url);
    requests.push({ path: u.pathname, range: init.headers?.Range ?? null });
    const path = u.pathname.startsWith("/generators/") ? join(V.table, u.pathname)
      : u.pathname.startsWith("/b/") ? join(dir, u.pathname.slice(3)) : "/nonexistent";
    let body;
    try {
      body = readFileSync(path);
    } catch {
      return new Response("not found", { status: 404 });
    }
    const m = ranges && init.headers?.Range?.match(/^bytes=(\d+)-(\d+)$/);
    if (m) {
      const [a, b] = [Number(m[1]), Number(m[2])];
      return new Response(body.subarray(a, b + 1), {
        status: 206, headers: { "Content-Range": `bytes ${a}-${b}/${body.length}` },
      });
    }
    return new Response(body, { status: 200 });
  };
  return { fetch, requests };
}

test("the worker's messages: progress, then one result; Range or whole files", { skip }, async () => {
  const c = V.bundles.find((x) => x.name === "four shards, all sampled");
  const manifest = readFileSync(join(c.dir, "manifest.json"), "utf8");
  for (const ranges of [true, false]) {
    const server = fakeServer(c.dir, { ranges });
    const messages = [];
    await handleCheck({ type: "check", bundleUrl: "/b/", manifest, shard: c.shard, sample: 2, inclusion: c.inclusion },
      { post: (m) => messages.push(m), base: "http://site.test/", fetch: server.fetch });
    const last = messages.at(-1);
    assert.equal(last.type, "result", JSON.stringify(last));
    assert.ok(messages.slice(0, -1).every((m) => m.type === "progress" && m.done <= m.total));
    assert.ok(messages.length > 5);
    assert.deepEqual([last.ownShard.ok, last.ownShard.boundToRoot, last.sampled.length, last.shards, last.failures],
      [true, true, 2, 4, []]);
    assert.deepEqual(last.solvency, { asset: true, valued: true });
    const data = server.requests.filter((r) => r.path.endsWith(".bin") && r.path.startsWith("/b/"));
    if (ranges) assert.ok(data.every((r) => r.range !== null) && data.length === 2 * 3 + 1, JSON.stringify(data));
    else assert.equal(data.length, 3, "each whole file once");
  }
  const post = [];
  const server = fakeServer(c.dir, { ranges: true });
  const ask = async (req) => {
    post.length = 0;
    await handleCheck({ type: "check", bundleUrl: "/b/", manifest, shard: 0, sample: 0, ...req },
      { post: (m) => post.push(m), base: "http://site.test/", fetch: server.fetch });
    return post.at(-1);
  };
  assert.deepEqual(await ask({ shard: 4 }), { type: "error", tag: "input", detail: "shard 4 is not one of the bundle's 4 shards" });
  assert.equal((await ask({ bundleUrl: "https://elsewhere.test/b/" })).tag, "input");
  assert.equal((await ask({ manifest: "{}" })).tag, "manifest-format");
  assert.equal((await ask({ bundleUrl: "/missing/" })).tag, "manifest-hash");
  assert.equal((await ask({ inclusion: "{" })).tag, "inclusion-format");
  const other = V.bundles.find((x) => x.name === "one asset, epoch 2");
  assert.deepEqual(await ask({ inclusion: other.inclusion }),
    { type: "error", tag: "input", detail: "the inclusion proof is for another bundle" });
});

// ------------------------------------------------- spec and bundle vectors

// What the page checks of a bundle it is given by path, without an
// inclusion proof and with every other shard in the sample: fetchBundle and
// checkManifest (inclusion.js), then the worker (checkworker.js).
const PAGE_CHECKS = new Set(["manifest-missing", "manifest-format", "manifest-canonical", "suite-mismatch",
  "signature", "operator-mismatch", "bundle-shape", "leaf-encoding", "solvency-bounds", "totals-opening",
  "leaf-range", "debt-range", "margin-health", "solvency-asset", "solvency-valued",
  // version 6: the evidence's sums, window and ownership signatures, checked
  // after the proofs as zksolv verify does without --rpc
  "reserves-balance", "reserves-block", "reserves-signature"]);
// What it does not, and the words of docs/holder-page.md ("Not checked on
// the page") that say so: the page must refuse through another check, or
// leave the verdict to the full check.
const NOT_ON_PAGE = {
  "manifest-hash": "the hash of each data file",
  "tree-root": "that all leaves sum to the root",
};

/** The page's outcome for one bundle directory: {tag} for a refusal by
 * fetchBundle or the manifest check, else {manifest, result}: the worker's. */
async function pageOutcome(dir, operator) {
  const server = fakeServer(dir, { ranges: true });
  let manifest;
  try {
    const bundle = await fetchBundle("/b/", { base: "http://site.test/", fetch: server.fetch });
    manifest = await checkManifest(bundle.raw, bundle.signature, { operator });
  } catch (e) {
    if (e instanceof VerificationError) return { tag: e.check, detail: e.detail };
    throw e;
  }
  const messages = [];
  await handleCheck({
    type: "check", bundleUrl: "/b/", manifest: readFileSync(join(dir, "manifest.json"), "utf8"),
    shard: 0, sample: Number(manifest.shards) - 1,
  }, { post: (m) => messages.push(m), base: "http://site.test/", fetch: server.fetch });
  const last = messages.at(-1);
  // a worker error is no verdict (the page then says the proofs were not
  // checked), except bundle-shape, which the page reports as invalid
  if (last.type === "error" && last.tag === "bundle-shape") {
    const report = { amounts: [], signatureChecked: true, operatorPinned: false, marginHealth: null };
    const verdict = verdictOf(report, { status: "refused", tag: last.tag, detail: last.detail }, {});
    assert.deepEqual([verdict.state, verdict.check], ["invalid", "bundle-shape"]);
    return { tag: last.tag, detail: last.detail };
  }
  assert.equal(last.type, "result", `${dir}: ${JSON.stringify(last)}`);
  return { manifest, result: last };
}

test("spec and bundle vectors: the page refuses each invalid one with the CLI's tag, or leaves it to the full check", { skip }, async () => {
  const spec = JSON.parse(readFileSync(join(V.specVectors, "index.json"), "utf8"));
  const published = JSON.parse(readFileSync(join(V.bundleVectors, "index.json"), "utf8"));
  const vectors = [
    ...spec.bundles.map((v) => ({ name: `spec ${v.name}`, dir: join(V.specVectors, "..", v.bundle), expect: v.expect, operator: null, noGaps: false })),
    ...published.vectors.filter((v) => v.bundles.length === 1).map((v) => ({
      name: v.name, dir: join(V.bundleVectors, v.bundles[0]), expect: v.expect, operator: v.operator ?? null, noGaps: v.no_gaps,
    })),
  ];
  const docs = readFileSync(new URL("../../docs/holder-page.md", import.meta.url), "utf8").replace(/\s+/g, " ");
  const notOnPage = docs.slice(docs.indexOf("**Not checked on the page:**"));
  const counts = { same: 0, other: 0, valid: 0 };
  for (const v of vectors) {
    const out = await pageOutcome(v.dir, v.operator);
    const first = out.tag ?? out.result.failures[0]?.tag ?? out.manifest.reservesProblem?.tag ?? "valid";
    if (out.result) {
      const report = {
        amounts: [], signatureChecked: true, operatorPinned: false, marginHealth: out.manifest.margin ? "unchecked" : null,
        reserves: out.manifest.reserves, reservesProblem: out.manifest.reservesProblem,
      };
      const verdict = verdictOf(report, { status: "checked", result: out.result }, {});
      assert.equal(verdict.state, first === "valid" ? "valid" : "invalid", v.name);
      if (first === "valid") {
        assert.deepEqual([out.result.ownShard.ok, out.result.sampled.every((x) => x.ok), out.result.solvency],
          [true, true, { asset: true, valued: true }], v.name);
      }
    }
    if (v.expect === "valid" || PAGE_CHECKS.has(v.expect)) {
      // a check the page performs: the same verdict and tag as zksolv verify
      assert.equal(first, v.expect, `${v.name}: ${JSON.stringify(out.tag ? out : out.result.failures)}`);
      counts[v.expect === "valid" ? "valid" : "same"] += 1;
    } else if (v.expect in NOT_ON_PAGE) {
      // not performed here: refused through a check the page does perform,
      // or passed with the docs saying the page does not check it
      assert.ok(notOnPage.includes(NOT_ON_PAGE[v.expect]), v.expect);
      assert.ok(first === "valid" || PAGE_CHECKS.has(first), `${v.name}: ${first}`);

      counts.other += 1;
    } else {
      // a chain check with --no-gaps: the page shows the declared gap
      assert.deepEqual([v.expect, v.noGaps, first], ["chain-epoch", true, "valid"], v.name);
      assert.match(linkText(out.manifest), /NOT proven solvent/, v.name);
      counts.other += 1;
    }
  }
  assert.ok(counts.same >= 25 && counts.valid >= 7 && counts.other >= 4, JSON.stringify(counts));
  // every spec bundle vector went through
  assert.ok(spec.bundles.every((b) => vectors.some((v) => v.name === `spec ${b.name}`)));
});

test("the page's header bytes are the spec's worked examples", { skip }, async () => {
  const spec = JSON.parse(readFileSync(join(V.specVectors, "index.json"), "utf8"));
  let chain = 0;
  for (const h of spec.header_digests) {
    const terms = bundleTerms(new Uint8Array(readFileSync(join(V.specVectors, "..", h.bundle, "manifest.json"))));
    const bytes = await epochHeaderBytes(terms);
    assert.equal(hex(bytes), h.header, h.bundle);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), h.digest, h.bundle);
    if (terms.evidence !== null) {
      // version 6: the tag, and the evidence digest at the very end
      chain += 1;
      assert.equal(Buffer.from(bytes.subarray(0, 22)).toString(), "zksolv/epoch-header/v6", h.bundle);
      assert.throws(() => headerBytes(terms), TypeError, "no version 6 header without its evidence digest");
    } else {
      assert.equal(hex(headerBytes(terms)), h.header, h.bundle);
    }
  }
  assert.ok(spec.header_digests.length >= 3);
  assert.ok(chain >= 1, "a version 6 worked example");
  // version 5: tag, rounding rule and borrowable flags, as the CLI forms them
  const margin = V.bundles.find((c) => c.version === 5 && c.expect === "valid");
  const terms = bundleTerms(new Uint8Array(readFileSync(join(margin.dir, "manifest.json"))));
  assert.equal(hex(headerBytes(terms)), margin.header);
});
