/**
 * The crypt header every kcptun method except `null` and `aes-128-gcm` uses (docs/protocol.md §3.1):
 *
 * ```
 * [0,16)  nonce, random per datagram
 * [16,20) CRC-32/IEEE of the plaintext [20,end), u32le
 * [20,..) payload (FEC header + KCP, or KCP)
 * ```
 *
 * then the whole datagram, header included, goes through the method's {@link DatagramCipher}.
 *
 * @module
 */

import type { Packet } from "../../pipeline/packet.ts";
import { crc32 } from "./crc32.ts";
import type { DatagramCipher } from "./datagram_cipher.ts";
import { defaultNonces, type NonceSource } from "./nonce.ts";
import type { CryptMethod, CryptSuite } from "./suite_types.ts";

/** Bytes of random nonce at the start of the header. */
export const NONCE_SIZE = 16;

/** Bytes of the whole header (nonce + CRC32). */
export const CRYPT_HEADER_SIZE = 20;

/** Nonce + CRC32 header around a whole-datagram cipher. */
export class HeaderCryptSuite implements CryptSuite {
  /** The method this suite implements. */
  readonly method: CryptMethod;
  /** Always {@link CRYPT_HEADER_SIZE}. */
  readonly overhead: number = CRYPT_HEADER_SIZE;
  /** The cipher applied to whole datagrams. */
  readonly cipher: DatagramCipher;
  readonly #nonces: NonceSource;

  /** A suite for `method` over `cipher`, drawing nonces from `nonces`. */
  constructor(method: CryptMethod, cipher: DatagramCipher, nonces: NonceSource = defaultNonces) {
    this.method = method;
    this.cipher = cipher;
    this.#nonces = nonces;
  }

  /** Prepends the header to the payload and encrypts the datagram in place. */
  seal(packet: Packet): void {
    this.#frame(packet);
    this.cipher.encrypt(packet.buffer, packet.start, packet.end);
  }

  /** {@link HeaderCryptSuite.seal} for `packets[0, count)`, batched where the cipher can. */
  sealBatch(packets: readonly Packet[], count: number): void {
    for (let i = 0; i < count; i++) this.#frame(packets[i]);
    const c = this.cipher;
    if (c.encryptPackets !== undefined) {
      c.encryptPackets(packets, count);
    } else {
      for (let i = 0; i < count; i++) {
        const p = packets[i];
        c.encrypt(p.buffer, p.start, p.end);
      }
    }
  }

  /**
   * Decrypts in place and checks the CRC. On success strips the header and returns true; on
   * failure (too short, or CRC mismatch) returns false and the packet's bytes are garbage.
   */
  open(packet: Packet): boolean {
    if (packet.end - packet.start < CRYPT_HEADER_SIZE) return false;
    this.cipher.decrypt(packet.buffer, packet.start, packet.end);
    return this.#check(packet);
  }

  /** {@link HeaderCryptSuite.open} for `packets[0, count)`; `ok[i]` = 1 when packet i opened. */
  openBatch(packets: readonly Packet[], count: number, ok: Uint8Array): void {
    const c = this.cipher;
    if (c.decryptPackets !== undefined) {
      c.decryptPackets(packets, count);
    } else {
      for (let i = 0; i < count; i++) {
        const p = packets[i];
        c.decrypt(p.buffer, p.start, p.end);
      }
    }
    for (let i = 0; i < count; i++) ok[i] = this.#check(packets[i]) ? 1 : 0;
  }

  /** After decryption: compares the CRC and strips the header. */
  #check(packet: Packet): boolean {
    const start = packet.start, end = packet.end;
    if (end - start < CRYPT_HEADER_SIZE) return false;
    const buf = packet.buffer;
    const stored = (buf[start + 16] | (buf[start + 17] << 8) | (buf[start + 18] << 16) |
      (buf[start + 19] << 24)) >>> 0;
    if (crc32(buf, start + CRYPT_HEADER_SIZE, end) !== stored) return false;
    packet.start = start + CRYPT_HEADER_SIZE;
    return true;
  }

  /** Makes room for the header, fills the nonce and the CRC of the payload. */
  #frame(packet: Packet): void {
    const at = packet.prepend(CRYPT_HEADER_SIZE);
    const buf = packet.buffer;
    this.#nonces.write(buf, at, NONCE_SIZE);
    const c = crc32(buf, at + CRYPT_HEADER_SIZE, packet.end);
    buf[at + 16] = c;
    buf[at + 17] = c >>> 8;
    buf[at + 18] = c >>> 16;
    buf[at + 19] = c >>> 24;
  }
}
