/**
 * SHA-1 and SHA-256 (FIPS 180-4), HMAC (RFC 2104) and PBKDF2-HMAC-SHA1 (RFC 8018), in
 * JavaScript and synchronous: what kcptun's key derivation, the `xor` method's pad and QPP's pads
 * need. `node:crypto` would do the same natively, but importing it loads Deno's Node compatibility
 * layer, megabytes of memory in every process (docs/performance.md, "Memory"); WebCrypto's
 * PBKDF2 is asynchronous (see `deriveKeyAsync` in `key.ts`, which the CLI uses).
 *
 * PBKDF2 keeps HMAC's inner and outer key states after their first block, so one iteration costs
 * two compressions (kcptun's 4096 iterations for 32 bytes: 16384 SHA-1 blocks, a few ms).
 *
 * @module
 */

const SHA1_INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];

/**
 * One SHA-1 compression of the 16 big-endian words `w[0..16)` (overwritten: `w` must hold 80)
 * into the five words `h`.
 */
function sha1Block(h: Int32Array, w: Int32Array): void {
  for (let t = 16; t < 80; t++) {
    const x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
    w[t] = (x << 1) | (x >>> 31);
  }
  let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (let t = 0; t < 80; t++) {
    let f: number, k: number;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    const tmp = (((a << 5) | (a >>> 27)) + f + e + k + w[t]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = tmp;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
}

const SHA256_K = Int32Array.of(
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
);

const SHA256_INIT = [
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
];

/** One SHA-256 compression of `w[0..16)` (`w` holds 64, overwritten) into the eight words `h`. */
function sha256Block(h: Int32Array, w: Int32Array): void {
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15], y = w[t - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
  }
  let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + S1 + ((e & f) ^ (~e & g)) + SHA256_K[t] + w[t]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
  h[5] = (h[5] + f) | 0;
  h[6] = (h[6] + g) | 0;
  h[7] = (h[7] + k) | 0;
}

/** A Merkle–Damgård hash with 64-byte blocks and a big-endian 64-bit length. */
interface HashSpec {
  readonly init: readonly number[];
  readonly scheduleWords: number;
  readonly block: (h: Int32Array, w: Int32Array) => void;
}

const SHA1: HashSpec = { init: SHA1_INIT, scheduleWords: 80, block: sha1Block };
const SHA256: HashSpec = { init: SHA256_INIT, scheduleWords: 64, block: sha256Block };

/** `count` big-endian words of `src` from byte `at` into `w`. */
function loadWords(w: Int32Array, src: Uint8Array, at: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const o = at + 4 * i;
    w[i] = (src[o] << 24) | (src[o + 1] << 16) | (src[o + 2] << 8) | src[o + 3];
  }
}

/**
 * Continues hashing from state `h` (which has already taken `prefixBytes` bytes, a multiple of
 * 64) with all of `data`, then pads and finishes; the digest is left in `h`.
 */
function finish(spec: HashSpec, h: Int32Array, prefixBytes: number, data: Uint8Array): void {
  const w = new Int32Array(spec.scheduleWords);
  const n = data.length;
  let at = 0;
  for (; at + 64 <= n; at += 64) {
    loadWords(w, data, at, 16);
    spec.block(h, w);
  }
  // The tail, 0x80, zeros and the bit length: one block, or two when the tail is 56 bytes or more.
  const tail = new Uint8Array(128);
  tail.set(data.subarray(at));
  tail[n - at] = 0x80;
  const blocks = n - at < 56 ? 1 : 2;
  const bits = (prefixBytes + n) * 8;
  const end = blocks * 64;
  const high = Math.floor(bits / 0x100000000);
  tail[end - 8] = high >>> 24;
  tail[end - 7] = high >>> 16;
  tail[end - 6] = high >>> 8;
  tail[end - 5] = high;
  tail[end - 4] = bits >>> 24;
  tail[end - 3] = bits >>> 16;
  tail[end - 2] = bits >>> 8;
  tail[end - 1] = bits;
  for (let b = 0; b < blocks; b++) {
    loadWords(w, tail, b * 64, 16);
    spec.block(h, w);
  }
}

function digestBytes(h: Int32Array): Uint8Array {
  const out = new Uint8Array(h.length * 4);
  for (let i = 0; i < h.length; i++) {
    out[4 * i] = h[i] >>> 24;
    out[4 * i + 1] = h[i] >>> 16;
    out[4 * i + 2] = h[i] >>> 8;
    out[4 * i + 3] = h[i];
  }
  return out;
}

