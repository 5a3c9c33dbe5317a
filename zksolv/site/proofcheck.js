// The bundle's proofs, checked in the holder's browser (DOM-free; the Web
// Worker in checkworker.js wraps it, node tests call it directly):
//
//   (a) the range proofs of the holder's own shard: its leaf range proof
//       [leaf-range] and, in a version 5 bundle (an asset borrowable), its
//       debt range proof [debt-range] and margin-health proof [margin-health]
//       (with the holder's inclusion proof: also that the shard's leaves in
//       leaves.bin fold, through the holder's path, to the signed root [tree-root])
//   (b) the same proofs of a uniform random sample of the other shards
//   (c) the per-asset and valued solvency proofs against the manifest's root
//       commitments and the epoch header        [solvency-asset] [solvency-valued]
//
// all as zksolv verify checks them (docs/epoch.md, docs/protocol.md), batched
// into one multi-scalar multiplication with random weights; if the batch
// fails, each proof is checked alone to name the failing one. What it does
// NOT check: that the sampled shards' leaves sum to the root (their path is
// not in the bundle; `zksolv verify` checks every leaf [tree-root]) and the
// shards left out of the sample.
//
// Statements (docs/epoch.md, docs/bundle-format.md, docs/protocol.md section 6):
//   D = SHA-256(epoch header bytes)                (docs/bundle-format.md)
//   columns: each asset's credit, then its debt if the asset is borrowable
//     (m = k + b commitments per leaf and per node)
//   leaf-shard context, shard s: "zksolv/context/leaf-shard/v1" || D || u32be(s)
//   leaf range, shard s: id zksolv/circuit/leaf-range/v1, n = 64, the S*k
//     credit commitments of leaves sS..(s+1)S-1 (leaf by leaf, column order)
//   debt range, shard s: id zksolv/circuit/debt-range/v1, n = 64, the S*b
//     debt commitments of those leaves (leaf by leaf, column order)
//   margin health, shard s: id zksolv/circuit/margin-health/v1, n = 128, one
//     commitment per leaf, formed here from the leaf's column commitments:
//       C_health = sum_j c_j*C_credit_j + sum_{j borrowable} (r - b_j)*C_debt_j
//   per-asset solvency: n = 128,
//     C_margin_j = reserves_j*g - C_root_credit_j (+ C_root_debt_j if borrowable)
//   valued solvency: n = 128,
//     C_valued = (sum_j c_j*reserves_j)*g - sum_j b_j*C_root_credit_j + sum_{j borrowable} b_j*C_root_debt_j
//     both with context "zksolv/context/solvency/v1" || D || root_hash
//   reserves_j = floor(reserves / 10^(decimals - proof_decimals)) (rounded down)
//   a_j = price_j*10^(Dmax - proof_decimals_j), c_j = a_j*haircut_j/g0,
//   b_j = a_j*10000/g0, g0 = gcd of all a_j*haircut_j and a_j*10000.

import { R, POINT_BYTES, FormatError } from "./bls12381.js";
import { JsonError, parse } from "./strictjson.js";
import { evidenceBytes } from "./reserves.js";
import { concat, equalBytes, bigEndian } from "./bytes.js";
import {
  decodePoint, addJac, addMixed, batchInverse, dbl, mm, toG1, msm, IDENTITY, negAffine, windowFor, isIdentity,
} from "./msm.js";
import { bases as generatorBases, vectorBases, spotCheck, CHUNK, GeneratorError } from "./generators.js";
import { parseRangeProof, proofSize, roundsFor, equation, holds, randomScalar, randomWeight, cryptoRandom } from "./rangeproof.js";

export const HEADER_TAG = "zksolv/epoch-header/v4";
// a bundle with a borrowable asset (version 5): debts and margin health
export const HEADER_TAG_MARGIN = "zksolv/epoch-header/v5";
// a bundle whose reserves come from a chain (version 6): the version 4 or 5
// header with this tag and, last, SHA-256 of chain_reserves
export const HEADER_TAG_CHAIN = "zksolv/epoch-header/v6";
export const ROUNDING = "liabilities-up/reserves-down";
export const ROUNDING_MARGIN = "liabilities-up/reserves-down/debts-down";
export const LEAF_CONTEXT_TAG = "zksolv/context/leaf-shard/v1";
export const SOLVENCY_CONTEXT_TAG = "zksolv/context/solvency/v1";
export const STATEMENTS = Object.freeze({
  leafRange: "zksolv/circuit/leaf-range/v1",
  solvencyAsset: "zksolv/circuit/solvency-asset/v1",
  solvencyValued: "zksolv/circuit/solvency-valued/v1",
  debtRange: "zksolv/circuit/debt-range/v1",
  marginHealth: "zksolv/circuit/margin-health/v1",
});
const LEAF_BITS = 64;
const MARGIN_BITS = 128;
const HEALTH_BITS = 128;
const SHARD_VALUES = 256;
const HAIRCUT_SCALE = 10000n;
const HASH_BYTES = 32;
const NODE_TAG = "zksolv/tree/node/v1";
export const FILES = Object.freeze({
  leaves: "leaves.bin", range: "range.bin", solvency: "solvency.bin", margin: "margin.bin",
});
const BUNDLE_VERSION = 4n;
const BUNDLE_VERSION_MARGIN = 5n;
const BUNDLE_VERSION_CHAIN = 6n;

