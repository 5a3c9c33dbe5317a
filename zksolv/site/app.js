// The form and the report of the account holder's page. The checking is in
// inclusion.js (the holder's path to the signed root) and in checkworker.js
// (the bundle's range, margin and solvency proofs, in a Web Worker); the verdict's
// wording in verdict.js and words.json. This module reads the inputs,
// fetches the bundle's manifest from this site, runs the worker and shows
// the verdict. Text from the proof is only ever set as textContent.

import {
  CONSTANTS, InputError, VerificationError, checkManifest, fetchBundle, fullCheckCommand, linkText,
  verifyInclusion,
} from "./inclusion.js";
import { RpcError, checkRegistry, parseSiteRegistry, registryCommand } from "./registry.js";
import { reservesText, amountText, readResult, shortHash, timeText, verdictOf, wordsFor } from "./verdict.js";

const $ = (id) => document.getElementById(id);

// Other shards' range proofs the worker checks besides the holder's own.
export const SAMPLE_SHARDS = 8;
// A worker silent this long (no progress, no result) has stopped: what it
// was checking is reported as not checked. (Tests shorten it by setting
// globalThis.zksolvWorkerStallMs before the page loads.)
const WORKER_STALL_MS = globalThis.zksolvWorkerStallMs || 60000;
const DATA_FILES = ["manifest.json", "manifest.sig", "leaves.bin", "range.bin", "solvency.bin"];

// words.json: one wording per check tag, shared with the CLI. Without it the
// page still works and shows the tags.
const wordsReady = fetch(new URL("words.json", import.meta.url), { cache: "no-store", credentials: "omit" })
  .then((r) => (r.ok ? r.json() : {}))
  .catch(() => ({}));

let worker = null; // the running data-file check, if any

// registry.json: the public registry the operator's site names, if any
// (zksolv site --registry --rpc --chain-id). Absent (404): null, and the
// page says nothing of a registry.
const registryReady = fetch(new URL("registry.json", import.meta.url), { cache: "no-store", credentials: "omit" })
  .then(async (r) => {
    if (r.status === 404) return null;
    if (!r.ok) return { error: `registry.json: HTTP ${r.status}` };
    try {
      return { site: parseSiteRegistry(await r.text()) };
    } catch (e) {
      return { error: e instanceof RpcError ? e.message : String(e) };
    }
  })
  .catch((e) => ({ error: `registry.json could not be read (${e && e.message ? e.message : e})` }));

function prefill() {
  const params = new URLSearchParams(location.search);
  for (const [param, id] of [["bundle", "bundle"], ["bundle-hash", "bundle-hash"], ["operator", "operator"]]) {
    const v = params.get(param);
    if (v !== null) $(id).value = v;
  }
}

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

function copyButton(value, what) {
  const b = el("button", "Copy", "copy");
  b.type = "button";
  b.setAttribute("aria-label", `Copy ${what}`);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select and copy";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  });
  return b;
}

function row(dl, term, value) {
  const dt = el("dt", term);
  const dd = el("dd", value);
  dl.append(dt, dd);
  return dd;
}

/** A hash: whole on wide screens, shortened on narrow ones, with a copy
 * button; the whole value in data-full. */
function hashRow(dl, term, hex, extra = "") {
  const dd = row(dl, term);
  dd.dataset.full = hex;
  dd.append(el("span", hex + extra, "hash-full"), el("span", shortHash(hex) + extra, "hash-short"),
    copyButton(hex, term.toLowerCase()));
  return dd;
}

function showVerdict(v) {
  const result = $("result");
  result.hidden = false;
  result.className = v.state;
  result.dataset.state = v.state;
  result.dataset.check = v.check || "";
  $("verdict").textContent = v.heading;
  $("reason").textContent = v.reason;
  const list = $("checked");
  list.replaceChildren();
  for (const line of v.lines || []) {
    const li = el("li");
    li.dataset.key = line.key;
    li.className = line.ok === true ? "ok" : line.ok === false ? "bad" : "open";
    li.append(el("span", line.label, "label"), el(line.key === "full" ? "code" : "span", line.value, "value"));
    list.append(li);
  }
  const next = $("next");
  next.replaceChildren(...(v.next || []).map((s) => el("li", s)));
  $("next-box").hidden = !(v.next && v.next.length);
}

function showFailure(state, heading, reason, check, nextSteps) {
  if (worker) worker.terminate();
  worker = null;
  showVerdict({ state, heading, reason, check, lines: [], next: nextSteps });
  $("report").replaceChildren();
  $("context").hidden = true;
  $("evidence").hidden = true;
  $("work").hidden = true;
}

