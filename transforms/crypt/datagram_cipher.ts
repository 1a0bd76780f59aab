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

/**
 * A {@link DatagramCipher} made by `make` on its first use, then used directly. Making one can be
 * costly in memory, and idle processes should not pay for it: AES with the `auto` engine loads
 * OpenSSL's libcrypto (about 4 MiB resident), Blowfish's and the `xor` method's key schedules run
 * long enough in JavaScript to be optimised, and V8's optimising compilers then stay resident
 * (docs/performance.md, "Memory"). A server no client has reached never encrypts anything.
 */
export class DeferredCipher implements DatagramCipher {
  #make: (() => DatagramCipher) | null;
  #cipher: DatagramCipher | null = null;

  /** A cipher that calls `make` once, when first asked to encrypt or decrypt. */
  constructor(make: () => DatagramCipher) {
    this.#make = make;
  }

  /** The cipher, made now if it was not yet. */
  get cipher(): DatagramCipher {
    if (this.#cipher === null) {
      this.#cipher = this.#make!();
      this.#make = null;
    }
    return this.#cipher;
  }

  /** True once the cipher has been made. */
  get made(): boolean {
    return this.#cipher !== null;
  }

  /** Encrypts `buf[start, end)` in place. */
  encrypt(buf: Uint8Array, start: number, end: number): void {
    (this.#cipher ?? this.cipher).encrypt(buf, start, end);
  }

  /** Decrypts `buf[start, end)` in place. */
  decrypt(buf: Uint8Array, start: number, end: number): void {
    (this.#cipher ?? this.cipher).decrypt(buf, start, end);
  }

  /** The cipher's batch form where it has one, else one call per packet. */
  encryptPackets(packets: readonly Packet[], count: number): void {
    const c = this.#cipher ?? this.cipher;
    if (c.encryptPackets !== undefined) {
      c.encryptPackets(packets, count);
      return;
    }
    for (let i = 0; i < count; i++) {
      const p = packets[i];
      c.encrypt(p.buffer, p.start, p.end);
    }
  }

  /** Like {@link DeferredCipher.encryptPackets}, decrypting. */
  decryptPackets(packets: readonly Packet[], count: number): void {
    const c = this.#cipher ?? this.cipher;
    if (c.decryptPackets !== undefined) {
      c.decryptPackets(packets, count);
      return;
    }
    for (let i = 0; i < count; i++) {
      const p = packets[i];
      c.decrypt(p.buffer, p.start, p.end);
    }
  }
}
