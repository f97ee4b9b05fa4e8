// RFC 8785 (JSON Canonicalization Scheme) + SHA-256 via Web Crypto.
// Numbers: ECMAScript Number.prototype.toString (what RFC 8785 specifies); strings: the
// JSON.stringify escaping, which is RFC 8785's; keys sorted by UTF-16 code units
// (Array.prototype.sort's default order).

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function str(s, path) {
  if (LONE_SURROGATE.test(s)) throw new Error(`lone surrogate in string at ${path}`);
  return JSON.stringify(s);
}

export function canonicalize(value, path = "$") {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean": return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new Error(`non-finite number at ${path}`);
      return Object.is(value, -0) ? "0" : String(value);
    case "string": return str(value, path);
    case "object":
      if (Array.isArray(value)) {
        return "[" + value.map((v, i) => canonicalize(v, `${path}[${i}]`)).join(",") + "]";
      }
      return "{" + Object.keys(value).sort().map(
        (k) => str(k, path) + ":" + canonicalize(value[k], `${path}.${k}`)).join(",") + "}";
    default:
      throw new Error(`value of type ${typeof value} at ${path} has no JSON form`);
  }
}

export async function sha256Hex(text) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error("Web Crypto is unavailable: open the page over https or http://127.0.0.1");
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
