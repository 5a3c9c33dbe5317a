// The fast path of the page's curve arithmetic: F_p in Montgomery form on
// BigInt, Jacobian coordinates, strict decoding with a fast subgroup test, and
// a multi-scalar multiplication by the bucket method (Pippenger). The plain
// path is bls12381.js; tests compare the two on random and edge-case inputs
// (differential test) and both with @noble/curves.
//
// Sources:
//   [MONT] Montgomery multiplication: P. L. Montgomery, "Modular
//          multiplication without trial division", Math. Comp. 44 (1985);
//          here with R = 2^384: mm(a, b) = a*b*R^-1 mod p.
//   [EFD]  Jacobian formulas for a = 0 from the Explicit-Formulas Database,
//          https://hyperelliptic.org/EFD/g1p/auto-shortw-jacobian-0.html:
//          dbl-2009-l, madd-2007-bl, add-2007-bl (special cases handled here:
//          either input the identity, P + P, P + (-P)).
//   [SG]   Subgroup test: P is in G1 iff sigma(P) = -z^2 * P, sigma(x, y) =
//          (beta*x, y), z = -0xd201000000010000 the BLS parameter, beta the
//          cube root of unity for which sigma acts on G1 as -z^2 (M. Scott,
//          "A note on group membership tests for G1, G2 and GT on BLS
//          pairing-friendly curves", https://eprint.iacr.org/2021/1130,
//          section 4). Tests check it against r*P = O on points with a
//          component of every prime order dividing the cofactor.
//   [PIP]  Bucket method with signed digits: D. J. Bernstein et al., "Faster
//          batch forgery identification", INDOCRYPT 2012, section 4
//          (https://eprint.iacr.org/2012/549); the points of one bucket are
//          summed pairwise in affine coordinates, each level of pairs sharing
//          one field inversion (Montgomery's trick: P. L. Montgomery,
//          "Speeding the Pollard and elliptic curve methods of factorization",
//          Math. Comp. 48 (1987), section 10.3.1).
//   [GLV]  Each scalar k < r is split as k = a*z^2 + b (a, b < 2^128): since
//          sigma(P) = -z^2*P on G1, k*P = b*P + a*(beta*x, -y), so n points
//          of 255-bit scalars become 2n points of 128-bit scalars, halving the
//          windows (R. Gallant, R. Lambert, S. Vanstone, "Faster point
//          multiplication on elliptic curves with efficient endomorphisms",
//          CRYPTO 2001). The points must be in G1 (every caller's are: decoded
//          with the subgroup test, or generators).
//
// Not constant-time: the page verifies public data.

import { P, R, POINT_BYTES, FormatError, G1 } from "./bls12381.js";

const RBITS = 384n;
const MASK = (1n << RBITS) - 1n;
const HALF_P = (P - 1n) / 2n;

