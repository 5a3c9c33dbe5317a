// Whether the bundle is the one its operator posted for its epoch in the
// public registry the operator's site names (registry.json; docs/registry.md,
// docs/holder-page.md, *The public registry*). The page asks the named node
// by JSON-RPC (eth_call), with its ABI encoded and decoded here, strictly:
//   eth_chainId is the named chain id
//   registrantsOf(key, 0, 16), ... : the addresses that registered the key
//   bindingOf(address): the key, and its Ed25519 signature of the binding
//     statement (WebCrypto; forgeries are ignored)           [registry-binding]
//   entry(address, epoch) of each bound address: none       [registry-missing]
//     another bundle hash for this epoch (a split view)     [registry-mismatch]
// What it does not check: the registry's code, that the node answers from
// the real chain, and the posted chain around this epoch (registry-chain):
// `zksolv verify BUNDLE --rpc URL --registry ADDR` with the holder's own node.
// A node that cannot be asked leaves it "not checked here", never a failure.
// DOM-free (it runs under node too).

import { keccak256 } from "./keccak.js";

export const REGISTRY_FORMAT = "zksolv-site-registry";
export const MAX_RESPONSE_BYTES = 64 * 1024;
export const RPC_TIMEOUT_MS = 10000;
export const REGISTRANT_PAGE = 16;
export const MAX_REGISTRANTS = 64;
export const BINDING_LABEL = "zksolv/registry-binding/v1";
const U64 = (1n << 64n) - 1n;
const ED_L = (1n << 252n) + 27742317777372353535851937790883648493n;
const utf8 = new TextEncoder();

/** A node's answer that cannot be read. */
export class RpcError extends Error {}

export function hexBytes(text) {
  if (typeof text !== "string" || !/^0x(?:[0-9a-fA-F]{2})*$/.test(text)) throw new RpcError("not 0x-prefixed hex bytes");
  const out = new Uint8Array((text.length - 2) / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 + 2 * i, 4 + 2 * i), 16);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function selector(signature) {
  return keccak256(utf8.encode(signature)).slice(0, 4);
}