// The order in which `zksolv verify` runs its checks (docs/epoch.md,
// "Verifier checks"): the first failure in this order is the one reported.
// In version 5 the valued coefficients are bounded before the shards, whose
// margin-health weights they are.
const CHECK_ORDER = ["leaf-encoding", "tree-root", "solvency-bounds", "totals-opening", "leaf-range",
  "debt-range", "margin-health", "solvency-asset", "solvency-valued"];
const CHECK_ORDER_MARGIN = ["solvency-bounds", "leaf-encoding", "tree-root", "totals-opening", "leaf-range",
  "debt-range", "margin-health", "solvency-asset", "solvency-valued"];

/** `failures` in the verifier's order of checks and, within a check, by
 * shard (`shardOf(failure)`, -1 for none), as zksolv verify reports the
 * lowest failing shard; otherwise in the order found. */
export function inCheckOrder(failures, margin = false, shardOf = () => -1) {
  const order = margin ? CHECK_ORDER_MARGIN : CHECK_ORDER;
  const rank = (tag) => (order.includes(tag) ? order.indexOf(tag) : order.length);
  return failures.map((f, i) => [f, i])
    .sort((a, b) => rank(a[0].tag) - rank(b[0].tag) || shardOf(a[0]) - shardOf(b[0]) || a[1] - b[1])
    .map(([f]) => f);
}

/** Nothing could be checked: `tag` says why (manifest-format,
 * bundle-shape, manifest-hash for a data file that cannot be fetched or has
 * the wrong size, generators for the site's generator table, input). */
export class CheckError extends Error {
  constructor(tag, detail) {
    super(`${tag}: ${detail}`);
    this.name = "CheckError";
    this.tag = tag;
    this.detail = detail;
  }
}

const utf8 = new TextEncoder();
// ignoreBOM: a leading byte-order mark is kept (and then refused by the JSON
// parser), never silently dropped: Python's UTF-8 decoding keeps it too
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });



function fromHex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");


