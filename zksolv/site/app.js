// The form and the report of the account holder's page. The checking is in
// inclusion.js; this module reads the inputs, fetches the bundle's manifest
// from this site, and shows the verdict. Text from the proof is only ever
// set as textContent.

import {
  CONSTANTS, InputError, VerificationError, fetchBundle, fullCheckCommand, linkText, verifyInclusion,
} from "./inclusion.js";

const $ = (id) => document.getElementById(id);

function prefill() {
  const params = new URLSearchParams(location.search);
  for (const [param, id] of [["bundle", "bundle"], ["bundle-hash", "bundle-hash"], ["operator", "operator"]]) {
    const v = params.get(param);
    if (v !== null) $(id).value = v;
  }
}

function row(dl, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
  return dd;
}

function show(state, verdict, reason) {
  const result = $("result");
  result.hidden = false;
  result.className = state;
  result.dataset.state = state;
  $("verdict").textContent = verdict;
  $("reason").textContent = reason;
  $("report").replaceChildren();
  $("unchecked").hidden = true;
  return result;
}

function showReport(report, bundlePath) {
  const result = show("valid", "Valid: your balance is counted in this bundle",
    `Checked in ${report.elapsedMs.toFixed(0)} ms.`);
  result.dataset.check = "";
  result.dataset.elapsedMs = String(report.elapsedMs);
  const dl = $("report");
  row(dl, "Account", report.accountId);
  // what the holder owes (version 5), shown when it is not zero: a holder
  // who owes nothing sees what they always saw, and a debt put on their
  // account shows here (an overstated debt is a receivable the protocol
  // does not have)
  const owes = report.amounts.some((a) => a.debt && a.amount !== 0n);
  for (const a of report.amounts) {
    if (a.debt) {
      if (a.amount === 0n) continue;
      row(dl, `${a.asset} owed by you`, a.proofDecimals === a.decimals
        ? `${a.tokens} ${a.asset}  (${a.amount} base units, ${a.decimals} decimals)`
        : `${a.tokens} ${a.asset}  (${a.amount} units of 10^-${a.proofDecimals}, rounded down; `
          + `the token has ${a.decimals} decimals)`)
        .dataset.debt = a.asset;
      continue;
    }
    row(dl, a.symbol, a.proofDecimals === a.decimals
      ? `${a.tokens} ${a.symbol}  (${a.amount} base units, ${a.decimals} decimals)`
      : `${a.tokens} ${a.symbol}  (${a.amount} units of 10^-${a.proofDecimals}, rounded up; `
        + `the token has ${a.decimals} decimals)`)
      .dataset.asset = a.symbol;
  }
  if (owes && report.marginHealth !== null && report.marginHealth !== undefined) {
    row(dl, "Margin health", "every account's margin health (haircut collateral covers debts) "
      + "is proven in the bundle; those proofs are not checked here (see below)")
      .dataset.marginHealth = report.marginHealth;
  }
  row(dl, "Epoch", report.epoch.toString());
  // The signed header's link: a gap means epochs before this one were not
  // proven solvent (refused, or never proven).
  const chain = row(dl, "Chain", linkText(report));
  chain.dataset.prevEpoch = report.prevEpoch === null ? "" : report.prevEpoch.toString();
  if (report.gap !== null) chain.dataset.gap = `${report.gap.first}-${report.gap.last}`;
  row(dl, "Bundle hash", report.bundleHash);
  row(dl, "Operator key", report.operator + (report.operatorPinned ? "  (pinned: matches)" : "  (not pinned)"));
  row(dl, "Manifest signature", report.signature);
  row(dl, "Root hash", report.rootHash);
  row(dl, "Leaf", `${report.leafIndex} of 2^${report.depth}`);
  row(dl, "Checks passed", report.checks.join(", "));
  row(dl, "Siblings non-negative", "not checked here (see below)").dataset.siblings = report.siblingsNonnegative;
  $("full-command").textContent = fullCheckCommand(report, { bundleDir: bundlePath || "BUNDLE_DIR" });
  $("unchecked").hidden = false;
}

async function proofText() {
  const pasted = $("proof-text").value;
  if (pasted.trim() !== "") return pasted;
  const file = $("proof-file").files[0];
  if (!file) throw new InputError("proof", "choose your inclusion proof file or paste it");
  if (file.size > CONSTANTS.maxDocumentBytes) {
    throw new VerificationError("inclusion-format", `${file.name} is larger than ${CONSTANTS.maxDocumentBytes} bytes`);
  }
  return file.text();
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
    showReport(report, bundlePath);
  } catch (e) {
    if (e instanceof VerificationError) {
      show("invalid", `Invalid: check ${e.check} failed`, e.detail).dataset.check = e.check;
    } else if (e instanceof InputError) {
      show("error", "Cannot check", `${e.where}: ${e.detail}`).dataset.check = "input";
    } else {
      show("error", "Cannot check", String(e && e.message || e)).dataset.check = "error";
    }
  } finally {
    button.disabled = false;
    progress.hidden = true;
  }
}

prefill();
$("check").addEventListener("submit", check);
$("proof-file").addEventListener("change", () => { $("proof-text").value = ""; });
document.body.dataset.ready = "1";
