// Strict JSON for the account holder's page (RFC 8259), and the canonical
// serialisation the manifest must be in.
//
// JSON.parse would round integers above 2^53 (prices, reserves and totals go
// to 2^64 and 2^128) and silently keep the last of two duplicate keys, so
// the page parses with this instead: integers become BigInt, a number with a
// fraction or exponent becomes a JsonFloat (which no integer field accepts,
// as `1.0` is not `1` in the Python reader either), nesting deeper than
// MAX_DEPTH is refused, and so are duplicate keys unless the caller keeps
// the last one (the manifest's canonical check then refuses the bytes, as
// the Python reader does: its decoder keeps the last value too).

export const MAX_DEPTH = 32;

export class JsonError extends Error {
  constructor(message) {
    super(message);
    this.name = "JsonError";
  }
}

/** A JSON number with a fraction or an exponent. */
export class JsonFloat {
  constructor(text) {
    this.text = text;
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Parse `text` strictly; objects become Maps (insertion order kept).
 * `duplicates`: "refuse" (the default) or "last" (keep the last value). */
export function parse(text, { duplicates = "refuse" } = {}) {
  let pos = 0;
  const where = () => {
    const line = text.slice(0, pos).split("\n").length;
    return `line ${line}`;
  };
  const fail = (why) => {
    throw new JsonError(`invalid JSON at ${where()}: ${why}`);
  };
  const skip = () => {
    while (pos < text.length && WS.has(text.charCodeAt(pos))) pos++;
  };
  const expect = (lit) => {
    if (text.startsWith(lit, pos)) {
      pos += lit.length;
    } else {
      fail(`expected ${JSON.stringify(lit)}`);
    }
  };
  const string = () => {
    expect('"');
    let out = "";
    for (;;) {
      if (pos >= text.length) fail("unterminated string");
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        return out;
      }
      if (c < 0x20) fail("control character in a string");
      if (c !== 0x5c) {
        out += text[pos++];
        continue;
      }
      const e = text[pos + 1];
      pos += 2;
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e in simple) {
        out += simple[e];
      } else if (e === "u") {
        const hex = text.slice(pos, pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 4;
      } else {
        fail("bad escape");
      }
    }
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) fail("nested too deeply");
    skip();
    const c = text[pos];
    if (c === "{") {
      pos++;
      const obj = new Map();
      skip();
      if (text[pos] === "}") {
        pos++;
        return obj;
      }
      for (;;) {
        skip();
        const key = string();
        if (obj.has(key) && duplicates !== "last") fail(`duplicate key ${JSON.stringify(key)}`);
        obj.delete(key); // a repeated key takes its last value and position
        skip();
        expect(":");
        obj.set(key, value(depth + 1));
        skip();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        expect("}");
        return obj;
      }
    }
    if (c === "[") {
      pos++;
      const arr = [];
      skip();
      if (text[pos] === "]") {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        skip();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        expect("]");
        return arr;
      }
    }
    if (c === '"') return string();
    if (text.startsWith("true", pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith("false", pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith("null", pos)) {
      pos += 4;
      return null;
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) fail("unexpected character");
    pos += m[0].length;
    if (/[.eE]/.test(m[0])) return new JsonFloat(m[0]);
    if (m[0].length > 100) fail("integer too long");
    return BigInt(m[0]);
  };
  const out = value(0);
  skip();
  if (pos !== text.length) fail("trailing data");
  return out;
}

function quote(s) {
  // Python's json.dumps(..., ensure_ascii=True): escape ", \, the short
  // controls, and every other character outside " ".."~" (C0 controls, DEL,
  // everything beyond ASCII) as \uXXXX (UTF-16 code units, lowercase hex).
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = { 0x22: '\\"', 0x5c: "\\\\", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t", 0x08: "\\b", 0x0c: "\\f" }[c];
    if (short) out += short;
    else if (c < 0x20 || c > 0x7e) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += s[i];
  }
  return out + '"';
}

/** Python's json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True),
 * for values from `parse` (Maps, arrays, strings, BigInts, booleans, null). */
export function canonical(v, indent = "") {
  const inner = indent + "  ";
  if (v === null) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string") return quote(v);
  if (v instanceof JsonFloat) throw new JsonError("no float has a canonical form here");
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return "[\n" + v.map((x) => inner + canonical(x, inner)).join(",\n") + "\n" + indent + "]";
  }
  if (v instanceof Map) {
    if (v.size === 0) return "{}";
    // Python sorts str keys by code point; for the UTF-16 code units JS
    // compares, that differs only beyond the BMP, which no manifest key uses.
    const keys = [...v.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return "{\n" + keys.map((k) => inner + quote(k) + ": " + canonical(v.get(k), inner)).join(",\n") + "\n" + indent + "}";
  }
  throw new JsonError("not a JSON value");
}
