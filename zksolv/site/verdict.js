// What the holder is told: the verdict, headed by what was established, and
// beside it what was and was not checked. DOM-free (it runs under node too).
// The words, one per check tag, are words.json's, which `zksolv inclusion
// verify` reads as well.
//
// The verdict comes from the inclusion report (inclusion.js) and from the
// outcome of the data-file check (checkworker.js, in a Web Worker), one of
//   { status: "running", done, total, what }
//   { status: "checked", result }   the worker's result message
//   { status: "refused", tag, detail } the worker refused the bundle: its
//                                   data files' listed sizes are not the ones
//                                   its shape fixes (bundle-shape)
//   { status: "unchecked", reason } no worker, another worker error, no bundle path
// It is never "included" beyond what was checked: a failed range or solvency
// proof makes it invalid, and a signature this browser cannot check, with an
// operator key pinned, makes it unconfirmed (nothing shows the bundle is
// that operator's).

/** The words for `tag`: { passed, failed, next: [sentences] }. */
export function wordsFor(words, tag) {
  const entry = (words && words.checks && words.checks[tag]) || null;
  const fallback = (words && words.unknown) || { failed: "A check failed.", next: [] };
  const e = entry || fallback;
  return {
    passed: entry ? entry.passed : tag,
    failed: e.failed,
    next: (e.next || []).map((k) => (words && words.next && words.next[k]) || k),
  };
}

/** Seconds since 1970 UTC as "2026-11-26 14:00:00 UTC" (as the CLI prints
 * it) and in the reader's own time zone; null parts when out of range. */
