/**
 * Test helpers for the FEC captures: undo kcptun's AES-256-CFB (key `test`) and the 20-byte
 * crypt header, then split the FEC datagrams by kind. Decryption is done here with node:crypto's
 * AES-ECB (Deno's node:crypto has no CFB mode): CFB decryption is P_i = C_i ⊕ E(C_{i-1}), C_{-1} = IV,
 * so one ECB pass over IV ‖ C does every block.
 */

import { createCipheriv, pbkdf2Sync } from "node:crypto";
import { type CapturedDatagram, fromHex, loadCapture } from "../support/captures.ts";

const KEY = pbkdf2Sync("test", "kcp-go", 4096, 32, "sha1");
const IV = fromHex("a7734f9c12ac1b01a415f2c1fc78e66b");

/** Decrypts one kcptun AES-256 datagram (whole-datagram CFB with the fixed IV). */
export function decryptAes256Cfb(data: Uint8Array): Uint8Array {
  const blocks = Math.ceil(data.length / 16);
  const input = new Uint8Array(blocks * 16);
  input.set(IV, 0);
  input.set(data.subarray(0, (blocks - 1) * 16), 16);
  const ecb = createCipheriv("aes-256-ecb", KEY, null);
  ecb.setAutoPadding(false);
  const ks = new Uint8Array(ecb.update(input));
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ ks[i];
  return out;
}

/** One FEC datagram of a capture, crypt header removed. */
export interface FecDatagram {
  /** The original capture record. */
  readonly record: CapturedDatagram;
  /** seqid. */
  readonly seqid: number;
  /** True for 0xF1, false for 0xF2. */
  readonly isData: boolean;
  /** FEC header and body. */
  readonly bytes: Uint8Array;
}

/**
 * Loads `name` and returns the FEC datagrams of direction `dir` in capture order, decrypted when
 * `aes` is true; the 20-byte crypt header (nonce + CRC) is skipped.
 */
export function loadFecCapture(name: string, dir: "C2S" | "S2C", aes: boolean): FecDatagram[] {
  const out: FecDatagram[] = [];
  for (const rec of loadCapture(name)) {
    if (rec.dir !== dir) continue;
    const plain = aes ? decryptAes256Cfb(rec.bytes) : rec.bytes;
    const bytes = plain.subarray(20);
    const flag = bytes[4] | (bytes[5] << 8);
    if (flag !== 0xf1 && flag !== 0xf2) throw new Error(`${name}: datagram ${rec.i} is not FEC`);
    const seqid = (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0;
    out.push({ record: rec, seqid, isData: flag === 0xf1, bytes });
  }
  return out;
}
