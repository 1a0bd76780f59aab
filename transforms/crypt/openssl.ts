/**
 * CFB through OpenSSL's libcrypto (FFI), for AES-128/192/256 (SM4 and 3DES are software in
 * libcrypto too, no faster than ours, so they stay in JavaScript). Same construction as {@link Cfb} (fixed IV, full-block
 * feedback, trailing partial block, whole datagram), so the bytes are identical; the speed is
 * AES-NI's instead of a table-driven JavaScript AES (docs/crypt.md has the numbers).
 *
 * Used when `libcrypto.so.3` loads and FFI is permitted; otherwise the caller keeps the
 * JavaScript/`node:crypto` path. Pointers handed to libcrypto are made once per backing buffer
 * and offset and cached, so a datagram costs two FFI calls and no allocation once warm.
 *
 * @module
 */

import { KCP_IV } from "./cfb.ts";
import type { DatagramCipher } from "./datagram_cipher.ts";

const SYMBOLS = {
  EVP_CIPHER_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32"],
    result: "i32",
  },
  EVP_CipherUpdate: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "i32"],
    result: "i32",
  },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Symbols | null | undefined;

function libcrypto(): Symbols | null {
  if (lib !== undefined) return lib;
  try {
    lib = Deno.dlopen("libcrypto.so.3", SYMBOLS).symbols;
  } catch {
    lib = null; // not permitted (--allow-ffi), or no OpenSSL 3 here
  }
  return lib;
}

/** OpenSSL's name for each method it can do, and the key bytes kcptun gives it. */
const OPENSSL_CFB: Record<string, [name: string, keyBytes: number, block: number]> = {
  "aes": ["AES-256-CFB", 32, 16],
  "aes-128": ["AES-128-CFB", 16, 16],
  "aes-192": ["AES-192-CFB", 24, 16],
};

/**
 * Pointers into backing buffers, per buffer and offset: packets of a pool start at one of a
 * few offsets, so after warm-up every lookup hits.
 */
const pointers = new WeakMap<Uint8Array, Map<number, Deno.PointerObject>>();

function pointerAt(buf: Uint8Array, offset: number): Deno.PointerObject {
  let byOffset = pointers.get(buf);
  if (byOffset === undefined) pointers.set(buf, byOffset = new Map());
  let p = byOffset.get(offset);
  if (p === undefined) {
    p = Deno.UnsafePointer.of(buf.subarray(offset))!;
    byOffset.set(offset, p);
  }
  return p;
}

/** A datagram cipher backed by libcrypto's CFB. */
export class OpenSslCfb implements DatagramCipher {
  readonly #sym: Symbols;
  readonly #enc: Deno.PointerObject;
  readonly #dec: Deno.PointerObject;
  readonly #iv: Deno.PointerObject;
  readonly #outl: Deno.PointerObject;
  /** Off-heap scratch (ArrayBuffer-backed, so its address is stable): key, IV, out-length. */
  readonly #scratch = new Uint8Array(new ArrayBuffer(256));

  private constructor(sym: Symbols, cipher: Deno.PointerObject, key: Uint8Array, block: number) {
    this.#sym = sym;
    const s = this.#scratch;
    s.set(key, 0);
    s.set(KCP_IV.subarray(0, block), 64);
    const keyPtr = Deno.UnsafePointer.of(s.subarray(0))!;
    this.#iv = Deno.UnsafePointer.of(s.subarray(64))!;
    this.#outl = Deno.UnsafePointer.of(s.subarray(128))!;
    const enc = sym.EVP_CIPHER_CTX_new();
    const dec = sym.EVP_CIPHER_CTX_new();
    if (enc === null || dec === null) throw new Error("EVP_CIPHER_CTX_new failed");
    if (
      sym.EVP_CipherInit_ex(enc, cipher, null, keyPtr, this.#iv, 1) !== 1 ||
      sym.EVP_CipherInit_ex(dec, cipher, null, keyPtr, this.#iv, 0) !== 1
    ) throw new Error("EVP_CipherInit_ex failed");
    s.fill(0, 0, 64); // the contexts keep their own key schedule
    this.#enc = enc;
    this.#dec = dec;
  }

  /**
   * A libcrypto CFB cipher for `method` keyed with kcptun's prefix of `pass`, or null when
   * libcrypto, FFI or that cipher is not available here.
   */
  static create(method: string, pass: Uint8Array): OpenSslCfb | null {
    const spec = OPENSSL_CFB[method];
    if (spec === undefined) return null;
    const sym = libcrypto();
    if (sym === null) return null;
    const cipher = sym.EVP_CIPHER_fetch(null, new TextEncoder().encode(spec[0] + "\0"), null);
    if (cipher === null) return null;
    try {
      return new OpenSslCfb(sym, cipher, pass.subarray(0, spec[1]), spec[2]);
    } catch {
      return null;
    }
  }

  /** Encrypts `buf[start, end)` in place. */
  encrypt(buf: Uint8Array, start: number, end: number): void {
    this.#run(this.#enc, buf, start, end);
  }

  /** Decrypts `buf[start, end)` in place. */
  decrypt(buf: Uint8Array, start: number, end: number): void {
    this.#run(this.#dec, buf, start, end);
  }

  #run(ctx: Deno.PointerObject, buf: Uint8Array, start: number, end: number): void {
    if (end <= start) return;
    const sym = this.#sym;
    // Back to the fixed IV for every datagram; -1 keeps the direction and the key.
    sym.EVP_CipherInit_ex(ctx, null, null, null, this.#iv, -1);
    const p = pointerAt(buf, start);
    sym.EVP_CipherUpdate(ctx, p, this.#outl, p, end - start);
  }
}
