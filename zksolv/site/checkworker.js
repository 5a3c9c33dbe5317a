// The Web Worker that checks a bundle's proofs for the holder's page
// (proofcheck.js does the work; this module fetches and talks to the page).
//
// Start it as a module worker beside the page:
//
//   const worker = new Worker("checkworker.js", { type: "module" });
//   worker.postMessage({
//     type: "check",
//     bundleUrl,      // the bundle directory, same origin (e.g. fetchBundle(...).url)
//     manifest,       // manifest.json as fetched: its raw text (string) or bytes
//                     // (Uint8Array), after inclusion.js's checkManifest passed
//     shard,          // the holder's shard: floor(leafIndex / tree.shard_leaves)
//     sample,         // how many other shards to check, drawn uniformly at random
//     inclusion,      // optional: the holder's inclusion proof JSON (text); then the
//                     // own shard's leaves must also reach the signed root through
//                     // the holder's path (ownShard.boundToRoot)
//   });
//
// The worker answers with any number of
//
//   {type: "progress", done, total, what}      done/total in rough work units
//
// and then exactly one of
//
//   {type: "result", ownShard: {shard, ok, margin, boundToRoot},
//    sampled: [{shard, ok, margin}], shards, solvency: {asset, valued},
//    margin: {debtRange, health}, totals, escapeProbability,
//    failures: [{tag, detail}], bundleHash, elapsedMs, timings}
//   {type: "error", tag, detail}
//
// In a result, ok/asset/valued are true only for a proof that verified;
// margin (version 5 only; null, and absent per shard, in version 4) is true
// when the debt range and margin-health proofs verified, false when one did
// not, null when they could not be checked; failures name each failed check
// with the verifier's tag (leaf-encoding, leaf-range, debt-range,
// margin-health, tree-root, solvency-bounds, totals-opening, solvency-asset,
// solvency-valued), in the verifier's order of checks. totals: null when the manifest reveals no totals, else
// whether they open the root commitments. escapeProbability: the chance that
// one bad shard among the others is not in the sample. bundleHash: SHA-256 of
// the manifest the proofs were checked against (compare with the one the
// page verified). timings: milliseconds by stage (generatorsMs, shardsMs:
// fetching and decoding the shards, solvencyMs, msmMs). An error means nothing could be checked: tag
// manifest-format, suite-mismatch or bundle-shape (the manifest), manifest-hash
// (a data file could not be fetched or has the wrong size), generators (the
// site's generator table is missing or altered), input (a bad request), or
// an inclusion-* tag for the inclusion proof.
//
// The multi-scalar multiplication is split over helper workers
// (msmworker.js), one per further core the browser reports (at most 3).
// Data files are fetched by HTTP Range requests, only the records needed;
// a server without Range support sends whole files, which are then kept for
// the rest of the check. Nothing leaves the page's origin.

import { CheckError, checkBundleProofs } from "./proofcheck.js";
import { VerificationError, parseDocument } from "./inclusion.js";
import { addJac, msm } from "./msm.js";

// Below this many points one thread is as fast as handing parts out.
const PARALLEL_MIN_POINTS = 4096;

/** Read at most `limit` bytes of a response body; more is an error. */
async function readBounded(res, limit, what) {
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    if (all.length > limit) throw new CheckError("manifest-hash", `${what}: more than ${limit} bytes`);
    return all;
  }
  const reader = res.body.getReader();
  const out = new Uint8Array(limit);
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out.subarray(0, at);
    if (at + value.length > limit) {
      await reader.cancel();
      throw new CheckError("manifest-hash", `${what}: more than ${limit} bytes`);
    }
    out.set(value, at);
    at += value.length;
  }
}

/** fetchRange for checkBundleProofs over HTTP: a Range request, or the
 * whole file (kept) when the server ignores Range. */
export function httpFiles(dir, { fetch = globalThis.fetch } = {}) {
  const whole = new Map();
  return async (name, offset, length, size) => {
    const url = new URL(name, dir);
    const what = url.pathname;
    if (whole.has(name)) return whole.get(name).subarray(offset, offset + length);
    let res;
    try {
      res = await fetch(url.href, {
        headers: { Range: `bytes=${offset}-${offset + length - 1}` },
        credentials: "omit", cache: "no-store", redirect: "error",
      });
    } catch (e) {
      throw new CheckError("manifest-hash", `${what}: could not be fetched (${e.message || e})`);
    }
    if (res.status === 206) {
      const range = res.headers.get("Content-Range");
      if (range !== `bytes ${offset}-${offset + length - 1}/${size}`) {
        throw new CheckError("manifest-hash", `${what}: the server sent ${range}, not bytes ${offset}-${offset + length - 1}/${size}`);
      }
      const body = await readBounded(res, length, what);
      if (body.length !== length) throw new CheckError("manifest-hash", `${what}: short range`);
      return body;
    }
    if (res.status !== 200) throw new CheckError("manifest-hash", `${what}: HTTP ${res.status}`);
    const body = await readBounded(res, size, what);
    if (body.length !== size) {
      throw new CheckError("manifest-hash", `${what}: ${body.length} bytes, the manifest lists ${size}`);
    }
    whole.set(name, body);
    return body.subarray(offset, offset + length);
  };
}

