// The Fiat-Shamir transcript of docs/protocol.md section 3, for the page's
// range-proof verifier: one SHAKE-256 sponge absorbing framed operations
//
//   frame(op, label, data) = op || u32le(len label) || label || u64le(len data) || data
//
// op 0x01 protocol label (label "zksolv-transcript-v1", data the protocol's
// label), 0x02 message, 0x03 challenge request (data u64le(n)), 0x04 ratchet.
// challenge_bytes(label, n) absorbs the request, squeezes n bytes from a copy
// of the sponge and absorbs them back as a ratchet frame. Challenges:
// scalar = 64 bytes little-endian mod r (redrawn if 0); short = 16 bytes
// little-endian (redrawn if 0). Tests compare every output with Python's
// zksolv.core.transcript.

import { Shake256 } from "./keccak.js";
import { R } from "./bls12381.js";

export const TRANSCRIPT_DOMAIN = "zksolv-transcript-v1";
const OP_PROTOCOL = 0x01;
const OP_MESSAGE = 0x02;
const OP_CHALLENGE = 0x03;
const OP_RATCHET = 0x04;

const utf8 = new TextEncoder();
const asBytes = (v) => (typeof v === "string" ? utf8.encode(v) : v);

function u32le(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

export function u64le(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

/** Little-endian bytes as a BigInt. */
export function leToBigInt(bytes) {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

export class Transcript {
  /** `label`: the protocol's label (string or bytes). */
  constructor(label) {
    this.sponge = new Shake256();
    this.#frame(OP_PROTOCOL, utf8.encode(TRANSCRIPT_DOMAIN), asBytes(label));
  }

  #frame(op, label, data) {
    this.sponge.update(Uint8Array.of(op));
    this.sponge.update(u32le(label.length));
    this.sponge.update(label);
    this.sponge.update(u64le(data.length));
    this.sponge.update(data);
  }

  appendMessage(label, message) {
    this.#frame(OP_MESSAGE, asBytes(label), asBytes(message));
  }

  appendU64(label, value) {
    this.appendMessage(label, u64le(value));
  }

  challengeBytes(label, n) {
    const l = asBytes(label);
    this.#frame(OP_CHALLENGE, l, u64le(n));
    const out = this.sponge.digest(n);
    this.#frame(OP_RATCHET, l, out);
    return out;
  }

  /** A nonzero scalar: 64 bytes little-endian reduced mod r. */
  challengeScalar(label) {
    for (;;) {
      const k = leToBigInt(this.challengeBytes(label, 64)) % R;
      if (k !== 0n) return k;
    }
  }

  /** A nonzero 128-bit challenge (the folding rounds and the weights y_k). */
  challengeShort(label) {
    for (;;) {
      const k = leToBigInt(this.challengeBytes(label, 16));
      if (k !== 0n) return k;
    }
  }
}
