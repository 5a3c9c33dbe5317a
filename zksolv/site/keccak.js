// SHAKE-256 for the holder's page: Keccak-f[1600] on 32-bit halves of each
// 64-bit lane, the sponge with rate 136 bytes and the SHAKE domain byte 0x1F.
// No third-party code; tests compare it with node's crypto
// (createHash("shake256")) and, through the transcript, with Python's
// hashlib.shake_256.
//
// Source: FIPS 202, "SHA-3 Standard: Permutation-Based Hash and
// Extendable-Output Functions", https://doi.org/10.6028/NIST.FIPS.202
// (section 3.2: theta, rho, pi, chi, iota; section 6.2: SHAKE256 =
// KECCAK[512](M || 1111, d); table 2: the rho offsets). Lane (x, y) is
// index x + 5y; each lane is stored as (lo, hi) 32-bit words, little-endian.

const RATE = 136; // bytes: 1600 - 2*256 bits

// [FIPS 202, table 2] rho offsets by lane index x + 5y.
const RHO = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];
// [FIPS 202, 3.2.3] pi: A'[x, y] = A[x + 3y mod 5, x]; as a destination for each source lane.
const PI = new Int32Array(25);
for (let x = 0; x < 5; x++) {
  for (let y = 0; y < 5; y++) PI[x + 5 * y] = y + 5 * ((2 * x + 3 * y) % 5);
}

// [FIPS 202, 3.2.5] iota round constants, from the LFSR rc(t).
const RC_LO = new Uint32Array(24);
const RC_HI = new Uint32Array(24);
{
  let r = 1;
  const rc = () => {
    const bit = r & 1;
    r = (r << 1) ^ (r & 0x80 ? 0x171 : 0);
    return bit;
  };
  for (let round = 0; round < 24; round++) {
    let lo = 0;
    let hi = 0;
    for (let j = 0; j < 7; j++) {
      const pos = (1 << j) - 1;
      if (rc()) {
        if (pos < 32) lo |= 1 << pos;
        else hi |= 1 << (pos - 32);
      }
    }
    RC_LO[round] = lo >>> 0;
    RC_HI[round] = hi >>> 0;
  }
}

const C = new Uint32Array(10);
const B = new Uint32Array(50);

/** Keccak-f[1600] in place on 50 words (lane i: s[2i] low, s[2i+1] high). */
export function keccakF(s) {
  for (let round = 0; round < 24; round++) {
    // theta
    for (let x = 0; x < 5; x++) {
      C[2 * x] = s[2 * x] ^ s[2 * x + 10] ^ s[2 * x + 20] ^ s[2 * x + 30] ^ s[2 * x + 40];
      C[2 * x + 1] = s[2 * x + 1] ^ s[2 * x + 11] ^ s[2 * x + 21] ^ s[2 * x + 31] ^ s[2 * x + 41];
    }
    for (let x = 0; x < 5; x++) {
      const l = C[2 * ((x + 1) % 5)];
      const h = C[2 * ((x + 1) % 5) + 1];
      const dl = C[2 * ((x + 4) % 5)] ^ ((l << 1) | (h >>> 31));
      const dh = C[2 * ((x + 4) % 5) + 1] ^ ((h << 1) | (l >>> 31));
      for (let y = 0; y < 25; y += 5) {
        s[2 * (x + y)] ^= dl;
        s[2 * (x + y) + 1] ^= dh;
      }
    }
    // rho and pi
    for (let i = 0; i < 25; i++) {
      const l = s[2 * i];
      const h = s[2 * i + 1];
      const n = RHO[i];
      let rl;
      let rh;
      if (n === 0) {
        rl = l;
        rh = h;
      } else if (n < 32) {
        rl = (l << n) | (h >>> (32 - n));
        rh = (h << n) | (l >>> (32 - n));
      } else if (n === 32) {
        rl = h;
        rh = l;
      } else {
        const m = n - 32;
        rl = (h << m) | (l >>> (32 - m));
        rh = (l << m) | (h >>> (32 - m));
      }
      B[2 * PI[i]] = rl;
      B[2 * PI[i] + 1] = rh;
    }
    // chi
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) {
        const a = 2 * (y + x);
        const b = 2 * (y + ((x + 1) % 5));
        const c = 2 * (y + ((x + 2) % 5));
        s[a] = B[a] ^ (~B[b] & B[c]);
        s[a + 1] = B[a + 1] ^ (~B[b + 1] & B[c + 1]);
      }
    }
    // iota
    s[0] ^= RC_LO[round];
    s[1] ^= RC_HI[round];
  }
}

/** The SHAKE-256 sponge: update(bytes), copy(), digest(n) (n bytes from a
 * finalised copy, so the sponge can keep absorbing, as hashlib's does). */
export class Shake256 {
  /** `pad`: the domain byte, 0x1f for SHAKE (FIPS 202); 0x01 is the
   * original Keccak padding Ethereum's keccak256 uses (same rate, 136). */
  constructor(pad = 0x1f) {
    this.pad = pad;
    this.state = new Uint32Array(50);
    this.block = new Uint8Array(RATE);
    this.pos = 0;
  }

  update(data) {
    let i = 0;
    while (i < data.length) {
      const take = Math.min(RATE - this.pos, data.length - i);
      this.block.set(data.subarray(i, i + take), this.pos);
      this.pos += take;
      i += take;
      if (this.pos === RATE) this.#absorbBlock();
    }
    return this;
  }

  #absorbBlock() {
    const s = this.state;
    const b = this.block;
    for (let w = 0; w < RATE / 4; w++) {
      s[w] ^= b[4 * w] | (b[4 * w + 1] << 8) | (b[4 * w + 2] << 16) | (b[4 * w + 3] << 24);
    }
    keccakF(s);
    this.pos = 0;
  }

  copy() {
    const c = new Shake256(this.pad);
    c.state.set(this.state);
    c.block.set(this.block);
    c.pos = this.pos;
    return c;
  }

  /** n output bytes of the finished message; this sponge is unchanged. */
  digest(n) {
    const c = this.copy();
    c.block.fill(0, c.pos);
    c.block[c.pos] ^= this.pad;
    c.block[RATE - 1] ^= 0x80;
    c.#absorbBlock();
    const out = new Uint8Array(n);
    let at = 0;
    for (;;) {
      for (let w = 0; w < RATE / 4 && at < n; w++) {
        const v = c.state[w];
        for (let j = 0; j < 4 && at < n; j++) out[at++] = (v >>> (8 * j)) & 0xff;
      }
      if (at >= n) return out;
      keccakF(c.state);
    }
  }
}

export function shake256(data, n) {
  return new Shake256().update(data).digest(n);
}

/** Ethereum's keccak256: Keccak-256 with the original padding, not SHA3-256. */
export function keccak256(data) {
  return new Shake256(0x01).update(data).digest(32);
}
