// The holders' ownership signatures of a version 6 bundle, checked in the
// page (docs/chain.md, "The ownership statement (EIP-712)" and
// "Signatures"): each account holder signs
//
//   digest = keccak256(0x19 || 0x01 || domainSeparator || hashStruct)
//   domainSeparator = keccak256(DOMAIN_TYPEHASH || keccak256("zksolv reserves")
//                               || keccak256("1") || uint256(chainId))
//   hashStruct = keccak256(STATEMENT_TYPEHASH || uint256(holder) || uint256(blockNumber)
//                          || blockHash || uint256(epoch) || operator)
//
// with a 65-byte r || s || v, accepted only when v is 27 or 28, 0 < r < n
// and 0 < s <= n/2 (EIP-2), and when ECDSA public-key recovery over secp256k1
// gives a key whose address (the last 20 bytes of keccak256 of its 64-byte
// uncompressed form) is the holder's [reserves-signature].
//
// Recovery, with e the digest as an integer, R the point of x = r whose y
// has the parity v - 27:  Q = r^-1 * (s*R - e*G) = u1*G + u2*R,
// u1 = -e*r^-1 mod n, u2 = s*r^-1 mod n (one joint double-and-add).
// Plain BigInt arithmetic, variable time: it handles public data only.
// A contract holder's signature is checked by the contract itself
// (EIP-1271, at the pinned block): that needs a node, not this page.
// DOM-free (it runs under node too).

import { keccak256 } from "./keccak.js";

// secp256k1: y^2 = x^3 + 7 over F_p, G of prime order n (SEC 2, section 2.4.1)
export const P = 2n ** 256n - 2n ** 32n - 977n;
export const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const GX = 0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n;
const GY = 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n;

const utf8 = new TextEncoder();
const mod = (a, m) => ((a % m) + m) % m;

function modPow(base, exp, m) {
  let result = 1n;
  base = mod(base, m);
  for (; exp > 0n; exp >>= 1n) {
    if (exp & 1n) result = (result * base) % m;
    base = (base * base) % m;
  }
  return result;
}

const inv = (a, m) => modPow(a, m - 2n, m); // m prime

