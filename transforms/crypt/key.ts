/**
 * Key derivation exactly as kcptun does it (docs/protocol.md §2): the `-key` string is stretched with
 * PBKDF2-HMAC-SHA1 (salt `kcp-go`, 4096 iterations, 32 bytes) into `pass`, of which every cipher
 * takes a prefix. Results are cached per key string.
 *
 * {@link deriveKey} is synchronous JavaScript (`sha.ts`, a few milliseconds). The CLI calls
 * {@link deriveKeyAsync} first, which has WebCrypto do the same natively and fills the cache:
 * 16384 SHA-1 blocks of JavaScript at startup would have V8 compile them with its optimising
 * compilers, whose code then stays resident in an idle process (docs/performance.md, "Memory").
 *
 * @module
 */

import { pbkdf2HmacSha1 } from "./sha.ts";

/** kcptun's default `-key` (sic). */
export const DEFAULT_KEY = "it's a secrect";

/** Salt kcptun gives PBKDF2. */
export const KEY_SALT = "kcp-go";

/** PBKDF2 iterations kcptun uses. */
export const KEY_ITERATIONS = 4096;

/** Length of the derived `pass`. */
export const KEY_LENGTH = 32;

/** Salt of the `xor` method's table (kcp-go's `saltxor`). */
export const XOR_SALT = "sH3CIVoF#rWLtJo6";

/** Length of the `xor` method's table: kcp-go's largest datagram. */
export const XOR_TABLE_LENGTH = 1500;

const encoder = new TextEncoder();
const cache = new Map<string, Uint8Array>();

/**
 * The 32-byte `pass` kcptun derives from a `-key` string (cached; callers must not modify it).
 *
 * @example
 * ```ts
 * import { deriveKey } from "./key.ts";
 * const pass = deriveKey("test");
 * console.assert(pass.length === 32 && pass[0] === 0xfc);
 * ```
 */
export function deriveKey(key: string): Uint8Array {
  let pass = cache.get(key);
  if (pass === undefined) {
    pass = pbkdf2HmacSha1(
      encoder.encode(key),
      encoder.encode(KEY_SALT),
      KEY_ITERATIONS,
      KEY_LENGTH,
    );
    cache.set(key, pass);
  }
  return pass;
}

/**
 * {@link deriveKey} through WebCrypto's PBKDF2 (native, off the JavaScript thread), filling the
 * cache {@link deriveKey} reads; falls back to {@link deriveKey} where WebCrypto refuses. Same
 * bytes either way.
 */
export async function deriveKeyAsync(key: string): Promise<Uint8Array> {
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  let pass: Uint8Array;
  try {
    const base = await crypto.subtle.importKey("raw", encoder.encode(key), "PBKDF2", false, [
      "deriveBits",
    ]);
    pass = new Uint8Array(
      await crypto.subtle.deriveBits(
        {
          name: "PBKDF2",
          hash: "SHA-1",
          salt: encoder.encode(KEY_SALT),
          iterations: KEY_ITERATIONS,
        },
        base,
        KEY_LENGTH * 8,
      ),
    );
  } catch {
    return deriveKey(key);
  }
  if (!cache.has(key)) cache.set(key, pass);
  return cache.get(key)!;
}

/**
 * The `xor` method's 1500-byte pad: PBKDF2-HMAC-SHA1 of `pass` with salt `sH3CIVoF#rWLtJo6` and
 * 32 iterations (docs/protocol.md §3.4).
 */
export function xorTable(pass: Uint8Array): Uint8Array {
  return pbkdf2HmacSha1(pass, encoder.encode(XOR_SALT), 32, XOR_TABLE_LENGTH);
}