async function sha256(subtle, data) {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

// ------------------------------------------------------------ the manifest

/** The terms of the bundle the proofs are bound to, read from the
 * manifest's bytes (the page has checked its schema, canonical form and
 * signature with inclusion.js's checkManifest before; this reads the fields
 * again, with their types and bounds, and refuses anything else with
 * manifest-format). */
export function bundleTerms(raw) {
  const bad = (why) => new CheckError("manifest-format", `manifest.json: ${why}`);
  let text;
  try {
    text = typeof raw === "string" ? raw : fatalUtf8.decode(raw);
  } catch {
    throw bad("not UTF-8");
  }
  let m;
  try {
    m = parse(text);
  } catch (e) {
    if (e instanceof JsonError) throw bad(e.message);
    throw e;
  }
  const obj = (v, at) => {
    if (!(v instanceof Map)) throw bad(`${at}: expected an object`);
    return v;
  };
  const int = (v, at, hi) => {
    if (typeof v !== "bigint" || v < 0n || v > hi) throw bad(`${at}: expected an integer in [0, ${hi}]`);
    return v;
  };
  const hex = (v, at, bytes) => {
    if (typeof v !== "string" || !new RegExp(`^[0-9a-f]{${2 * bytes}}$`).test(v)) {
      throw bad(`${at}: expected ${bytes} bytes of lowercase hex`);
    }
    return fromHex(v);
  };
  const U63 = (1n << 63n) - 1n;
  const U64 = (1n << 64n) - 1n;
  obj(m, "$");
  const version = m.get("version");
  if (m.get("format") !== "zksolv-bundle"
    || (version !== BUNDLE_VERSION && version !== BUNDLE_VERSION_MARGIN && version !== BUNDLE_VERSION_CHAIN)) {
    throw bad("not a version 4, 5 or 6 bundle manifest");
  }
  // version 6: reserves from a chain (chain_reserves), otherwise the version
  // 4 or 5 bundle its assets make it
  const chain = version === BUNDLE_VERSION_CHAIN;
  if (chain !== m.has("chain_reserves") || (chain && !(m.get("chain_reserves") instanceof Map))) {
    throw bad("$.chain_reserves: an object exactly in version 6");
  }
  // version 5: an asset is borrowable (debts in the leaves, margin health proven)
  const margin = chain
    ? Array.isArray(m.get("assets")) && m.get("assets").some((a) => a instanceof Map && a.get("borrowable") === true)
    : version === BUNDLE_VERSION_MARGIN;
  if (m.get("rounding") !== (margin ? ROUNDING_MARGIN : ROUNDING)) throw bad("$.rounding: unknown rounding rule");
  const statements = obj(m.get("statements"), "$.statements");
  const speaks = [["leaf_range", STATEMENTS.leafRange, 64n], ["solvency_asset", STATEMENTS.solvencyAsset, 128n],
    ["solvency_valued", STATEMENTS.solvencyValued, 128n]];
  if (margin) speaks.push(["debt_range", STATEMENTS.debtRange, 64n], ["margin_health", STATEMENTS.marginHealth, 128n]);
  for (const [key, id, bits] of speaks) {
    const s = obj(statements.get(key), `$.statements.${key}`);
    if (s.get("id") !== id || s.get("bits") !== bits) {
      throw new CheckError("suite-mismatch", `statement ${key} is not ${id} with ${bits} bits`);
    }
  }
  const prevHash = m.get("prev_bundle_hash");
  const prevEpoch = m.get("prev_epoch");
  const assetsRaw = m.get("assets");
  if (!Array.isArray(assetsRaw) || assetsRaw.length < 1 || assetsRaw.length > 255) {
    throw bad("$.assets: expected 1 to 255 assets");
  }
  const assets = assetsRaw.map((v, i) => {
    const at = `$.assets[${i}]`;
    const a = obj(v, at);
    const symbol = a.get("symbol");
    if (typeof symbol !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$/.test(symbol)) throw bad(`${at}.symbol`);
    const decimals = Number(int(a.get("decimals"), `${at}.decimals`, 30n));
    const proofDecimals = Number(int(a.get("proof_decimals"), `${at}.proof_decimals`, BigInt(decimals)));
    const reserves = int(a.get("reserves"), `${at}.reserves`, (1n << 256n) - 1n);
    const provenReserves = reserves / 10n ** BigInt(decimals - proofDecimals);
    if (provenReserves > U64) throw bad(`${at}.reserves: in proof units not below 2^64`);
    const borrowable = a.get("borrowable");
    if (borrowable !== undefined && (!margin || borrowable !== true)) {
      throw bad(`${at}.borrowable: only true, and only in version 5 (or 6)`);
    }
    return {
      symbol, decimals, proofDecimals, reserves, provenReserves,
      price: int(a.get("price"), `${at}.price`, U64),
      haircutBps: int(a.get("haircut_bps"), `${at}.haircut_bps`, HAIRCUT_SCALE),
      borrowable: borrowable === true,
    };
  });
  if (margin !== assets.some((a) => a.borrowable)) {
    throw bad(`version ${version} with ${margin ? "no" : "a"} borrowable asset: version 5 is exactly the bundle with one`);
  }
  // the committed columns: each asset's credit, then its debt if borrowable
  const columns = assets.flatMap((a, j) => (a.borrowable
    ? [{ asset: j, debt: false }, { asset: j, debt: true }] : [{ asset: j, debt: false }]));
  const tree = obj(m.get("tree"), "$.tree");
  const depth = Number(int(tree.get("depth"), "$.tree.depth", 32n));
  if (depth < 1) throw bad("$.tree.depth: below 1");
  const k = assets.length;
  const rootsRaw = tree.get("root_commitments");
  if (!Array.isArray(rootsRaw) || rootsRaw.length !== columns.length) {
    throw new CheckError("bundle-shape", "one root commitment per column expected");
  }
  const revealTotals = m.get("reveal_totals");
  if (typeof revealTotals !== "boolean") throw bad("$.reveal_totals: expected a boolean");
  if (margin && revealTotals) throw bad("$.reveal_totals: a version 5 bundle reveals no totals");
  const totalsRaw = m.get("totals");
  let totals = null;
  if (revealTotals) {
    if (!Array.isArray(totalsRaw) || totalsRaw.length !== k) throw bad("$.totals: one entry per asset expected");
    totals = totalsRaw.map((v, j) => {
      const e = obj(v, `$.totals[${j}]`);
      const blinding = hex(e.get("root_blinding"), `$.totals[${j}].root_blinding`, 32);
      let s = 0n;
      for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(blinding[i]);
      if (s >= R) throw bad(`$.totals[${j}].root_blinding: non-canonical scalar (>= r)`);
      return { liabilities: int(e.get("liabilities"), `$.totals[${j}].liabilities`, (1n << 128n) - 1n), rootBlinding: s };
    });
  } else if (totalsRaw !== null) {
    throw bad("$.totals: present but reveal_totals is false");
  }
  const files = obj(m.get("files"), "$.files");
  const size = (name) => Number(int(obj(files.get(name), `$.files.${name}`).get("bytes"), `$.files.${name}.bytes`, U63));
  return {
    operator: hex(m.get("operator"), "$.operator", 32),
    epoch: int(m.get("epoch"), "$.epoch", U63),
    timestamp: int(m.get("timestamp"), "$.timestamp", U63),
    priceDecimals: Number(int(m.get("price_decimals"), "$.price_decimals", 18n)),
    prevBundleHash: prevHash === null ? null : hex(prevHash, "$.prev_bundle_hash", 32),
    prevEpoch: prevEpoch === null ? null : int(prevEpoch, "$.prev_epoch", U63),
    assets,
    columns,
    margin,
    // version 6: the bytes the header's evidence digest is SHA-256 of
    evidence: chain ? evidenceBytes(m.get("chain_reserves")) : null,
    depth,
    leaves: int(tree.get("leaves"), "$.tree.leaves", U64),
    shardLeaves: Number(int(tree.get("shard_leaves"), "$.tree.shard_leaves", (1n << 32n) - 1n)),
    shards: Number(int(tree.get("shards"), "$.tree.shards", U64)),
    rootHash: hex(tree.get("root_hash"), "$.tree.root_hash", 32),
    rootCommitments: rootsRaw.map((c, j) => hex(c, `$.tree.root_commitments[${j}]`, 48)),
    revealTotals,
    totals,
    fileBytes: {
      leaves: size(FILES.leaves), range: size(FILES.range), solvency: size(FILES.solvency),
      margin: margin ? size(FILES.margin) : 0,
    },
  };
}

/** Leaves per range-proof shard: the largest power of two S with
 * S*next_pow2(m) <= 256, at most 2^depth (m columns; docs/bundle-format.md). */
export function shardLeavesFor(depth, m) {
  const width = m === 1 ? 0 : (m - 1).toString(2).length;
  return Math.min(Math.max(1, Math.floor(SHARD_VALUES / 2 ** width)), 2 ** depth);
}

const nextPow2 = (m) => 2 ** Math.ceil(Math.log2(m));

/** The byte sizes docs/bundle-format.md fixes for this shape: k assets,
 * m columns (k + b), S leaves a shard; in version 5 a shard's margin.bin
 * record is its debt range proof (S*b values, 64-bit) then its
 * margin-health proof (S values, 128-bit). */
export function layout(terms) {
  const k = terms.assets.length;
  const m = terms.columns.length;
  const b = m - k;
  const S = terms.shardLeaves;
  const record = m * POINT_BYTES + HASH_BYTES;
  const leafProof = proofSize(roundsFor(LEAF_BITS, S * k));
  const debtProof = b ? proofSize(roundsFor(LEAF_BITS, S * b)) : 0;
  const healthProof = b ? proofSize(roundsFor(HEALTH_BITS, S)) : 0;
  const assetProof = proofSize(roundsFor(MARGIN_BITS, k));
  const valuedProof = proofSize(roundsFor(MARGIN_BITS, 1));
  return {
    k, m, b, S, record, leafProof, debtProof, healthProof, marginRecord: debtProof + healthProof,
    assetProof, valuedProof,
  };
}

function checkShape(terms) {
  const { m, S, record, leafProof, marginRecord, assetProof, valuedProof } = layout(terms);
  const bad = (why) => new CheckError("bundle-shape", why);
  if (S !== shardLeavesFor(terms.depth, m)) throw bad("shard size is not the one the circuit fixes");
  if (terms.leaves !== 1n << BigInt(terms.depth)) throw bad("leaves != 2^depth");
  if (terms.shards * S !== 2 ** terms.depth) throw bad("shards != leaves / shard_leaves");
  const want = {
    leaves: 2 ** terms.depth * record,
    range: terms.shards * leafProof,
    solvency: assetProof + valuedProof,
    margin: terms.shards * marginRecord,
  };
  for (const [key, name] of Object.entries(FILES)) {
    if (terms.fileBytes[key] !== want[key]) throw bad(`${name}: listed size ${terms.fileBytes[key]}, the shape needs ${want[key]}`);
  }
}

/** EpochHeader.to_bytes (docs/bundle-format.md, "Epoch header"); a
 * version 6 header needs `evidenceDigest`, SHA-256 of `t.evidence` (see
 * epochHeaderBytes). */
export function headerBytes(t, evidenceDigest = null) {
  const rounding = t.margin ? ROUNDING_MARGIN : ROUNDING;
  const chain = t.evidence !== null && t.evidence !== undefined;
  if (chain && !(evidenceDigest instanceof Uint8Array && evidenceDigest.length === 32)) {
    throw new TypeError("a version 6 header needs the evidence digest (32 bytes)");
  }
  const parts = [
    utf8.encode(chain ? HEADER_TAG_CHAIN : t.margin ? HEADER_TAG_MARGIN : HEADER_TAG), t.operator, bigEndian(t.epoch, 8), bigEndian(t.timestamp, 8),
    bigEndian(t.priceDecimals, 1), bigEndian(t.prevBundleHash === null ? 0 : 1, 1),
    t.prevBundleHash ?? new Uint8Array(32), bigEndian(t.prevEpoch ?? 0n, 8),
    bigEndian(t.depth, 1), bigEndian(t.shardLeaves, 4), bigEndian(t.revealTotals ? 1 : 0, 1),
    bigEndian(rounding.length, 1), utf8.encode(rounding), bigEndian(t.assets.length, 2),
  ];
  for (const a of t.assets) {
    const sym = utf8.encode(a.symbol);
    parts.push(bigEndian(sym.length, 1), sym, bigEndian(a.decimals, 1), bigEndian(a.proofDecimals, 1),
      bigEndian(a.price, 8), bigEndian(a.haircutBps, 2), bigEndian(a.reserves, 32));
  }
  // version 5: one borrowable flag per asset, in asset order
  if (t.margin) parts.push(Uint8Array.from(t.assets, (a) => (a.borrowable ? 1 : 0)));
  // version 6, last: SHA-256 of chain_reserves as the manifest serialises it
  if (chain) parts.push(evidenceDigest);
  return concat(parts);
}

/** The epoch header's bytes, the evidence digest (version 6) computed. */
export async function epochHeaderBytes(t, { subtle = globalThis.crypto.subtle } = {}) {
  const digest = t.evidence ? await sha256(subtle, t.evidence) : null;
  return headerBytes(t, digest);
}

const gcd = (a, b) => {
  while (b) [a, b] = [b, a % b];
  return a;
};

/** c_j, b_j of the valued statement (circuits/epoch.py valued_coefficients)
 * and sum_j c_j*reserves_j, or {error} when they could wrap mod r or pass
 * 2^128 [solvency-bounds]. */
export function valuedCoefficients(terms) {
  const top = Math.max(...terms.assets.map((a) => a.proofDecimals));
  const aj = terms.assets.map((a) => a.price * 10n ** BigInt(top - a.proofDecimals));
  const c = aj.map((x, j) => x * terms.assets[j].haircutBps);
  const b = aj.map((x) => x * HAIRCUT_SCALE);
  let g0 = 0n;
  for (const x of [...c, ...b]) g0 = gcd(g0, x);
  if (g0 === 0n) {
    return { error: "every asset has price 0: the valued statement has nothing to weigh "
      + "(a haircut of 0 is allowed: that asset's reserves then count for nothing)" };
  }
  const reserve = c.map((x) => x / g0);
  const liability = b.map((x) => x / g0);
  const positive = reserve.reduce((s, x, j) => s + x * terms.assets[j].provenReserves, 0n);
  if (positive >= 1n << 128n) return { error: `valued reserves ${positive} do not fit in 128 bits` };
  const worst = liability.reduce((s, x) => s + x, 0n) * (1n << BigInt(terms.depth)) * ((1n << 64n) - 1n);
  if (worst >= R - (1n << 128n)) return { error: "valued liability weights could wrap modulo the group order" };
  return { reserve, liability, positive };
}

// ------------------------------------------------------------ sampling

function randomBelow(n, random) {
  // uniform in [0, n) from 48 random bits, by rejection
  const limit = Math.floor(2 ** 48 / n) * n;
  for (;;) {
    const b = random(6);
    let v = 0;
    for (let i = 0; i < 6; i++) v = v * 256 + b[i];
    if (v < limit) return v % n;
  }
}

/** `count` distinct shards other than `own`, uniformly at random. */
export function sampleShards(shards, own, count, random = cryptoRandom) {
  const others = shards - 1;
  count = Math.min(count, others);
  const picked = [];
  if (others <= 1 << 16) {
    const pool = [];
    for (let s = 0; s < shards; s++) if (s !== own) pool.push(s);
    for (let i = 0; i < count; i++) {
      const j = i + randomBelow(pool.length - i, random);
      [pool[i], pool[j]] = [pool[j], pool[i]];
      picked.push(pool[i]);
    }
  } else {
    const seen = new Set([own]);
    while (picked.length < count) {
      const s = randomBelow(shards, random);
      if (!seen.has(s)) {
        seen.add(s);
        picked.push(s);
      }
    }
  }
  return picked;
}

/** The chance that one bad shard among the others escapes a sample of
 * `count` of them: (others - count) / others. */
export function escapeProbability(shards, count) {
  const others = shards - 1;
  return others <= 0 ? 0 : (others - Math.min(count, others)) / others;
}

// ------------------------------------------------------------ the check

function nodeHashInput(leftC, leftH, rightC, rightH) {
  return concat([utf8.encode(NODE_TAG), leftC, leftH, rightC, rightH]);
}

const encode = (jac) => toG1(jac).toBytes();
const jacOf = (q) => (q === null ? IDENTITY : addMixed(IDENTITY, q));

/** [tree-sum] [tree-hash] from the shard's leaves up to the root, with the
 * siblings of the holder's path above the shard: whether it gives the
 * manifest's root. */
async function shardReachesRoot(subtle, terms, shard, points, records, proof) {
  const { m: k, S, record } = layout(terms); // k: commitments per node, one per column
  let level = [];
  for (let i = 0; i < S; i++) {
    const rec = records.subarray(i * record, (i + 1) * record);
    level.push({
      points: points.slice(i * k, (i + 1) * k).map(jacOf),
      enc: rec.subarray(0, k * POINT_BYTES),
      hash: rec.subarray(k * POINT_BYTES),
    });
  }
  const combine = async (left, right) => {
    const pts = left.points.map((p, j) => addJac(p, right.points[j]));
    return {
      points: pts,
      enc: concat(pts.map(encode)),
      hash: await sha256(subtle, nodeHashInput(left.enc, left.hash, right.enc, right.hash)),
    };
  };
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i < level.length; i += 2) next.push(await combine(level[i], level[i + 1]));
    level = next;
  }
  let node = level[0];
  const shardLevel = Math.round(Math.log2(S));
  for (let l = shardLevel; l < terms.depth; l++) {
    const step = proof.path[l];
    const sib = {
      points: [],
      enc: step.commitments,
      hash: step.hash,
    };
    for (let j = 0; j < k; j++) {
      sib.points.push(jacOf(decodePoint(step.commitments.subarray(j * POINT_BYTES, (j + 1) * POINT_BYTES),
        { what: `path level ${l} commitment ${j}` })));
    }
    node = (proof.leafIndex >>> l) & 1 ? await combine(sib, node) : await combine(node, sib);
  }
  return equalBytes(node.hash, terms.rootHash)
    && equalBytes(node.enc, concat(terms.rootCommitments));
}

