// BLS12-381 G1 for the account holder's page: strict decoding, addition,
// scalar multiplication and encoding, in BigInt. No third-party code; the
// Python package (zksolv.core.group) and @noble/curves (in the tests) are the
// two implementations this one is checked against.
//
// Sources:
//   [BLS]  Curve: E: y^2 = x^3 + 4 over F_p, the group G1 of prime order r.
//          Constants from draft-irtf-cfrg-pairing-friendly-curves-11,
//          section 4.2.1 (BLS12_381), https://datatracker.ietf.org/doc/draft-irtf-cfrg-pairing-friendly-curves/
//   [ZC]   Compressed encoding (48 bytes, big-endian x, three flag bits in the
//          top of the first byte: 0x80 compressed, 0x40 infinity, 0x20 "y is
//          the larger root"): the ZCash serialisation,
//          https://github.com/zkcrypto/pairing/tree/main/src/bls12_381#serialization
//          (also draft-irtf-cfrg-pairing-friendly-curves-11, appendix C).
//   [RCB]  Complete addition and doubling in homogeneous projective
//          coordinates for a = 0: Renes, Costello, Batina, "Complete addition
//          formulas for prime order elliptic curves", EUROCRYPT 2016,
//          https://eprint.iacr.org/2015/1060, Algorithm 7 (addition) and
//          Algorithm 9 (doubling), with b3 = 3*b = 12. They are complete on
//          any short Weierstrass curve with no point of order 2, which holds
//          for E(F_p) here (its order h*r is odd).
//   [SQ]   Square roots: p = 3 mod 4, so sqrt(a) = a^((p+1)/4) when a is a
//          square (check by squaring back).
//   [SG]   Subgroup membership: P is in G1 iff r*P is the identity (the plain
//          definition; slower than the endomorphism test but obviously right).
//
// Not constant-time: the page verifies data its reader already holds.

export const P = 0x1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaabn;
export const R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001n;
const B3 = 12n;
export const POINT_BYTES = 48;
const HALF_P = (P - 1n) / 2n;
const SQRT_EXP = (P + 1n) / 4n;

/** A malformed encoding: the message says what and why. */
export class FormatError extends Error {
  constructor(message) {
    super(message);
    this.name = "FormatError";
  }
}

const mod = (a) => {
  const m = a % P;
  return m < 0n ? m + P : m;
};

export function modPow(base, exp, m = P) {
  let result = 1n;
  let b = base % m;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}

/** a^-1 mod p by the extended Euclidean algorithm (a != 0). */
function inverse(a) {
  let [r0, r1] = [mod(a), P];
  let [s0, s1] = [1n, 0n];
  if (r0 === 0n) throw new RangeError("inverse of zero");
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0);
}

/** A point in homogeneous projective coordinates: (X : Y : Z), x = X/Z,
 * y = Y/Z; the identity is (0 : 1 : 0). Immutable. */
export class G1 {
  constructor(X, Y, Z) {
    this.X = X;
    this.Y = Y;
    this.Z = Z;
    Object.freeze(this);
  }

  static identity() {
    return IDENTITY;
  }

  /** From affine coordinates, checking the curve equation (not the subgroup). */
  static fromAffine(x, y) {
    if (x < 0n || x >= P || y < 0n || y >= P) throw new FormatError("coordinate out of range");
    if (mod(y * y) !== mod(x * x * x + 4n)) throw new FormatError("point not on the curve");
    return new G1(x, y, 1n);
  }

  isIdentity() {
    return this.Z === 0n;
  }

  equals(q) {
    return mod(this.X * q.Z - q.X * this.Z) === 0n && mod(this.Y * q.Z - q.Y * this.Z) === 0n;
  }

  negate() {
    return new G1(this.X, mod(-this.Y), this.Z);
  }

  /** [RCB] Algorithm 7: P + Q, complete (any inputs, identity included). */
  add(q) {
    const { X: X1, Y: Y1, Z: Z1 } = this;
    const { X: X2, Y: Y2, Z: Z2 } = q;
    let t0 = mod(X1 * X2);
    let t1 = mod(Y1 * Y2);
    let t2 = mod(Z1 * Z2);
    let t3 = mod((X1 + Y1) * (X2 + Y2));
    let t4 = t0 + t1;
    t3 = t3 - t4;
    t4 = mod((Y1 + Z1) * (Y2 + Z2));
    let X3 = t1 + t2;
    t4 = t4 - X3;
    X3 = mod((X1 + Z1) * (X2 + Z2));
    let Y3 = t0 + t2;
    Y3 = X3 - Y3;
    X3 = t0 + t0;
    t0 = X3 + t0;
    t2 = B3 * t2;
    let Z3 = t1 + t2;
    t1 = t1 - t2;
    Y3 = mod(B3 * Y3);
    X3 = mod(t4 * Y3);
    t2 = mod(t3 * t1);
    X3 = t2 - X3;
    Y3 = mod(Y3 * t0);
    t1 = mod(t1 * Z3);
    Y3 = t1 + Y3;
    t0 = mod(t0 * t3);
    Z3 = mod(Z3 * t4);
    Z3 = Z3 + t0;
    return new G1(mod(X3), mod(Y3), mod(Z3));
  }

