// The range proofs' generators for the page (docs/protocol.md section 2):
// g, h, u pinned as compressed points, and the vector bases G_i, H_i read
// from the generator table the site publishes beside the page
// (generators/chunk-NNNN.bin, written by `zksolv site` and served by
// `zksolv serve`), each chunk accepted only if its SHA-256 is the one pinned
// below.
//
// Chunk c holds the pairs i in [1024c, 1024(c+1)) as G_i x || y, H_i x || y
// (affine, 48 bytes each, big-endian): the bytes of the CLI's verified
// generator cache (zksolv/gencache.py). The pins are SHA-256 of those bytes,
// computed from the RFC 9380 hash-to-curve derivation; tests/test_site_js.py
// derives every chunk again in Python and compares. A chunk whose digest
// matches is, byte for byte, the derived points: trusting it is trusting
// this file, which the page already trusts to check anything at all.

import { G1 } from "./bls12381.js";
import { fromG1, fromMont, toMont } from "./msm.js";
import { hashToG1 } from "./h2c.js";

export const GENERATOR_SET_ID = "zksolv/generators/bls12381g1-sswu-ro/v1";
export const GENERATOR_DST = "ZKSOLV-V1-GENERATORS-BLS12381G1_XMD:SHA-256_SSWU_RO_";
export const CHUNK = 1024;
export const CHUNK_BYTES = 2 * CHUNK * 96;
export const TABLE_DIR = "generators";

// g ("value"), h ("blinding"), u ("ipa"): hash-to-curve with the DST of
// docs/protocol.md, compressed; checked against Python by the tests.
export const BASES = Object.freeze({
  g: "98297a7b31c5bae79f991edc6bce604aa7e9fccc23e14efb229a33a66341c10048d970a34ecca7e8aa77453b005dd2cf",
  h: "b3b91b5bf89b9bb5efa238d9aa4e3023b8eb4c5367235824c2407c93872848dea4c24faea12c1a79245c8ef3da872ba7",
  u: "a40a67ae40fdd2588de91d2364fc87a8f0cdf1716f8aca822aecf69c0a96c73eece2e2521ad564a3c256e989072ee345",
});

// SHA-256 of chunk c's bytes, c = 0..31 (2 x 32 768 bases: enough for any
// statement a bundle holds, 128 bits x 256 assets at most).
export const PINNED_CHUNKS = Object.freeze([
  "419e47b4ae2c86a09396c6f3c3c35afc8e9b191b92ddd8da0946f706bdafd3d2",
  "2e53a5bccf9b3f12858872dacc638dc83f822ca9bbf61e41f7b1ff9d680c0a15",
  "c80b7b2cf1379bf6da2d50e0fba4b45698ed826c5cd5ad44ee19666f084350f7",
  "2b7a37cb11eb3fdef821eb0243a99982906f766cf4f84d58c48a318763792240",
  "a1bf3692356866fb6dc20bacb5d6d300680f87d9e7897fe2b92f3cfacbafccb8",
  "7554dcf999eb91490dd6ee072a6ae5b9213e6d17cace571ca8151e3e0e6e8756",
  "4e8f372f71ece602ef3001a30c27bf1ffc56c2a25f1075e30abd0c2081043f15",
  "94c498ba1fce892162c310128085fd089980f6e5bd54f827b11b55500e201192",
  "2f8daaf801d329c92627f7b12fbf51da58a75d6499541a2cf9b944c3c62ddc89",
  "025f2238a712e988345d12026f204825ea21b8e3c775a7e9009f6d542767eb67",
  "ef5b48ae49ffebe68518255d2a2a0db0b347a91f7f7ec22a9183888d87f83c06",
  "88692db066f4c68624aed5c443227efd25ea8db4f7e5a67f28ffbea3520fd8fd",
  "204e8d1d0affd2d9145a0fe86b7d7ab400557ba8a91e9ad192fdb41b1a1c9377",
  "879f2117981f6916f7731300d41a18165230ef94b03b2f9ac5bdefacf50982f0",
  "b4de68822ff5e4b056f278bf7675af539fb9864b3659fa08d433c6f3b867f429",
  "e326e341c8a6baa836f77e8294da0b16e429ec87763e220c5307bad2fa54d741",
  "3c74aeba237febdead61f45d27fb077fc09292b4476b86c44c74ba5e0b4e9371",
  "970430082c028a1ef6d5eff204318debb6c202224729216cc269b3f9cdfdacd9",
  "b4e39db1304bef2bbd2e99669f3e47b5e99a6409fc29a405882682c4f9d333ac",
  "f62549f9eb4993b364afa5d6ba18fcb867e0b182250ff9ecc9e162a811afd486",
  "e6afd4444b328398bad6c0bc6ed2fed3a817e7aadbc4ecd2f51eb6c3dc71ccc4",
  "73f3261e36925eef20ec3d1165233ec49d0c2ef11fa9219dcd8c6ad227c34a5d",
  "8b8eca3bf89db38930474f2a5103052565033e1cd3a14c7643640101269b9748",
  "f63c00b8a93ef7aa4610813b7e33e7b22c0ea5390b77bf7af4f2aa950b7b56cc",
  "d5450230e330568fb61be09dd2dd5fc97245c2e8607d710c510ae9bd8f929b2c",
  "ab65fc059157ee6b4d7d54c18ece9e8d868f206d9379564b6ae915af4ab8cf72",
  "55a32c98d9583551524e886da5048fdd94abf819684c9506855d5ed98b452e8f",
  "863aa8e5fa2c2b5a7d88b40be564a4776d7b01ff58786b8f6f5b389240a0b42c",
  "b96d8e176232b45a55505fc827b9e6040dd895375da349fa27d66d6dcbcb5054",
  "b0fe13a9f62639472952ec62bbd30f9b7a33f87917a241d6829b9d927d2e893d",
  "133af5a55b06f1c0198a6a77664a7b3182690f4c1481f2c89196430c1f698fd5",
  "e1832788557cb0af66f22951e2d7b18202c5e854d806f03fdaa68ff4ced12661",
]);