/** Affine points (Montgomery form) of Jacobian ones, one inversion for
 * all; null for the identity. */
function affineMany(jacs) {
  const live = jacs.filter((p) => !isIdentity(p));
  const inv = batchInverse(live.map((p) => p.Z));
  let at = 0;
  return jacs.map((p) => {
    if (isIdentity(p)) return null;
    const zi = inv[at++];
    const zi2 = mm(zi, zi);
    return { x: mm(p.X, zi2), y: mm(p.Y, mm(zi2, zi)) };
  });
}

/** [margin-health] sum_j weights[j]*points[j] for small signed integer
 * weights (the valued statement's c_j and -b_j): one joint double-and-add
 * over the bits of the largest |weight| (a negative weight adds the
 * negated point, so (r - b_j)*C = b_j*(-C)). */
export function smallCombination(points, weights) {
  const terms = [];
  let bits = 0;
  points.forEach((p, j) => {
    const w = weights[j];
    if (w === 0n) return;
    const abs = w < 0n ? -w : w;
    terms.push({ p: w < 0n ? negAffine(p) : p, w: abs });
    bits = Math.max(bits, abs.toString(2).length);
  });
  let acc = IDENTITY;
  for (let i = bits - 1; i >= 0; i--) {
    acc = dbl(acc);
    const bit = BigInt(i);
    for (const t of terms) if ((t.w >> bit) & 1n) acc = addMixed(acc, t.p);
  }
  return acc;
}