function word(v) {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

function hexBytes(hex) {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  return Uint8Array.from(h.match(/../g) || [], (b) => parseInt(b, 16));
}

const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const toInt = (b) => (b.length ? BigInt("0x" + toHex(b)) : 0n);

function cat(...parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const DOMAIN_TYPEHASH = keccak256(utf8.encode("EIP712Domain(string name,string version,uint256 chainId)"));
export const STATEMENT_TYPEHASH = keccak256(utf8.encode(
  "ReserveOwnership(address holder,uint256 blockNumber,bytes32 blockHash,uint64 epoch,bytes32 operator)"));

/** EIP-712's domainSeparator, hashStruct and digest of one holder's
 * statement; holder, blockHash and operator as hex (with or without 0x),
 * the numbers as BigInt. */
export function statement({ chainId, holder, blockNumber, blockHash, epoch, operator }) {
  const domainSeparator = keccak256(cat(DOMAIN_TYPEHASH, keccak256(utf8.encode("zksolv reserves")),
    keccak256(utf8.encode("1")), word(chainId)));
  const hashStruct = keccak256(cat(STATEMENT_TYPEHASH, word(toInt(hexBytes(holder))), word(blockNumber),
    hexBytes(blockHash), word(epoch), hexBytes(operator)));
  const digest = keccak256(cat(Uint8Array.of(0x19, 0x01), domainSeparator, hashStruct));
  return { domainSeparator, hashStruct, digest };
}

// Jacobian points {X, Y, Z}, Z = 0 the point at infinity (a = 0 formulas)
const INF = { X: 1n, Y: 1n, Z: 0n };

function double(p) {
  if (p.Z === 0n || p.Y === 0n) return INF;
  const YY = (p.Y * p.Y) % P;
  const S = (4n * p.X * YY) % P;
  const M = (3n * p.X * p.X) % P;
  const X = mod(M * M - 2n * S, P);
  const Y = mod(M * (S - X) - 8n * YY * YY, P);
  return { X, Y, Z: (2n * p.Y * p.Z) % P };
}

function add(p, q) {
  if (p.Z === 0n) return q;
  if (q.Z === 0n) return p;
  const Z1Z1 = (p.Z * p.Z) % P;
  const Z2Z2 = (q.Z * q.Z) % P;
  const U1 = (p.X * Z2Z2) % P;
  const U2 = (q.X * Z1Z1) % P;
  const S1 = (p.Y * q.Z * Z2Z2) % P;
  const S2 = (q.Y * p.Z * Z1Z1) % P;
  if (U1 === U2) return S1 === S2 ? double(p) : INF;
  const H = mod(U2 - U1, P);
  const R = mod(S2 - S1, P);
  const HH = (H * H) % P;
  const HHH = (H * HH) % P;
  const V = (U1 * HH) % P;
  const X = mod(R * R - HHH - 2n * V, P);
  const Y = mod(R * (V - X) - S1 * HHH, P);
  return { X, Y, Z: (H * p.Z * q.Z) % P };
}

/** a*A + b*B (Shamir's trick). */
function twoMul(a, A, b, B) {
  const AB = add(A, B);
  let acc = INF;
  for (let i = 255; i >= 0; i--) {
    acc = double(acc);
    const bitA = (a >> BigInt(i)) & 1n;
    const bitB = (b >> BigInt(i)) & 1n;
    if (bitA && bitB) acc = add(acc, AB);
    else if (bitA) acc = add(acc, A);
    else if (bitB) acc = add(acc, B);
  }
  return acc;
}

/** The 64-byte uncompressed public key (x || y) whose signature of
 * `digest` (32 bytes) is `signature` (65 bytes r || s || v), or throws
 * an Error saying why none is (the strict rules above). */
export function recoverPublicKey(digest, signature) {
  if (signature.length !== 65) throw new Error(`a signature is 65 bytes, got ${signature.length}`);
  const r = toInt(signature.subarray(0, 32));
  const s = toInt(signature.subarray(32, 64));
  const v = signature[64];
  if (v !== 27 && v !== 28) throw new Error(`v is ${v}, not 27 or 28`);
  if (!(r > 0n && r < N)) throw new Error("r is not in [1, n)");
  if (!(s > 0n && s <= N / 2n)) throw new Error("s is not in [1, n/2] (EIP-2: low s only)");
  const y2 = (r * r * r + 7n) % P;
  let y = modPow(y2, (P + 1n) / 4n, P);
  if ((y * y) % P !== y2) throw new Error("r is not the x of a curve point");
  if ((y & 1n) !== BigInt(v - 27)) y = P - y;
  const e = toInt(digest) % N;
  const rInv = inv(r, N);
  const q = twoMul(mod(-e * rInv, N), { X: GX, Y: GY, Z: 1n }, (s * rInv) % N, { X: r, Y: y, Z: 1n });
  if (q.Z === 0n) throw new Error("the recovered key is the point at infinity");
  const zi = inv(q.Z, P);
  const zi2 = (zi * zi) % P;
  return cat(word((q.X * zi2) % P), word((q.Y * zi2 * zi) % P));
}

/** "0x" + 40 lowercase hex digits: the address of a 64-byte public key. */
export function addressOf(publicKey) {
  return "0x" + toHex(keccak256(publicKey).subarray(12));
}

/** The first account holding whose signature does not recover to its
 * address for this chain, block, epoch and operator, as { tag:
 * "reserves-signature", detail }, or null. `evidence` as reserves.js
 * parses it; each (address, signature) is recovered once, whatever the
 * number of assets it holds. Contract and declared holdings are skipped
 * (EIP-1271 needs a node; a declared holder has no signature). */
export function ownershipProblem(evidence, epoch, operator) {
  const done = new Map();
  for (const a of evidence.assets) {
    for (const h of a.holdings) {
      if (h.kind !== "account" || h.signature === null) continue;
      const key = `${h.address}/${h.signature}`;
      if (!done.has(key)) {
        const { digest } = statement({ chainId: evidence.chainId, holder: h.address, blockNumber: evidence.blockNumber,
          blockHash: evidence.blockHash, epoch, operator });
        let why = null;
        try {
          const got = addressOf(recoverPublicKey(digest, hexBytes(h.signature)));
          if (got !== h.address) {
            why = `the signature recovers to ${got}: not signed by the holder for chain ${evidence.chainId}, `
              + `block ${evidence.blockNumber}, epoch ${epoch} and this operator key`;
          }
        } catch (e) {
          why = e.message;
        }
        done.set(key, why);
      }
      const why = done.get(key);
      if (why !== null) return { tag: "reserves-signature", detail: `${a.symbol} holder ${h.address}: ${why}` };
    }
  }
  return null;
}