/** The table file name of chunk c. */
export function chunkName(c) {
  return `${TABLE_DIR}/chunk-${String(c).padStart(4, "0")}.bin`;
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function fromHex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A generator table problem (a missing, short or altered chunk). */
export class GeneratorError extends Error {
  constructor(detail) {
    super(detail);
    this.name = "GeneratorError";
  }
}

function coordinate(bytes, at) {
  let h = "";
  for (let i = at; i < at + 48; i++) h += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return BigInt("0x" + h);
}

/** g, h, u as affine points for msm.js. */
export function bases() {
  const out = {};
  for (const [name, enc] of Object.entries(BASES)) out[name] = fromG1(G1.fromBytes(fromHex(enc)));
  return out;
}

/**
 * The first n of G and H (affine, Montgomery form), from the table chunks.
 * `loadChunk(name)` returns a chunk's bytes (a fetch, or a file in tests);
 * each must hash to its pin. `subtle` is WebCrypto's SubtleCrypto.
 */
export async function vectorBases(n, { loadChunk, subtle = globalThis.crypto.subtle, onChunk = null }) {
  const chunks = Math.ceil(n / CHUNK);
  if (chunks > PINNED_CHUNKS.length) throw new GeneratorError(`${n} generator pairs: more than the table holds`);
  const G = [];
  const H = [];
  for (let c = 0; c < chunks; c++) {
    const raw = await loadChunk(chunkName(c));
    if (!(raw instanceof Uint8Array) || raw.length !== CHUNK_BYTES) {
      throw new GeneratorError(`${chunkName(c)}: expected ${CHUNK_BYTES} bytes`);
    }
    const digest = hex(new Uint8Array(await subtle.digest("SHA-256", raw)));
    if (digest !== PINNED_CHUNKS[c]) {
      throw new GeneratorError(`${chunkName(c)}: not the pinned generator table (SHA-256 ${digest})`);
    }
    const take = Math.min(CHUNK, n - c * CHUNK);
    for (let i = 0; i < take; i++) {
      const at = 2 * 96 * i;
      G.push({ x: toMont(coordinate(raw, at)), y: toMont(coordinate(raw, at + 48)) });
      H.push({ x: toMont(coordinate(raw, at + 96)), y: toMont(coordinate(raw, at + 144)) });
    }
    if (onChunk) onChunk(c + 1, chunks);
  }
  return { G, H };
}


/** hash_to_curve(msg) with the generators' DST (docs/protocol.md section 2). */
export function deriveGenerator(kind, index = null, opts = {}) {
  if (index === null) return hashToG1(kind, GENERATOR_DST, opts);
  const msg = new Uint8Array(5);
  msg[0] = kind.charCodeAt(0);
  new DataView(msg.buffer).setUint32(1, index, false);
  return hashToG1(msg, GENERATOR_DST, opts);
}

/** Derive g and the pairs (G_i, H_i) for `indices` by hash-to-curve and
 * compare them with the pinned g and the table's points; GeneratorError if
 * any differs. */
export async function spotCheck(vectors, indices, opts = {}) {
  const g = await deriveGenerator("value", null, opts);
  if (hex(g.toBytes()) !== BASES.g) throw new GeneratorError("g is not hash-to-curve of \"value\"");
  for (const i of indices) {
    for (const [kind, table] of [["G", vectors.G], ["H", vectors.H]]) {
      const want = (await deriveGenerator(kind, i, opts)).toAffine();
      const got = table[i];
      if (fromMont(got.x) !== want.x || fromMont(got.y) !== want.y) {
        throw new GeneratorError(`${kind}_${i} of the table is not hash-to-curve of its message`);
      }
    }
  }
}