export function timeText(seconds, { locale = undefined, timeZone = undefined } = {}) {
  const ms = Number(seconds) * 1000;
  if (!(Math.abs(ms) <= 8.64e15)) return { utc: `${seconds} s after 1970-01-01 00:00:00 UTC`, local: null };
  const d = new Date(ms);
  const utc = `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
  let local = null;
  try {
    local = d.toLocaleString(locale, { dateStyle: "medium", timeStyle: "long", timeZone });
  } catch {
    local = null;
  }
  return { utc, local };
}

/** A hash as its first and last 8 hex digits: "387ec665…e01816d0a". */
export function shortHash(hex) {
  return hex.length <= 20 ? hex : `${hex.slice(0, 8)}…${hex.slice(-8)}`;
}

/** Proof units as tokens, every decimal shown (as the CLI prints them). */
export function decimalText(units, decimals) {
  const s = units.toString().padStart(decimals + 1, "0");
  return decimals === 0 ? s : `${s.slice(0, s.length - decimals)}.${s.slice(s.length - decimals)}`;
}

/** "ETH 0.000053090 (53090 units of 10^-9 ETH, rounded up; the token has
 * 18 decimals)": tokens first, the unit named, as the CLI says it. */
export function amountText(a) {
  // a debt (version 5: debt true, asset its symbol) is proven rounded down
  const sym = a.debt ? a.asset : a.symbol;
  let text = `${sym} ${decimalText(a.amount, a.proofDecimals)} (${a.amount} units of 10^-${a.proofDecimals} ${sym}`;
  if (a.proofDecimals !== a.decimals) {
    text += `, rounded ${a.debt ? "down" : "up"}; the token has ${a.decimals} decimals`;
  }
  return `${text})`;
}

/** One asset's reserves and, when the totals are revealed, what is owed
 * and the coverage; reserves are as the operator states them, or (version
 * 6, `view` the asset's entry of reserves.js reservesView with source
 * "chain") the sum of the balances read from a chain at `block`. */
export function reservesText(asset, total, view = null, block = null) {
  const scale = 10n ** BigInt(asset.decimals - asset.proofDecimals);
  const proven = asset.reserves / scale;
  const source = view && view.source === "chain"
    ? `the sum of ${view.holdings.length} balance${view.holdings.length === 1 ? "" : "s"} read at block ${block}, listed below`
    : "as the operator states them";
  let text = `reserves ${decimalText(proven, asset.proofDecimals)} ${asset.symbol} (${source})`;
  if (total === null) return `${text}; total owed hidden by the operator`;
  text += `; owed ${decimalText(total, asset.proofDecimals)} ${asset.symbol} in total`;
  if (total === 0n) return `${text}; nothing owed`;
  const bp = (proven * 10000n) / total; // basis points, rounded down
  const pct = `${bp / 100n}.${(bp % 100n).toString().padStart(2, "0")}`;
  return `${text}; coverage ${pct.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}%`;
}

function resultProblems(result) {
  const problems = [...(result.failures || [])];
  if (result.ownShard && result.ownShard.ok === false && !problems.length) {
    problems.push({ tag: "leaf-range", detail: `the range proof of your shard ${result.ownShard.shard} does not verify` });
  }
  for (const s of result.sampled || []) {
    if (s.ok === false && !problems.length) {
      problems.push({ tag: "leaf-range", detail: `the range proof of shard ${s.shard} does not verify` });
    }
  }
  const mr = result.margin || {};
  if ((mr.debtRange === false || mr.health === false) && !problems.length) {
    problems.push({ tag: mr.debtRange === false ? "debt-range" : "margin-health",
      detail: `the ${mr.debtRange === false ? "debt range" : "margin-health"} proof of a checked shard does not verify` });
  }
  const sv = result.solvency || {};
  if ((sv.asset === false || sv.valued === false) && !problems.length) {
    problems.push({ tag: sv.asset === false ? "solvency-asset" : "solvency-valued", detail: "the solvency proof does not verify" });
  }
  return problems;
}

const isBoolOrNull = (v) => v === true || v === false || v === null;

// Said after the other shards checked: what their check stands on.
export const OTHERS_AS_SERVED = "; the others' leaves as the server sent them, "
  + "tied to the signed root for your shard only";

/** What the verdict says of the reserves, as lines { key, label, value, ok }:
 * version 4 or 5, "reserves asserted"; version 6, what was checked here (the
 * sums, the window's block, the account holders' ownership signatures) and
 * what was not (the balances at that block and contract holders' EIP-1271
 * answers, which need a node), with the command that checks them. `problem` is the first failed offline check ({tag, detail}) or null. */
export function reservesLines(reserves, problem, words, { bundleDir = "BUNDLE" } = {}) {
  const u = (words && words.unchecked) || {};
  if (!reserves || !reserves.fromChain) {
    return [{ key: "reserves", label: "Reserves",
      value: u["reserves-asserted"] || "reserves asserted: the operator's number, not read from a chain", ok: null }];
  }
  const failed = (tag) => problem !== null && problem !== undefined && problem.tag === tag;
  const sourced = reserves.assets.filter((a) => a.source === "chain");
  const holdings = sourced.flatMap((a) => a.holdings);
  const where = `chain ${reserves.chainId}, block ${reserves.blockNumber}`;
  const lines = [{
    key: "reserves-sum", label: "Reserves",
    value: failed("reserves-balance") ? "FAILED"
      : `${sourced.map((a) => a.symbol).join(", ")} read from ${where}: the sum of the balances listed `
        + "equals the proven reserves (checked here)",
    ok: !failed("reserves-balance"),
  }];
  if (reserves.window !== null) {
    lines.push({ key: "reserves-block", label: "Reserves block",
      value: failed("reserves-block") ? "FAILED"
        : `the block its window derives from the hash of block ${reserves.window.firstNumber}, `
          + "which nobody knew in advance (checked here)",
      ok: !failed("reserves-block") });
  }
  const rpc = `zksolv verify ${bundleDir} --rpc URL`;
  lines.push({ key: "reserves-balances", label: "Balances at that block",
    value: `not checked here: ${u["reserves-balances"] || "the balances at that block (they need a node of that chain)"}; `
      + `${rpc} checks them`, ok: null });
  if (holdings.some((h) => h.kind === "contract")) {
    lines.push({ key: "reserves-contracts", label: "Contract holders",
      value: `not checked here: ${u["reserves-contracts"] || "contract holders' EIP-1271 answers (they need a node)"}; `
        + `${rpc} checks them`, ok: null });
  }
  if (holdings.some((h) => h.kind === "account")) {
    // ownership.js: every account holder's signature recovered here
    lines.push({ key: "reserves-signatures", label: "Ownership signatures",
      value: failed("reserves-signature") ? "FAILED"
        : "every account holder's EIP-712 signature for this chain, block, epoch and operator key "
          + "recovers to its address (checked here)",
      ok: !failed("reserves-signature") });
  }
  return lines;
}

/** A worker result that says what it checked, or null (then nothing it
 * says is taken as checked). */
export function readResult(result) {
  if (!result || typeof result !== "object") return null;
  const own = result.ownShard;
  const sampled = result.sampled;
  const sv = result.solvency;
  if (!own || typeof own.ok !== "boolean" || !Array.isArray(sampled)
    || !sampled.every((s) => s && typeof s.ok === "boolean")
    || !sv || typeof sv.asset !== "boolean" || typeof sv.valued !== "boolean"
    || !Array.isArray(result.failures || [])) return null;
  // version 5: the margin proofs, each true, false or null (not checked)
  const mr = result.margin;
  if (mr !== undefined && mr !== null
    && (typeof mr !== "object" || !isBoolOrNull(mr.debtRange) || !isBoolOrNull(mr.health))) return null;
  return result;
}

/** A probability as a percentage that never rounds to a certainty it is
 * not: 0.998 is "99.8%", 0.99996 "more than 99.9%". */
export function percent(p) {
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) return null;
  const v = p * 100;
  if (v > 99.9 && v < 100) return "more than 99.9%";
  if (v > 0 && v < 0.1) return "less than 0.1%";
  return `${Number.isInteger(v) ? v : v.toFixed(1)}%`;
}

/**
 * The verdict: { state, heading, reason, lines: [{ key, label, value, ok }],
 * next: [sentences], check }. `state` is "valid" (the inclusion check
 * passed and nothing checked failed), "unconfirmed", "invalid" or, while
 * the data files are checked, "checking". `ok` is true (checked), false
 * (failed) or null (not checked).
 */
export function verdictOf(report, work, words, { fullCommand = "zksolv verify BUNDLE_DIR", bundleDir = "BUNDLE", registry = null } = {}) {
  const v = (words && words.verdict) || {};
  const u = (words && words.unchecked) || {};
  const lines = [];
  const own = report.amounts.filter((a) => !a.debt).map(amountText).join("; ");
  lines.push({ key: "balance", label: "Your balance", value: own, ok: true });
  // version 5: what the holder owes, when it is not zero (check it: an
  // overstated debt is a receivable the protocol does not have)
  const debts = report.amounts.filter((a) => a.debt && a.amount !== 0n);
  if (debts.length) {
    lines.push({ key: "debts", label: "You owe", value: debts.map(amountText).join("; "), ok: true });
  }
  const margin = report.marginHealth !== null && report.marginHealth !== undefined;
  let sig;
  if (report.signatureChecked) {
    sig = { value: report.operatorPinned ? "checked; the operator key you pinned" : "checked; operator key not pinned", ok: true };
  } else {
    sig = { value: `NOT checked: ${u["signature-browser"] || "this browser cannot check it"}`, ok: null };
  }
  lines.push({ key: "signature", label: "Operator signature", ...sig });

  let state = "valid";
  let heading = v.included || "Your balance is included";
  let reason = "";
  let next = [];
  let check = "";
  const unchecked = (why) => `not checked here (${why})`;
  if (work.status === "running") {
    state = "checking";
    const what = work.what ? `: ${work.what}` : "";
    lines.push({ key: "solvency", label: "Solvency proofs", value: `checking${what}`, ok: null });
    lines.push({ key: "range", label: "Range proofs", value: `checking, ${work.done} of ${work.total}`, ok: null });
    if (margin) lines.push({ key: "margin", label: "Margin health proofs", value: "checking", ok: null });
  } else if (work.status === "checked") {
    const r = work.result;
    const problems = resultProblems(r);
    const others = Math.max(0, Number(r.shards) - 1);
    const n = r.sampled.length;
    const escape = percent(r.escapeProbability);
    const tags = problems.map((p) => p.tag);
    // which shards' proofs were checked: the same for every per-shard proof
    // Only the holder's shard is folded to the signed root here: the others'
    // leaves are the bytes the server sent (the bundle holds no path for them),
    // so the sample speaks for a server that sends every holder the same bundle.
    const shardsChecked = others === 0 ? "your shard, the only one, checked here"
      : (n >= others ? `your shard and all ${others} others checked here`
        : `your shard and ${n} of ${others} others checked here`
          + (escape !== null ? ` (one bad shard escapes this sample with chance ${escape})` : ""))
        + OTHERS_AS_SERVED;
    const mr = r.margin && typeof r.margin === "object" ? r.margin : null;
    const debts = margin || mr !== null;
    const solvencyOk = r.solvency.asset && r.solvency.valued && !tags.some((t) => t.startsWith("solvency-"));
    lines.push({
      key: "solvency", label: "Solvency proofs",
      value: !solvencyOk ? "FAILED" : debts
        ? "checked here: reserves and the proven debts cover what is owed, per asset and in value"
        : "checked here: reserves cover what is owed, per asset and in value",
      ok: solvencyOk,
    });
    const rangeOk = r.ownShard.ok && r.sampled.every((s) => s.ok)
      && !tags.some((t) => t.startsWith("leaf-") || t.startsWith("range-"));
    lines.push({ key: "range", label: "Range proofs", value: rangeOk ? shardsChecked : "FAILED", ok: rangeOk });
    if (debts) {
      // version 5: the debt range and margin-health proofs of the same shards
      let line;
      if (mr === null) {
        line = { value: unchecked("this checker did not check them"), ok: null };
      } else if (mr.debtRange === false || mr.health === false
        || tags.some((t) => t === "debt-range" || t === "margin-health" || t === "leaf-encoding")) {
        line = { value: "FAILED", ok: false };
      } else if (mr.debtRange === true && mr.health === true) {
        line = {
          value: `${shardsChecked}; in the shards checked no debt is negative, and every account's haircut `
            + "collateral covers its debts",
          ok: true,
        };
      } else {
        line = { value: unchecked(tags.includes("solvency-bounds") ? "the prices and haircuts give no usable weights"
          : "this checker did not check them"), ok: null };
      }
      lines.push({ key: "margin", label: "Margin health proofs", ...line });
      if (line.ok === null) {
        reason = `Not checked here: ${u["debt-range"] || "the debt range proofs"}; `
          + `${u["margin-health"] || "the margin-health proofs"}. The full check below checks them.`;
      }
    }
    // the reserves' evidence (version 6), checked after the proofs, as
    // zksolv verify orders it
    if (!problems.length && report.reservesProblem) problems.push(report.reservesProblem);
    if (problems.length) {
      state = "invalid";
      const w = wordsFor(words, problems[0].tag);
      heading = v["bundle-invalid"] || "Not valid";
      reason = `${w.failed} (${problems[0].tag}: ${problems[0].detail})`;
      next = w.next;
      check = problems[0].tag;
    }
  } else if (work.status === "refused") {
    // nothing could be checked, and that is itself a failure zksolv verify
    // reports: the bundle is invalid
    const why = `the bundle failed ${work.tag}`;
    lines.push({ key: "solvency", label: "Solvency proofs", value: unchecked(why), ok: null });
    lines.push({ key: "range", label: "Range proofs", value: unchecked(why), ok: null });
    lines.push(...(margin ? [{ key: "margin", label: "Margin health proofs", value: unchecked(why), ok: null }] : []));
    state = "invalid";
    const w = wordsFor(words, work.tag);
    heading = v["bundle-invalid"] || "Not valid";
    reason = `${w.failed} (${work.tag}: ${work.detail})`;
    next = w.next;
    check = work.tag;
  } else {
    const why = work.reason || "the data-file check is not available on this site";
    lines.push({ key: "solvency", label: "Solvency proofs", value: unchecked(why), ok: null });
    lines.push({ key: "range", label: "Range proofs", value: unchecked(why), ok: null });
    lines.push(...(margin ? [{ key: "margin", label: "Margin health proofs", value: unchecked(why), ok: null }] : []));
    reason = `Not checked here: ${u.range || "the range proofs"}; `
      + (margin ? `${u["debt-range"] || "the debt range proofs"}; ${u["margin-health"] || "the margin-health proofs"}; ` : "")
      + `${u.solvency || "the solvency proofs"}. The full check below checks them.`;
  }
  lines.push(...reservesLines(report.reserves, report.reservesProblem, words, { bundleDir }));
  if (report.reservesProblem && (work.status === "unchecked" || work.status === "refused") && state !== "invalid") {
    // the proofs were not checked here, but the evidence fails on its own
    const w = wordsFor(words, report.reservesProblem.tag);
    state = "invalid";
    heading = v["bundle-invalid"] || "Not valid";
    reason = `${w.failed} (${report.reservesProblem.tag}: ${report.reservesProblem.detail})`;
    next = w.next;
    check = report.reservesProblem.tag;
  }
  if (registry !== null) {
    // the public registry the operator's site names (registry.js)
    const line = registryLine(registry);
    lines.push({ key: "registry", label: "Public registry", ...line });
    if (line.tag && state !== "invalid" && state !== "checking") {
      const w = wordsFor(words, line.tag);
      state = "invalid";
      heading = v["bundle-invalid"] || "Not valid";
      reason = `${w.failed} (${line.tag}: ${line.detail})`;
      next = w.next;
      check = line.tag;
    }
  }
  lines.push({ key: "full", label: "Full check", value: fullCommand, ok: null });
  if (state !== "invalid" && !report.signatureChecked && report.operatorPinned) {
    state = "unconfirmed";
    heading = v.unconfirmed || "Not confirmed";
    reason = "Your balance reaches this bundle's root, but without the operator's signature nothing "
      + "shows that the operator whose key you pinned published this bundle.";
    next = ["Open this page in a browser that checks Ed25519 signatures (Chromium 137 or later, "
      + "a current Firefox or Safari), or run the full check below."];
  }
  return { state, heading, reason, lines, next, check };
}

