/**
 * CFB mode as kcp-go uses it for every block cipher (docs/protocol.md §3.2): full-block feedback,
 * a fixed IV, a trailing partial block XORed with the head of the next keystream block, over the
 * whole datagram (nonce and CRC included). The per-datagram randomness is the nonce, which is
 * the first plaintext block.
 *
 * Keystream block i is E(IV) for i = 0 and E(C[i-1]) after that. Hence:
 * - decryption knows every keystream input up front (they are the received ciphertext blocks),
 *   so a cipher with a bulk ECB form decrypts a datagram with one call;
 * - encryption is serial within a datagram, but the datagrams of a batch are independent, so
 *   round j encrypts block j-1 of every datagram at once (one bulk call per block index);
 * - E(IV) is the same for every datagram and is computed once per key.
 *
 * Only the forward cipher is ever used, in both directions.
 *
 * @module
 */

import type { Packet } from "../../pipeline/packet.ts";
import { type BlockCipher, readBE, writeBE } from "./block_cipher.ts";
import type { DatagramCipher } from "./datagram_cipher.ts";

/** kcp-go's fixed CFB IV; 8-byte block ciphers use its first 8 bytes. */
export const KCP_IV: Readonly<Uint8Array> = Uint8Array.of(
  0xa7,
  0x73,
  0x4f,
  0x9c,
  0x12,
  0xac,
  0x1b,
  0x01,
  0xa4,
  0x15,
  0xf2,
  0xc1,
  0xfc,
  0x78,
  0xe6,
  0x6b,
);

/**
 * Largest gather for one bulk call in batched decryption. Fewer calls save the per-call cost of
 * `node:crypto` (which allocates twice per call); much larger buffers made the allocations
 * themselves slow in our measurements (docs/crypt.md).
 */
export const BULK_CHUNK = 8192;

/** CFB over any {@link BlockCipher}, fixed IV, in place. */
export class Cfb implements DatagramCipher {
  /** The underlying block cipher. */
  readonly cipher: BlockCipher;
  readonly #b: number;
  /** E(IV) as words. */
  readonly #k0 = new Int32Array(4);
  /** Feedback/keystream register. */
  readonly #st = new Int32Array(4);
  /** [0, b) holds E(IV) as bytes for good; the rest is keystream scratch for bulk decryption. */
  #ks: Uint8Array;
  #row = new Uint8Array(0);
  #gather = new Uint8Array(0);
  #order = new Int32Array(0);
  #blocks = new Int32Array(0);