function showContext(report, bundlePath, later, words) {
  const dl = $("report");
  dl.replaceChildren();
  row(dl, "Account", report.accountId);
  // what the holder owes (version 5), shown when it is not zero: a holder
  // who owes nothing sees what they always saw, and a debt put on their
  // account shows here (an overstated debt is a receivable the protocol
  // does not have)
  const owes = report.amounts.some((a) => a.debt && a.amount !== 0n);
  for (const a of report.amounts) {
    if (a.debt) {
      if (a.amount === 0n) continue;
      row(dl, `${a.asset} owed by you`, amountText(a)).dataset.debt = a.asset;
      continue;
    }
    row(dl, a.symbol, amountText(a)).dataset.asset = a.symbol;
  }
  if (owes && report.marginHealth !== null && report.marginHealth !== undefined) {
    row(dl, "Margin health", "every account's margin health (haircut collateral covers debts) "
      + "is proven in the bundle; which of those proofs this page checked: see the verdict above")
      .dataset.marginHealth = report.marginHealth;
  }
  const t = timeText(report.timestamp);
  const epoch = row(dl, "Epoch", `${report.epoch}: the state at ${t.utc}`
    + (t.local ? ` (your time: ${t.local})` : ""));
  epoch.dataset.timestamp = report.timestamp.toString();
  const reserves = report.reserves;
  report.assets.forEach((asset, j) => {
    const view = reserves ? reserves.assets[j] : null;
    const dd = row(dl, `${asset.symbol} reserves`, reservesText(asset, report.totals === null ? null : report.totals[j],
      view, reserves ? reserves.blockNumber : null));
    dd.dataset.reserves = asset.symbol;
    dd.dataset.source = view ? view.source : "asserted";
  });
  if (report.totals === null) row(dl, "Totals", "hidden by the operator");
  // The signed header's link: a gap means epochs before this one were not
  // proven solvent (refused, or never proven).
  const chain = row(dl, "Chain", linkText(report));
  chain.dataset.prevEpoch = report.prevEpoch === null ? "" : report.prevEpoch.toString();
  if (report.gap !== null) chain.dataset.gap = `${report.gap.first}-${report.gap.last}`;
  const laterRow = row(dl, "Later epoch", later.text);
  laterRow.dataset.later = later.state;
  hashRow(dl, "Bundle hash", report.bundleHash);
  hashRow(dl, "Operator key", report.operator,
    report.operatorPinned ? "  (pinned: matches)" : "  (not pinned)");
  row(dl, "Manifest signature", report.signature);
  hashRow(dl, "Root hash", report.rootHash);
  row(dl, "Leaf", `${report.leafIndex} of 2^${report.depth}, in range-proof shard `
    + `${Math.floor(report.leafIndex / report.shardLeaves)} of ${report.shards}`);
  // every check that passed, named by what it established (words.json)
  $("passed").replaceChildren(...report.checks.map((tag) => {
    const li = el("li", wordsFor(words, tag).passed);
    li.dataset.tag = tag;
    return li;
  }));
  const files = $("files");
  files.replaceChildren();
  if (bundlePath) {
    const base = new URL(bundlePath.trim().replace(/\/*$/, "/"), location.href);
    const sizes = new Map(report.files.map((f) => [f.name, f.bytes]));
    for (const name of [...DATA_FILES, ...(sizes.has("margin.bin") ? ["margin.bin"] : [])]) {
      const a = el("a", name + (sizes.has(name) ? ` (${sizes.get(name)} bytes)` : ""));
      a.href = new URL(name, base).href;
      a.download = name;
      files.append(el("li"));
      files.lastChild.append(a);
    }
    $("files-note").textContent = "Download every file into one folder, named as here, for the full check.";
  } else {
    $("files-note").textContent = "You gave a bundle hash: this page does not know where the bundle's "
      + "files are. Get them from the operator's site for the full check.";
  }
  showEvidence(reserves, bundlePath);
  $("context").hidden = false;
}

/** Version 6: where the reserves were read (chain, block, window) and,
 * per sourced asset, every holding and the total; what of it was checked
 * is in the verdict's lines. */
function showEvidence(reserves, bundlePath) {
  const box = $("evidence");
  const block = $("evidence-block");
  const list = $("evidence-assets");
  block.replaceChildren();
  list.replaceChildren();
  box.hidden = !(reserves && reserves.fromChain);
  if (box.hidden) return;
  row(block, "Chain id", reserves.chainId.toString());
  row(block, "Block", reserves.blockNumber.toString()).dataset.block = reserves.blockNumber.toString();
  hashRow(block, "Block hash", reserves.blockHash);
  if (reserves.window !== null) {
    const w = reserves.window;
    row(block, "Block window", `${w.length} blocks after block ${w.firstNumber}: the block is `
      + `${w.firstNumber} + 1 + (that block's hash mod ${w.length})`).dataset.window = w.length.toString();
  }
  for (const a of reserves.assets) {
    if (a.source !== "chain") continue;
    const section = el("section", undefined, "evidence-asset");
    section.dataset.asset = a.symbol;
    section.append(el("h4", `${a.symbol}: ${a.token === "native" ? "the chain's own coin" : `token ${a.token}`}`));
    const ul = el("ul", undefined, "holdings");
    for (const h of a.holdings) {
      const li = el("li");
      li.dataset.address = h.address;
      li.dataset.kind = h.kind;
      li.append(el("code", h.address, "address"), el("span", h.kind === "declared"
        ? "declared: the protocol's own contract (no signature)" : h.kind, "kind"),
      el("span", `${h.tokens} ${a.symbol}`, "balance"));
      ul.append(li);
    }
    section.append(ul, el("p", `Total: ${a.totalTokens} ${a.symbol} (${a.total} base units)`, "total"));
    list.append(section);
  }
  $("evidence-command").textContent = `zksolv verify ${bundlePath || "BUNDLE"} --rpc URL`;
}

/** Whether a later epoch is published, where the page can tell: when the
 * bundle's path ends in its epoch number, the next number's manifest is
 * looked for beside it (and checked: its signature, the same operator). */
async function laterEpoch(bundlePath, report) {
  const unknown = { state: "unknown", text: "not known: this page does not list the operator's "
    + "bundles (see the operator's announcements)" };
  if (!bundlePath) return unknown;
  const parts = bundlePath.trim().replace(/\/+$/, "").split("/");
  if (parts[parts.length - 1] !== report.epoch.toString()) return unknown;
  parts[parts.length - 1] = (report.epoch + 1n).toString();
  const next = parts.join("/");
  let fetched;
  try {
    fetched = await fetchBundle(next, { base: location.href });
  } catch {
    return { state: "none", text: `none at ${next} (epoch ${report.epoch + 1n}) when checked; `
      + "not known whether one is published elsewhere" };
  }
  try {
    const m = await checkManifest(fetched.raw, fetched.signature, { operator: report.operator, ownership: false });
    if (m.epoch > report.epoch) {
      return { state: "yes", text: `yes: epoch ${m.epoch} is published at ${next}, signed by the same `
        + "operator key (not otherwise checked here)" };
    }
  } catch {
    // not a bundle of this operator: say what is known
  }
  return { state: "unknown", text: `not known: ${next} is not a later bundle of this operator` };
}

/** Run the data-file check in a Web Worker; resolves with the outcome
 * (verdict.js), never rejects. */
function runWorker(message, onProgress) {
  return new Promise((resolve) => {
    if (worker) worker.terminate();
    let w;
    try {
      w = new Worker(new URL("checkworker.js", import.meta.url), { type: "module" });
    } catch (e) {
      resolve({ status: "unchecked", reason: `this browser cannot run the checker (${e.message || e})` });
      return;
    }
    worker = w;
    let stall = null;
    const done = (outcome) => {
      clearTimeout(stall);
      w.terminate();
      if (worker === w) worker = null;
      resolve(outcome);
    };
    const watch = () => {
      clearTimeout(stall);
      stall = setTimeout(() => done({ status: "unchecked", reason: "the checker stopped answering "
        + `(nothing for ${Math.round(WORKER_STALL_MS / 1000)} s)` }), WORKER_STALL_MS);
    };
    watch();
    w.onmessage = (ev) => {
      watch();
      const m = ev.data || {};
      if (m.type === "progress") {
        onProgress(m);
      } else if (m.type === "result") {
        const r = readResult(m);
        done(r ? { status: "checked", result: r }
          : { status: "unchecked", reason: "the checker gave an unreadable result" });
      } else if (m.type === "error" && m.tag === "bundle-shape") {
        // the signed manifest lists data files of sizes its shape does not
        // allow: zksolv verify refuses the bundle (bundle-shape), so does the page
        done({ status: "refused", tag: m.tag, detail: String(m.detail || "") });
      } else if (m.type === "error") {
        done({ status: "unchecked", reason: `the checker stopped: ${m.tag || "error"}: ${m.detail || ""}` });
      }
    };
    w.onerror = (ev) => {
      ev.preventDefault();
      // a script that failed to load (a 404) has no message; one that threw has
      done({ status: "unchecked", reason: ev.message ? `the checker failed: ${ev.message}`
        : "this site has no checker of the bundle's data files, checkworker.js" });
    };
    w.onmessageerror = () => done({ status: "unchecked", reason: "the checker gave an unreadable result" });
    w.postMessage(message);
  });
}

async function proofText() {
  const pasted = $("proof-text").value;
  if (pasted.trim() !== "") return pasted;
  const file = $("proof-file").files[0];
  if (!file) throw new InputError("proof", "choose your inclusion proof file or paste it");
  if (file.size > CONSTANTS.maxDocumentBytes) {
    throw new VerificationError("inclusion-format", `${file.name} is larger than ${CONSTANTS.maxDocumentBytes} bytes`);
  }
  // not file.text(): it drops a leading byte-order mark, which the CLI refuses
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(await file.arrayBuffer());
}

async function check(event) {
  event.preventDefault();
  const button = $("verify");
  const progress = $("progress");
  button.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  $("result").dataset.state = "running";
  const bundlePath = $("bundle").value.trim();
  const hash = $("bundle-hash").value.trim();
  const operator = $("operator").value.trim();
  const words = await wordsReady;
  try {
    if (bundlePath && hash) throw new InputError("bundle", "give a bundle path or a bundle hash, not both");
    const documentText = await proofText();
    const bundle = bundlePath ? await fetchBundle(bundlePath, { base: location.href }) : null;
    const report = await verifyInclusion({
      documentText,
      accountId: $("account").value,
      bundle,
      bundleHash: hash || null,
      operator: operator || null,
      onLevel: (done, total) => { progress.value = done / total; },
    });
    progress.hidden = true;
    const fullCommand = fullCheckCommand(report, { bundleDir: bundlePath || "BUNDLE_DIR" });
    const named = await registryReady;
    let registry = null;
    if (named && named.site) {
      registry = { command: registryCommand(bundlePath || "BUNDLE", named.site.registry),
        registry: named.site.registry, rpc: named.site.rpc, result: null };
    } else if (named) {
      registry = { command: registryCommand(bundlePath || "BUNDLE", "ADDR"), registry: "", rpc: "",
        result: { status: "unchecked", reason: named.error } };
    }
    let shown = null;
    const show = (work) => {
      shown = work;
      const v = verdictOf(report, work, words, { fullCommand, bundleDir: bundlePath || "BUNDLE", registry });
      showVerdict(v);
      $("result").dataset.elapsedMs = String(report.elapsedMs);
    };
    showContext(report, bundlePath, { state: "unknown", text: "looking…" }, words);
    if (registry && registry.result === null) {
      checkRegistry(named.site, { operator: report.operator, epoch: report.epoch, bundleHash: report.bundleHash })
        .then((result) => {
          registry.result = result;
          $("result").dataset.registry = result.status;
          if (shown) show(shown);
        });
    }
    laterEpoch(bundlePath, report).then((later) => {
      const dd = document.querySelector("#report dd[data-later]");
      if (dd) {
        dd.textContent = later.text;
        dd.dataset.later = later.state;
      }
    });
    const ownShard = Math.floor(report.leafIndex / report.shardLeaves);
    let work;
    if (!bundle) {
      work = { status: "unchecked", reason: "give the bundle's path on this site to check them" };
    } else {
      const bar = $("work-progress");
      const what = $("work-what");
      $("work").hidden = false;
      bar.value = 0;
      show({ status: "running", done: 0, total: 1, what: "" });
      $("result").scrollIntoView({ block: "start" });
      work = await runWorker({
        type: "check", bundleUrl: bundle.url, manifest: report.manifestText, shard: ownShard,
        sample: SAMPLE_SHARDS, inclusion: documentText,
      }, (p) => {
        const total = Number(p.total) || 1;
        bar.value = Math.min(1, (Number(p.done) || 0) / total);
        what.textContent = `${p.what || "checking"} (${p.done} of ${p.total})`;
        show({ status: "running", done: p.done, total: p.total, what: p.what });
      });
      $("work").hidden = true;
    }
    show(work);
    $("result").scrollIntoView({ block: "start" });
  } catch (e) {
    if (e instanceof VerificationError) {
      const w = wordsFor(words, e.check);
      showFailure("invalid", (words.verdict && words.verdict.invalid) || "Not valid",
        `${w.failed} (check ${e.check} failed: ${e.detail})`, e.check, w.next);
    } else if (e instanceof InputError) {
      showFailure("error", "Cannot check", `${e.where}: ${e.detail}`, "input", []);
    } else {
      showFailure("error", "Cannot check", String(e && e.message || e), "error", []);
    }
    $("result").scrollIntoView({ block: "start" });
  } finally {
    button.disabled = false;
    progress.hidden = true;
  }
}

prefill();
$("check").addEventListener("submit", check);
$("proof-file").addEventListener("change", () => { $("proof-text").value = ""; });
document.body.dataset.ready = "1";
