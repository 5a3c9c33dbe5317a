// Aggregated Bulletproofs verification for the page (docs/protocol.md
// section 5, scheme zksolv/range/bulletproofs-aggregated/v1), the same
// equations as zksolv/core/rangeproof.py:
//
//   [range-t]   t_hat*g + tau_x*h = sum_j z^(2+j) V_j + delta(y, z)*g + x*T1 + x^2*T2
//   [range-ipa] a*sum_i s_i G_i + b*sum_i s_i^-1 w_i^-1 H_i + a*b*Q
//                 = A + x*S - z*sum_i G_i + sum_i (z + z^(2+j) 2^(i mod n) w_i^-1) H_i
//                   - mu*h + t_hat*Q + sum_k (u_k^-1 L_k + u_k R_k),     Q = xi*u
//
// (xi the challenge drawn under the label "w", not the weights w_i)
//
// with s_i = prod_k u_k^-bit_k(i), w_i = prod_k y_k^bit_k(i) (bit 0 the top
// bit of i), delta = (z - z^2)*prod_k(1 + y_k) - (2^n - 1)*sum_{j<M} z^(3+j).
// Each proof's two equations, [range-t] weighted by a random c, become one
// list of (point, scalar); many proofs are summed with independent random
// 128-bit weights (crypto.getRandomValues, drawn after the proofs are read)
// into one multi-scalar multiplication over the shared G_i, H_i, g, h, u.

import { R, POINT_BYTES, FormatError } from "./bls12381.js";
import { Transcript, leToBigInt } from "./transcript.js";
import { decodePoint, isIdentity, msm } from "./msm.js";
import { GENERATOR_SET_ID } from "./generators.js";

export const RANGE_SCHEME_ID = "zksolv/range/bulletproofs-aggregated/v1";
export const TRANSCRIPT_LABEL = "zksolv/range-proof";
const SCALAR_BYTES = 32;

const nextPow2 = (m) => 2 ** Math.ceil(Math.log2(m));
const log2 = (n) => Math.round(Math.log2(n));
const modR = (v) => {
  const m = v % R;
  return m < 0n ? m + R : m;
};

/** Rounds of the inner-product argument for n bits and m values. */
export function roundsFor(bits, m) {
  return log2(bits * nextPow2(m));
}

/** Bytes of a proof with `rounds` rounds: 352 + 96*rounds. */
export function proofSize(rounds) {
  return 4 * POINT_BYTES + 5 * SCALAR_BYTES + 2 * rounds * POINT_BYTES;
}

function scalar(bytes, what) {
  const k = leToBigInt(bytes);
  if (k >= R) throw new FormatError(`${what}: non-canonical scalar (>= r)`);
  return k;
}

/** RangeProof.from_bytes: A S T1 T2, t_hat tau_x mu, L_1 R_1 .. L_k R_k, a b. */
export function parseRangeProof(data) {
  const base = proofSize(0);
  if (data.length < base || (data.length - base) % (2 * POINT_BYTES)) {
    throw new FormatError(`range proof: length ${data.length} is not 352 + 96k`);
  }
  const rounds = (data.length - base) / (2 * POINT_BYTES);
  if (rounds > 32) throw new FormatError(`range proof: ${rounds} rounds is more than any statement allows`);
  let pos = 0;
  const take = (n) => data.subarray(pos, (pos += n));
  const [A, S, T1, T2] = [0, 1, 2, 3].map(() => take(POINT_BYTES));
  const tHatBytes = take(32);
  const tauXBytes = take(32);
  const muBytes = take(32);
  const L = [];
  const Rs = [];
  for (let k = 0; k < rounds; k++) {
    L.push(take(POINT_BYTES));
    Rs.push(take(POINT_BYTES));
  }
  const aBytes = take(32);
  const bBytes = take(32);
  return {
    A, S, T1, T2, L, R: Rs, tHatBytes, tauXBytes, muBytes,
    tHat: scalar(tHatBytes, "range proof t_hat"),
    tauX: scalar(tauXBytes, "range proof tau_x"),
    mu: scalar(muBytes, "range proof mu"),
    a: scalar(aBytes, "range proof a"),
    b: scalar(bBytes, "range proof b"),
  };
}