  /** CFB over `cipher` with `iv` (default {@link KCP_IV}; only its first block is used). */
  constructor(cipher: BlockCipher, iv: Uint8Array = KCP_IV) {
    this.cipher = cipher;
    const b = cipher.blockSize;
    this.#b = b;
    this.#ks = new Uint8Array(2048 + b);
    const k0 = this.#k0;
    for (let w = 0; w < b >>> 2; w++) k0[w] = readBE(iv, 4 * w);
    cipher.encryptWords(k0);
    for (let w = 0; w < b >>> 2; w++) writeBE(this.#ks, 4 * w, k0[w]);
  }

  /** Encrypts `buf[start, end)` in place. */
  encrypt(buf: Uint8Array, start: number, end: number): void {
    const c = this.cipher;
    const st = this.#st;
    st.set(this.#k0);
    let off = start;
    if (this.#b === 16) {
      while (end - off >= 16) {
        const v0 = readBE(buf, off) ^ st[0];
        const v1 = readBE(buf, off + 4) ^ st[1];
        const v2 = readBE(buf, off + 8) ^ st[2];
        const v3 = readBE(buf, off + 12) ^ st[3];
        writeBE(buf, off, v0);
        writeBE(buf, off + 4, v1);
        writeBE(buf, off + 8, v2);
        writeBE(buf, off + 12, v3);
        off += 16;
        if (off === end) return;
        st[0] = v0;
        st[1] = v1;
        st[2] = v2;
        st[3] = v3;
        c.encryptWords(st);
      }
    } else {
      while (end - off >= 8) {
        const v0 = readBE(buf, off) ^ st[0];
        const v1 = readBE(buf, off + 4) ^ st[1];
        writeBE(buf, off, v0);
        writeBE(buf, off + 4, v1);
        off += 8;
        if (off === end) return;
        st[0] = v0;
        st[1] = v1;
        c.encryptWords(st);
      }
    }
    xorTail(buf, off, end, st);
  }

  /** Decrypts `buf[start, end)` in place. */
  decrypt(buf: Uint8Array, start: number, end: number): void {
    const len = end - start;
    if (len <= 0) return;
    const b = this.#b;
    const c = this.cipher;
    const feed = Math.ceil(len / b) - 1; // ciphertext blocks that feed a keystream block
    if (c.encryptBlocks !== undefined && feed >= (c.bulkThreshold ?? 1)) {
      if (this.#ks.length < len + b) this.#growKeystream(len + b);
      const ks = this.#ks;
      c.encryptBlocks(buf, start, ks, b, feed);
      for (let i = 0; i < len; i++) buf[start + i] ^= ks[i];
      return;
    }
    const st = this.#st;
    st.set(this.#k0);
    let off = start;
    if (b === 16) {
      while (end - off >= 16) {
        const c0 = readBE(buf, off);
        const c1 = readBE(buf, off + 4);
        const c2 = readBE(buf, off + 8);
        const c3 = readBE(buf, off + 12);
        writeBE(buf, off, c0 ^ st[0]);
        writeBE(buf, off + 4, c1 ^ st[1]);
        writeBE(buf, off + 8, c2 ^ st[2]);
        writeBE(buf, off + 12, c3 ^ st[3]);
        off += 16;
        if (off === end) return;
        st[0] = c0;
        st[1] = c1;
        st[2] = c2;
        st[3] = c3;
        c.encryptWords(st);
      }
    } else {
      while (end - off >= 8) {
        const c0 = readBE(buf, off);
        const c1 = readBE(buf, off + 4);
        writeBE(buf, off, c0 ^ st[0]);
        writeBE(buf, off + 4, c1 ^ st[1]);
        off += 8;
        if (off === end) return;
        st[0] = c0;
        st[1] = c1;
        c.encryptWords(st);
      }
    }
    xorTail(buf, off, end, st);
  }

  /**
   * Encrypts the payloads of `packets[0, count)` in place. With a bulk-capable cipher and
   * several packets, works round by round: round j encrypts the previous ciphertext block of
   * every packet still that long in one bulk call.
   */
  encryptPackets(packets: readonly Packet[], count: number): void {
    const c = this.cipher;
    const threshold = c.bulkThreshold ?? 1;
    if (c.encryptBlocks === undefined || count < threshold) {
      for (let i = 0; i < count; i++) {
        const p = packets[i];
        this.encrypt(p.buffer, p.start, p.end);
      }
      return;
    }
    const b = this.#b;
    if (this.#order.length < count) {
      this.#order = new Int32Array(count * 2);
      this.#blocks = new Int32Array(count * 2);
      this.#row = new Uint8Array(count * 2 * b);
    }
    const order = this.#order;
    const blocks = this.#blocks;
    const row = this.#row;
    // Longest first, so that the packets still active in round j are a prefix of `order`.
    for (let i = 0; i < count; i++) {
      const nb = Math.ceil(packets[i].length / b);
      let j = i;
      while (j > 0 && blocks[j - 1] < nb) {
        blocks[j] = blocks[j - 1];
        order[j] = order[j - 1];
        j--;
      }
      blocks[j] = nb;
      order[j] = i;
    }
    const k0 = this.#ks;
    let active = count;
    for (let round = 0;; round++) {
      while (active > 0 && blocks[active - 1] <= round) active--;
      if (active === 0) return;
      if (round > 0) {
        if (active >= threshold) c.encryptBlocks(row, 0, row, 0, active);
        else for (let s = 0; s < active; s++) this.#encryptInPlace(row, s * b);
      }
      for (let s = 0; s < active; s++) {
        const p = packets[order[s]];
        const buf = p.buffer;
        const off = p.start + round * b;
        const n = Math.min(b, p.end - off);
        const r = s * b;
        if (round === 0) {
          for (let j = 0; j < n; j++) row[r + j] = buf[off + j] ^= k0[j];
        } else {
          for (let j = 0; j < n; j++) row[r + j] = buf[off + j] ^= row[r + j];
        }
      }
    }
  }

  /**
   * Decrypts the payloads of `packets[0, count)` in place. With a bulk-capable cipher, the
   * ciphertext blocks that feed the keystream of several packets are gathered into one buffer
   * (up to {@link BULK_CHUNK} bytes) and encrypted with one bulk call, so the per-call cost is
   * paid a few times per batch rather than once per packet.
   */
  decryptPackets(packets: readonly Packet[], count: number): void {
    const c = this.cipher;
    const b = this.#b;
    let total = 0, longest = 0;
    for (let i = 0; i < count; i++) {
      const len = packets[i].end - packets[i].start;
      if (len > b) total += Math.ceil(len / b) - 1;
      if (len > longest) longest = len;
    }
    if (c.encryptBlocks === undefined || total < (c.bulkThreshold ?? 1)) {
      this.#decryptEach(packets, count);
      return;
    }
    if (this.#gather.length < BULK_CHUNK + longest) {
      this.#gather = new Uint8Array(BULK_CHUNK + longest);
    }
    const g = this.#gather;
    const k0 = this.#ks;
    let first = 0;
    while (first < count) {
      let at = 0, last = first;
      while (last < count && at < BULK_CHUNK) {
        const p = packets[last++];
        const len = p.end - p.start;
        if (len <= b) continue;
        const n = (Math.ceil(len / b) - 1) * b;
        g.set(p.buffer.subarray(p.start, p.start + n), at);
        at += n;
      }
      if (at > 0) c.encryptBlocks(g, 0, g, 0, at / b);
      at = 0;
      for (let i = first; i < last; i++) {
        const p = packets[i];
        const buf = p.buffer;
        const s = p.start;
        const len = p.end - s;
        const head = Math.min(b, len);
        for (let j = 0; j < head; j++) buf[s + j] ^= k0[j];
        if (len <= b) continue;
        for (let j = b; j < len; j++) buf[s + j] ^= g[at + j - b];
        at += (Math.ceil(len / b) - 1) * b;
      }
      first = last;
    }
  }

  /** Encrypts the block at `buf[off, off+b)` in place through the single-block engine. */
  #encryptInPlace(buf: Uint8Array, off: number): void {
    const st = this.#st;
    const words = this.#b >>> 2;
    for (let w = 0; w < words; w++) st[w] = readBE(buf, off + 4 * w);
    this.cipher.encryptWords(st);
    for (let w = 0; w < words; w++) writeBE(buf, off + 4 * w, st[w]);
  }

  #decryptEach(packets: readonly Packet[], count: number): void {
    for (let i = 0; i < count; i++) {
      const p = packets[i];
      this.decrypt(p.buffer, p.start, p.end);
    }
  }

  #growKeystream(n: number): void {
    const ks = new Uint8Array(n);
    ks.set(this.#ks.subarray(0, this.#b));
    this.#ks = ks;
  }
}

/** XORs `buf[off, end)` (shorter than a block) with the leading bytes of the register. */
function xorTail(buf: Uint8Array, off: number, end: number, st: Int32Array): void {
  for (let j = 0; off + j < end; j++) {
    buf[off + j] ^= st[j >>> 2] >>> (24 - ((j & 3) << 3));
  }
}
