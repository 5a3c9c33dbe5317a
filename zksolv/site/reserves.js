// What a bundle's reserves rest on, for the account holder's page
// (docs/bundle-format.md, *chain_reserves*; docs/epoch.md, tags reserves-*).
//
// A version 4 or 5 bundle states each asset's reserves as the operator's
// assertion. A version 6 bundle's manifest carries `chain_reserves`: every
// holding's balance at one block pinned by its hash, and each holder's
// ownership signature; the SHA-256 of that object, serialised as the
// manifest is, ends the epoch header, so every proof is bound to it.
//
// What the page checks of it, as `zksolv verify` does without --rpc:
//   the shape, strictly                                    [manifest-format]
//   each sourced asset's reserves = sum of its balances,
//   every evidence asset a manifest asset                  [reserves-balance]
//   with a window, block = first_number + 1 + (first_hash mod length)
//                                                          [reserves-block]
//   every account and contract holding has a signature     [reserves-signature]
// and then (ownership.js) every account holder's EIP-712 signature recovers
// to its address                                           [reserves-signature]
// What it does not: the balances at that block and the block's hash (they
// need a node: `zksolv verify BUNDLE --rpc URL`) and contract holders'
// EIP-1271 answers (a node too).
// DOM-free (it runs under node too).

import { canonical } from "./strictjson.js";

export const NATIVE = "native";
export const KINDS = Object.freeze(["account", "contract", "declared"]);
export const MAX_HOLDERS = 1000;
export const MAX_WINDOW = 10000;
export const ACCOUNT_SIGNATURE_BYTES = 65;
export const MAX_CONTRACT_SIGNATURE_BYTES = 4096;
const U63 = (1n << 63n) - 1n;
const U256 = (1n << 256n) - 1n;
const ADDRESS = "0x[0-9a-f]{40}";
const BLOCK_HASH = "0x[0-9a-f]{64}";
const SYMBOL = "[A-Za-z0-9][A-Za-z0-9._-]{0,15}";

/** `chain_reserves` decoded strictly with `f` (inclusion.js's typed field
 * access, whose failures are manifest-format), as the Python verifier's
 * schema decodes it: exact types and ranges, no unknown key, lowercase hex
 * matched whole, distinct symbols and (per asset) addresses, a signature
 * of the size its holder's kind allows. */
export function parseChainReserves(v, f, at = "$.chain_reserves") {
  const e = f.object(v, at, ["chain_id", "block_number", "block_hash", "window", "assets"]);
  const chainId = f.int(e.get("chain_id"), `${at}.chain_id`, 1n, U63);
  const blockNumber = f.int(e.get("block_number"), `${at}.block_number`, 0n, U63);
  const blockHash = f.str(e.get("block_hash"), `${at}.block_hash`, { pattern: BLOCK_HASH });
  let window = null;
  if (e.get("window") !== null) {
    const w = f.object(e.get("window"), `${at}.window`, ["length", "first_number", "first_hash"]);
    window = {
      length: f.int(w.get("length"), `${at}.window.length`, 1n, BigInt(MAX_WINDOW)),
      firstNumber: f.int(w.get("first_number"), `${at}.window.first_number`, 0n, U63),
      firstHash: f.str(w.get("first_hash"), `${at}.window.first_hash`, { pattern: BLOCK_HASH }),
    };
  }
  const assets = f.array(e.get("assets"), `${at}.assets`, 1, 255).map((av, i) => {
    const aat = `${at}.assets[${i}]`;
    const a = f.object(av, aat, ["symbol", "token", "holdings"]);
    const symbol = f.str(a.get("symbol"), `${aat}.symbol`, { pattern: SYMBOL });
    const token = f.str(a.get("token"), `${aat}.token`, { pattern: `${NATIVE}|${ADDRESS}` });
    const holdings = f.array(a.get("holdings"), `${aat}.holdings`, 1, MAX_HOLDERS).map((hv, j) => {
      const hat = `${aat}.holdings[${j}]`;
      const h = f.object(hv, hat, ["address", "kind", "balance", "signature"]);
      const address = f.str(h.get("address"), `${hat}.address`, { pattern: ADDRESS });
      const kind = f.str(h.get("kind"), `${hat}.kind`, { pattern: KINDS.join("|") });
      const balance = f.int(h.get("balance"), `${hat}.balance`, 0n, U256);
      const signature = h.get("signature") === null ? null
        : f.str(h.get("signature"), `${hat}.signature`,
          { pattern: `0x(?:[0-9a-f]{2}){1,${MAX_CONTRACT_SIGNATURE_BYTES}}` });
      if (signature !== null) {
        const size = (signature.length - 2) / 2;
        if (kind === "account" && size !== ACCOUNT_SIGNATURE_BYTES) {
          throw f.fail(`an account's signature is ${ACCOUNT_SIGNATURE_BYTES} bytes, got ${size} - at \`${hat}\``);
        }
        if (kind === "declared") throw f.fail(`a declared holder has no signature (null) - at \`${hat}\``);
      }
      return { address, kind, balance, signature };
    });
    holdings.forEach((h, j) => {
      if (holdings.findIndex((x) => x.address === h.address) !== j) {
        throw f.fail(`${symbol}: duplicate holder ${h.address} - at \`${aat}\``);
      }
    });
    return { symbol, token, holdings, total: holdings.reduce((s, h) => s + h.balance, 0n) };
  });
  assets.forEach((a, i) => {
    if (assets.findIndex((x) => x.symbol === a.symbol) !== i) {
      throw f.fail(`duplicate asset '${a.symbol}' - at \`${at}\``);
    }
  });
  return { chainId, blockNumber, blockHash, window, assets };
}

