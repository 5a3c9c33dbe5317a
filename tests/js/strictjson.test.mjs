// Strict JSON: exact integers, floats kept apart, duplicates and deep
// nesting refused, and Python's canonical serialisation reproduced.

import { test } from "node:test";
import assert from "node:assert/strict";
import { JsonError, JsonFloat, MAX_DEPTH, canonical, parse } from "../../zksolv/site/strictjson.js";

test("integers are exact BigInts, floats are not integers", () => {
  const v = parse('{"a": 18446744073709551615, "b": -3, "c": 1.0, "d": 1e3, "e": 0}');
  assert.equal(v.get("a"), 18446744073709551615n);
  assert.equal(v.get("b"), -3n);
  assert.ok(v.get("c") instanceof JsonFloat);
  assert.ok(v.get("d") instanceof JsonFloat);
  assert.equal(v.get("e"), 0n);
});

test("refuses what RFC 8259 refuses, duplicates and deep nesting", () => {
  for (const bad of ['{"a": 1, "a": 2}', "[1,]", "01", "+1", "'a'", '"\\x"', '"a\nb"', "[1] 2",
    "", "nul", "{a: 1}", '{"a" 1}', "[" .repeat(MAX_DEPTH + 2) + "]".repeat(MAX_DEPTH + 2), "1".repeat(101)]) {
    assert.throws(() => parse(bad), JsonError, bad);
  }
  assert.deepEqual(parse(" [ true , false , null , \"\\u00e9\\n\" ] "), [true, false, null, "\u00e9\n"]);
});

test("canonical form is Python's json.dumps(indent=2, sort_keys=True, ensure_ascii=True)", () => {
  const text = '{"b": [1, {"z": null, "a": true}], "a": "\\u00e9\\"/\\u007f\\u0001", "c": {}, "d": []}';
  assert.equal(canonical(parse(text)),
    '{\n  "a": "\\u00e9\\"/\\u007f\\u0001",\n  "b": [\n    1,\n    {\n      "a": true,\n      "z": null\n    }\n  ],\n  "c": {},\n  "d": []\n}');
  assert.throws(() => canonical(parse("1.5")), JsonError);
});