/** RangeStatement.transcript(): the whole statement before any challenge. */
function statementTranscript(st) {
  const t = new Transcript(TRANSCRIPT_LABEL);
  t.appendMessage("scheme", RANGE_SCHEME_ID);
  t.appendMessage("statement-id", st.statementId);
  t.appendMessage("generator-set", GENERATOR_SET_ID);
  t.appendU64("n", st.bits);
  t.appendU64("m", st.commitments.length);
  t.appendMessage("context", st.context);
  for (const c of st.commitments) t.appendMessage("V", c);
  return t;
}

/** The 2^k products start * prod_k f_k^bit_k(i), factor 0 the top bit. */
function tensor(factors, start = 1n) {
  let out = [modR(start)];
  for (const f of factors) {
    const next = new Array(out.length * 2);
    for (let i = 0; i < out.length; i++) {
      next[2 * i] = out[i];
      next[2 * i + 1] = (out[i] * f) % R;
    }
    out = next;
  }
  return out;
}

function invR(a) {
  let [r0, r1] = [modR(a), R];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return modR(s0);
}

/** A random scalar in [1, r) (64 random bytes mod r) and a random odd
 * 128-bit weight, from crypto.getRandomValues (or `random(n)` in tests). */
export function randomScalar(random) {
  for (;;) {
    const k = leToBigInt(random(64)) % R;
    if (k !== 0n) return k;
  }
}
export function randomWeight(random) {
  return leToBigInt(random(16)) | 1n;
}
export const cryptoRandom = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n));

/**
 * One proof's combined equation, as coefficients on the shared bases
 * (G, H: arrays of length N; g, h, u) and on its own points. `statement`:
 * {statementId, commitments (48-byte encodings), bits, context, V (optional:
 * the commitments already decoded, as msm.js affine points)}; `decode`
 * (tests) replaces msm.js's decodePoint. Throws
 * FormatError for an undecodable point, a RangeError("range-shape") when the
 * rounds do not fit the statement.
 */
