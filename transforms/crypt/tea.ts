/**
 * TEA and XTEA (Wheeler & Needham), 64-bit blocks, 128-bit keys, big-endian words.
 *
 * kcp-go builds TEA with Go's `tea.NewCipherWithRounds(key, 16)`: Go counts a "round" as one
 * half of the (v0, v1) update, so kcptun's TEA runs **8 cycles**, not the standard 32. XTEA is
 * the standard 32 cycles.
 *
 * @module
 */

import { type BlockCipher, readBE } from "./block_cipher.ts";

const DELTA = 0x9e3779b9 | 0;

/** TEA with a configurable number of cycles (two Feistel rounds each). */
export class TeaCipher implements BlockCipher {
  /** Always 8. */
  readonly blockSize = 8 as const;
  readonly #k0: number;
  readonly #k1: number;
  readonly #k2: number;
  readonly #k3: number;
  readonly #cycles: number;

  /**
   * `key` is 16 bytes. `cycles` defaults to 8, what kcptun uses (Go: 16 rounds); the original
   * TEA is 32 cycles.
   */
  constructor(key: Uint8Array, cycles = 8) {
    if (key.length !== 16) throw new RangeError("TEA key must be 16 bytes");
    this.#k0 = readBE(key, 0);
    this.#k1 = readBE(key, 4);
    this.#k2 = readBE(key, 8);
    this.#k3 = readBE(key, 12);
    this.#cycles = cycles;
  }

  /** Encrypts the block `state[0..2)` in place. */
  encryptWords(state: Int32Array): void {
    const k0 = this.#k0, k1 = this.#k1, k2 = this.#k2, k3 = this.#k3;
    let v0 = state[0], v1 = state[1], sum = 0;
    for (let i = 0; i < this.#cycles; i++) {
      sum = (sum + DELTA) | 0;
      v0 = (v0 + ((((v1 << 4) + k0) | 0) ^ ((v1 + sum) | 0) ^ (((v1 >>> 5) + k1) | 0))) | 0;
      v1 = (v1 + ((((v0 << 4) + k2) | 0) ^ ((v0 + sum) | 0) ^ (((v0 >>> 5) + k3) | 0))) | 0;
    }
    state[0] = v0;
    state[1] = v1;
  }
}

/** XTEA, 32 cycles. */
export class XteaCipher implements BlockCipher {
  /** Always 8. */
  readonly blockSize = 8 as const;
  /** Per half-round `sum + key[...]`, precomputed (64 entries). */
  readonly #table = new Int32Array(64);

  /** `key` is 16 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new RangeError("XTEA key must be 16 bytes");
    const k = [readBE(key, 0), readBE(key, 4), readBE(key, 8), readBE(key, 12)];
    let sum = 0;
    for (let i = 0; i < 32; i++) {
      this.#table[2 * i] = (sum + k[sum & 3]) | 0;
      sum = (sum + DELTA) | 0;
      this.#table[2 * i + 1] = (sum + k[(sum >>> 11) & 3]) | 0;
    }
  }

  /** Encrypts the block `state[0..2)` in place. */
  encryptWords(state: Int32Array): void {
    const t = this.#table;
    let v0 = state[0], v1 = state[1];
    for (let i = 0; i < 64; i += 2) {
      v0 = (v0 + (((((v1 << 4) ^ (v1 >>> 5)) + v1) | 0) ^ t[i])) | 0;
      v1 = (v1 + (((((v0 << 4) ^ (v0 >>> 5)) + v0) | 0) ^ t[i + 1])) | 0;
    }
    state[0] = v0;
    state[1] = v1;
  }
}
