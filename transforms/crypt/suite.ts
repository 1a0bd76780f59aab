/**
 * Building a {@link CryptSuite} from a `-crypt` name and a key, with kcptun's name rules:
 * names match exactly (case-sensitive) and anything unknown silently means `aes` (AES-256).
 *
 * @module
 */

import type { Packet } from "../../pipeline/packet.ts";
import { AesCipher, createAes } from "./aes.ts";
import type { BlockCipher } from "./block_cipher.ts";
import { BlowfishCipher } from "./blowfish.ts";
import { Cast5Cipher } from "./cast5.ts";
import { Cfb } from "./cfb.ts";
import { type DatagramCipher, DeferredCipher } from "./datagram_cipher.ts";
import { TripleDesCipher } from "./des.ts";
import { AesGcmSuite } from "./gcm.ts";
import { HeaderCryptSuite } from "./header_suite.ts";
import { deriveKey, KEY_LENGTH } from "./key.ts";
import type { NonceSource } from "./nonce.ts";
import { IdentityCipher } from "./none.ts";
import { OpenSslCfb } from "./openssl.ts";
import { Salsa20Cipher } from "./salsa20.ts";
import { Sm4Cipher } from "./sm4.ts";
import {
  CRYPT_METHODS,
  CRYPT_METHODS_2021,
  type CryptMethod,
  type CryptSuite,
} from "./suite_types.ts";
import { TeaCipher, XteaCipher } from "./tea.ts";
import { TwofishCipher } from "./twofish.ts";
import { XorCipher } from "./xor.ts";

/** Which kcptun generation's name table to apply. */
export type CryptGeneration = "2021" | "2026";

/**
 * Which engine to use: `"auto"` (default) takes OpenSSL's libcrypto through FFI for AES when it
 * loads, else adds `node:crypto`'s native ECB for bulk AES calls (batched CFB
 * decryption and batch-parallel encryption) to the JavaScript engine; `"js"` keeps everything
 * in JavaScript. Output is identical; only speed differs (docs/crypt.md).
 */
export type AesEngine = "auto" | "js";

/**
 * The method kcptun would actually use for `name`. With `generation: "2021"`, `null` and
 * `aes-128-gcm` are unknown too and become `aes`, exactly as a 2021 binary does; by default
 * (`"2026"`) they keep their 2026 meaning.
 */
export function resolveCryptMethod(
  name: string,
  generation: CryptGeneration = "2026",
): CryptMethod {
  const table: readonly string[] = generation === "2021" ? CRYPT_METHODS_2021 : CRYPT_METHODS;
  return table.includes(name) ? name as CryptMethod : "aes";
}

/**
 * The block cipher kcptun keys for a CFB method, with the prefix of `pass` it uses, or null for
 * methods that are not CFB block ciphers.
 */
export function createBlockCipher(
  method: CryptMethod,
  pass: Uint8Array,
  engine: AesEngine = "auto",
): BlockCipher | null {
  const aes = (n: number) =>
    engine === "js" ? new AesCipher(pass.subarray(0, n)) : createAes(pass.subarray(0, n));
  switch (method) {
    case "aes":
      return aes(32);
    case "aes-128":
      return aes(16);
    case "aes-192":
      return aes(24);
    case "blowfish":
      return new BlowfishCipher(pass.subarray(0, 32));
    case "twofish":
      return new TwofishCipher(pass.subarray(0, 32));
    case "cast5":
      return new Cast5Cipher(pass.subarray(0, 16));
    case "3des":
      return new TripleDesCipher(pass.subarray(0, 24));
    case "tea":
      return new TeaCipher(pass.subarray(0, 16), 8);
    case "xtea":
      return new XteaCipher(pass.subarray(0, 16));
    case "sm4":
      return new Sm4Cipher(pass.subarray(0, 16));
    default:
      return null;
  }
}

/**
 * The whole-datagram cipher of a header method (everything but `null` and `aes-128-gcm`, which
 * have no 20-byte header; null for those).
 */
export function createDatagramCipher(
  method: CryptMethod,
  pass: Uint8Array,
  engine: AesEngine = "auto",
): DatagramCipher | null {
  switch (method) {
    case "salsa20":
      return new Salsa20Cipher(pass.subarray(0, 32));
    case "xor":
      return new XorCipher(pass);
    case "none":
      return new IdentityCipher();
    case "null":
    case "aes-128-gcm":
      return null;
    default:
      return (engine === "auto" ? OpenSslCfb.create(method, pass) : null) ??
        new Cfb(createBlockCipher(method, pass, engine)!);
  }
}

/** `null` (2026): no crypt layer at all; every datagram passes unchanged and unchecked. */
export class NullSuite implements CryptSuite {
  /** Always `null`. */
  readonly method = "null" as const;
  /** Nothing is added. */
  readonly overhead = 0;
  /** Leaves the packet as it is. */
  seal(_packet: Packet): void {}
  /** Leaves the packets as they are. */
  sealBatch(_packets: readonly Packet[], _count: number): void {}
  /** Accepts everything. */
  open(_packet: Packet): boolean {
    return true;
  }
  /** Accepts everything. */
  openBatch(_packets: readonly Packet[], count: number, ok: Uint8Array): void {
    ok.fill(1, 0, count);
  }
}

/** Options of {@link createCryptSuite}. */
export interface CryptSuiteOptions {
  /** Name table to apply (default `"2026"`: `null` and `aes-128-gcm` are honoured). */
  generation?: CryptGeneration;
  /** Nonce source (default: the process-wide pool over the OS CSPRNG). */
  nonces?: NonceSource;
  /** AES engine (default `"auto"`). */
  engine?: AesEngine;
}

/**
 * A ready {@link CryptSuite} for `-crypt name` and `-key key`. `key` is the raw `-key` string
 * (derived with PBKDF2 and cached), or an already derived 32-byte `pass` (copied). The cipher
 * itself is made when the first datagram is sealed or opened ({@link DeferredCipher}), so that
 * an idle end does not hold libcrypto or a key schedule it has not needed yet.
 *
 * @example
 * ```ts
 * import { createCryptSuite } from "./suite.ts";
 * import { PacketPool } from "../../pipeline/packet.ts";
 * const suite = createCryptSuite("aes", "it's a secrect");
 * const pool = new PacketPool();
 * const p = pool.from(new TextEncoder().encode("a KCP datagram of at least 24 bytes"));
 * suite.seal(p);
 * console.assert(suite.open(p) && new TextDecoder().decode(p.bytes()).startsWith("a KCP"));
 * ```
 */
export function createCryptSuite(
  name: string,
  key: string | Uint8Array,
  options: CryptSuiteOptions = {},
): CryptSuite {
  const method = resolveCryptMethod(name, options.generation);
  const pass = typeof key === "string" ? deriveKey(key) : key;
  if (pass.length !== KEY_LENGTH) throw new RangeError(`derived key must be ${KEY_LENGTH} bytes`);
  if (method === "null") return new NullSuite();
  if (method === "aes-128-gcm") return new AesGcmSuite(pass, options.nonces);
  const own = pass.slice();
  const cipher = new DeferredCipher(() => createDatagramCipher(method, own, options.engine)!);
  return new HeaderCryptSuite(method, cipher, options.nonces);
}
