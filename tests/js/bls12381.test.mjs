// The page's BLS12-381 G1 module against @noble/curves, an independent
// implementation: random and edge-case points and scalars, and encodings
// that must be refused.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { BASE, FormatError, G1, P, R, linearCombination } from "../../zksolv/site/bls12381.js";

const N = bls12_381.G1.Point;
const hex = (b) => Buffer.from(b).toString("hex");
const randScalar = (bits = 256) => BigInt("0x" + randomBytes(bits / 8).toString("hex"));
const nobleMul = (pt, k) => (k % R === 0n ? N.ZERO : pt.multiply(k % R));
const EDGE = [0n, 1n, 2n, 3n, R - 2n, R - 1n, R, R + 1n, 2n * R, (1n << 64n) - 1n, 1n << 64n,
  (1n << 255n) - 1n, (1n << 256n) - 1n, P, P - 1n];
const ROUNDS = 24;

function pair() {
  const k = randScalar() % R;
  return { ours: BASE.multiply(k), noble: nobleMul(N.BASE, k), k };
}

test("the generator and constants agree with noble", () => {
  assert.equal(hex(BASE.toBytes()), hex(N.BASE.toBytes(true)));
  assert.equal(R, N.Fn.ORDER);
  assert.equal(P, N.Fp.ORDER);
  assert.equal(hex(G1.identity().toBytes()), hex(N.ZERO.toBytes(true)));
});

test("scalar multiplication: random and edge-case scalars", () => {
  for (const k of [...EDGE, ...Array.from({ length: ROUNDS }, () => randScalar())]) {
    assert.equal(hex(BASE.multiply(k).toBytes()), hex(nobleMul(N.BASE, k).toBytes(true)), `k=${k}`);
  }
  const { ours, noble } = pair();
  for (const k of EDGE) {
    assert.equal(hex(ours.multiply(k).toBytes()), hex(nobleMul(noble, k).toBytes(true)), `k=${k}`);
  }
  assert.throws(() => BASE.multiply(-1n), RangeError);
  assert.throws(() => BASE.multiply(1), RangeError);
});

test("addition and doubling, including the identity and inverses", () => {
  for (let i = 0; i < ROUNDS; i++) {
    const a = pair();
    const b = pair();
    assert.equal(hex(a.ours.add(b.ours).toBytes()), hex(a.noble.add(b.noble).toBytes(true)));
    assert.equal(hex(a.ours.double().toBytes()), hex(a.noble.double().toBytes(true)));
    assert.equal(hex(a.ours.add(a.ours).toBytes()), hex(a.noble.double().toBytes(true)));
    assert.equal(hex(a.ours.negate().toBytes()), hex(a.noble.negate().toBytes(true)));
    assert.ok(a.ours.add(a.ours.negate()).isIdentity());
    assert.ok(a.ours.add(G1.identity()).equals(a.ours));
    assert.ok(G1.identity().add(a.ours).equals(a.ours));
  }
  assert.ok(G1.identity().double().isIdentity());
  assert.ok(G1.identity().add(G1.identity()).isIdentity());
});

test("linear combination v*g + w*h equals the two products added", () => {
  const g = pair();
  const h = pair();
  const cases = [[0n, 0n], [1n, 0n], [0n, 1n], [(1n << 64n) - 1n, R - 1n]];
  for (let i = 0; i < ROUNDS; i++) cases.push([randScalar(64), randScalar() % R]);
  for (const [v, w] of cases) {
    const want = nobleMul(g.noble, v).add(nobleMul(h.noble, w));
    assert.equal(hex(linearCombination(g.ours, v, h.ours, w).toBytes()), hex(want.toBytes(true)));
  }
});

test("encoding round-trips and matches noble's decoding", () => {
  for (let i = 0; i < ROUNDS; i++) {
    const { ours, noble } = pair();
    const enc = ours.toBytes();
    assert.equal(hex(enc), hex(noble.toBytes(true)));
    assert.ok(G1.fromBytes(enc).equals(ours));
    assert.ok(N.fromBytes(enc).equals(noble));
    const neg = ours.negate().toBytes();
    assert.equal(enc[0] ^ neg[0], 0x20, "negation flips only the sign flag");
  }
});

function refusedByBoth(bytes, opts = {}) {
  assert.throws(() => G1.fromBytes(bytes, opts), FormatError, hex(bytes));
  assert.throws(() => N.fromBytes(bytes), undefined, hex(bytes));
}

test("decoding refuses what it must: flags, identity forms, x >= p, off-curve, off-subgroup", () => {
  const enc = pair().ours.toBytes();
  const noFlag = enc.slice();
  noFlag[0] &= 0x7f;
  assert.throws(() => G1.fromBytes(noFlag), /compression flag/);
  const bigX = new Uint8Array(48);
  let x = P;
  for (let i = 47; i >= 0; i--) { bigX[i] = Number(x & 0xffn); x >>= 8n; }
  bigX[0] |= 0x80;
  refusedByBoth(bigX);
  assert.throws(() => G1.fromBytes(bigX), /field modulus/);
  const idBad = new Uint8Array(48);
  idBad[0] = 0xe0;
  refusedByBoth(idBad);
  const idTail = new Uint8Array(48);
  idTail[0] = 0xc0;
  idTail[47] = 1;
  refusedByBoth(idTail);
  const id = new Uint8Array(48);
  id[0] = 0xc0;
  assert.throws(() => G1.fromBytes(id), /identity point not allowed/);
  assert.ok(G1.fromBytes(id, { allowIdentity: true }).isIdentity());
  assert.throws(() => G1.fromBytes(enc.slice(0, 47)), /48 bytes/);
  assert.throws(() => G1.fromBytes([...enc]), /48 bytes/);

  // random x: about half are on the curve, and those (all but negligibly
  // few) are outside the prime-order subgroup; both implementations agree
  let onCurve = 0;
  let offSubgroup = 0;
  for (let i = 0; i < 64; i++) {
    const b = new Uint8Array(randomBytes(48));
    b[0] = (b[0] & 0x1f) | 0x80 | (i & 1 ? 0x20 : 0);
    let ours;
    try {
      G1.fromBytes(b);
      ours = "ok";
    } catch (e) {
      assert.ok(e instanceof FormatError);
      ours = e.message;
    }
    let theirs = "ok";
    try { N.fromBytes(b); } catch { theirs = "refused"; }
    assert.equal(ours === "ok", theirs === "ok", hex(b));
    if (/x coordinate/.test(ours)) continue;
    if (!/not on the curve/.test(ours)) onCurve++;
    if (/subgroup/.test(ours)) offSubgroup++;
  }
  assert.ok(onCurve > 10 && offSubgroup === onCurve, `${onCurve} on the curve, ${offSubgroup} off the subgroup`);
});
