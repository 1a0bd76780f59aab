/**
 * Key derivation exactly as kcptun does it (docs/protocol.md §2): the `-key` string is stretched with
 * PBKDF2-HMAC-SHA1 (salt `kcp-go`, 4096 iterations, 32 bytes) into `pass`, of which every cipher
 * takes a prefix. PBKDF2 costs a few milliseconds, so results are cached per key string.
 *
 * @module
 */

import { pbkdf2Sync } from "node:crypto";

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
    pass = new Uint8Array(
      pbkdf2Sync(encoder.encode(key), encoder.encode(KEY_SALT), KEY_ITERATIONS, KEY_LENGTH, "sha1"),
    );
    cache.set(key, pass);
  }
  return pass;
}

/**
 * The `xor` method's 1500-byte pad: PBKDF2-HMAC-SHA1 of `pass` with salt `sH3CIVoF#rWLtJo6` and
 * 32 iterations (docs/protocol.md §3.4).
 */
export function xorTable(pass: Uint8Array): Uint8Array {
  return new Uint8Array(
    pbkdf2Sync(pass, encoder.encode(XOR_SALT), 32, XOR_TABLE_LENGTH, "sha1"),
  );
}