function hash(spec: HashSpec, data: Uint8Array): Uint8Array {
  const h = Int32Array.from(spec.init);
  finish(spec, h, 0, data);
  return digestBytes(h);
}

/** SHA-1 of `data` (20 bytes). */
export function sha1(data: Uint8Array): Uint8Array {
  return hash(SHA1, data);
}

/** SHA-256 of `data` (32 bytes). */
export function sha256(data: Uint8Array): Uint8Array {
  return hash(SHA256, data);
}

/** HMAC's key states: the hash state after the inner and after the outer padded key block. */
interface HmacKey {
  readonly inner: Int32Array;
  readonly outer: Int32Array;
}

function hmacKey(spec: HashSpec, key: Uint8Array): HmacKey {
  const k = key.length > 64 ? hash(spec, key) : key;
  const pad = new Uint8Array(64);
  const w = new Int32Array(spec.scheduleWords);
  const state = (xor: number) => {
    pad.fill(xor);
    for (let i = 0; i < k.length; i++) pad[i] ^= k[i];
    const h = Int32Array.from(spec.init);
    loadWords(w, pad, 0, 16);
    spec.block(h, w);
    return h;
  };
  return { inner: state(0x36), outer: state(0x5c) };
}

function hmac(spec: HashSpec, key: Uint8Array, message: Uint8Array): Uint8Array {
  const { inner, outer } = hmacKey(spec, key);
  finish(spec, inner, 64, message);
  finish(spec, outer, 64, digestBytes(inner));
  return digestBytes(outer);
}

/** HMAC-SHA1 of `message` under `key` (20 bytes). */
export function hmacSha1(key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmac(SHA1, key, message);
}

/** HMAC-SHA256 of `message` under `key` (32 bytes). */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmac(SHA256, key, message);
}

/**
 * PBKDF2 with HMAC-SHA1 (RFC 8018 §5.2): `length` bytes stretched from `password` and `salt`
 * with `iterations` rounds, as Go's `pbkdf2.Key(password, salt, iterations, length, sha1.New)`.
 *
 * @example
 * ```ts
 * import { pbkdf2HmacSha1 } from "./sha.ts";
 * const e = new TextEncoder();
 * // RFC 6070, test case 2.
 * const dk = pbkdf2HmacSha1(e.encode("password"), e.encode("salt"), 2, 20);
 * console.assert(dk[0] === 0xea && dk[19] === 0x57);
 * ```
 */
export function pbkdf2HmacSha1(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`PBKDF2 iterations must be a positive integer, got ${iterations}`);
  }
  const { inner, outer } = hmacKey(SHA1, password);
  const out = new Uint8Array(length);
  const block = new Uint8Array(salt.length + 4);
  block.set(salt);
  const h = new Int32Array(5);
  const u = new Int32Array(5);
  const t = new Int32Array(5);
  const w = new Int32Array(80);
  for (let i = 1, at = 0; at < length; i++, at += 20) {
    // U1 = HMAC(password, salt ‖ INT(i)), through the general path once per output block.
    const n = block.length;
    block[n - 4] = i >>> 24;
    block[n - 3] = i >>> 16;
    block[n - 2] = i >>> 8;
    block[n - 1] = i;
    h.set(inner);
    finish(SHA1, h, 64, block);
    const first = digestBytes(h);
    h.set(outer);
    finish(SHA1, h, 64, first);
    u.set(h);
    t.set(h);
    // U2..Uc: a 20-byte message after a 64-byte key block is one padded block per hash.
    for (let c = 1; c < iterations; c++) {
      h.set(inner);
      w.set(u);
      w[5] = 0x80000000;
      w.fill(0, 6, 15);
      w[15] = (64 + 20) * 8;
      sha1Block(h, w);
      w.set(h);
      w[5] = 0x80000000;
      w.fill(0, 6, 15);
      w[15] = (64 + 20) * 8;
      h.set(outer);
      sha1Block(h, w);
      u.set(h);
      for (let j = 0; j < 5; j++) t[j] ^= h[j];
    }
    const bytes = digestBytes(t);
    out.set(bytes.subarray(0, Math.min(20, length - at)), at);
  }
  return out;
}
