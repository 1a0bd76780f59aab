/**
 * A strict parser of the Prometheus text format 0.0.4 and of OpenMetrics 1.0 text, written from
 * the two specifications for the metrics tests: it refuses what a lenient scraper might let
 * through, so that what it accepts any scraper accepts.
 *
 * Checked: `# HELP`, `# TYPE` (and, in OpenMetrics, `# UNIT`) at most once per family and before
 * its samples; families not interleaved; metric and label name charsets (`__` label names
 * reserved); label value escapes (`\\`, `\"`, `\n` only) and no duplicate label; numbers; no
 * duplicate series; every sample in a typed family; counters named `…_total` (0.0.4: the family;
 * OpenMetrics: the samples, the family without it), never negative; an OpenMetrics unit is the
 * family name's suffix; OpenMetrics ends with `# EOF`. Only counter and gauge families are
 * accepted (all our endpoint serves), and no timestamps, empty lines or free comments.
 *
 * @module
 */

/** One sample. */
export interface ParsedSample {
  /** The sample's metric name (`foo_total` for a counter). */
  readonly name: string;
  /** Its labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** Its value. */
  readonly value: number;
}

/** One metric family. */
export interface ParsedFamily {
  /** Its name as the TYPE line gives it. */
  readonly name: string;
  /** `counter` or `gauge`. */
  type: string;
  /** HELP text, unescaped. */
  help?: string;
  /** OpenMetrics UNIT. */
  unit?: string;
  /** Samples in order. */
  readonly samples: ParsedSample[];
}

/** Which text format. */
export type ExpositionFormat = "openmetrics" | "prometheus";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NUMBER = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/** Thrown with the line number and what is wrong. */
export class ExpositionError extends Error {
  /** Names the error class. */
  override name = "ExpositionError";
}

function unescape(text: string, allowed: string, where: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = text[++i];
    if (n === undefined || !allowed.includes(n)) {
      throw new ExpositionError(`${where}: bad escape \\${n ?? ""}`);
    }
    out += n === "n" ? "\n" : n;
  }
  return out;
}

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!NUMBER.test(text)) throw new ExpositionError(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** Parses `{a="x",b="y"}` at `line[at]`; returns the labels and the index after `}`. */
function parseLabels(
  line: string,
  at: number,
  where: string,
): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = at + 1;
  if (line[i] === "}") throw new ExpositionError(`${where}: empty label set`);
  for (;;) {
    const eq = line.indexOf("=", i);
    if (eq < 0) throw new ExpositionError(`${where}: label without '='`);
    const name = line.slice(i, eq);
    if (!LABEL_NAME.test(name) || name.startsWith("__")) {
      throw new ExpositionError(`${where}: bad label name ${JSON.stringify(name)}`);
    }
    if (name in labels) throw new ExpositionError(`${where}: label ${name} twice`);
    if (line[eq + 1] !== '"') throw new ExpositionError(`${where}: label ${name} not quoted`);
    let j = eq + 2, raw = "";
    for (;; j++) {
      if (j >= line.length) throw new ExpositionError(`${where}: unterminated label value`);
      const c = line[j];
      if (c === "\\") {
        raw += c + (line[j + 1] ?? "");
        j++;
        continue;
      }
      if (c === '"') break;
      raw += c;
    }
    labels[name] = unescape(raw, '\\"n', where);
    j++;
    if (line[j] === "}") return [labels, j + 1];
    if (line[j] !== ",") throw new ExpositionError(`${where}: expected ',' or '}' after a label`);
    i = j + 1;
    if (line[i] === "}") throw new ExpositionError(`${where}: trailing ',' in labels`);
  }
}