/** The verdict's line for the public registry: `registry` is { command,
 * registry, rpc, result } with registry.js's checkRegistry result (null
 * while asking). A split view or an unposted bundle carries its tag. */
export function registryLine({ command, registry, rpc, result }) {
  const notChecked = "not checked here: the registry's code and that the node answers from the real "
    + `chain; your own node checks this: ${command}`;
  if (result === null) return { value: `asking ${rpc} …; ${command}`, ok: null };
  switch (result.status) {
    case "posted":
      return { value: `posted in the public registry by ${result.by} (registry ${registry}, asked of ${rpc}; `
        + `the binding of that address to the operator key checked here); ${notChecked}`, ok: true };
    case "mismatch":
      return { value: `FAILED: ${result.by} posted bundle ${result.posted} for this epoch, not this one; ${notChecked}`,
        ok: false, tag: "registry-mismatch",
        detail: `the registry ${registry} holds bundle ${result.posted} for this epoch, posted by ${result.by}` };
    case "missing":
      return { value: `FAILED: no bundle posted for this epoch by an address bound to the operator key; ${notChecked}`,
        ok: false, tag: "registry-missing", detail: `the registry ${registry} holds no bundle for this epoch` };
    case "unbound":
      return { value: `FAILED: no address of the registry is bound to the operator key; ${notChecked}`,
        ok: false, tag: "registry-binding",
        detail: `${result.addresses} address(es) registered the key, none with its signature` };
    default:
      return { value: `not checked here (${result.reason}); ${command}`, ok: null };
  }
}