function egcdInverse(a, m) {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  if (r0 === 0n) throw new RangeError("inverse of zero");
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

// -p^-1 mod 2^384, R^2 and R^3 mod p
const NP = (1n << RBITS) - egcdInverse(P, 1n << RBITS);
const R2 = (1n << (2n * RBITS)) % P;
const R3 = (1n << (3n * RBITS)) % P;

/** [MONT] a*b*2^-384 mod p, for a, b < p. */
export function mm(a, b) {
  const t = a * b;
  const u = (t + (((t & MASK) * NP) & MASK) * P) >> RBITS;
  return u >= P ? u - P : u;
}
const add = (a, b) => {
  const s = a + b;
  return s >= P ? s - P : s;
};
const sub = (a, b) => {
  const s = a - b;
  return s < 0n ? s + P : s;
};
export const toMont = (a) => mm(a, R2);
export const fromMont = (a) => mm(a, 1n);
const ONE = toMont(1n);
const FOUR = toMont(4n);
/** The Montgomery form of a^-1 for a in Montgomery form (a != 0). */
export function invMont(a) {
  return mm(egcdInverse(a, P), R3);
}

function powMont(base, exp) {
  // 4-bit fixed window
  const table = [ONE, base];
  for (let i = 2; i < 16; i++) table.push(mm(table[i - 1], base));
  const hex = exp.toString(16);
  let acc = table[parseInt(hex[0], 16)];
  for (let i = 1; i < hex.length; i++) {
    acc = mm(acc, acc);
    acc = mm(acc, acc);
    acc = mm(acc, acc);
    acc = mm(acc, acc);
    const d = parseInt(hex[i], 16);
    if (d) acc = mm(acc, table[d]);
  }
  return acc;
}
const SQRT_EXP = (P + 1n) / 4n;

// ------------------------------------------------------------- Jacobian
// A point is {X, Y, Z} in Montgomery form, x = X/Z^2, y = Y/Z^3; Z = 0 is
// the identity. Affine inputs are {x, y} (never the identity).

export const IDENTITY = Object.freeze({ X: ONE, Y: ONE, Z: 0n });

/** [EFD] dbl-2009-l. */
export function dbl(p) {
  if (p.Z === 0n) return p;
  const A = mm(p.X, p.X);
  const B = mm(p.Y, p.Y);
  const C = mm(B, B);
  const xb = add(p.X, B);
  let D = sub(sub(mm(xb, xb), A), C);
  D = add(D, D);
  const E = add(add(A, A), A);
  const F = mm(E, E);
  const X3 = sub(F, add(D, D));
  let C8 = add(C, C);
  C8 = add(C8, C8);
  C8 = add(C8, C8);
  const Y3 = sub(mm(E, sub(D, X3)), C8);
  const yz = mm(p.Y, p.Z);
  return { X: X3, Y: Y3, Z: add(yz, yz) };
}

/** [EFD] madd-2007-bl: p (Jacobian) + q (affine). */
export function addMixed(p, q) {
  if (p.Z === 0n) return { X: q.x, Y: q.y, Z: ONE };
  const Z1Z1 = mm(p.Z, p.Z);
  const U2 = mm(q.x, Z1Z1);
  const S2 = mm(q.y, mm(p.Z, Z1Z1));
  const H = sub(U2, p.X);
  let r = sub(S2, p.Y);
  if (H === 0n) {
    if (r === 0n) return dbl({ X: q.x, Y: q.y, Z: ONE });
    return IDENTITY;
  }
  const HH = mm(H, H);
  let I = add(HH, HH);
  I = add(I, I);
  const J = mm(H, I);
  r = add(r, r);
  const V = mm(p.X, I);
  const X3 = sub(sub(mm(r, r), J), add(V, V));
  const yj = mm(p.Y, J);
  const Y3 = sub(mm(r, sub(V, X3)), add(yj, yj));
  const zh = add(p.Z, H);
  const Z3 = sub(sub(mm(zh, zh), Z1Z1), HH);
  return { X: X3, Y: Y3, Z: Z3 };
}

/** [EFD] add-2007-bl: p + q, both Jacobian. */
export function addJac(p, q) {
  if (p.Z === 0n) return q;
  if (q.Z === 0n) return p;
  const Z1Z1 = mm(p.Z, p.Z);
  const Z2Z2 = mm(q.Z, q.Z);
  const U1 = mm(p.X, Z2Z2);
  const U2 = mm(q.X, Z1Z1);
  const S1 = mm(p.Y, mm(q.Z, Z2Z2));
  const S2 = mm(q.Y, mm(p.Z, Z1Z1));
  const H = sub(U2, U1);
  let r = sub(S2, S1);
  if (H === 0n) {
    if (r === 0n) return dbl(p);
    return IDENTITY;
  }
  const h2 = add(H, H);
  const I = mm(h2, h2);
  const J = mm(H, I);
  r = add(r, r);
  const V = mm(U1, I);
  const X3 = sub(sub(mm(r, r), J), add(V, V));
  const sj = mm(S1, J);
  const Y3 = sub(mm(r, sub(V, X3)), add(sj, sj));
  const zz = add(p.Z, q.Z);
  const Z3 = mm(sub(sub(mm(zz, zz), Z1Z1), Z2Z2), H);
  return { X: X3, Y: Y3, Z: Z3 };
}

export function negAffine(q) {
  return { x: q.x, y: q.y === 0n ? 0n : P - q.y };
}

export function isIdentity(p) {
  return p.Z === 0n;
}

/** A Jacobian point as bls12381.js's G1 (for encoding and the tests). */
export function toG1(p) {
  if (p.Z === 0n) return G1.identity();
  const zi = invMont(p.Z);
  const zi2 = mm(zi, zi);
  return G1.fromAffine(fromMont(mm(p.X, zi2)), fromMont(mm(p.Y, mm(zi2, zi))));
}

/** bls12381.js's G1 point (not the identity) as an affine point here. */
export function fromG1(g) {
  const { x, y } = g.toAffine();
  return { x: toMont(x), y: toMont(y) };
}

// ------------------------------------------------------------- decoding

const Z_ABS = 0xd201000000010000n;
const Z_BITS = Z_ABS.toString(2);
// [SG] beta: sigma(P) = (beta*x, y) = -z^2 * P on G1 (the other cube root
// of unity gives z^2 - 1); tests check beta^3 = 1 and the relation on g.
export const BETA = 0x5f19672fdf76ce51ba69c6076a0f77eaddb3a93be6f89688de17d813620a00022e01fffffffefffen;
const BETA_M = toMont(BETA);

function mulZ(p, addend) {
  // |z| * p by double-and-add; addend(acc) adds p (mixed or Jacobian)
  let acc = p;
  for (let i = 1; i < Z_BITS.length; i++) {
    acc = dbl(acc);
    if (Z_BITS.charCodeAt(i) === 49) acc = addend(acc);
  }
  return acc;
}

/** [SG] Whether the affine point q (on the curve) is in G1. */
export function inG1(q) {
  const jq = { X: q.x, Y: q.y, Z: ONE };
  const zq = mulZ(jq, (acc) => addMixed(acc, q));
  const zzq = mulZ(zq, (acc) => addJac(acc, zq));
  // z^2 * q == -sigma(q) = (beta*x, -y)
  if (zzq.Z === 0n) return false;
  const z2 = mm(zzq.Z, zzq.Z);
  const z3 = mm(z2, zzq.Z);
  return zzq.X === mm(mm(BETA_M, q.x), z2) && zzq.Y === mm(P - q.y, z3);
}

function bytesToBigInt(bytes, start, end) {
  let hex = "";
  for (let i = start; i < end; i++) hex += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return hex === "" ? 0n : BigInt("0x" + hex);
}

/** Strict decoding of a 48-byte compressed point, with bls12381.js's
 * checks and messages (flags, canonical identity, x < p, on the curve, in
 * G1). Returns an affine point, or null for the identity when allowed. */
export function decodePoint(bytes, { allowIdentity = false, what = "point" } = {}) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== POINT_BYTES) {
    throw new FormatError(`${what}: expected ${POINT_BYTES} bytes`);
  }
  const flags = bytes[0] & 0xe0;
  if (!(flags & 0x80)) throw new FormatError(`${what}: compression flag not set`);
  const x = (BigInt(bytes[0] & 0x1f) << 376n) | bytesToBigInt(bytes, 1, POINT_BYTES);
  if (flags & 0x40) {
    if (flags & 0x20 || x !== 0n) throw new FormatError(`${what}: non-canonical encoding of the identity`);
    if (!allowIdentity) throw new FormatError(`${what}: identity point not allowed here`);
    return null;
  }
  if (x >= P) throw new FormatError(`${what}: x coordinate not below the field modulus`);
  const xm = toMont(x);
  const rhs = add(mm(mm(xm, xm), xm), FOUR);
  let ym = powMont(rhs, SQRT_EXP);
  if (mm(ym, ym) !== rhs) throw new FormatError(`${what}: not on the curve`);
  const y = fromMont(ym);
  if ((y > HALF_P) !== Boolean(flags & 0x20)) ym = ym === 0n ? 0n : P - ym;
  const q = { x: xm, y: ym };
  if (!inG1(q)) throw new FormatError(`${what}: not in the prime-order subgroup`);
  return q;
}