/** Parses `text` strictly as `format`; throws an {@link ExpositionError} at the first fault. */
export function parseExposition(
  text: string,
  format: ExpositionFormat,
): Map<string, ParsedFamily> {
  if (!text.endsWith("\n")) throw new ExpositionError("the text does not end with a newline");
  const lines = text.slice(0, -1).split("\n");
  const families = new Map<string, ParsedFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: ParsedFamily | null = null;
  let sawEof = false;
  /** The family `name` (from metadata), opened now or continuing the current one. */
  const familyFor = (name: string, where: string): ParsedFamily => {
    if (current !== null && current.name === name) return current;
    if (closed.has(name) || families.has(name)) {
      throw new ExpositionError(`${where}: family ${name} interleaved with another`);
    }
    if (current !== null) closed.add(current.name);
    current = { name, type: "", samples: [] };
    families.set(name, current);
    return current;
  };

  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (sawEof) throw new ExpositionError(`${where}: text after # EOF`);
    if (line === "") throw new ExpositionError(`${where}: empty line`);
    if (line.startsWith("#")) {
      if (line === "# EOF" && format === "openmetrics") {
        sawEof = true;
        return;
      }
      const m = /^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$/.exec(line);
      if (m === null || (m[1] === "UNIT" && format !== "openmetrics")) {
        throw new ExpositionError(`${where}: unexpected comment ${JSON.stringify(line)}`);
      }
      const [, kind, name, rest = ""] = m;
      if (!METRIC_NAME.test(name)) throw new ExpositionError(`${where}: bad name ${name}`);
      const f = familyFor(name, where);
      if (f.samples.length > 0) {
        throw new ExpositionError(`${where}: ${kind} of ${name} after its samples`);
      }
      if (kind === "HELP") {
        if (f.help !== undefined) throw new ExpositionError(`${where}: second HELP of ${name}`);
        f.help = unescape(rest, format === "openmetrics" ? '\\"n' : "\\n", where);
      } else if (kind === "TYPE") {
        if (f.type !== "") throw new ExpositionError(`${where}: second TYPE of ${name}`);
        if (rest !== "counter" && rest !== "gauge") {
          throw new ExpositionError(`${where}: type ${JSON.stringify(rest)} (counter or gauge)`);
        }
        f.type = rest;
        if (rest === "counter" && (format === "prometheus") !== name.endsWith("_total")) {
          throw new ExpositionError(
            format === "prometheus"
              ? `${where}: counter ${name} does not end in _total`
              : `${where}: OpenMetrics counter family ${name} ends in _total`,
          );
        }
      } else {
        if (f.unit !== undefined) throw new ExpositionError(`${where}: second UNIT of ${name}`);
        if (!/^[a-zA-Z0-9_:]+$/.test(rest) || !name.endsWith("_" + rest)) {
          throw new ExpositionError(`${where}: unit ${rest} is not the suffix of ${name}`);
        }
        f.unit = rest;
      }
      return;
    }
    // A sample: name, optional labels, one space, the value; nothing after it.
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new ExpositionError(`${where}: not a sample: ${line}`);
    const name = line.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new ExpositionError(`${where}: bad metric name ${name}`);
    let labels: Record<string, string> = {};
    let at = nameEnd;
    if (line[at] === "{") [labels, at] = parseLabels(line, at, where);
    if (line[at] !== " ") {
      throw new ExpositionError(`${where}: expected one space before the value`);
    }
    const rest = line.slice(at + 1);
    if (rest.includes(" ")) throw new ExpositionError(`${where}: a timestamp or extra text`);
    const value = parseValue(rest, where);

    const f = current as ParsedFamily | null;
    if (f === null || f.type === "") {
      throw new ExpositionError(`${where}: sample ${name} outside a typed family`);
    }
    const expected = format === "openmetrics" && f.type === "counter" ? f.name + "_total" : f.name;
    if (name !== expected) {
      throw new ExpositionError(
        `${where}: sample ${name} in family ${f.name} (expected ${expected})`,
      );
    }
    if (f.type === "counter" && !(value >= 0)) {
      throw new ExpositionError(`${where}: counter ${name} is ${rest}`);
    }
    const key = name + JSON.stringify(Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1));
    if (series.has(key)) throw new ExpositionError(`${where}: duplicate series ${key}`);
    series.add(key);
    f.samples.push({ name, labels, value });
  });
  if (format === "openmetrics" && !sawEof) throw new ExpositionError("no # EOF at the end");
  for (const f of families.values()) {
    if (f.type === "") throw new ExpositionError(`family ${f.name} has no TYPE`);
  }
  return families;
}

/** Every sample of `families` by sample name, then the labels. */
export function samplesOf(families: Map<string, ParsedFamily>): ParsedSample[] {
  return [...families.values()].flatMap((f) => f.samples);
}

/** The value of the one sample named `name` whose labels include `labels`; throws otherwise. */
export function valueOf(
  families: Map<string, ParsedFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const found = samplesOf(families).filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  if (found.length !== 1) {
    throw new Error(`${found.length} samples ${name} ${JSON.stringify(labels)}`);
  }
  return found[0].value;
}