  /** [RCB] Algorithm 9: 2P, complete. */
  double() {
    const { X, Y, Z } = this;
    let t0 = mod(Y * Y);
    let Z3 = 8n * t0;
    let t1 = mod(Y * Z);
    let t2 = mod(B3 * mod(Z * Z));
    let X3 = mod(t2 * Z3);
    let Y3 = t0 + t2;
    Z3 = mod(t1 * Z3);
    t1 = t2 + t2;
    t2 = t1 + t2;
    t0 = t0 - t2;
    Y3 = mod(t0 * Y3);
    Y3 = X3 + Y3;
    t1 = mod(X * Y);
    X3 = mod(t0 * t1);
    X3 = X3 + X3;
    return new G1(mod(X3), mod(Y3), Z3);
  }

  /** k*P for an integer k >= 0 (left-to-right double-and-add; k is not
   * reduced, so multiplying by R tests subgroup membership). */
  multiply(k) {
    if (typeof k !== "bigint" || k < 0n) throw new RangeError("scalar must be a BigInt >= 0");
    let acc = IDENTITY;
    for (let i = k.toString(2), j = 0; j < i.length; j++) {
      acc = acc.double();
      if (i.charCodeAt(j) === 49) acc = acc.add(this);
    }
    return acc;
  }

  /** Affine (x, y); throws on the identity. */
  toAffine() {
    if (this.isIdentity()) throw new RangeError("the identity has no affine coordinates");
    const zi = inverse(this.Z);
    return { x: mod(this.X * zi), y: mod(this.Y * zi) };
  }

  /** [SG] r*P is the identity. */
  inSubgroup() {
    return this.multiply(R).isIdentity();
  }

  /** [ZC] The 48-byte compressed encoding. */
  toBytes() {
    const out = new Uint8Array(POINT_BYTES);
    if (this.isIdentity()) {
      out[0] = 0xc0;
      return out;
    }
    const { x, y } = this.toAffine();
    let v = x;
    for (let i = POINT_BYTES - 1; i >= 0; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    out[0] |= 0x80 | (y > HALF_P ? 0x20 : 0);
    return out;
  }

  /** [ZC] Strict decoding of 48 bytes: the compression flag set; the
   * identity only as 0xc0 || 0^47 and only if allowed; x < p; x^3 + 4 a
   * square (on the curve); the point in the order-r subgroup. */
  static fromBytes(bytes, { allowIdentity = false, what = "point" } = {}) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== POINT_BYTES) {
      throw new FormatError(`${what}: expected ${POINT_BYTES} bytes`);
    }
    const flags = bytes[0] & 0xe0;
    if (!(flags & 0x80)) throw new FormatError(`${what}: compression flag not set`);
    let x = BigInt(bytes[0] & 0x1f);
    for (let i = 1; i < POINT_BYTES; i++) x = (x << 8n) | BigInt(bytes[i]);
    if (flags & 0x40) {
      if (flags & 0x20 || x !== 0n) {
        throw new FormatError(`${what}: non-canonical encoding of the identity`);
      }
      if (!allowIdentity) throw new FormatError(`${what}: identity point not allowed here`);
      return IDENTITY;
    }
    if (x >= P) throw new FormatError(`${what}: x coordinate not below the field modulus`);
    const rhs = mod(x * x * x + 4n);
    let y = modPow(rhs, SQRT_EXP);
    if (mod(y * y) !== rhs) throw new FormatError(`${what}: not on the curve`);
    if ((y > HALF_P) !== Boolean(flags & 0x20)) y = mod(-y);
    const point = new G1(x, y, 1n);
    if (!point.inSubgroup()) throw new FormatError(`${what}: not in the prime-order subgroup`);
    return point;
  }
}

const IDENTITY = new G1(0n, 1n, 0n);

/** The standard generator of G1 [BLS] (tests use it; the page's bases are
 * the project's g and h, pinned in inclusion.js). */
export const BASE = G1.fromAffine(
  0x17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bbn,
  0x08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1n,
);

/** v*g + w*h with one shared doubling chain (Straus-Shamir): the Pedersen
 * commitment of the leaf opening. */
export function linearCombination(g, v, h, w) {
  if (typeof v !== "bigint" || typeof w !== "bigint" || v < 0n || w < 0n) {
    throw new RangeError("scalars must be BigInts >= 0");
  }
  const gh = g.add(h);
  let acc = IDENTITY;
  const n = Math.max(v.toString(2).length, w.toString(2).length);
  for (let i = n - 1; i >= 0; i--) {
    acc = acc.double();
    const a = (v >> BigInt(i)) & 1n;
    const b = (w >> BigInt(i)) & 1n;
    if (a && b) acc = acc.add(gh);
    else if (a) acc = acc.add(g);
    else if (b) acc = acc.add(h);
  }
  return acc;
}
