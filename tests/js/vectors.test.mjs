// The page's JavaScript against what the Python package writes
// (tests/site_vectors.py, run by tests/test_site_js.py, which sets
// ZKSOLV_SITE_VECTORS): pinned constants, curve arithmetic, canonical JSON,
// and the holder's check on real and forged inclusion proofs, where the page
// must reach the Python verifier's verdict and name the same check.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { G1, FormatError, linearCombination } from "../../zksolv/site/bls12381.js";
import { canonical, parse } from "../../zksolv/site/strictjson.js";
import {
  CONSTANTS, InputError, VerificationError, fromHex, linkText, toHex, verifyInclusion,
} from "../../zksolv/site/inclusion.js";

const file = process.env.ZKSOLV_SITE_VECTORS;
const skip = file ? false : "ZKSOLV_SITE_VECTORS not set (pytest tests/test_site_js.py sets it)";
const V = file ? JSON.parse(readFileSync(file, "utf8")) : null;

test("pinned constants are the Python package's", { skip }, () => {
  assert.deepEqual(JSON.parse(JSON.stringify(CONSTANTS)), V.constants);
});

test("curve arithmetic agrees with the Python backend", { skip }, () => {
  const g = G1.fromBytes(fromHex(CONSTANTS.g));
  const h = G1.fromBytes(fromHex(CONSTANTS.h));
  for (const op of V.curve.ops) {
    const p = G1.fromBytes(fromHex(op.p));
    const q = G1.fromBytes(fromHex(op.q));
    assert.equal(toHex(p.add(q).toBytes()), op.sum);
    assert.equal(toHex(p.double().toBytes()), op.double);
    assert.equal(toHex(p.negate().toBytes()), op.neg);
    assert.equal(toHex(p.multiply(BigInt(op.u)).toBytes()), op.up, `u=${op.u}`);
    assert.equal(toHex(g.multiply(BigInt(op.v)).toBytes()), op.p);
    assert.equal(toHex(linearCombination(g, BigInt(op.v), h, BigInt(op.w)).toBytes()), op.commit);
  }
  for (const d of V.curve.decode) {
    let ok = true;
    try {
      const pt = G1.fromBytes(fromHex(d.bytes), { allowIdentity: true });
      assert.equal(toHex(pt.toBytes()), d.bytes, "a valid encoding re-encodes to itself");
    } catch (e) {
      assert.ok(e instanceof FormatError, e);
      assert.equal(e.message, d.error, `the CLI and the page word ${d.bytes} alike`);
      ok = false;
    }
    assert.equal(ok, d.valid, d.bytes);
  }
  assert.ok(V.curve.decode.some((d) => d.valid) && V.curve.decode.some((d) => !d.valid));
});

test("canonical JSON (plus the newline) is byte for byte Python's manifest serialisation", { skip }, () => {
  for (const { text, canonical: want } of V.json) assert.equal(canonical(parse(text)) + "\n", want, text);
});

test("the holder's check reaches the Python verifier's verdict on every case", { skip }, async () => {
  let valid = 0;
  const checks = new Set();
  for (const c of V.inclusion) {
    const args = {
      documentText: c.document, accountId: c.account, operator: c.operator,
      bundle: c.bundle ? { raw: new TextEncoder().encode(c.bundle.manifest), signature: fromHex(c.bundle.signature) } : null,
      bundleHash: c.bundleHash ?? null,
    };
    let got;
    try {
      const r = await verifyInclusion(args);
      got = {
        valid: true, epoch: r.epoch.toString(), leafIndex: r.leafIndex,
        amounts: Object.fromEntries(r.amounts.map((a) => [a.symbol, a.amount.toString()])),
        prevEpoch: r.prevEpoch === null ? null : r.prevEpoch.toString(),
        gap: r.gap === null ? null : `${r.gap.first}-${r.gap.last}`,
        // the chain line, word for word the CLI's (its caveat included)
        link: linkText(r),
      };
      assert.equal(r.siblingsNonnegative, "unchecked");
      assert.equal(linkText(r).includes("NOT proven solvent"), r.gap !== null, c.name);
      assert.equal(linkText(r).includes("link not checked here"), r.prevEpoch !== null, c.name);
      assert.equal(r.signature, "checked");
    } catch (e) {
      if (!(e instanceof VerificationError)) throw new Error(`${c.name}: ${e}`, { cause: e });
      got = { valid: false, check: e.check };
    }
    assert.deepEqual(got, c.expect, c.name);
    if (got.valid) valid++;
    else checks.add(got.check);
  }
  assert.ok(valid >= 6, `${valid} valid cases`);
  const links = V.inclusion.filter((c) => c.expect.valid).map((c) => c.expect.gap);
  assert.ok(links.includes(null) && links.some((g) => g !== null), "cases with and without a gap");
  assert.ok(V.inclusion.some((c) => c.expect.valid && c.expect.prevEpoch !== null), "a case with a link");
  for (const tag of ["inclusion-format", "inclusion-bundle", "inclusion-account", "inclusion-epoch",
    "inclusion-root", "inclusion-encoding", "manifest-format", "manifest-canonical", "suite-mismatch",
    "signature", "operator-mismatch", "bundle-shape"]) {
    assert.ok(checks.has(tag), `no case fails ${tag}`);
  }
});

test("unusable input is an InputError, not a verdict", { skip }, async () => {
  const c = V.inclusion.find((x) => x.name === "valid, bundle hash");
  await assert.rejects(verifyInclusion({ documentText: c.document, accountId: "", bundleHash: c.bundleHash }), InputError);
  await assert.rejects(verifyInclusion({ documentText: c.document, accountId: c.account }), InputError);
  await assert.rejects(verifyInclusion({ documentText: c.document, accountId: c.account, bundleHash: "xyz" }), InputError);
});
