// The page's registry check (registry.js): its ABI calldata and decoding
// against bytes the Python side produced (zksolv/chain/registry.py's ABI,
// eth_abi; ZKSOLV_REGISTRY_VECTORS, written by tests/test_site_registry.py),
// the binding statement (integers pass as decimal strings: JSON numbers
// above 2^53 would round), and strictness: every answer of another length,
// offset or value range is refused.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  RpcError, bindingStatement, decodeAddresses, decodeBinding, decodeEntry, encodeCall, parseSiteRegistry,
} from "../../zksolv/site/registry.js";

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (h) => new Uint8Array(Buffer.from(h.replace(/^0x/, ""), "hex"));
const path = process.env.ZKSOLV_REGISTRY_VECTORS;
if (!path) throw new Error("ZKSOLV_REGISTRY_VECTORS is not set (tests/test_site_registry.py writes it)");
const V = JSON.parse(readFileSync(path, "utf8"));

test("calldata equals the Python ABI's", () => {
  for (const c of V.calls) {
    const args = c.args.map((a) => (a.startsWith("0x") ? unhex(a) : BigInt(a)));
    assert.equal(hex(encodeCall(c.name, args)), c.data, c.name);
  }
});

test("answers the Python ABI encoded decode to the same values", () => {
  for (const a of V.addresses) assert.deepEqual(decodeAddresses(unhex(a.data)).map(hex), a.value);
  for (const b of V.bindings) {
    const d = decodeBinding(unhex(b.data));
    assert.deepEqual([hex(d.key), hex(d.signature), d.block.toString()], [b.key, b.signature, b.block]);
  }
  for (const e of V.entries) {
    const d = decodeEntry(unhex(e.data));
    assert.deepEqual([hex(d.bundleHash), hex(d.rootHash), hex(d.headerDigest), hex(d.rootsDigest),
      hex(d.prevBundleHash), d.prevEpoch.toString(), d.hasPrev, d.gap, d.solvent, d.block.toString()], e.value);
  }
});

test("the binding statement is the Python one", () => {
  for (const s of V.statements) {
    assert.equal(hex(bindingStatement(BigInt(s.chain_id), unhex(s.registry), unhex(s.operator))), s.statement);
  }
});

test("every answer of another shape is refused", () => {
  const three = unhex(V.addresses.find((a) => a.value.length === 3).data);
  const bad = (f, data) => assert.throws(() => f(data), RpcError);
  bad(decodeAddresses, three.slice(0, -1));                      // truncated
  bad(decodeAddresses, Uint8Array.from([...three, 0]));           // trailing byte
  bad(decodeAddresses, Uint8Array.from([...three, ...new Uint8Array(32)])); // an extra word
  const offset = three.slice(); offset[31] = 64; bad(decodeAddresses, offset);
  const dirty = three.slice(); dirty[64] = 1; bad(decodeAddresses, dirty);   // address word high bytes
  const long = three.slice(); long[63] = 4; bad(decodeAddresses, long);      // length past the data
  const huge = three.slice(); huge[32] = 1; bad(decodeAddresses, huge);      // length beyond bounds
  bad(decodeAddresses, new Uint8Array(32));
  const binding = unhex(V.bindings[0].data);
  bad(decodeBinding, binding.slice(0, 127));
  bad(decodeBinding, Uint8Array.from([...binding, 0]));
  const block = binding.slice(); block[96] = 1; bad(decodeBinding, block);   // block above 2^64
  const entry = unhex(V.entries[0].data);
  bad(decodeEntry, entry.slice(0, 319));
  bad(decodeEntry, Uint8Array.from([...entry, 0]));
  for (const word of [6, 7, 8]) {                                             // bools 0 or 1
    const e = entry.slice(); e[32 * word + 31] = 2; bad(decodeEntry, e);
  }
  const epoch = entry.slice(); epoch[160] = 1; bad(decodeEntry, epoch);
});

test("registry.json is read strictly", () => {
  const good = { format: "zksolv-site-registry", registry: "0x" + "ab".repeat(20), rpc: "http://127.0.0.1:8545", chain_id: 31337 };
  assert.deepEqual(parseSiteRegistry(JSON.stringify(good)),
    { registry: good.registry, rpc: good.rpc, chainId: 31337n });
  for (const change of [{ format: "x" }, { registry: "0x" + "AB".repeat(20) }, { registry: "0xab" },
    { rpc: "ftp://x" }, { rpc: "not a url" }, { chain_id: 0 }, { chain_id: "1" }, { chain_id: 1.5 }, { extra: 1 }]) {
    assert.throws(() => parseSiteRegistry(JSON.stringify({ ...good, ...change })), RpcError, JSON.stringify(change));
  }
  assert.throws(() => parseSiteRegistry("{"), RpcError);
});
