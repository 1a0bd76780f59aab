/**
 * A strict JSON reader that keeps what kcptun's error messages need: where each value is (line
 * and column) and how each number was written (`1400.0` is not an integer for Go). Syntax errors
 * have Go's `encoding/json` wording.
 *
 * ```ts
 * import { parseJsonText, positionOf } from "./json.ts";
 * const text = '{\n  "mtu": 1400\n}';
 * const root = parseJsonText(text);
 * if (root.t !== "object") throw new Error(root.t);
 * const mtu = root.members[0].value;
 * if (mtu.t !== "number" || mtu.raw !== "1400") throw new Error("mtu");
 * const at = positionOf(text, mtu.at);
 * if (at.line !== 2 || at.column !== 10) throw new Error(`${at.line}:${at.column}`);
 * ```
 *
 * @module
 */

import { goQuote } from "./flags.ts";

/** Byte-exact JSON syntax error with its position (1-based line and column). */
export class JsonSyntaxError extends Error {
  /** Names the error class in stack traces. */
  override name = "JsonSyntaxError";
  /** Line of the offending character. */
  readonly line: number;
  /** Column of the offending character. */
  readonly column: number;
  /** Builds the error; the message gets the position appended. */
  constructor(message: string, line: number, column: number) {
    super(`${message} at line ${line}, column ${column}`);
    this.line = line;
    this.column = column;
  }
}

/** A parsed JSON value that remembers where it was and how a number was written. */
export type JsonNode =
  | { readonly t: "string"; readonly v: string; readonly at: number }
  | { readonly t: "number"; readonly raw: string; readonly at: number }
  | { readonly t: "bool"; readonly v: boolean; readonly at: number }
  | { readonly t: "null"; readonly at: number }
  | { readonly t: "array"; readonly items: readonly JsonNode[]; readonly at: number }
  | { readonly t: "object"; readonly members: readonly JsonMember[]; readonly at: number };

/** One `"key": value` pair, in document order (duplicates kept, the last one wins). */
export interface JsonMember {
  /** The decoded key. */
  readonly key: string;
  /** Offset of the key in the text. */
  readonly at: number;
  /** The value. */
  readonly value: JsonNode;
}

/** 1-based line and column of a text offset. */
export function positionOf(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < at && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: at - start + 1 };
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = goQuote(c);
  return "'" + q.slice(1, -1) + "'";
}

/**
 * Parses JSON text strictly (RFC 8259, as Go's encoding/json: no comments, no trailing commas),
 * keeping positions and number spellings. A leading byte order mark is skipped. Throws
 * {@link JsonSyntaxError} with Go's wording and the line and column.
 */
