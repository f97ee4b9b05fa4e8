// Strict JSON reading, the same rules as Python's record.parse_json_strict and
// validate_record: what JSON.parse lets through but another verifier would read
// differently is refused with the same error key (see data/verdict_cases.json).
//   empty, bom, invalid_utf8, too_deep, not_json, non_finite, duplicate_key   (reading)
//   lone_surrogate, unsafe_integer, non_finite                                (values)

export const MAX_JSON_NESTING = 256;
const MAX_SAFE = 9007199254740991n;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** An input the page refuses; `key` is the same as Python's MRVError.key. */
export class InputError extends Error {
  constructor(key, message) {
    super(message);
    this.key = key;
  }
}

/**
 * Parse UTF-8 JSON bytes strictly. Returns {value, problems}: `problems` lists, in document
 * order, values JSON cannot carry faithfully ({key, path, message}); Python reports the first
 * of them after checking that the value is a record at all, so the caller does too.
 */
export function parseStrict(bytes, source) {
  const text = decode(bytes, source);
  if (!text.trim()) throw new InputError("empty", `${source}: not JSON: the file is empty`);
  const parser = new Parser(text, source);
  const value = parser.document();
  return { value, problems: parser.problems };
}

function decode(bytes, source) {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new InputError("bom", `${source}: not JSON: starts with a UTF-8 byte-order mark`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new InputError("invalid_utf8", `${source}: not JSON: invalid UTF-8`);
  }
}

const WS = new Set([" ", "\t", "\n", "\r"]);
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

class Parser {
  constructor(text, source) {
    this.text = text;
    this.source = source;
    this.pos = 0;
    this.depth = 0;
    this.problems = [];
  }

  fail(what) {
    const truncated = this.pos >= this.text.trimEnd().length;
    const hint = truncated ? "truncated or incomplete JSON" : "invalid JSON";
    throw new InputError("not_json", `${this.source}: ${hint}: ${what} at character ${this.pos}`);
  }

  ws() {
    while (this.pos < this.text.length && WS.has(this.text[this.pos])) this.pos += 1;
  }

  document() {
    this.ws();
    const value = this.value("");
    this.ws();
    if (this.pos !== this.text.length) this.fail("extra data after the value");
    return value;
  }

  value(path) {
    this.ws();
    const c = this.text[this.pos];
    if (c === "{") return this.object(path);
    if (c === "[") return this.array(path);
    if (c === '"') return this.string(path, "text");
    for (const [word, val] of [["true", true], ["false", false], ["null", null]]) {
      if (this.text.startsWith(word, this.pos)) { this.pos += word.length; return val; }
    }
    for (const word of ["NaN", "Infinity", "-Infinity"]) {
      if (this.text.startsWith(word, this.pos)) {
        throw new InputError("non_finite", `${this.source}: invalid JSON: ${word} is not valid JSON`);
      }
    }
    return this.number(path);
  }

  enter() {
    this.depth += 1;
    if (this.depth > MAX_JSON_NESTING) {
      throw new InputError("too_deep", `${this.source}: invalid JSON: nested more than ${MAX_JSON_NESTING} levels deep`);
    }
    this.pos += 1;
  }

  object(path) {
    this.enter();
    const out = {};
    const seen = new Set();
    this.ws();
    if (this.text[this.pos] === "}") { this.pos += 1; this.depth -= 1; return out; }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail("expected a property name");
      const key = this.string(path, "key");
      if (seen.has(key)) {
        throw new InputError("duplicate_key", `${this.source}: invalid JSON: duplicate key ${JSON.stringify(key)}`);
      }
      seen.add(key);
      this.ws();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos += 1;
      const child = this.value(path ? `${path}.${key}` : key);
      Object.defineProperty(out, key, { value: child, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.text[this.pos];
      this.pos += 1;
      if (c === "}") { this.depth -= 1; return out; }
      if (c !== ",") { this.pos -= 1; this.fail("expected ',' or '}'"); }
    }
  }

  array(path) {
    this.enter();
    const out = [];
    this.ws();
    if (this.text[this.pos] === "]") { this.pos += 1; this.depth -= 1; return out; }
    for (;;) {
      out.push(this.value(`${path}[${out.length}]`));
      this.ws();
      const c = this.text[this.pos];
      this.pos += 1;
      if (c === "]") { this.depth -= 1; return out; }
      if (c !== ",") { this.pos -= 1; this.fail("expected ',' or ']'"); }
    }
  }

  string(path, what) {
    this.pos += 1;
    let out = "";
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail("unterminated string");
      this.pos += 1;
      if (c === '"') break;
      if (c < " ") { this.pos -= 1; this.fail("control character in a string"); }
      if (c !== "\\") { out += c; continue; }
      const e = this.text[this.pos];
      this.pos += 1;
      if (e in ESCAPES) { out += ESCAPES[e]; continue; }
      if (e !== "u" || !/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos, this.pos + 4))) {
        this.pos -= 1;
        this.fail("invalid escape");
      }
      out += String.fromCharCode(parseInt(this.text.slice(this.pos, this.pos + 4), 16));
      this.pos += 4;
    }
    if (LONE_SURROGATE.test(out)) {
      const where = path || "record";
      this.problems.push({ key: "lone_surrogate", path: where, message: what === "key"
        ? `${where}: key ${JSON.stringify(out)} contains a lone surrogate`
        : `${where}: text contains a lone surrogate (not valid Unicode)` });
    }
    return out;
  }

  number(path) {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (!m) this.fail("expected a value");
    this.pos += m[0].length;
    const value = Number(m[0]);
    const where = path || "record";
    if (!Number.isFinite(value)) {
      this.problems.push({ key: "non_finite", path: where,
        message: `${where}: ${m[0]} is not a finite number; JSON cannot represent it` });
    } else if (m[1] === undefined && m[2] === undefined) {
      const big = BigInt(m[0]);
      if (big > MAX_SAFE || big < -MAX_SAFE) {
        this.problems.push({ key: "unsafe_integer", path: where,
          message: `${where}: integer ${m[0]} is outside ±(2**53-1) and cannot be represented exactly in JSON/JavaScript` });
      }
    }
    return value;
  }
}
