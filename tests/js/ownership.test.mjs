// The page's EIP-712 ownership check (ownership.js, keccak.js's keccak256)
// against docs/chain.md's vector and, differentially, @noble/hashes'
// keccak_256 and @noble/curves' secp256k1 (the test's oracle, never shipped
// to the page); then the spec vectors: honest signatures recover, ones made
// for another epoch do not (reserves-signature, as zksolv verify says).

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak256 } from "../../zksolv/site/keccak.js";
import {
  DOMAIN_TYPEHASH, N, STATEMENT_TYPEHASH, addressOf, ownershipProblem, recoverPublicKey, statement,
} from "../../zksolv/site/ownership.js";
import { checkManifest } from "../../zksolv/site/inclusion.js";

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (h) => new Uint8Array(Buffer.from(h.replace(/^0x/, ""), "hex"));

/** A 65-byte r || s || v (v = 27 + recovery) by noble, low s. */
function nobleSign(digest, key) {
  const rec = secp256k1.sign(digest, key, { prehash: false, format: "recovered" });
  return Uint8Array.from([...rec.subarray(1), 27 + rec[0]]);
}

test("keccak256 is Ethereum's (differential against @noble/hashes, every block boundary)", () => {
  assert.equal(hex(keccak256(new Uint8Array())), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  for (const len of [0, 1, 55, 135, 136, 137, 271, 272, 273, 1000]) {
    const data = new Uint8Array(randomBytes(len));
    assert.equal(hex(keccak256(data)), hex(keccak_256(data)), `${len}`);
  }
});

test("the statement's digest and signature: docs/chain.md's vector", () => {
  assert.equal(hex(DOMAIN_TYPEHASH), "c2f8787176b8ac6bf7215b4adcc1e069bf4ab82d9ab1df05a57a91d425935b6e");
  assert.equal(hex(STATEMENT_TYPEHASH), "a6f9eab1584c9bb101e62c8922275573a8eac6fdf0038b7ad2ccc69538f837c8");
  const s = statement({
    chainId: 1n, holder: "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a", blockNumber: 21000000n,
    blockHash: "aa".repeat(32), epoch: 7n, operator: "33".repeat(32),
  });
  assert.equal(hex(s.domainSeparator), "ca55ec7f94fa50e77e9b4ff9302fd06021d388ee05c33833f2b10b74413bba7b");
  assert.equal(hex(s.hashStruct), "de8aa04dd4257fa08ca716f2a96115726719f5a68efed0742d3151b3f7aa4450");
  assert.equal(hex(s.digest), "179f8ea1ae71a9bf70bf3b7a3399e7ba5d836c8e8527403dce8407e609ff80d0");
  const sig = unhex("e1114f5380bcc665b0535d11b464e99a218cf85b883b1174239edb5c540ead0e"
    + "57f734ae8d8559d798eccde5b8f013fe395e50b0fc548a5f802efcfa0cf94f1b1b");
  assert.equal(addressOf(recoverPublicKey(s.digest, sig)), "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a");
  // the key of the vector, through the oracle
  const pub = secp256k1.getPublicKey(unhex("11".repeat(32)), false);
  assert.equal(addressOf(pub.subarray(1)), "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a");
  assert.equal(hex(nobleSign(s.digest, unhex("11".repeat(32)))), hex(sig), "RFC 6979: the same signature");
});

test("recovery equals @noble/curves' on random keys and digests (differential)", () => {
  for (let i = 0; i < 40; i++) {
    const key = secp256k1.utils.randomSecretKey();
    const digest = new Uint8Array(randomBytes(32));
    const sig = nobleSign(digest, key);
    const want = secp256k1.getPublicKey(key, false).subarray(1);
    assert.equal(hex(recoverPublicKey(digest, sig)), hex(want), `case ${i}`);
    const oracle = secp256k1.recoverPublicKey(Uint8Array.from([sig[64] - 27, ...sig.subarray(0, 64)]), digest,
      { prehash: false });
    assert.equal(hex(secp256k1.Point.fromBytes(oracle).toBytes(false).subarray(1)), hex(want));
    // any other digest recovers some other key (or none)
    const other = Uint8Array.from(digest);
    other[i % 32] ^= 1;
    let got = null;
    try {
      got = hex(recoverPublicKey(other, sig));
    } catch {
      got = null;
    }
    assert.notEqual(got, hex(want));
  }
});

test("only strict signatures: v 27 or 28, 0 < r < n, 0 < s <= n/2 (the high-s twin refused)", () => {
  const key = unhex("22".repeat(32));
  const digest = new Uint8Array(randomBytes(32));
  const sig = nobleSign(digest, key);
  const word = (v) => unhex(v.toString(16).padStart(64, "0"));
  const s = BigInt("0x" + hex(sig.subarray(32, 64)));
  const twin = Uint8Array.from([...sig.subarray(0, 32), ...word(N - s), sig[64] === 27 ? 28 : 27]);
  // the twin is a valid signature by the same key to a lax verifier (noble with lowS off) ...
  const lax = secp256k1.recoverPublicKey(Uint8Array.from([twin[64] - 27, ...twin.subarray(0, 64)]), digest,
    { prehash: false });
  assert.equal(hex(secp256k1.Point.fromBytes(lax).toBytes(false).subarray(1)),
    hex(secp256k1.getPublicKey(key, false).subarray(1)));
  // ... and refused here
  assert.throws(() => recoverPublicKey(digest, twin), /low s/);
  for (const v of [0, 1, 26, 29, 255]) assert.throws(() => recoverPublicKey(digest, Uint8Array.from([...sig.subarray(0, 64), v])), /not 27 or 28/);
  const zeroR = Uint8Array.from(sig);
  zeroR.fill(0, 0, 32);
  assert.throws(() => recoverPublicKey(digest, zeroR), /r is not/);
  assert.throws(() => recoverPublicKey(digest, Uint8Array.from([...word(N), ...sig.subarray(32)])), /r is not/);
  const zeroS = Uint8Array.from(sig);
  zeroS.fill(0, 32, 64);
  assert.throws(() => recoverPublicKey(digest, zeroS), /s is not/);
  assert.throws(() => recoverPublicKey(digest, sig.subarray(0, 64)), /65 bytes/);
  // an x with no point on the curve (x = 5: 125 + 7 = 132 is not a square mod p)
  assert.throws(() => recoverPublicKey(digest, Uint8Array.from([...word(5n), ...sig.subarray(32)])), /not the x/);
});

const SPEC = new URL("../vectors/spec/", import.meta.url);
const read = (name, file) => new Uint8Array(readFileSync(new URL(`${name}/${file}`, SPEC)));

test("the spec vectors: honest holders' signatures recover; another epoch's fail reserves-signature", async () => {
  const ok = await checkManifest(read("chain-valid", "manifest.json"), read("chain-valid", "manifest.sig"));
  assert.equal(ownershipProblem(ok.evidence, ok.epoch, ok.operator), null);
  assert.equal(ok.reservesProblem, null);
  // the same evidence for another epoch, block, chain or operator key does not
  for (const [what, epoch, operator, ev] of [
    ["epoch", ok.epoch + 1n, ok.operator, ok.evidence],
    ["operator", ok.epoch, "44".repeat(32), ok.evidence],
    ["block", ok.epoch, ok.operator, { ...ok.evidence, blockNumber: ok.evidence.blockNumber + 1n }],
    ["chain", ok.epoch, ok.operator, { ...ok.evidence, chainId: 1n }],
  ]) {
    assert.equal(ownershipProblem(ev, epoch, operator)?.tag, "reserves-signature", what);
  }
  // one holder's signature given to the other
  const swapped = structuredClone(ok.evidence);
  const [h0, h1] = swapped.assets[0].holdings;
  [h0.signature, h1.signature] = [h1.signature, h0.signature];
  assert.match(ownershipProblem(swapped, ok.epoch, ok.operator).detail, /recovers to/);
  const bad = await checkManifest(read("chain-signature-epoch", "manifest.json"), read("chain-signature-epoch", "manifest.sig"));
  assert.equal(bad.reservesProblem?.tag, "reserves-signature");
});