// ------------------------------------------------------------- MSM

/** The window width c for n points of `bits`-bit scalars: the c minimising
 * the estimated field multiplications ceil((bits + 1)/c) * (6n + 27*2^(c-1))
 * (bucket sums in batched affine, then the running sums in Jacobian). */
export function windowFor(n, bits = 255) {
  let best = 1;
  let bestCost = Infinity;
  for (let c = 1; c <= 16; c++) {
    const cost = Math.ceil((bits + 1) / c) * (6 * n + 27 * 2 ** (c - 1));
    if (cost < bestCost) {
      best = c;
      bestCost = cost;
    }
  }
  return best;
}

/** Signed base-2^c digits of each scalar (< 2^bits, c * windows > bits),
 * window by window: digits[w * n + i] in [-2^(c-1), 2^(c-1)]. */
function signedDigits(scalars, c, windows, bits) {
  const n = scalars.length;
  const digits = new Int32Array(n * windows);
  const half = 2 ** (c - 1);
  const full = 2 ** c;
  const nw = Math.ceil(bits / 32);
  const words = new Uint32Array(nw + 2);
  for (let i = 0; i < n; i++) {
    const hex = scalars[i].toString(16).padStart(8 * nw, "0");
    for (let k = 0; k < nw; k++) words[k] = parseInt(hex.slice(8 * (nw - 1 - k), 8 * (nw - k)), 16);
    let carry = 0;
    for (let w = 0; w < windows; w++) {
      const bit = w * c;
      const k = bit >>> 5;
      const off = bit & 31;
      let v = words[k] >>> off;
      if (off + c > 32) v |= words[k + 1] << (32 - off);
      v = (v & (full - 1)) + carry;
      if (v > half && w < windows - 1) {
        digits[w * n + i] = v - full;
        carry = 1;
      } else {
        digits[w * n + i] = v;
        carry = 0;
      }
    }
  }
  return digits;
}

