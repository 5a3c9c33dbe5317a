// A helper Web Worker of checkworker.js: one part of a multi-scalar
// multiplication (msm.js) per message. Receives {points: [{x, y}], scalars}
// (BigInts, points affine in msm.js's Montgomery form) and answers with the
// Jacobian sum {X, Y, Z}, or {error}.

import { msm } from "./msm.js";

globalThis.onmessage = (event) => {
  try {
    const { points, scalars } = event.data;
    const { X, Y, Z } = msm(points, scalars);
    globalThis.postMessage({ X, Y, Z });
  } catch (e) {
    globalThis.postMessage({ error: String((e && e.message) || e) });
  }
};