export function equation(statement, proof, weight, c, { decode = decodePoint } = {}) {
  const n = statement.bits;
  const m = statement.commitments.length;
  const M = nextPow2(m);
  const N = n * M;
  const rounds = log2(N);
  if (proof.L.length !== rounds) {
    const e = new FormatError(`proof has ${proof.L.length} rounds, statement needs ${rounds}`);
    e.check = "range-shape";
    throw e;
  }
  const V = statement.V ?? statement.commitments.map((cb, j) => decode(cb, { what: `commitment V[${j}]` }));
  const A = decode(proof.A, { what: "range proof A" });
  const S = decode(proof.S, { what: "range proof S" });
  const opt = (p, what) => decode(p, { allowIdentity: true, what });
  const T1 = opt(proof.T1, "range proof T1");
  const T2 = opt(proof.T2, "range proof T2");
  const Ls = proof.L.map((p, k) => opt(p, `range proof L[${k}]`));
  const Rs = proof.R.map((p, k) => opt(p, `range proof R[${k}]`));

  const t = statementTranscript(statement);
  t.appendMessage("A", proof.A);
  t.appendMessage("S", proof.S);
  const ys = [];
  for (let k = 0; k < rounds; k++) ys.push(t.challengeShort("y"));
  const z = t.challengeScalar("z");
  t.appendMessage("T1", proof.T1);
  t.appendMessage("T2", proof.T2);
  const x = t.challengeScalar("x");
  t.appendMessage("t_hat", proof.tHatBytes);
  t.appendMessage("tau_x", proof.tauXBytes);
  t.appendMessage("mu", proof.muBytes);
  const xi = t.challengeScalar("w"); // Q = xi*u
  const us = [];
  for (let k = 0; k < rounds; k++) {
    t.appendMessage("L", proof.L[k]);
    t.appendMessage("R", proof.R[k]);
    us.push(t.challengeShort("u"));
  }
  const uInvs = us.map(invR);
  const yInvs = ys.map(invR);

  const { a, b } = proof;
  const wz = (weight * z) % R;
  const zPow = [1n];
  for (let i = 1; i < M + 3; i++) zPow.push((zPow[i - 1] * z) % R);
  let sumW = 1n;
  for (const yk of ys) sumW = (sumW * (1n + yk)) % R;
  const sum2 = (1n << BigInt(n)) - 1n;
  let zSum = 0n;
  for (let j = 0; j < M; j++) zSum += zPow[3 + j];
  const delta = modR((z - zPow[2]) * sumW - sum2 * zSum);
  // position k = j*n + i (value j, bit i): every tensor splits into the top
  // log2(M) challenges (index j) and the bottom log2(n) (index i)
  const top = log2(M);
  const uy = us.map((uk, i) => (uk * yInvs[i]) % R);
  const sTop = tensor(uInvs.slice(0, top), weight * a);
  const sBot = tensor(uInvs.slice(top));
  const fTop = tensor(uy.slice(0, top), weight * b);
  const fBot = tensor(uy.slice(top));
  const wTop = tensor(yInvs.slice(0, top));
  const wBot = tensor(yInvs.slice(top));
  const zwTop = wTop.map((wt, j) => (((weight * zPow[2 + j]) % R) * wt) % R);
  const twoWBot = wBot.map((wb, i) => wb << BigInt(i));
  const G = new Array(N);
  const H = new Array(N);
  for (let j = 0; j < M; j++) {
    const st = sTop[j];
    const ft = fTop[j];
    const zt = zwTop[j];
    for (let i = 0; i < n; i++) {
      G[j * n + i] = (st * sBot[i] + wz) % R;
      H[j * n + i] = modR(ft * fBot[i] - zt * twoWBot[i] - wz);
    }
  }
  const wc = (weight * c) % R;
  const points = [];
  const scalars = [];
  const push = (p, s) => {
    if (p !== null) {
      points.push(p);
      scalars.push(modR(s));
    }
  };
  push(A, -weight);
  push(S, -weight * x);
  push(T1, -wc * x);
  push(T2, -wc * ((x * x) % R));
  V.forEach((v, j) => push(v, -wc * zPow[2 + j]));
  Ls.forEach((p, k) => push(p, -weight * uInvs[k]));
  Rs.forEach((p, k) => push(p, -weight * us[k]));
  return {
    G, H,
    g: modR(wc * (proof.tHat - delta)),
    h: modR(weight * (proof.mu + c * proof.tauX)),
    u: modR(((weight * xi) % R) * (a * b - proof.tHat)),
    points, scalars,
  };
}

/** Whether the summed equations hold: one multi-scalar multiplication.
 * `bases`: {g, h, u} and `vectors`: {G, H} (at least as long as any N). */
export function holds(equations, bases, vectors, { onWindow = null, msmImpl = msm } = {}) {
  const N = Math.max(...equations.map((e) => e.G.length));
  if (vectors.G.length < N) throw new RangeError(`need ${N} generator pairs, have ${vectors.G.length}`);
  const G = new Array(N).fill(0n);
  const H = new Array(N).fill(0n);
  let g = 0n;
  let h = 0n;
  let u = 0n;
  const points = [];
  const scalars = [];
  for (const e of equations) {
    for (let i = 0; i < e.G.length; i++) {
      G[i] += e.G[i];
      H[i] += e.H[i];
    }
    g += e.g;
    h += e.h;
    u += e.u;
    for (let i = 0; i < e.points.length; i++) {
      points.push(e.points[i]);
      scalars.push(e.scalars[i]);
    }
  }
  const allPoints = [...vectors.G.slice(0, N), ...vectors.H.slice(0, N), bases.g, bases.h, bases.u, ...points];
  const allScalars = [...G.map(modR), ...H.map(modR), modR(g), modR(h), modR(u), ...scalars];
  return Promise.resolve(msmImpl(allPoints, allScalars, { onWindow })).then(isIdentity);
}