/** Sum the points of every bucket in affine coordinates, pairwise, one
 * inversion per level (see [PIP]). `start` (length nb + 1) delimits each
 * bucket's points in xs, ys. Returns per bucket an affine point or null. */
function bucketSums(xs, ys, start, nb) {
  let X = xs;
  let Y = ys;
  let st = start;
  for (;;) {
    let longest = 0;
    for (let b = 0; b < nb; b++) longest = Math.max(longest, st[b + 1] - st[b]);
    if (longest <= 1) break;
    // denominators of every pair: x2 - x1, or 2*y1 for a doubling
    const den = [];
    const kind = []; // 0 add, 1 double, 2 cancels to the identity
    for (let b = 0; b < nb; b++) {
      for (let i = st[b]; i + 1 < st[b + 1]; i += 2) {
        const dx = sub(X[i + 1], X[i]);
        if (dx !== 0n) {
          den.push(dx);
          kind.push(0);
        } else if (Y[i + 1] === Y[i] && Y[i] !== 0n) {
          den.push(add(Y[i], Y[i]));
          kind.push(1);
        } else {
          den.push(ONE);
          kind.push(2);
        }
      }
    }
    const inv = batchInverse(den);
    const nx = [];
    const ny = [];
    const nst = new Int32Array(nb + 1);
    let pair = 0;
    for (let b = 0; b < nb; b++) {
      nst[b] = nx.length;
      const e = st[b + 1];
      let i = st[b];
      for (; i + 1 < e; i += 2, pair++) {
        const k = kind[pair];
        if (k === 2) continue;
        const x1 = X[i];
        const y1 = Y[i];
        let lambda;
        if (k === 0) {
          lambda = mm(sub(Y[i + 1], y1), inv[pair]);
        } else {
          const xx = mm(x1, x1);
          lambda = mm(add(add(xx, xx), xx), inv[pair]);
        }
        const x3 = sub(sub(mm(lambda, lambda), x1), X[i + 1]);
        nx.push(x3);
        ny.push(sub(mm(lambda, sub(x1, x3)), y1));
      }
      if (i < e) {
        nx.push(X[i]);
        ny.push(Y[i]);
      }
    }
    nst[nb] = nx.length;
    X = nx;
    Y = ny;
    st = nst;
  }
  const out = new Array(nb).fill(null);
  for (let b = 0; b < nb; b++) if (st[b + 1] > st[b]) out[b] = { x: X[st[b]], y: Y[st[b]] };
  return out;
}