export function parseJsonText(text: string): JsonNode {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const fail = (msg: string, at = i): never => {
    const p = positionOf(text, at);
    throw new JsonSyntaxError(msg, p.line, p.column);
  };
  const eof = (): never => fail("unexpected end of JSON input", text.length);
  const ws = () => {
    for (;;) {
      const c = text[i];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") i++;
      else return;
    }
  };
  const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

  const literal = (word: string, node: JsonNode): JsonNode => {
    for (let k = 0; k < word.length; k++) {
      const c = text[i + k];
      if (c === undefined) return eof();
      if (c !== word[k]) {
        return fail(
          `invalid character ${quoteChar(c)} in literal ${word} (expecting ${quoteChar(word[k])})`,
          i + k,
        );
      }
    }
    i += word.length;
    return node;
  };

  const str = (): string => {
    i++; // opening quote
    let out = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) return eof();
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") {
        const e = text[i + 1];
        if (e === undefined) return eof();
        const simple: Record<string, string> = {
          '"': '"',
          "\\": "\\",
          "/": "/",
          b: "\b",
          f: "\f",
          n: "\n",
          r: "\r",
          t: "\t",
        };
        if (e in simple) {
          out += simple[e];
          i += 2;
          continue;
        }
        if (e !== "u") {
          return fail(`invalid character ${quoteChar(e)} in string escape code`, i + 1);
        }
        const hex = (from: number): number => {
          for (let k = 0; k < 4; k++) {
            const h = text[from + k];
            if (h === undefined) return eof();
            if (!/[0-9a-fA-F]/.test(h)) {
              return fail(
                `invalid character ${quoteChar(h)} in \\u hexadecimal character escape`,
                from + k,
              );
            }
          }
          return parseInt(text.slice(from, from + 4), 16);
        };
        const u = hex(i + 2);
        i += 6;
        if (u >= 0xd800 && u < 0xdc00) {
          // A high surrogate pairs with a following \u low surrogate; alone it is U+FFFD (Go).
          if (text[i] === "\\" && text[i + 1] === "u") {
            const l = hex(i + 2);
            if (l >= 0xdc00 && l < 0xe000) {
              out += String.fromCharCode(u, l);
              i += 6;
              continue;
            }
          }
          out += "\ufffd";
        } else if (u >= 0xdc00 && u < 0xe000) {
          out += "\ufffd";
        } else {
          out += String.fromCharCode(u);
        }
        continue;
      }
      if (c.charCodeAt(0) < 0x20) {
        return fail(`invalid character ${quoteChar(c)} in string literal`);
      }
      out += c;
      i++;
    }
  };

  const num = (): JsonNode => {
    const at = i;
    if (text[i] === "-") i++;
    if (text[i] === undefined) return eof();
    if (text[i] === "0") i++;
    else if (isDigit(text[i])) { while (isDigit(text[i])) i++; }
    else return fail(`invalid character ${quoteChar(text[i])} in numeric literal`);
    if (text[i] === ".") {
      i++;
      if (text[i] === undefined) return eof();
      if (!isDigit(text[i])) {
        return fail(
          `invalid character ${quoteChar(text[i])} after decimal point in numeric literal`,
        );
      }
      while (isDigit(text[i])) i++;
    }
    if (text[i] === "e" || text[i] === "E") {
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      if (text[i] === undefined) return eof();
      if (!isDigit(text[i])) {
        return fail(`invalid character ${quoteChar(text[i])} in exponent of numeric literal`);
      }
      while (isDigit(text[i])) i++;
    }
    return { t: "number", raw: text.slice(at, i), at };
  };

  const value = (): JsonNode => {
    ws();
    const c = text[i];
    const at = i;
    if (c === undefined) return eof();
    if (c === "{") {
      i++;
      const members: JsonMember[] = [];
      ws();
      if (text[i] === "}") {
        i++;
        return { t: "object", members, at };
      }
      for (;;) {
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] !== '"') {
          return fail(
            `invalid character ${quoteChar(text[i])} looking for beginning of object key string`,
          );
        }
        const keyAt = i;
        const key = str();
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] !== ":") {
          return fail(`invalid character ${quoteChar(text[i])} after object key`);
        }
        i++;
        members.push({ key, at: keyAt, value: value() });
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return { t: "object", members, at };
        }
        return fail(`invalid character ${quoteChar(text[i])} after object key:value pair`);
      }
    }
    if (c === "[") {
      i++;
      const items: JsonNode[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return { t: "array", items, at };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return { t: "array", items, at };
        }
        return fail(`invalid character ${quoteChar(text[i])} after array element`);
      }
    }
    if (c === '"') return { t: "string", v: str(), at };
    if (c === "t") return literal("true", { t: "bool", v: true, at });
    if (c === "f") return literal("false", { t: "bool", v: false, at });
    if (c === "n") return literal("null", { t: "null", at });
    if (c === "-" || isDigit(c)) return num();
    return fail(`invalid character ${quoteChar(c)} looking for beginning of value`);
  };

  const root = value();
  ws();
  if (i < text.length) fail(`invalid character ${quoteChar(text[i])} after top-level value`);
  return root;
}

/** Plain JavaScript value of a node (numbers as JavaScript numbers). */
export function jsonToPlain(node: JsonNode): unknown {
  switch (node.t) {
    case "string":
    case "bool":
      return node.v;
    case "number":
      return Number(node.raw);
    case "null":
      return null;
    case "array":
      return node.items.map(jsonToPlain);
    case "object": {
      const o: Record<string, unknown> = {};
      for (const m of node.members) o[m.key] = jsonToPlain(m.value);
      return o;
    }
  }
}

/** Folds a key as Go's encoding/json compares field names (case-insensitive, K/ſ included). */
export function foldKey(key: string): string {
  let out = "";
  for (const ch of key) {
    if (ch >= "A" && ch <= "Z") out += ch.toLowerCase();
    else if (ch === "\u212a") out += "k";
    else if (ch === "\u017f") out += "s";
    else out += ch;
  }
  return out;
}

/**
 * A value as error messages show it: `string "abc"` (Go-quoted, long ones cut), `number 1.0` (as
 * written), `true`, `null`, `an array`, `an object`.
 */
export function describeJsonNode(node: JsonNode): string {
  switch (node.t) {
    case "string": {
      const q = goQuote(node.v);
      return `string ${q.length > 40 ? q.slice(0, 37) + '..."' : q}`;
    }
    case "number":
      return `number ${node.raw}`;
    case "bool":
      return `${node.v}`;
    case "null":
      return "null";
    case "array":
      return "an array";
    case "object":
      return "an object";
  }
}
