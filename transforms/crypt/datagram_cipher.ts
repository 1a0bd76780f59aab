/**
 * What the crypt layer needs from a cipher: transform a whole datagram in place.
 *
 * @module
 */

import type { Packet } from "../../pipeline/packet.ts";

/** A keyed, length-preserving transformation of whole datagrams (both directions). */
export interface DatagramCipher {
  /** Encrypts `buf[start, end)` in place. */
  encrypt(buf: Uint8Array, start: number, end: number): void;
  /** Decrypts `buf[start, end)` in place. */
  decrypt(buf: Uint8Array, start: number, end: number): void;
  /**
   * Optional batch form of {@link DatagramCipher.encrypt} over the payloads of
   * `packets[0, count)`, for ciphers that are faster across packets than one by one.
   */
  encryptPackets?(packets: readonly Packet[], count: number): void;
  /** Optional batch form of {@link DatagramCipher.decrypt}, like `encryptPackets`. */
  decryptPackets?(packets: readonly Packet[], count: number): void;
}