/** Montgomery's trick: every inverse for one inversion and 3 products each. */
export function batchInverse(values) {
  const n = values.length;
  const out = new Array(n);
  if (n === 0) return out;
  const pre = new Array(n);
  let acc = ONE;
  for (let i = 0; i < n; i++) {
    pre[i] = acc;
    acc = mm(acc, values[i]);
  }
  let inv = invMont(acc);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = mm(inv, pre[i]);
    inv = mm(inv, values[i]);
  }
  return out;
}

const Z2 = Z_ABS * Z_ABS;

/** [GLV] The 2n points and 128-bit scalars of the split. */
export function glvSplit(points, scalars) {
  const n = points.length;
  const pts = new Array(2 * n);
  const ks = new Array(2 * n);
  for (let i = 0; i < n; i++) {
    const p = points[i];
    pts[i] = p;
    ks[i] = scalars[i] % Z2;
    pts[n + i] = { x: mm(BETA_M, p.x), y: p.y === 0n ? 0n : P - p.y };
    ks[n + i] = scalars[i] / Z2;
  }
  return { points: pts, scalars: ks };
}

/** [PIP] sum_i scalars[i] * points[i]: points affine in G1 (Montgomery
 * form; the identity is left out by the caller), scalars BigInts in [0, r);
 * [GLV] splits them first. Returns a Jacobian point. `onWindow(done,
 * total)` reports progress. */
export function msm(points, scalars, { onWindow = null } = {}) {
  if (scalars.length !== points.length) throw new RangeError("msm: one scalar per point");
  for (const s of scalars) {
    if (typeof s !== "bigint" || s < 0n || s >= R) throw new RangeError("msm: scalars must be in [0, r)");
  }
  if (points.length === 0) return IDENTITY;
  const split = glvSplit(points, scalars);
  return bucketMsm(split.points, split.scalars, 128, { onWindow });
}

/** [PIP] The bucket method on scalars below 2^bits. */
export function bucketMsm(points, scalars, bits, { onWindow = null, window = null } = {}) {
  const n = points.length;
  const c = window ?? windowFor(n, bits);
  const windows = Math.ceil((bits + 1) / c);
  const nb = 2 ** (c - 1); // buckets 1..2^(c-1), stored at index d - 1
  const digits = signedDigits(scalars, c, windows, bits);
  const counts = new Int32Array(nb + 1);
  let result = IDENTITY;
  for (let w = windows - 1; w >= 0; w--) {
    for (let k = 0; k < c && result.Z !== 0n; k++) result = dbl(result);
    counts.fill(0);
    const base = w * n;
    for (let i = 0; i < n; i++) {
      const d = digits[base + i];
      if (d !== 0) counts[(d < 0 ? -d : d)]++;
    }
    const start = new Int32Array(nb + 1);
    for (let b = 1; b <= nb; b++) start[b] = start[b - 1] + counts[b];
    const fill = start.slice(0, nb);
    const xs = new Array(start[nb]);
    const ys = new Array(start[nb]);
    for (let i = 0; i < n; i++) {
      const d = digits[base + i];
      if (d === 0) continue;
      const b = (d < 0 ? -d : d) - 1;
      const at = fill[b]++;
      xs[at] = points[i].x;
      ys[at] = d < 0 ? (points[i].y === 0n ? 0n : P - points[i].y) : points[i].y;
    }
    const buckets = bucketSums(xs, ys, start, nb);
    let running = IDENTITY;
    let sum = IDENTITY;
    for (let b = nb - 1; b >= 0; b--) {
      if (buckets[b] !== null) running = addMixed(running, buckets[b]);
      if (running.Z !== 0n) sum = addJac(sum, running);
    }
    result = addJac(result, sum);
    if (onWindow) onWindow(windows - w, windows);
  }
  return result;
}

/** The reference: sum_i k_i * P_i one multiplication at a time
 * (bls12381.js), for the differential tests. */
export function msmPlain(points, scalars) {
  let acc = G1.identity();
  for (let i = 0; i < points.length; i++) acc = acc.add(toG1({ X: points[i].x, Y: points[i].y, Z: ONE }).multiply(scalars[i]));
  return acc;
}