/** The bytes the version 6 epoch header's evidence digest is SHA-256 of:
 * `chain_reserves` (as decoded by strictjson.js's parse: integers are
 * BigInt, never rounded) serialised as the manifest is, at the top level of
 * its own document, with its newline. */
export function evidenceBytes(value) {
  return new TextEncoder().encode(canonical(value) + "\n");
}

/** The first offline check of the evidence against the manifest's assets
 * that fails, as { tag, detail }, or null: the order of `zksolv verify`
 * (zksolv/verifier/reserves.py check_offline_shape). */
export function reservesProblem(evidence, assets) {
  for (const e of evidence.assets) {
    const a = assets.find((x) => x.symbol === e.symbol);
    if (a === undefined) {
      return { tag: "reserves-balance", detail: `chain_reserves names asset '${e.symbol}', which the manifest does not list` };
    }
    if (a.reserves !== e.total) {
      return { tag: "reserves-balance", detail: `${e.symbol}: the manifest states reserves ${a.reserves}, its evidence `
        + `at block ${evidence.blockNumber} sums to ${e.total}` };
    }
  }
  const w = evidence.window;
  if (w !== null) {
    const derived = w.firstNumber + 1n + BigInt(w.firstHash) % w.length;
    if (derived !== evidence.blockNumber) {
      return { tag: "reserves-block", detail: `the window's first block ${w.firstNumber} (${w.firstHash}) gives `
        + `block ${derived}, the evidence is at block ${evidence.blockNumber}` };
    }
  }
  for (const e of evidence.assets) {
    for (const h of e.holdings) {
      if (h.signature === null && h.kind !== "declared") {
        return { tag: "reserves-signature", detail: `${e.symbol} holder ${h.address} (${h.kind}): no ownership signature` };
      }
    }
  }
  return null;
}

/** Base units as tokens, every decimal shown: 1500000000000000000 with 18
 * decimals is "1.500000000000000000". */
export function tokenText(units, decimals) {
  const s = units.toString().padStart(decimals + 1, "0");
  return decimals === 0 ? s : `${s.slice(0, s.length - decimals)}.${s.slice(s.length - decimals)}`;
}

/** The command that checks what needs a node. */
export function rpcCommand(bundleDir = "BUNDLE") {
  return `zksolv verify ${bundleDir} --rpc URL`;
}

/** What the holder is shown of the reserves, per manifest asset, in asset
 * order: { symbol, source: "asserted" } or { symbol, source: "chain",
 * token, holdings: [{address, kind, balance, tokens, signature: "signed"
 * | "declared"}], total, totalTokens }; and, for version 6, the block.
 * `evidence` is null for versions 4 and 5. */
export function reservesView(assets, evidence) {
  const byAsset = new Map((evidence ? evidence.assets : []).map((e) => [e.symbol, e]));
  const view = {
    fromChain: evidence !== null,
    chainId: evidence ? evidence.chainId : null,
    blockNumber: evidence ? evidence.blockNumber : null,
    blockHash: evidence ? evidence.blockHash : null,
    window: evidence ? evidence.window : null,
    assets: assets.map((a) => {
      const e = byAsset.get(a.symbol);
      if (e === undefined) return { symbol: a.symbol, source: "asserted", reserves: a.reserves, decimals: a.decimals };
      return {
        symbol: a.symbol, source: "chain", token: e.token, decimals: a.decimals, reserves: a.reserves,
        holdings: e.holdings.map((h) => ({
          address: h.address, kind: h.kind, balance: h.balance, tokens: tokenText(h.balance, a.decimals),
          signature: h.kind === "declared" ? "declared" : "signed",
        })),
        total: e.total, totalTokens: tokenText(e.total, a.decimals),
      };
    }),
  };
  return view;
}
