// The account holder's check, in the browser: the same checks, in the same
// order and with the same failure tags, as
//
//   zksolv inclusion verify PROOF --account ID --bundle-hash HEX     (hash given)
//   zksolv inclusion verify PROOF --account ID --bundle DIR          (manifest fetched)
//
// except that with a bundle this module reads only its manifest.json and
// manifest.sig: it does not verify the leaf range proofs, so it learns that
// the holder's leaf reaches the signed root, not that the sibling subtrees
// are non-negative (siblingsNonnegative = "unchecked"; the CLI with
// --bundle checks that, and the page's checkworker.js, where the site has
// it, checks the holder's shard and a sample). Revealed totals are checked
// to open the root [totals-opening]. The statements (circuits/epoch.py,
// docs/epoch.md):
//
//   C_leaf_j = v_j*g + gamma_j*h                                   [leaf opening]
//   h_leaf   = H(LEAF_TAG || u64 epoch || u16 len(id) || id || salt)  [leaf-hash]
//   C_node_j = C_left_j + C_right_j                                  [tree-sum]
//   h_node   = H(NODE_TAG || C_left.. || h_left || C_right.. || h_right)  [tree-hash]
//   (C, h) at the top = the manifest's (root_commitments, root_hash)  [inclusion-root]
//
// Formats: docs/bundle-format.md (manifest, inclusion proof bytes and JSON).
// DOM-free, so it runs under node --test as well as in the page.

import { G1, FormatError, R, POINT_BYTES, linearCombination } from "./bls12381.js";
import { JsonError, JsonFloat, canonical, parse } from "./strictjson.js";
import { concat, equalBytes, bigEndian } from "./bytes.js";
import { parseChainReserves, reservesProblem, reservesView } from "./reserves.js";
import { ownershipProblem } from "./ownership.js";

// Pinned constants; tests/test_site_js.py checks each against the Python package.
export const CONSTANTS = Object.freeze({
  // The value and blinding bases g, h (zksolv.core.generators), compressed.
  g: "98297a7b31c5bae79f991edc6bce604aa7e9fccc23e14efb229a33a66341c10048d970a34ecca7e8aa77453b005dd2cf",
  h: "b3b91b5bf89b9bb5efa238d9aa4e3023b8eb4c5367235824c2407c93872848dea4c24faea12c1a79245c8ef3da872ba7",
  leafTag: "zksolv/tree/leaf/v1",
  nodeTag: "zksolv/tree/node/v1",
  signatureTag: "zksolv/manifest-signature/v2",
  // The rounding rule between base units and proof units (zksolv/units.py).
  rounding: "liabilities-up/reserves-down",
  bundleVersion: 4,
  // A bundle with a borrowable asset (debts in the leaves, margin health proven).
  roundingMargin: "liabilities-up/reserves-down/debts-down",
  bundleVersionMargin: 5,
  // A bundle whose reserves come from a chain (chain_reserves in the manifest).
  bundleVersionChain: 6,
  suite: {
    circuits: "zksolv/circuits/epoch/v2",
    generators: "zksolv/generators/bls12381g1-sswu-ro/v1",
    group: "bls12-381-g1/zcash-compressed",
    hash: "sha-256",
    range: "zksolv/range/bulletproofs-aggregated/v1",
  },
  statements: {
    leaf_range: { id: "zksolv/circuit/leaf-range/v1", bits: 64 },
    solvency_asset: { id: "zksolv/circuit/solvency-asset/v1", bits: 128 },
    solvency_valued: { id: "zksolv/circuit/solvency-valued/v1", bits: 128 },
  },
  marginStatements: {
    debt_range: { id: "zksolv/circuit/debt-range/v1", bits: 64 },
    margin_health: { id: "zksolv/circuit/margin-health/v1", bits: 128 },
  },
  maxManifestBytes: 1048576,
  maxProofBytes: 403117,
  maxDocumentBytes: 2948282,
  maxIdBytes: 128,
  minDepth: 1,
  maxDepth: 32,
  shardValues: 256,
  haircutScale: 10000,
  symbolPattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,15}",
});

const HASH_BYTES = 32;
const SALT_BYTES = 32;
const SIGNATURE_BYTES = 64;
const MAGIC = [0x5a, 0x4b, 0x53, 0x49]; // "ZKSI"
const PROOF_VERSION = 1;

/** The proof or bundle is invalid; `check` is the CLI's failure tag. */
export class VerificationError extends Error {
  constructor(check, detail) {
    super(`${check}: ${detail}`);
    this.name = "VerificationError";
    this.check = check;
    this.detail = detail;
  }
}

/** The input cannot be used (nothing to check against, a bad path). */
export class InputError extends Error {
  constructor(where, detail) {
    super(`${where}: ${detail}`);
    this.name = "InputError";
    this.where = where;
    this.detail = detail;
  }
}

const utf8 = new TextEncoder();
// ignoreBOM: a leading byte-order mark is kept (and then refused by the JSON
// parser), never silently dropped: Python's UTF-8 decoding keeps it too
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new RangeError("not lowercase hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}




function readUint(bytes, littleEndian = false) {
  let v = 0n;
  const n = bytes.length;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[littleEndian ? n - 1 - i : i]);
  return v;
}