/** The health weight of each column: c_j for a credit, -b_j for a debt. */
export function healthWeights(terms, coef) {
  return terms.columns.map((c) => (c.debt ? -coef.liability[c.asset] : coef.reserve[c.asset]));
}

/**
 * Check the bundle's proofs the page covers. Arguments:
 *   manifest     manifest.json as text or bytes (the bytes the page checked)
 *   shard        the holder's shard (leaf index / shard_leaves)
 *   sample       how many other shards to check, drawn uniformly at random
 *   fetchRange   async (fileName, offset, length, fileSize) => Uint8Array
 *   loadChunk    async (generatorTableName) => Uint8Array
 *   inclusion    optional: the holder's inclusion proof as parsed by
 *                inclusion.js parseDocument(...).proof; then the own
 *                shard's leaves must reach the root through its path
 *   onProgress   optional ({done, total, what}) => void
 *   random       optional (n) => n random bytes (crypto.getRandomValues)
 *   subtle, msmImpl  optional: SubtleCrypto, a multi-scalar multiplication
 * Returns the result object of the worker's "result" message (without
 * `type`); throws CheckError when nothing could be checked.
 */
export async function checkBundleProofs({
  manifest, shard, sample, fetchRange, loadChunk, inclusion = null, onProgress = null,
  random = cryptoRandom, subtle = globalThis.crypto.subtle, msmImpl = msm,
}) {
  const now = () => (globalThis.performance ? performance.now() : Date.now());
  const started = now();
  const timings = {};
  let mark = started;
  const lap = (name) => {
    const t = now();
    timings[name] = (timings[name] ?? 0) + (t - mark);
    mark = t;
  };
  const raw = typeof manifest === "string" ? utf8.encode(manifest) : manifest;
  if (!(raw instanceof Uint8Array)) throw new CheckError("input", "manifest: give manifest.json's text or bytes");
  const terms = bundleTerms(raw);
  checkShape(terms);
  const bundleHash = toHex(await sha256(subtle, raw));
  const L = layout(terms);
  const { k, m, b, S } = L;
  const margin = terms.margin;
  if (!Number.isInteger(shard) || shard < 0 || shard >= terms.shards) {
    throw new CheckError("input", `shard ${shard} is not one of the bundle's ${terms.shards} shards`);
  }
  if (!Number.isInteger(sample) || sample < 0) throw new CheckError("input", "sample: a whole number >= 0");
  if (inclusion !== null) {
    if (toHex(inclusion.bundleHash) !== bundleHash) {
      throw new CheckError("input", "the inclusion proof is for another bundle");
    }
    if (Math.floor(inclusion.leafIndex / S) !== shard || inclusion.depth !== terms.depth || inclusion.k !== m) {
      throw new CheckError("input", `the inclusion proof's leaf ${inclusion.leafIndex} is not in shard ${shard}`);
    }
  }
  const digest = await sha256(subtle, await epochHeaderBytes(terms, { subtle }));
  const sampled = sampleShards(terms.shards, shard, sample, random);
  const checked = [shard, ...sampled];

  // Progress in rough work units: one per decoded point, a generator chunk
  // as 20, a window of the multi-scalar multiplication as n/300 points.
  const leafN = LEAF_BITS * nextPow2(S * k);
  const need = Math.max(leafN, MARGIN_BITS * nextPow2(k),
    ...(margin ? [LEAF_BITS * nextPow2(S * b), HEALTH_BITS * nextPow2(S)] : []));
  const chunks = Math.ceil(need / CHUNK);
  const ownPoints = 4 + S * k + 2 * roundsFor(LEAF_BITS, S * k)
    + (margin ? 8 + S * b + 2 * roundsFor(LEAF_BITS, S * b) + S + 2 * roundsFor(HEALTH_BITS, S) : 0);
  const msmPoints = 2 * need + 3 + checked.length * ownPoints + 2 * (4 + k + 1 + 16);
  const windowUnits = Math.ceil(msmPoints / 300);
  const windows = Math.ceil(256 / windowFor(msmPoints));
  const total = 20 * chunks + checked.length * S * (m + (margin ? 1 : 0)) + m + windows * windowUnits;
  let done = 0;
  const progress = (units, what) => {
    done = Math.min(total, done + units);
    if (onProgress) onProgress({ done, total, what });
  };
  progress(0, "starting");

  let vectors;
  try {
    vectors = await vectorBases(need, {
      loadChunk, subtle, onChunk: () => progress(20, "generators"),
    });
    // g and one random pair derived here by hash-to-curve, against the table
    await spotCheck(vectors, [randomBelow(need, random)], { subtle });
  } catch (e) {
    if (e instanceof GeneratorError) throw new CheckError("generators", e.message);
    throw e;
  }
  const bases = generatorBases();
  lap("generatorsMs");

  const failures = [];
  const failedShard = new Map(); // failure -> the shard it names
  const fail = (tag, detail, s = -1) => {
    const f = { tag, detail };
    failures.push(f);
    failedShard.set(f, s);
  };
  const items = []; // {kind, shard, eq}: kind a check tag
  const shardOk = new Map();
  // version 5: per shard, whether its debt range and margin-health proofs
  // were checked and verified (true), failed (false), or not checked (null)
  const marginOk = new Map();
  const coef = valuedCoefficients(terms);
  if (coef.error) fail("solvency-bounds", coef.error);
  const weights = margin && !coef.error ? healthWeights(terms, coef) : null;
  const context = (s) => concat([utf8.encode(LEAF_CONTEXT_TAG), digest, bigEndian(s, 4)]);
  const addItem = (kind, s, statement, bytes) => {
    try {
      const proof = parseRangeProof(bytes);
      items.push({ kind, shard: s, eq: equation(statement, proof, randomWeight(random), randomScalar(random)) });
      return true;
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      fail(kind, `shard ${s}: ${e.message}`, s);
      return false;
    }
  };

  for (const s of checked) {
    const records = await fetchRange(FILES.leaves, s * S * L.record, S * L.record, terms.fileBytes.leaves);
    const proofBytes = await fetchRange(FILES.range, s * L.leafProof, L.leafProof, terms.fileBytes.range);
    const marginBytes = margin
      ? await fetchRange(FILES.margin, s * L.marginRecord, L.marginRecord, terms.fileBytes.margin) : null;
    // every column commitment of the shard, leaf by leaf, in column order
    const commitments = [];
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < m; j++) {
        const at = i * L.record + j * POINT_BYTES;
        commitments.push(records.subarray(at, at + POINT_BYTES));
      }
    }
    let points;
    try {
      // worded as zksolv verify words it: the column's index as "asset"
      points = commitments.map((c, i) => decodePoint(c, { what: `leaf ${s * S + Math.floor(i / m)} asset ${i % m}` }));
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      fail("leaf-encoding", e.message, s);
      shardOk.set(s, false);
      if (margin) marginOk.set(s, false);
      progress(S * m, `shard ${s}`);
      continue;
    }
    progress(S * m, `shard ${s}`);
    shardOk.set(s, true);
    if (s === shard && inclusion !== null) {
      let reaches;
      try {
        reaches = await shardReachesRoot(subtle, terms, s, points, records, inclusion);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        reaches = false;
      }
      if (!reaches) {
        fail("tree-root", `shard ${s}: its leaves in leaves.bin do not reach the signed root through your path`, s);
        shardOk.set(s, false);
      }
    }
    // split the shard's columns into credits and debts, leaf by leaf
    const credit = { commitments: [], V: [] };
    const debt = { commitments: [], V: [] };
    commitments.forEach((c, i) => {
      const into = terms.columns[i % m].debt ? debt : credit;
      into.commitments.push(c);
      into.V.push(points[i]);
    });
    const leafStatement = {
      statementId: STATEMENTS.leafRange, bits: LEAF_BITS, context: context(s), ...credit,
    };
    if (!addItem("leaf-range", s, leafStatement, proofBytes)) shardOk.set(s, false);
    if (!margin) continue;
    if (weights === null) {
      // the valued coefficients are out of bounds [solvency-bounds]: there
      // are no health weights, so neither margin proof is checked
      marginOk.set(s, null);
      progress(S, `shard ${s}, margin health`);
      continue;
    }
    marginOk.set(s, true);
    const debtStatement = {
      statementId: STATEMENTS.debtRange, bits: LEAF_BITS, context: context(s), ...debt,
    };
    if (!addItem("debt-range", s, debtStatement, marginBytes.subarray(0, L.debtProof))) {
      marginOk.set(s, false);
    }
    // C_health per leaf, from its own column commitments (never from the bundle)
    const health = affineMany(Array.from({ length: S }, (_, i) => smallCombination(points.slice(i * m, (i + 1) * m), weights)));
    progress(S, `shard ${s}, margin health`);
    if (health.some((p) => p === null)) {
      fail("margin-health", `shard ${s}: a health commitment is the identity`, s);
      marginOk.set(s, false);
      continue;
    }
    const healthStatement = {
      statementId: STATEMENTS.marginHealth, bits: HEALTH_BITS, context: context(s),
      commitments: health.map((q) => encode(jacOf(q))), V: health,
    };
    if (!addItem("margin-health", s, healthStatement, marginBytes.subarray(L.debtProof))) {
      marginOk.set(s, false);
    }
  }

  lap("shardsMs");
  // the solvency statements, on the manifest's root commitments (one per column)
  const solvency = { asset: false, valued: false };
  let totalsOk = null;
  let roots = null;
  try {
    roots = terms.rootCommitments.map((c, j) => decodePoint(c, { what: `root commitment ${j}` }));
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    fail("tree-root", e.message);
  }
  progress(m, "solvency");
  if (roots !== null && terms.totals !== null) {
    totalsOk = true;
    terms.totals.forEach((tot, j) => {
      const opened = msm([bases.g, bases.h], [tot.liabilities % R, tot.rootBlinding]);
      if (!toG1(opened).equals(toG1(jacOf(roots[j])))) {
        fail("totals-opening", `${terms.assets[j].symbol}: published total does not open C_root`);
        totalsOk = false;
      } else if (tot.liabilities > terms.assets[j].provenReserves) {
        fail("solvency-asset", `${terms.assets[j].symbol}: revealed liabilities exceed reserves`);
        totalsOk = false;
      }
    });
  }
  if (roots !== null && !coef.error) {
    const solvencyBytes = await fetchRange(FILES.solvency, 0, terms.fileBytes.solvency, terms.fileBytes.solvency);
    const solvencyContext = concat([utf8.encode(SOLVENCY_CONTEXT_TAG), digest, terms.rootHash]);
    // C_margin_j = reserves_j*g - C_root_credit_j (+ C_root_debt_j)
    const rootCredit = [];
    const rootDebt = new Map();
    terms.columns.forEach((c, i) => (c.debt ? rootDebt.set(c.asset, roots[i]) : rootCredit.push(roots[i])));
    const margins = terms.assets.map((a, j) => {
      const pts = [bases.g, negAffine(rootCredit[j])];
      const ks = [a.provenReserves % R, 1n];
      if (rootDebt.has(j)) {
        pts.push(rootDebt.get(j));
        ks.push(1n);
      }
      return msm(pts, ks);
    });
    // C_valued = (sum_j c_j*reserves_j)*g - sum_j b_j*C_root_credit_j + sum_j b_j*C_root_debt_j
    const valued = msm([bases.g, ...terms.columns.map((c, i) => (c.debt ? roots[i] : negAffine(roots[i])))],
      [coef.positive % R, ...terms.columns.map((c) => coef.liability[c.asset] % R)]);
    const solvencyStatement = (id, tag, what, commitments, bytes) => {
      try {
        const proof = parseRangeProof(bytes);
        const st = { statementId: id, commitments: commitments.map(encode), bits: MARGIN_BITS, context: solvencyContext };
        items.push({ kind: tag, eq: equation(st, proof, randomWeight(random), randomScalar(random)) });
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        fail(tag, `${what}: ${e.message}`);
      }
    };
    if (isIdentity(valued)) {
      fail("solvency-valued", "valued margin commitment is the identity");
    } else {
      solvencyStatement(STATEMENTS.solvencyValued, "solvency-valued", "valued proof", [valued],
        solvencyBytes.subarray(L.assetProof));
    }
    if (margins.some(isIdentity)) {
      fail("solvency-asset", "a margin commitment is the identity");
    } else {
      solvencyStatement(STATEMENTS.solvencyAsset, "solvency-asset", "per-asset proof", margins,
        solvencyBytes.subarray(0, L.assetProof));
    }
  }

  lap("solvencyMs");
  // one multi-scalar multiplication for every proof; if it fails, each alone
  const perShard = new Set(["leaf-range", "debt-range", "margin-health"]);
  const passed = new Set();
  if (items.length) {
    const onWindow = () => progress(windowUnits, "multi-scalar multiplication");
    if (await holds(items.map((i) => i.eq), bases, vectors, { onWindow, msmImpl })) {
      items.forEach((i) => passed.add(i));
    } else {
      const order = [...items.filter((i) => !perShard.has(i.kind)), ...items.filter((i) => perShard.has(i.kind))];
      for (const item of order) {
        if (await holds([item.eq], bases, vectors, { msmImpl })) passed.add(item);
        progress(0, perShard.has(item.kind) ? `shard ${item.shard}, ${item.kind}, alone` : item.kind);
      }
    }
  }
  const what = {
    "leaf-range": "range proof", "debt-range": "debt range proof", "margin-health": "margin-health proof",
    "solvency-asset": "per-asset solvency: range proof", "solvency-valued": "valued solvency: range proof",
  };
  for (const item of items) {
    if (passed.has(item)) continue;
    if (perShard.has(item.kind)) {
      fail(item.kind, `shard ${item.shard}: ${what[item.kind]} does not verify`, item.shard);
      (item.kind === "leaf-range" ? shardOk : marginOk).set(item.shard, false);
    } else {
      fail(item.kind, `${what[item.kind]} does not verify`);
    }
  }
  // a statement counts as checked only if its proof passed and nothing
  // before it (roots, bounds, revealed totals, margins) failed
  const provenBy = (kind) => items.some((i) => i.kind === kind && passed.has(i))
    && !failures.some((f) => f.tag === kind || f.tag === "solvency-bounds");
  solvency.asset = provenBy("solvency-asset");
  solvency.valued = provenBy("solvency-valued");
  lap("msmMs");
  progress(total, "done");
  const shardResult = (s) => ({
    shard: s, ok: shardOk.get(s) === true, ...(margin ? { margin: marginOk.get(s) ?? null } : {}),
  });
  // version 5: the debt range and margin-health proofs of the checked
  // shards: true when every one verified, false when one did not, null when
  // none could be checked (no health weights: solvency-bounds)
  const marginOf = (tag) => {
    if (!margin || weights === null) return null;
    const mine = items.filter((i) => i.kind === tag);
    return failures.every((f) => f.tag !== tag && f.tag !== "leaf-encoding")
      && checked.every((s) => mine.some((i) => i.shard === s && passed.has(i)));
  };
  return {
    ownShard: { ...shardResult(shard), boundToRoot: inclusion !== null && shardOk.get(shard) === true },
    sampled: sampled.map(shardResult),
    shards: terms.shards,
    solvency,
    margin: margin ? { debtRange: marginOf("debt-range"), health: marginOf("margin-health") } : null,
    totals: totalsOk,
    escapeProbability: escapeProbability(terms.shards, sampled.length),
    failures: inCheckOrder(failures, margin, (f) => failedShard.get(f)),
    bundleHash,
    timings,
    elapsedMs: now() - started,
  };
}
