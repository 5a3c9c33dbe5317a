// The page's rule for operator keys (zksolv/site/inclusion.js
// ed25519KeyProblem, docs/holder-page.md) against the Python package's
// (zksolv/core/ed25519.py), and the forged signature it exists to stop:
// under a small-order key the signature R = identity, S = 0 verifies for
// every message, and WebCrypto accepts it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  InputError, VerificationError, checkManifest, ed25519KeyProblem, fromHex, verifyInclusion,
} from "../../zksolv/site/inclusion.js";

const file = process.env.ZKSOLV_SITE_VECTORS;
const skip = file ? false : "ZKSOLV_SITE_VECTORS not set (pytest tests/test_site_js.py sets it)";
const V = file ? JSON.parse(readFileSync(file, "utf8")) : null;
const IDENTITY = "01" + "00".repeat(31);
const FORGED = fromHex("01" + "00".repeat(63)); // R = identity, S = 0

test("the page refuses exactly the operator keys the Python package refuses", { skip }, () => {
  for (const { key, valid } of V.ed25519) {
    assert.equal(ed25519KeyProblem(fromHex(key)) === null, valid, key);
  }
  assert.ok(V.ed25519.filter((v) => v.valid).length >= 16);
  assert.ok(V.ed25519.filter((v) => !v.valid).length >= 40);
});

test("a proof under a small-order key with R = identity, S = 0 is refused [signature]", { skip }, async () => {
  const forged = V.inclusion.filter((c) => c.name.startsWith("small-order operator key"));
  assert.equal(forged.length, 3);
  for (const c of forged) {
    assert.deepEqual(c.expect, { valid: false, check: "signature" }, "the Python verdict");
    await assert.rejects(
      verifyInclusion({ documentText: c.document, accountId: c.account, bundleHash: c.bundleHash }),
      (e) => e instanceof VerificationError && e.check === "signature" && /not a usable Ed25519 key/.test(e.detail),
      c.name);
    const doc = JSON.parse(c.document);
    await assert.rejects(checkManifest(new TextEncoder().encode(doc.manifest), FORGED),
      (e) => e instanceof VerificationError && e.check === "signature", c.name);
  }
});

test("a small-order or non-canonical key cannot be pinned", { skip }, async () => {
  const c = V.inclusion.find((x) => x.name === "valid, bundle hash");
  for (const operator of [IDENTITY, "ec" + "ff".repeat(30) + "7f", "ed" + "ff".repeat(30) + "7f"]) {
    await assert.rejects(
      verifyInclusion({ documentText: c.document, accountId: c.account, bundleHash: c.bundleHash, operator }),
      (e) => e instanceof InputError && e.where === "operator", operator);
  }
});