function word(value) {
  const out = new Uint8Array(32);
  let v = BigInt(value);
  for (let i = 31; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

function padLeft(bytes) {
  const out = new Uint8Array(32);
  out.set(bytes, 32 - bytes.length);
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** The calldata of a registry function. */
export function encodeCall(name, args) {
  const sig = {
    registrantsOf: "registrantsOf(bytes32,uint256,uint256)",
    bindingOf: "bindingOf(address)",
    entry: "entry(address,uint64)",
  }[name];
  if (!sig) throw new Error(`unknown function ${name}`);
  return concat([selector(sig), ...args.map((a) => (a instanceof Uint8Array ? padLeft(a) : word(a)))]);
}

function uint(data, at, max, what) {
  let v = 0n;
  for (let i = 0; i < 32; i++) v = (v << 8n) | BigInt(data[at + i]);
  if (v > max) throw new RpcError(`${what}: ${v} is out of range`);
  return v;
}

function exact(data, n, what) {
  if (data.length !== n) throw new RpcError(`${what}: ${data.length} bytes, expected ${n}`);
}

/** registrantsOf's address[]: one head word (offset 32), the length, then
 * exactly that many address words (12 zero bytes, then 20). */
export function decodeAddresses(data, maxCount = REGISTRANT_PAGE) {
  if (data.length < 64) throw new RpcError(`registrantsOf: ${data.length} bytes, expected at least 64`);
  if (uint(data, 0, U64, "registrantsOf offset") !== 32n) throw new RpcError("registrantsOf: the array's offset is not 32");
  const n = Number(uint(data, 32, BigInt(maxCount), "registrantsOf length"));
  exact(data, 64 + 32 * n, "registrantsOf");
  const out = [];
  for (let i = 0; i < n; i++) {
    const w = data.subarray(64 + 32 * i, 96 + 32 * i);
    if (w.subarray(0, 12).some((b) => b !== 0)) throw new RpcError(`registrantsOf: address ${i} is not an address word`);
    out.push(w.slice(12));
  }
  return out;
}

/** bindingOf: (bytes32 key, bytes32 sigR, bytes32 sigS, uint64 block). */
export function decodeBinding(data) {
  exact(data, 128, "bindingOf");
  return { key: data.slice(0, 32), signature: data.slice(32, 96), block: uint(data, 96, U64, "bindingOf block") };
}

function bool(data, at, what) {
  return uint(data, at, 1n, what) === 1n;
}

/** entry: the Entry struct, ten static words. bundleHash 0: none. */
export function decodeEntry(data) {
  exact(data, 320, "entry");
  return {
    bundleHash: data.slice(0, 32), rootHash: data.slice(32, 64), headerDigest: data.slice(64, 96),
    rootsDigest: data.slice(96, 128), prevBundleHash: data.slice(128, 160),
    prevEpoch: uint(data, 160, U64, "entry prevEpoch"), hasPrev: bool(data, 192, "entry hasPrev"),
    gap: bool(data, 224, "entry gap"), solvent: bool(data, 256, "entry solvent"),
    block: uint(data, 288, U64, "entry block"),
  };
}

/** registry.json, strictly: { format, registry, rpc, chain_id }. */
export function parseSiteRegistry(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RpcError("registry.json is not JSON");
  }
  const keys = ["chain_id", "format", "registry", "rpc"];
  if (!v || typeof v !== "object" || Array.isArray(v) || Object.keys(v).sort().join() !== keys.join()) {
    throw new RpcError(`registry.json: exactly the keys ${keys.join(", ")}`);
  }
  if (v.format !== REGISTRY_FORMAT) throw new RpcError(`registry.json: format is not ${REGISTRY_FORMAT}`);
  if (typeof v.registry !== "string" || !/^0x[0-9a-f]{40}$/.test(v.registry)) throw new RpcError("registry.json: registry is not a lowercase 0x address");
  let url;
  try {
    url = new URL(v.rpc);
  } catch {
    throw new RpcError("registry.json: rpc is not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RpcError("registry.json: rpc is not http or https");
  if (!Number.isSafeInteger(v.chain_id) || v.chain_id < 1) throw new RpcError("registry.json: chain_id is not a positive integer");
  return { registry: v.registry, rpc: v.rpc, chainId: BigInt(v.chain_id) };
}

/** The command that checks posting with the holder's own node. */
export function registryCommand(bundleDir, registry) {
  return `zksolv verify ${bundleDir || "BUNDLE"} --rpc URL --registry ${registry}`;
}

/** One JSON-RPC request, bounded in time and in the answer's size. */
export async function rpcCall(url, method, params, { fetch = globalThis.fetch, timeoutMs = RPC_TIMEOUT_MS } = {}) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const r = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "omit", cache: "no-store",
      referrerPolicy: "no-referrer", signal: abort.signal,
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    if (!r.ok) throw new RpcError(`${method}: HTTP ${r.status}`);
    const reader = r.body.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_RESPONSE_BYTES) {
        reader.cancel();
        throw new RpcError(`${method}: the answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
      }
      chunks.push(value);
    }
    let doc;
    try {
      doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(concat(chunks)));
    } catch {
      throw new RpcError(`${method}: the answer is not JSON`);
    }
    if (!doc || typeof doc !== "object" || doc.error !== undefined || typeof doc.result !== "string") {
      throw new RpcError(`${method}: ${doc && doc.error ? `error ${JSON.stringify(doc.error).slice(0, 200)}` : "no result"}`);
    }
    return doc.result;
  } catch (e) {
    if (e instanceof RpcError) throw e;
    throw new RpcError(e && e.name === "AbortError" ? `${method}: no answer in ${timeoutMs / 1000} s`
      : `${method}: ${e && e.message ? e.message : e}`);
  } finally {
    clearTimeout(timer);
  }
}

/** The binding statement: label || u256(chain id) || registry || operator. */
export function bindingStatement(chainId, registry, operator) {
  return concat([utf8.encode(BINDING_LABEL), word(chainId), registry, operator]);
}

async function ed25519Verify(subtle, publicKey, signature, message) {
  let key;
  try {
    key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    return e && e.name === "NotSupportedError" ? null : false;
  }
  try {
    return await subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (e) {
    return e && e.name === "NotSupportedError" ? null : false;
  }
}

function sBelowL(signature) {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]);
  return s < ED_L;
}

/**
 * Ask the named node. `site` from parseSiteRegistry; `operator` the
 * bundle's operator key (64 hex digits, checked usable by the manifest's
 * check), `epoch` a BigInt, `bundleHash` 64 hex digits. Resolves, never
 * rejects, with { status, ... }:
 *   posted   { by: "0x…" }              this bundle is posted for its epoch
 *   mismatch { by, posted: hex }         another bundle is posted (a split view)
 *   missing                              no bound address posted for the epoch
 *   unbound                              no address is bound to the key
 *   unchecked { reason }                 the node could not be asked or read
 */
export async function checkRegistry(site, { operator, epoch, bundleHash, fetch = globalThis.fetch,
  subtle = globalThis.crypto.subtle, timeoutMs = RPC_TIMEOUT_MS } = {}) {
  const ask = (method, params) => rpcCall(site.rpc, method, params, { fetch, timeoutMs });
  const call = async (name, args) => hexBytes(await ask("eth_call",
    [{ to: site.registry, data: `0x${toHex(encodeCall(name, args))}` }, "latest"]));
  try {
    const chainText = await ask("eth_chainId", []);
    if (!/^0x[0-9a-fA-F]{1,16}$/.test(chainText)) throw new RpcError("eth_chainId: not a quantity");
    if (BigInt(chainText) !== site.chainId) {
      return { status: "unchecked", reason: `the node at ${site.rpc} is of chain ${BigInt(chainText)}, not ${site.chainId}` };
    }
    const key = hexBytes(`0x${operator}`);
    const registry = hexBytes(site.registry);
    const addresses = [];
    for (let start = 0; start < MAX_REGISTRANTS; start += REGISTRANT_PAGE) {
      const page = decodeAddresses(await call("registrantsOf", [key, BigInt(start), BigInt(REGISTRANT_PAGE)]));
      addresses.push(...page);
      if (page.length < REGISTRANT_PAGE) break;
    }
    const bound = [];
    for (const address of addresses) {
      const b = decodeBinding(await call("bindingOf", [address]));
      if (b.block === 0n || toHex(b.key) !== operator.toLowerCase() || !sBelowL(b.signature)) continue;
      const ok = await ed25519Verify(subtle, key, b.signature, bindingStatement(site.chainId, registry, address));
      if (ok === null) {
        return { status: "unchecked", reason: "this browser has no Ed25519 in WebCrypto to check the registry's bindings" };
      }
      if (ok) bound.push(address);
    }
    if (!bound.length) return { status: "unbound", addresses: addresses.length };
    let posted = null;
    for (const address of bound) {
      const e = decodeEntry(await call("entry", [address, epoch]));
      const hash = toHex(e.bundleHash);
      if (/^0+$/.test(hash)) continue;
      const by = `0x${toHex(address)}`;
      if (hash !== bundleHash.toLowerCase()) return { status: "mismatch", by, posted: hash };
      posted = { status: "posted", by, solvent: e.solvent };
    }
    return posted || { status: "missing" };
  } catch (e) {
    return { status: "unchecked", reason: `the node at ${site.rpc} could not be asked here (${e && e.message ? e.message : e})` };
  }
}
