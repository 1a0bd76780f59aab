/**
 * QPP's permutation pads (xtaci/qpp v1.1.25, as kcptun 2026 uses it with `-QPP`): `count`
 * keyed permutations of the 256 byte values and their inverses, and the PRNG seed every stream
 * starts from. docs/protocol.md §8.6 has the algorithm and its test vectors.
 *
 * Building the pads is the expensive part (61 pads = 61 × 255 × 14 AES-256 blocks), so
 * {@link qppPads} builds them once per process for a (key, count) pair.
 *
 * @module
 */

import { AesCipher } from "../crypt/aes.ts";
import { hmacSha256 as hmac256, pbkdf2HmacSha1 } from "../crypt/sha.ts";
import { stateFromBytes } from "./prng.ts";

/** kcptun's default `-QPPCount`. */
export const QPP_DEFAULT_COUNT = 61;

/** Key bytes needed to hold log2(256!) bits: what kcptun wants at least (it warns below). */
export const QPP_MIN_KEY_BYTES = 211;

/** Pads kcptun wants at least: one per 32-byte chunk of {@link QPP_MIN_KEY_BYTES}. */
export const QPP_MIN_PADS = 7;

/** Most pads kcptun can use: it passes the count on as a 16-bit number. */
export const QPP_MAX_COUNT = 65535;

const CHUNK_SALT = "___QUANTUM_PERMUTATION_PAD_SEED_DERIVE___";
const SHUFFLE_SALT = "___QUANTUM_PERMUTATION_PAD_SHUFFLE_SALT___";
const PRNG_SALT = "___QUANTUM_PERMUTATION_PAD_PRNG_SALT___";
const SELECTOR = "PERMUTATION_MATRIX_SELECTOR";
const SHORT_SEED_ITERATIONS = 128;
const CHUNK_ITERATIONS = 1024;
const KEY_ITERATIONS = 128;
const CHUNK_COUNT = Math.ceil(QPP_MIN_KEY_BYTES / 32);

const encoder = new TextEncoder();

function pbkdf2(password: Uint8Array, salt: string, iterations: number): Uint8Array {
  return pbkdf2HmacSha1(password, encoder.encode(salt), iterations, 32);
}

function hmacSha256(key: Uint8Array, message: string): Uint8Array {
  return hmac256(key, encoder.encode(message));
}

/**
 * The seven 32-byte chunks the pads are keyed from: the seed (stretched to 32 bytes first when
 * shorter) read cyclically, 32 bytes per chunk, each chunk then put through PBKDF2.
 */
export function qppChunks(seed: Uint8Array): Uint8Array[] {
  const s = seed.length < 32 ? pbkdf2(seed, CHUNK_SALT, SHORT_SEED_ITERATIONS) : seed;
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < CHUNK_COUNT; i++) {
    const raw = new Uint8Array(32);
    for (let j = 0; j < 32; j++) raw[j] = s[at++ % s.length];
    chunks.push(pbkdf2(raw, CHUNK_SALT, CHUNK_ITERATIONS));
  }
  return chunks;
}

/**
 * The 32 bytes every stream's PRNG starts from (four little-endian u64 state words): HMAC of
 * the seed, then PBKDF2.
 */
export function qppPrngSeed(seed: Uint8Array): Uint8Array {
  return pbkdf2(hmacSha256(seed, SELECTOR), PRNG_SALT, KEY_ITERATIONS);
}

/**
 * Builds pad `index` into `pad` (256 bytes): a Fisher-Yates shuffle of the identity whose
 * random numbers are a 256-bit value re-encrypted by every AES key before each draw.
 */
function shufflePad(pad: Uint8Array, index: number, chunk: Uint8Array, keys: AesCipher[]): void {
  for (let i = 0; i < 256; i++) pad[i] = i;
  const mac = hmacSha256(chunk, "QPP_" + index.toString(2));
  // The 256-bit value as eight big-endian words: two AES blocks in the cipher's word layout.
  const words = new Int32Array(8);
  for (let w = 0; w < 8; w++) {
    const o = w * 4;
    words[w] = (mac[o] << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
  }
  const first = words.subarray(0, 4);
  const second = words.subarray(4, 8);
  for (let k = 255; k > 0; k--) {
    for (const key of keys) {
      key.encryptWords(first);
      key.encryptWords(second);
    }
    // value mod (k + 1) by Horner over the words: every step stays below 2^41, exact in a double.
    const m = k + 1;
    let r = 0;
    for (let w = 0; w < 8; w++) r = (r * 4294967296 + (words[w] >>> 0)) % m;
    const t = pad[k];
    pad[k] = pad[r];
    pad[r] = t;
  }
}

/** The pads of one (seed, count) pair, both directions, and the PRNG seed of its streams. */
export class QppPads {
  /** Number of pads. */
  readonly count: number;
  /** Pad i is bytes [256·i, 256·i + 256): ciphertext = pad[plaintext ^ mask]. */
  readonly forward: Uint8Array;
  /** The inverse of each pad, same layout: plaintext = inverse[ciphertext] ^ mask. */
  readonly inverse: Uint8Array;
  /** Where every stream's PRNG starts: xoshiro256** state as eight u32 halves, low first. */
  readonly prngState: Uint32Array;

  /**
   * Builds `count` pads (1..{@link QPP_MAX_COUNT}) from the raw `seed` (kcptun: the `-key`
   * bytes). Synchronous and slow by design (tens of milliseconds for 61 pads); prefer
   * {@link qppPads}, which caches.
   */
  constructor(seed: Uint8Array, count: number) {
    if (!Number.isInteger(count) || count < 1 || count > QPP_MAX_COUNT) {
      throw new RangeError(`QPP pad count must be 1..${QPP_MAX_COUNT}, got ${count}`);
    }
    this.count = count;
    this.forward = new Uint8Array(count * 256);
    this.inverse = new Uint8Array(count * 256);
    const chunks = qppChunks(seed);
    const keys = chunks.map((c) => new AesCipher(pbkdf2(c, SHUFFLE_SALT, KEY_ITERATIONS)));
    for (let i = 0; i < count; i++) {
      const pad = this.forward.subarray(i * 256, i * 256 + 256);
      shufflePad(pad, i, chunks[i % chunks.length], keys);
      const inv = this.inverse.subarray(i * 256, i * 256 + 256);
      for (let x = 0; x < 256; x++) inv[pad[x]] = x;
    }
    this.prngState = stateFromBytes(qppPrngSeed(seed));
  }
}

const cache = new Map<string, QppPads>();

/**
 * The pads for `key` (a string is taken as its UTF-8 bytes, as Go's `[]byte(key)`) and
 * `count`, built on first use and kept for the life of the process.
 */
export function qppPads(key: string | Uint8Array, count: number = QPP_DEFAULT_COUNT): QppPads {
  const seed = typeof key === "string" ? new TextEncoder().encode(key) : key;
  let id = count + ":";
  for (const b of seed) id += b.toString(16).padStart(2, "0");
  let pads = cache.get(id);
  if (pads === undefined) {
    pads = new QppPads(seed, count);
    cache.set(id, pads);
  }
  return pads;
}