/** loadChunk for the generator table published beside the page. */
export function httpChunks(base, { fetch = globalThis.fetch } = {}) {
  return async (name) => {
    const url = new URL(name, base);
    let res;
    try {
      res = await fetch(url.href, { credentials: "omit", redirect: "error" });
    } catch (e) {
      throw new CheckError("generators", `${url.pathname}: could not be fetched (${e.message || e})`);
    }
    if (!res.ok) throw new CheckError("generators", `${url.pathname}: HTTP ${res.status}`);
    return readBounded(res, 2 * 1024 * 96, url.pathname).catch((e) => {
      throw new CheckError("generators", e.detail || String(e));
    });
  };
}

/** A multi-scalar multiplication split over `helpers` (msmworker.js Web
 * Workers) and this thread: each sums its part of the points, this thread
 * adds the parts. `helpers` is [] where workers cannot be started. */
export function splitMsm(helpers) {
  return async (points, scalars, { onWindow = null } = {}) => {
    const parts = helpers.length + 1;
    if (parts === 1 || points.length < PARALLEL_MIN_POINTS) return msm(points, scalars, { onWindow });
    const size = Math.ceil(points.length / parts);
    const answers = helpers.map((worker, i) => new Promise((resolve, reject) => {
      worker.onmessage = (e) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data));
      worker.onerror = (e) => reject(new Error(e.message || "msm helper failed"));
      const from = (i + 1) * size;
      worker.postMessage({ points: points.slice(from, from + size), scalars: scalars.slice(from, from + size) });
    }));
    let sum = msm(points.slice(0, size), scalars.slice(0, size), { onWindow });
    for (const part of await Promise.all(answers)) sum = addJac(sum, part);
    return sum;
  };
}

/** Helper workers for splitMsm: one per further core (at most 3), none
 * where this scope cannot start workers. */
function startHelpers() {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  if (typeof globalThis.Worker !== "function") return [];
  const helpers = [];
  try {
    for (let i = 1; i < Math.min(cores, 4); i++) {
      helpers.push(new Worker(new URL("msmworker.js", import.meta.url), { type: "module" }));
    }
  } catch {
    helpers.forEach((w) => w.terminate());
    return [];
  }
  return helpers;
}

/** One "check" request, answered through `post`. */
export async function handleCheck(request, { post, base, fetch = globalThis.fetch, helpers = [] }) {
  try {
    const { bundleUrl, manifest, shard, sample } = request;
    if (typeof bundleUrl !== "string") throw new CheckError("input", "bundleUrl: the bundle's directory URL");
    const dir = new URL(bundleUrl.replace(/\/*$/, "/"), base);
    if (dir.origin !== new URL(base).origin) throw new CheckError("input", "the bundle must be on this site");
    let inclusion = null;
    if (request.inclusion !== undefined && request.inclusion !== null) {
      if (typeof request.inclusion !== "string") throw new CheckError("input", "inclusion: the proof's JSON text");
      inclusion = (await parseDocument(request.inclusion)).proof;
    }
    const result = await checkBundleProofs({
      manifest: typeof manifest === "string" ? manifest : new Uint8Array(manifest),
      shard, sample, inclusion,
      fetchRange: httpFiles(dir, { fetch }),
      loadChunk: httpChunks(base, { fetch }),
      onProgress: ({ done, total, what }) => post({ type: "progress", done, total, what }),
      msmImpl: splitMsm(helpers),
    });
    post({ type: "result", ...result });
  } catch (e) {
    if (e instanceof CheckError) post({ type: "error", tag: e.tag, detail: e.detail });
    else if (e instanceof VerificationError) post({ type: "error", tag: e.check, detail: e.detail });
    else post({ type: "error", tag: "error", detail: String((e && e.message) || e) });
  }
}

// As a worker: answer each "check" message.
if (typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope) {
  globalThis.onmessage = (event) => {
    const request = event.data;
    if (!request || request.type !== "check") {
      globalThis.postMessage({ type: "error", tag: "input", detail: "expected {type: \"check\", ...}" });
      return;
    }
    const helpers = startHelpers();
    handleCheck(request, { post: (m) => globalThis.postMessage(m), base: globalThis.location.href, helpers })
      .finally(() => helpers.forEach((w) => w.terminate()));
  };
}
