/** Minimal assertions for our tests (jsr:@std/assert is unreachable here). */

/** Thrown by a failed assertion. */
export class AssertionError extends Error {
  /** Names the error class in test output. */
  override name = "AssertionError";
}

/** Fails unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) {
    const hex = Array.from(v.subarray(0, 64), (b) => b.toString(16).padStart(2, "0")).join("");
    return `Uint8Array(${v.length})[${hex}${v.length > 64 ? "…" : ""}]`;
  }
  try {
    return Deno.inspect(v, { depth: 6, iterableLimit: 50 });
  } catch {
    return String(v);
  }
}

/** Deep structural equality (typed arrays by content, Maps, Sets, plain objects, arrays). */
export function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    if (a.constructor !== b.constructor) return false;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !equal(v, b.get(k))) return false;
    return true;
  }
  if (a instanceof Set && b instanceof Set) {
    if (a.size !== b.size) return false;
    for (const v of a) if (!b.has(v)) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a as object), kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** Fails unless `actual` deeply equals `expected`. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  if (!equal(actual, expected)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}values differ\n  actual:   ${show(actual)}\n  expected: ${
        show(expected)
      }`,
    );
  }
}

/** Fails unless `fn` throws (optionally an instance of `type` whose message includes `includes`). */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    checkError(e, type, includes);
    return e as Error;
  }
  throw new AssertionError("expected the function to throw");
}

/** Fails unless the promise from `fn` rejects (optionally as {@link assertThrows} checks). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    checkError(e, type, includes);
    return e as Error;
  }
  throw new AssertionError("expected the promise to reject");
}

function checkError(
  e: unknown,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
): void {
  if (type && !(e instanceof type)) {
    throw new AssertionError(`expected ${type.name}, got ${show(e)}`);
  }
  if (includes !== undefined && !String((e as Error)?.message).includes(includes)) {
    throw new AssertionError(`expected message to include ${show(includes)}, got ${show(e)}`);
  }
}