async function sha256(subtle, data) {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

// ---------------------------------------------------------------- the proof

/** The canonical proof bytes (circuits/inclusion.py), decoded strictly;
 * any problem is [inclusion-format]. */
export function parseProofBytes(data) {
  let pos = 0;
  const bad = (why) => new VerificationError("inclusion-format", `inclusion proof: ${why}`);
  const take = (n, what) => {
    if (pos + n > data.length) throw bad(`truncated in ${what}`);
    const chunk = data.subarray(pos, pos + n);
    pos += n;
    return chunk;
  };
  const magic = take(4, "magic");
  if (!MAGIC.every((b, i) => magic[i] === b)) throw bad("bad magic");
  const header = take(9, "header");
  if (header[0] !== PROOF_VERSION) throw bad(`unsupported version ${header[0]}`);
  const epoch = readUint(header.subarray(1));
  const bundleHash = take(HASH_BYTES, "bundle hash").slice();
  const shape = take(6, "shape");
  const k = shape[0];
  const depth = shape[1];
  const leafIndex = Number(readUint(shape.subarray(2)));
  if (k < 1) throw bad("no assets");
  if (depth < CONSTANTS.minDepth || depth > CONSTANTS.maxDepth) throw bad(`depth ${depth} out of range`);
  if (BigInt(leafIndex) >= 1n << BigInt(depth)) throw bad("leaf index beyond the tree");
  const idLen = Number(readUint(take(2, "id length")));
  if (idLen < 1 || idLen > CONSTANTS.maxIdBytes) throw bad("bad account id length");
  let accountId;
  try {
    accountId = fatalUtf8.decode(take(idLen, "account id"));
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    throw bad("account id is not UTF-8");
  }
  const amounts = [];
  for (let j = 0; j < k; j++) amounts.push(readUint(take(8, "amount")));
  const blindings = [];
  for (let j = 0; j < k; j++) {
    const s = readUint(take(32, "blinding"), true);
    if (s >= R) throw bad("inclusion proof blinding: non-canonical scalar (>= r)");
    blindings.push(s);
  }
  const salt = take(SALT_BYTES, "salt").slice();
  const path = [];
  for (let l = 0; l < depth; l++) {
    path.push({
      commitments: take(k * POINT_BYTES, "path commitments").slice(),
      hash: take(HASH_BYTES, "path hash").slice(),
    });
  }
  if (pos !== data.length) throw bad(`${data.length - pos} trailing bytes`);
  return { epoch, bundleHash, k, depth, leafIndex, accountId, amounts, blindings, salt, path };
}

// ------------------------------------------------------------ strict fields

function typeName(v) {
  if (v === null) return "null";
  if (v instanceof Map) return "object";
  if (Array.isArray(v)) return "array";
  if (v instanceof JsonFloat) return "float";
  if (typeof v === "bigint") return "int";
  if (typeof v === "boolean") return "bool";
  return "str";
}

/** Typed field access for one decoded JSON document: each failure names the
 * field as a JSON path ($.tree.depth) and raises `fail(reason)`. */
class Fields {
  constructor(fail) {
    this.fail = fail;
  }
  object(v, at, keys, optional = []) {
    if (!(v instanceof Map)) throw this.fail(`Expected \`object\`, got \`${typeName(v)}\` - at \`${at}\``);
    for (const key of v.keys()) {
      if (!keys.includes(key) && !optional.includes(key)) {
        throw this.fail(`Object contains unknown field \`${key}\` - at \`${at}\``);
      }
    }
    for (const key of keys) {
      if (!v.has(key)) throw this.fail(`Object missing required field \`${key}\` - at \`${at}\``);
    }
    return v;
  }
  int(v, at, lo, hi) {
    if (typeof v !== "bigint") throw this.fail(`Expected \`int\`, got \`${typeName(v)}\` - at \`${at}\``);
    if (v < lo || v > hi) throw this.fail(`Expected \`int\` in [${lo}, ${hi}] - at \`${at}\``);
    return v;
  }
  str(v, at, { pattern = null, maxLength = Infinity, minLength = 0 } = {}) {
    if (typeof v !== "string") throw this.fail(`Expected \`str\`, got \`${typeName(v)}\` - at \`${at}\``);
    const length = [...v].length;
    if (length > maxLength || length < minLength) {
      throw this.fail(`Expected \`str\` of length in [${minLength}, ${maxLength}] - at \`${at}\``);
    }
    if (pattern && !new RegExp(`^(?:${pattern})$`, "u").test(v)) {
      throw this.fail(`Expected \`str\` matching ${pattern} - at \`${at}\``);
    }
    return v;
  }
  bool(v, at) {
    if (typeof v !== "boolean") throw this.fail(`Expected \`bool\`, got \`${typeName(v)}\` - at \`${at}\``);
    return v;
  }
  array(v, at, minLength, maxLength) {
    if (!Array.isArray(v)) throw this.fail(`Expected \`array\`, got \`${typeName(v)}\` - at \`${at}\``);
    if (v.length < minLength || v.length > maxLength) {
      throw this.fail(`Expected \`array\` of length in [${minLength}, ${maxLength}] - at \`${at}\``);
    }
    return v;
  }
  literal(v, at, want) {
    if (typeName(v) !== typeName(want) || v !== want) {
      throw this.fail(`Invalid value ${canonicalOrType(v)} - at \`${at}\``);
    }
    return v;
  }
}

function canonicalOrType(v) {
  try {
    return canonical(v);
  } catch {
    return typeName(v);
  }
}

const HEX32 = "[0-9a-f]{64}";
const HEX48 = "[0-9a-f]{96}";
const U63 = (1n << 63n) - 1n;
const U64 = (1n << 64n) - 1n;
const U128 = (1n << 128n) - 1n;
const U256 = (1n << 256n) - 1n;

function decodeJson(text, fail, options = {}) {
  try {
    return parse(text, options);
  } catch (e) {
    if (e instanceof JsonError) throw fail(e.message);
    throw e;
  }
}

// ------------------------------------------------------------ the document

/** The inclusion JSON (version 2), decoded strictly [inclusion-format]; the
 * enclosed manifest must be the bundle the proof names [inclusion-bundle]. */
export async function parseDocument(text, { subtle = globalThis.crypto.subtle } = {}) {
  const bad = (why) => new VerificationError("inclusion-format", why);
  if (utf8.encode(text).length > CONSTANTS.maxDocumentBytes) {
    throw bad(`larger than ${CONSTANTS.maxDocumentBytes} bytes`);
  }
  const f = new Fields(bad);
  const doc = f.object(decodeJson(text, bad), "$",
    ["format", "version", "epoch", "account_id", "manifest", "signature", "proof"],
    ["bundle_hash", "root_hash", "amounts"]);
  f.literal(doc.get("format"), "$.format", "zksolv-inclusion");
  f.literal(doc.get("version"), "$.version", 2n);
  const epoch = f.int(doc.get("epoch"), "$.epoch", 0n, U63);
  const accountId = f.str(doc.get("account_id"), "$.account_id",
    { minLength: 1, maxLength: CONSTANTS.maxIdBytes });
  const manifestText = f.str(doc.get("manifest"), "$.manifest", { maxLength: CONSTANTS.maxManifestBytes });
  const signature = fromHex(f.str(doc.get("signature"), "$.signature", { pattern: "[0-9a-f]{128}" }));
  const proofHex = f.str(doc.get("proof"), "$.proof",
    { pattern: "(?:[0-9a-f]{2})+", maxLength: 2 * CONSTANTS.maxProofBytes });
  // Readable copies (optional): each must equal what the proof bytes and the
  // signed manifest say [inclusion-labels], checked in verifyInclusion.
  const claimed = {
    bundleHash: doc.has("bundle_hash") && doc.get("bundle_hash") !== null
      ? f.str(doc.get("bundle_hash"), "$.bundle_hash", { pattern: HEX32 }) : null,
    rootHash: doc.has("root_hash") && doc.get("root_hash") !== null
      ? f.str(doc.get("root_hash"), "$.root_hash", { pattern: HEX32 }) : null,
    amounts: doc.has("amounts") && doc.get("amounts") !== null
      ? f.array(doc.get("amounts"), "$.amounts", 0, 510).map((v, i) => {
        const at = `$.amounts[${i}]`;
        const a = f.object(v, at, ["symbol", "decimals", "proof_decimals", "proof_units", "tokens"]);
        return {
          symbol: f.str(a.get("symbol"), `${at}.symbol`, { maxLength: 21 }),
          decimals: Number(f.int(a.get("decimals"), `${at}.decimals`, 0n, 30n)),
          proofDecimals: Number(f.int(a.get("proof_decimals"), `${at}.proof_decimals`, 0n, 30n)),
          proofUnits: f.int(a.get("proof_units"), `${at}.proof_units`, 0n, U64),
          tokens: f.str(a.get("tokens"), `${at}.tokens`, { maxLength: 64 }),
        };
      }) : null,
  };
  const proof = parseProofBytes(fromHex(proofHex));
  if (proof.epoch !== epoch || proof.accountId !== accountId) {
    throw bad("labels disagree with the proof bytes");
  }
  const manifest = utf8.encode(manifestText);
  if (!equalBytes(await sha256(subtle, manifest), proof.bundleHash)) {
    throw new VerificationError("inclusion-bundle",
      "the enclosed manifest is not the bundle the proof was issued for");
  }
  return { proof, manifest, signature, claimed };
}

// ------------------------------------------------------------ the manifest

/** Leaves per range-proof shard (circuits/epoch.py shard_leaves_for). */
export function shardLeavesFor(depth, k) {
  const width = (k - 1).toString(2).length - (k === 1 ? 1 : 0); // (k-1).bit_length()
  const per = Math.max(1, Math.floor(CONSTANTS.shardValues / 2 ** width));
  return Math.min(per, 2 ** depth);
}

// Ed25519 keys and signatures are checked against zksolv's rule before
// WebCrypto sees them (docs/holder-page.md, zksolv/core/ed25519.py): the key
// is a canonical encoding (y < p) of a point of the curve that is not one of
// the eight of small order, whose y are 1, p - 1, 0 and ±ED_Y8; S < L.
const ED_P = (1n << 255n) - 19n;
const ED_D = (ED_P - 121665n) * modPow(121666n, ED_P - 2n, ED_P) % ED_P;
const ED_L = (1n << 252n) + 27742317777372353535851937790883648493n;
const ED_Y8 = 0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n; // order 8
const ED_SMALL_Y = new Set([1n, ED_P - 1n, 0n, ED_Y8, ED_P - ED_Y8]);

function modPow(base, exp, mod) {
  let r = 1n;
  for (base %= mod; exp > 0n; exp >>= 1n, base = base * base % mod) if (exp & 1n) r = r * base % mod;
  return r;
}

/** Why 32 bytes are not a usable operator key, or null if they are. */
export function ed25519KeyProblem(key) {
  const y = readUint(key, true) & ((1n << 255n) - 1n);
  if (y >= ED_P) return "non-canonical Ed25519 point encoding (y >= p)";
  if (ED_SMALL_Y.has(y)) {
    return "small-order Ed25519 public key (it signs any message: R = identity, S = 0 verifies under it)";
  }
  const u = (y * y - 1n) % ED_P;
  const v = (ED_D * y * y + 1n) % ED_P;
  // x^2 = u/v must be a square (Euler's criterion; u != 0 here)
  if (modPow(u * modPow(v, ED_P - 2n, ED_P) % ED_P, (ED_P - 1n) / 2n, ED_P) !== 1n) {
    return "not an Ed25519 point (no x for this y)";
  }
  return null;
}

/** Ed25519 (RFC 8032) through WebCrypto: true or false, or null when this
 * browser has no Ed25519. */
async function ed25519Verify(subtle, publicKey, signature, message) {
  let key;
  try {
    key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    if (e && e.name === "NotSupportedError") return null;
    return false; // not a valid public key
  }
  try {
    return await subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (e) {
    if (e && e.name === "NotSupportedError") return null;
    return false;
  }
}

/** What `check_manifest` checks (zksolv/verifier/bundle.py), in its order:
 * manifest-format, manifest-canonical, suite-mismatch, signature,
 * operator-mismatch, bundle-shape. `raw` and `signature` are bytes. In
 * version 6 it also runs the offline checks of the evidence (reserves.js,
 * and with `ownership` the holders' signatures, ownership.js: about 8 ms a
 * signature), reporting the first failure as `reservesProblem`, for the
 * verdict to give after the proofs. */
export async function checkManifest(raw, signature, { operator = null, subtle = globalThis.crypto.subtle, ownership = true } = {}) {
  const bad = (why) => new VerificationError("manifest-format", `manifest.json: ${why}`);
  if (raw.length > CONSTANTS.maxManifestBytes) throw bad(`larger than ${CONSTANTS.maxManifestBytes} bytes`);
  let text;
  try {
    text = fatalUtf8.decode(raw);
  } catch {
    throw bad("not UTF-8");
  }
  const f = new Fields(bad);
  // A repeated key is left to the canonical check below [manifest-canonical].
  const m = f.object(decodeJson(text, bad, { duplicates: "last" }), "$", [
    "format", "version", "suite", "statements", "operator", "epoch", "timestamp",
    "prev_bundle_hash", "prev_epoch", "price_decimals", "rounding", "assets", "tree",
    "reveal_totals", "totals", "files",
  ], ["chain_reserves"]);
  f.literal(m.get("format"), "$.format", "zksolv-bundle");
  // version 6: chain_reserves present; then version 5: a borrowable asset
  // (docs/bundle-format.md). A version 6 bundle is otherwise the version 4
  // or 5 bundle it would be, by its assets.
  const version = m.get("version");
  const chain = version === BigInt(CONSTANTS.bundleVersionChain);
  const rawAssets = m.get("assets");
  const margin = chain
    ? Array.isArray(rawAssets) && rawAssets.some((a) => a instanceof Map && a.has("borrowable"))
    : version === BigInt(CONSTANTS.bundleVersionMargin);
  if (!chain) {
    f.literal(version, "$.version", BigInt(margin ? CONSTANTS.bundleVersionMargin : CONSTANTS.bundleVersion));
  }
  if (chain !== m.has("chain_reserves")) {
    throw bad(`version ${canonicalOrType(version)} ${m.has("chain_reserves") ? "with" : "without"} chain_reserves: `
      + `version ${CONSTANTS.bundleVersionChain} is exactly the bundle with them`);
  }
  f.literal(m.get("rounding"), "$.rounding", margin ? CONSTANTS.roundingMargin : CONSTANTS.rounding);
  const suite = f.object(m.get("suite"), "$.suite", ["circuits", "generators", "group", "hash", "range"]);
  for (const [key, v] of suite) f.str(v, `$.suite.${key}`, { maxLength: 128 });
  const statements = f.object(m.get("statements"), "$.statements",
    ["leaf_range", "solvency_asset", "solvency_valued",
      ...(margin ? Object.keys(CONSTANTS.marginStatements) : [])]);
  for (const [key, v] of statements) {
    const s = f.object(v, `$.statements.${key}`, ["id", "bits"]);
    f.str(s.get("id"), `$.statements.${key}.id`, { maxLength: 128 });
    f.int(s.get("bits"), `$.statements.${key}.bits`, 0n, 255n);
  }
  const operatorHex = f.str(m.get("operator"), "$.operator", { pattern: HEX32 });
  const epoch = f.int(m.get("epoch"), "$.epoch", 0n, U63);
  const timestamp = f.int(m.get("timestamp"), "$.timestamp", 0n, U63);
  const prevBundleHash = m.get("prev_bundle_hash") === null
    ? null : f.str(m.get("prev_bundle_hash"), "$.prev_bundle_hash", { pattern: HEX32 });
  const prevEpoch = m.get("prev_epoch") === null ? null : f.int(m.get("prev_epoch"), "$.prev_epoch", 0n, U63);
  const priceDecimals = f.int(m.get("price_decimals"), "$.price_decimals", 0n, 18n);
  const assets = f.array(m.get("assets"), "$.assets", 1, 255).map((v, i) => {
    const at = `$.assets[${i}]`;
    const a = f.object(v, at, ["symbol", "decimals", "proof_decimals", "price", "haircut_bps", "reserves"],
      margin ? ["borrowable"] : []);
    const asset = {
      symbol: f.str(a.get("symbol"), `${at}.symbol`, { pattern: CONSTANTS.symbolPattern }),
      decimals: Number(f.int(a.get("decimals"), `${at}.decimals`, 0n, 30n)),
      proofDecimals: Number(f.int(a.get("proof_decimals"), `${at}.proof_decimals`, 0n, 30n)),
      price: f.int(a.get("price"), `${at}.price`, 0n, U64),
      haircutBps: Number(f.int(a.get("haircut_bps"), `${at}.haircut_bps`, 0n, BigInt(CONSTANTS.haircutScale))),
      // base units, exact; the statements use them rounded down to proof units
      reserves: f.int(a.get("reserves"), `${at}.reserves`, 0n, U256),
      borrowable: a.has("borrowable") ? f.bool(a.get("borrowable"), `${at}.borrowable`) : false,
    };
    // only true is written: false is not canonical
    if (a.has("borrowable") && !asset.borrowable) {
      throw new VerificationError("manifest-canonical", "manifest.json is not in canonical form");
    }
    if (asset.proofDecimals > asset.decimals) {
      throw bad(`proof_decimals ${asset.proofDecimals} exceeds decimals ${asset.decimals} - at \`${at}\``);
    }
    if (asset.reserves / 10n ** BigInt(asset.decimals - asset.proofDecimals) > U64) {
      throw bad(`reserves in proof units out of range (must be < 2^64) - at \`${at}\``);
    }
    return asset;
  });
  const t = f.object(m.get("tree"), "$.tree",
    ["depth", "leaves", "shard_leaves", "shards", "root_hash", "root_commitments"]);
  const depth = Number(f.int(t.get("depth"), "$.tree.depth", BigInt(CONSTANTS.minDepth), BigInt(CONSTANTS.maxDepth)));
  const leaves = f.int(t.get("leaves"), "$.tree.leaves", 0n, U64);
  const shardLeaves = f.int(t.get("shard_leaves"), "$.tree.shard_leaves", 0n, (1n << 32n) - 1n);
  const shards = f.int(t.get("shards"), "$.tree.shards", 0n, U64);
  const rootHash = f.str(t.get("root_hash"), "$.tree.root_hash", { pattern: HEX32 });
  const rootCommitments = f.array(t.get("root_commitments"), "$.tree.root_commitments", 1, 510)
    .map((c, i) => f.str(c, `$.tree.root_commitments[${i}]`, { pattern: HEX48 }));
  const revealTotals = f.bool(m.get("reveal_totals"), "$.reveal_totals");
  const totals = m.get("totals");
  if (totals !== null) {
    f.array(totals, "$.totals", 0, 255).forEach((v, i) => {
      const e = f.object(v, `$.totals[${i}]`, ["liabilities", "root_blinding"]);
      f.int(e.get("liabilities"), `$.totals[${i}].liabilities`, 0n, U128);
      f.str(e.get("root_blinding"), `$.totals[${i}].root_blinding`, { pattern: HEX32 });
    });
  }
  const files = f.object(m.get("files"), "$.files",
    ["leaves.bin", "range.bin", "solvency.bin", ...(margin ? ["margin.bin"] : [])]);
  if (margin !== assets.some((a) => a.borrowable)) {
    throw bad(`version ${m.get("version")} with ${margin ? "no" : "a"} borrowable asset: version `
      + `${CONSTANTS.bundleVersionMargin} is exactly the bundle with one`);
  }
  if (margin && revealTotals) throw bad("reveal_totals: a version 5 bundle reveals no totals");
  const fileList = [];
  for (const [name, v] of files) {
    const e = f.object(v, `$.files.${name}`, ["sha256", "bytes"]);
    f.str(e.get("sha256"), `$.files.${name}.sha256`, { pattern: HEX32 });
    fileList.push({ name, bytes: f.int(e.get("bytes"), `$.files.${name}.bytes`, 0n, U63) });
  }
  // The link (circuits/epoch.py chain_link_problem): prev_epoch is given
  // exactly when the previous bundle's hash is, and is before this epoch.
  if (prevBundleHash !== null && prevEpoch === null) {
    throw bad("prev_epoch is null but prev_bundle_hash is set: a link names the epoch it links to");
  }
  if (prevBundleHash === null && prevEpoch !== null) {
    throw bad(`prev_epoch is ${prevEpoch} but prev_bundle_hash is null: the first bundle of a chain links to no epoch`);
  }
  if (prevEpoch !== null && prevEpoch >= epoch) throw bad(`prev_epoch ${prevEpoch} is not before epoch ${epoch}`);
  // version 6: the evidence's shape (its sums are checked below)
  const evidence = chain ? parseChainReserves(m.get("chain_reserves"), f) : null;

  if (canonical(m) + "\n" !== text) {
    throw new VerificationError("manifest-canonical", "manifest.json is not in canonical form");
  }
  const speaks = { ...CONSTANTS.statements, ...(margin ? CONSTANTS.marginStatements : {}) };
  const sameSuite = Object.entries(CONSTANTS.suite).every(([k, v]) => suite.get(k) === v)
    && Object.entries(speaks).every(([k, v]) =>
      statements.get(k).get("id") === v.id && statements.get(k).get("bits") === BigInt(v.bits));
  if (!sameSuite) throw new VerificationError("suite-mismatch", "suite or statement ids differ from this verifier's");

  const bundleHash = await sha256(subtle, raw);
  const message = concat([utf8.encode(CONSTANTS.signatureTag), bundleHash]);
  const keyProblem = ed25519KeyProblem(fromHex(operatorHex));
  if (keyProblem !== null) {
    throw new VerificationError("signature", `manifest.operator is not a usable Ed25519 key: ${keyProblem}`);
  }
  const ok = signature.length === SIGNATURE_BYTES && readUint(signature.subarray(32), true) < ED_L
    ? await ed25519Verify(subtle, fromHex(operatorHex), signature, message)
    : false;
  if (ok === false) {
    throw new VerificationError("signature", "manifest.sig is not the operator key's signature of this manifest");
  }
  if (operator !== null && operatorHex !== operator) {
    throw new VerificationError("operator-mismatch",
      `bundle is signed by operator ${operatorHex}, not the pinned ${operator}`);
  }
  const symbols = assets.map((a) => a.symbol);
  symbols.forEach((s, i) => {
    if (symbols.indexOf(s) !== i) {
      throw new VerificationError("manifest-format", `manifest.assets[${i}].symbol: duplicate asset '${s}'`);
    }
  });
  // committed columns: each asset's credit, then its debt if it is borrowable
  const columns = assets.flatMap((a) => (a.borrowable
    ? [{ asset: a, debt: false }, { asset: a, debt: true }] : [{ asset: a, debt: false }]));
  const k = columns.length;
  if (shardLeaves !== BigInt(shardLeavesFor(depth, k))) {
    throw new VerificationError("bundle-shape", "shard size is not the one the circuit fixes");
  }
  if (leaves !== 1n << BigInt(depth)) throw new VerificationError("bundle-shape", "leaves != 2^depth");
  if (shards !== leaves / shardLeaves) throw new VerificationError("bundle-shape", "shards != leaves / shard_leaves");
  if (rootCommitments.length !== k) {
    throw new VerificationError("bundle-shape", "one root commitment per column expected");
  }
  if (revealTotals) {
    if (totals === null || totals.length !== k) {
      throw new VerificationError("manifest-format", "manifest.totals: one entry per asset expected");
    }
    totals.forEach((e, j) => {
      if (readUint(fromHex(e.get("root_blinding")), true) >= R) {
        throw new VerificationError("manifest-format",
          `manifest.totals[${j}].root_blinding: non-canonical scalar (>= r)`);
      }
    });
  } else if (totals !== null) {
    throw new VerificationError("manifest-format", "manifest.totals present but reveal_totals is false");
  }
  return {
    epoch, timestamp, priceDecimals: Number(priceDecimals), assets, columns, depth,
    operator: operatorHex, margin,
    prevEpoch, prevBundleHash, gap: declaredGap(epoch, prevEpoch),
    rootHash, rootCommitments, bundleHash: toHex(bundleHash),
    shardLeaves: Number(shardLeaves), shards,
    // revealed totals: liabilities (proof units) and the root blinding
    totals: totals === null ? null : totals.map((e) => ({
      liabilities: e.get("liabilities"), rootBlinding: readUint(fromHex(e.get("root_blinding")), true),
    })),
    files: fileList,
    version: Number(version),
    // what the reserves rest on (reserves.js): the evidence (version 6, else
    // null), what the page shows of it, and the first offline check of it
    // that fails ({tag, detail}, or null), which `zksolv verify` reports after
    // the proofs, and so does the verdict
    evidence,
    reserves: reservesView(assets, evidence),
    reservesProblem: evidence === null ? null
      : reservesProblem(evidence, assets) ?? (ownership ? ownershipProblem(evidence, epoch, operatorHex) : null),
    signatureChecked: ok === true,
    signature: ok === null
      ? "not checked: this browser has no Ed25519 in WebCrypto (run the CLI to check it)"
      : "checked",
  };
}

/** The epochs a header declares were not proven solvent (it links to an
 * epoch before epoch - 1), as { first, last } (BigInt, inclusive), or null. */
export function declaredGap(epoch, prevEpoch) {
  if (prevEpoch === null || prevEpoch + 1n >= epoch) return null;
  return { first: prevEpoch + 1n, last: epoch - 1n };
}

/** What a bundle's header says it links to, in words: word for word the
 * chain line of `zksolv inclusion verify` (cli/epoch.py holder_link_text).
 * The page does not fetch the bundle the link names, so it says the link is
 * unchecked: an operator could name epoch - 1 and a made-up hash to hide a
 * gap, which only `zksolv verify --chain` finds. */
export function linkText(report) {
  if (report.prevEpoch === null) return "first bundle of its chain (links to no earlier epoch)";
  let text = `links to epoch ${report.prevEpoch} (bundle ${report.prevBundleHash}) as its signed header states`;
  const gap = report.gap;
  if (gap !== null) {
    text += gap.first === gap.last
      ? `; epoch ${gap.first} was NOT proven solvent`
      : `; epochs ${gap.first}..${gap.last} were NOT proven solvent`;
  }
  return text + "; link not checked here (zksolv verify --chain checks it)";
}

// -------------------------------------------------------------- the bundle

/** Fetch a bundle's manifest.json and manifest.sig from `path`, which must
 * be on the page's own origin. */
export async function fetchBundle(path, { base, fetch = globalThis.fetch } = {}) {
  if (typeof path !== "string" || path.trim() === "") throw new InputError("bundle", "no bundle path given");
  if (/^[a-z][a-z0-9+.-]*:|^\/\/|\\/i.test(path.trim())) {
    throw new InputError("bundle", "give a path on this site (like bundles/42), not an address");
  }
  const dir = new URL(path.trim().replace(/\/*$/, "/"), base);
  if (dir.origin !== new URL(base).origin) throw new InputError("bundle", "the bundle must be on this site");
  const get = async (name, limit, tag) => {
    const url = new URL(name, dir);
    let res;
    try {
      res = await fetch(url.href, { credentials: "omit", cache: "no-store", redirect: "error" });
    } catch (e) {
      throw new VerificationError(tag, `${url.pathname}: could not be fetched (${e.message || e})`);
    }
    if (!res.ok) throw new VerificationError(tag, `${url.pathname}: HTTP ${res.status}`);
    const body = new Uint8Array(await res.arrayBuffer());
    if (body.length > limit) throw new VerificationError(tag, `${url.pathname}: larger than ${limit} bytes`);
    return body;
  };
  const raw = await get("manifest.json", CONSTANTS.maxManifestBytes, "manifest-missing");
  const signature = await get("manifest.sig", SIGNATURE_BYTES, "signature");
  if (signature.length !== SIGNATURE_BYTES) {
    throw new VerificationError("signature", `manifest.sig: expected ${SIGNATURE_BYTES} bytes`);
  }
  return { raw, signature, url: dir.href };
}

// ------------------------------------------------------------ the checking

const G = G1.fromBytes(fromHex(CONSTANTS.g));
const H = G1.fromBytes(fromHex(CONSTANTS.h));

/** [leaf opening] v*g + gamma*h. */
export function commit(value, blinding) {
  return linearCombination(G, value, H, blinding);
}

/** [leaf-hash] H(LEAF_TAG || u64 epoch || u16 len(id) || id || salt). */
export async function leafHash(epoch, accountId, salt, { subtle = globalThis.crypto.subtle } = {}) {
  const ident = utf8.encode(accountId);
  return sha256(subtle, concat([utf8.encode(CONSTANTS.leafTag), bigEndian(epoch, 8), bigEndian(ident.length, 2), ident, salt]));
}

/** [tree-hash] H(NODE_TAG || C_left.. || h_left || C_right.. || h_right). */
export async function nodeHash(leftC, leftH, rightC, rightH, { subtle = globalThis.crypto.subtle } = {}) {
  return sha256(subtle, concat([utf8.encode(CONSTANTS.nodeTag), leftC, leftH, rightC, rightH]));
}

const encodeAll = (points) => concat(points.map((p) => p.toBytes()));

/** (C_root encodings, h_root) reached from the opening through the path;
 * [inclusion-encoding] if a sibling commitment does not decode. */
export async function foldPath(proof, { subtle = globalThis.crypto.subtle, onLevel = null } = {}) {
  const { k } = proof;
  let cur = proof.amounts.map((v, j) => commit(v, proof.blindings[j]));
  let curEnc = encodeAll(cur);
  let curHash = await leafHash(proof.epoch, proof.accountId, proof.salt, { subtle });
  for (let level = 0; level < proof.path.length; level++) {
    const step = proof.path[level];
    const sib = [];
    for (let j = 0; j < k; j++) {
      try {
        sib.push(G1.fromBytes(step.commitments.subarray(j * POINT_BYTES, (j + 1) * POINT_BYTES),
          { what: `path level ${level} commitment ${j}` }));
      } catch (e) {
        if (e instanceof FormatError) throw new VerificationError("inclusion-encoding", e.message);
        throw e;
      }
    }
    cur = cur.map((c, j) => c.add(sib[j])); // [tree-sum], commutative
    if ((proof.leafIndex >>> level) & 1) {
      curHash = await nodeHash(step.commitments, step.hash, curEnc, curHash, { subtle });
    } else {
      curHash = await nodeHash(curEnc, curHash, step.commitments, step.hash, { subtle });
    }
    curEnc = encodeAll(cur);
    if (onLevel) onLevel(level + 1, proof.path.length);
  }
  return { commitments: curEnc, hash: curHash };
}

/** Proof units as the exporter writes them (zksolv.units.format_tokens):
 * every decimal shown, 1250000 with 6 decimals is "1.250000". */
export function exactTokens(amount, decimals) {
  const s = amount.toString().padStart(decimals + 1, "0");
  if (decimals === 0) return s;
  return `${s.slice(0, s.length - decimals)}.${s.slice(s.length - decimals)}`;
}

/** Proof units as tokens: 1250000 with 6 decimals is "1.25". */
export function formatTokens(amount, decimals) {
  const s = amount.toString().padStart(decimals + 1, "0");
  if (decimals === 0) return s;
  const whole = s.slice(0, s.length - decimals);
  const frac = s.slice(s.length - decimals).replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : whole;
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** The holder's check. Give `documentText` (the inclusion JSON), the
 * holder's own `accountId`, and exactly one anchor: `bundle` (the fetched
 * {raw, signature} of the bundle's manifest) or `bundleHash` (64 hex
 * digits, as the operator publishes it). `operator` (64 hex digits)
 * optionally pins the operator key. Returns the report, or throws
 * VerificationError (with the CLI's tag) or InputError. */
export async function verifyInclusion({
  documentText, accountId, bundle = null, bundleHash = null, operator = null,
  subtle = globalThis.crypto.subtle, onLevel = null,
}) {
  const started = globalThis.performance ? performance.now() : Date.now();
  if (typeof accountId !== "string" || accountId === "") throw new InputError("account", "give your account id");
  if ((bundle === null) === (bundleHash === null)) {
    throw new InputError("bundle", "give exactly one of a bundle path or a bundle hash");
  }
  if (bundleHash !== null) {
    bundleHash = bundleHash.trim().toLowerCase();
    if (!HEX_HASH.test(bundleHash)) throw new InputError("bundle hash", "a bundle hash is 64 hex digits");
  }
  if (operator !== null) {
    operator = operator.trim().toLowerCase();
    if (!HEX_HASH.test(operator)) throw new InputError("operator", "an operator public key is 64 hex digits (32 bytes)");
    const keyProblem = ed25519KeyProblem(fromHex(operator));
    if (keyProblem !== null) throw new InputError("operator", `not a usable operator public key: ${keyProblem}`);
  }
  const checks = [];
  const { proof, manifest, signature, claimed } = await parseDocument(documentText, { subtle });
  checks.push("inclusion-format");
  if (proof.accountId !== accountId) {
    throw new VerificationError("inclusion-account",
      `proof is for account ${JSON.stringify(proof.accountId)}, not ${JSON.stringify(accountId)}`);
  }
  checks.push("inclusion-account");
  // The order of the checks is docs/epoch.md "The holder's check", the
  // same in both modes and in `zksolv inclusion verify`.
  // 4. the anchor: the fetched bundle's manifest, or the given hash
  let anchor = bundleHash;
  let anchorEpoch = "";
  if (bundle !== null) {
    // its holders' signatures are recovered once, in the enclosed manifest
    // (the same bytes, by the hash check of step 5)
    const fetched = await checkManifest(bundle.raw, bundle.signature, { operator, subtle, ownership: false });
    anchor = fetched.bundleHash;
    anchorEpoch = ` (epoch ${fetched.epoch})`;
  }
  // 5. the proof was issued for that bundle
  if (toHex(proof.bundleHash) !== anchor) {
    throw new VerificationError("inclusion-bundle",
      `proof was issued for bundle ${toHex(proof.bundleHash)} (epoch ${proof.epoch}), not ${anchor}${anchorEpoch}`);
  }
  // 6. the enclosed manifest and the enclosed signature, in both modes
  let parsed;
  try {
    parsed = await checkManifest(manifest, signature, { operator, subtle });
  } catch (e) {
    if (!(e instanceof VerificationError)) throw e;
    throw new VerificationError(e.check, `the manifest enclosed in the proof: ${e.detail}`);
  }
  // 7. the epoch is the manifest's
  if (parsed.epoch !== proof.epoch) {
    throw new VerificationError("inclusion-epoch", `proof is for epoch ${proof.epoch}, manifest is ${parsed.epoch}`);
  }
  checks.push("inclusion-bundle", "manifest-format", "manifest-canonical", "suite-mismatch",
    ...(parsed.signatureChecked ? ["signature"] : []),
    ...(operator !== null ? ["operator-mismatch"] : []),
    "bundle-shape", "inclusion-epoch");
  // [totals-opening] revealed totals open the root: C_root_j = L_j*g + gamma_j*h
  if (parsed.totals !== null) {
    parsed.totals.forEach((t, j) => {
      if (toHex(commit(t.liabilities, t.rootBlinding).toBytes()) !== parsed.rootCommitments[j]) {
        throw new VerificationError("totals-opening",
          `${parsed.assets[j].symbol}: published total does not open C_root`);
      }
    });
    checks.push("totals-opening");
  }
  if (parsed.columns.length !== proof.k || parsed.depth !== proof.depth) {
    throw new VerificationError("inclusion-shape", "assets or depth differ from the bundle");
  }
  checks.push("inclusion-shape");
  const top = await foldPath(proof, { subtle, onLevel });
  if (toHex(top.hash) !== parsed.rootHash || toHex(top.commitments) !== parsed.rootCommitments.join("")) {
    throw new VerificationError("inclusion-root", "path does not reach the bundle's root");
  }
  checks.push("leaf opening", "leaf-hash", "tree-sum", "tree-hash", "inclusion-encoding",
    "inclusion-root");
  // one entry per column: a debt (what the holder owes, version 5) is named
  // SYM.debt and has debt: true
  const amounts = parsed.columns.map(({ asset: a, debt }, j) => ({
    symbol: a.symbol + (debt ? ".debt" : ""), asset: a.symbol, debt,
    decimals: a.decimals, proofDecimals: a.proofDecimals,
    amount: proof.amounts[j], tokens: formatTokens(proof.amounts[j], a.proofDecimals),
  }));
  // [inclusion-labels] the readable copies, if the document carries them
  if (claimed.bundleHash !== null && claimed.bundleHash !== toHex(proof.bundleHash)) {
    throw new VerificationError("inclusion-labels", "bundle_hash differs from the proof bytes");
  }
  if (claimed.rootHash !== null && claimed.rootHash !== parsed.rootHash) {
    throw new VerificationError("inclusion-labels", "root_hash differs from the bundle's root");
  }
  if (claimed.amounts !== null) {
    const same = claimed.amounts.length === amounts.length && claimed.amounts.every((c, j) =>
      c.symbol === amounts[j].symbol && c.decimals === amounts[j].decimals
      && c.proofDecimals === amounts[j].proofDecimals && c.proofUnits === amounts[j].amount
      && c.tokens === exactTokens(amounts[j].amount, amounts[j].proofDecimals));
    if (!same) {
      throw new VerificationError("inclusion-labels", "the readable amounts differ from the proof "
        + "bytes and the signed manifest (symbols, order, decimals or amounts)");
    }
  }
  if (claimed.bundleHash !== null || claimed.rootHash !== null || claimed.amounts !== null) {
    checks.push("inclusion-labels");
  }
  const elapsed = (globalThis.performance ? performance.now() : Date.now()) - started;
  return {
    valid: true,
    accountId: proof.accountId,
    epoch: proof.epoch,
    timestamp: parsed.timestamp,
    assets: parsed.assets,
    priceDecimals: parsed.priceDecimals,
    totals: parsed.totals === null ? null : parsed.totals.map((t) => t.liabilities),
    shardLeaves: parsed.shardLeaves,
    shards: parsed.shards,
    files: parsed.files,
    manifestText: fatalUtf8.decode(bundle !== null ? bundle.raw : manifest),
    leafIndex: proof.leafIndex,
    depth: proof.depth,
    amounts,
    bundleHash: toHex(proof.bundleHash),
    operator: parsed.operator,
    operatorPinned: operator !== null,
    prevEpoch: parsed.prevEpoch,
    prevBundleHash: parsed.prevBundleHash,
    gap: parsed.gap,
    rootHash: parsed.rootHash,
    signature: parsed.signature,
    signatureChecked: parsed.signatureChecked,
    // what the reserves rest on (reserves.js reservesView), and the first
    // offline check of the evidence that fails (version 6), or null
    version: parsed.version,
    reserves: parsed.reserves,
    reservesProblem: parsed.reservesProblem,
    siblingsNonnegative: "unchecked",
    // version 5: every account's margin health is proven in the bundle; the
    // page does not verify those proofs (zksolv inclusion verify --bundle does)
    marginHealth: parsed.columns.length > parsed.assets.length ? "unchecked" : null,
    checks,
    elapsedMs: elapsed,
  };
}

/** The CLI command that checks what the page cannot (the sibling range proofs). */
export function fullCheckCommand(report, { bundleDir = "BUNDLE_DIR", proofFile = "proof.json" } = {}) {
  const q = (s) => (/^[A-Za-z0-9._\/-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
  return `zksolv inclusion verify ${q(proofFile)} --account ${q(report.accountId)} --bundle ${q(bundleDir)} --operator ${report.operator}`;
}
