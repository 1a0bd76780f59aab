/**
 * Packet encryption throughput: every cipher alone, encrypt and decrypt, on batches of 32
 * datagrams of 1350 bytes (43 200 bytes per iteration), plus the whole seal/open path (nonce,
 * CRC, cipher) and the engines we chose between for AES.
 *
 *   deno bench -A bench/crypt_bench.ts                 # Deno.bench, time per batch
 *   deno run -A bench/crypt_bench.ts --table [--ms 100] [--rounds 5] [--only aes]
 *                                                      # MB/s table (what docs/crypt.md quotes)
 *
 * MB/s = 43 200 bytes / time per batch. One core; numbers from a shared machine are provisional.
 *
 * @module
 */

import { cfb as nobleCfb } from "@noble/ciphers/aes.js";
import { salsa20 as nobleSalsa20 } from "@noble/ciphers/salsa.js";
import { type Packet, PacketPool } from "../pipeline/packet.ts";
import { AesCipher, createAes } from "../transforms/crypt/aes.ts";
import { Cfb, KCP_IV } from "../transforms/crypt/cfb.ts";
import { crc32 } from "../transforms/crypt/crc32.ts";
import type { DatagramCipher } from "../transforms/crypt/datagram_cipher.ts";
import { deriveKey } from "../transforms/crypt/key.ts";
import { NonceSource } from "../transforms/crypt/nonce.ts";
import { createCryptSuite, createDatagramCipher } from "../transforms/crypt/suite.ts";
import { CRYPT_METHODS_2021, type CryptSuite } from "../transforms/crypt/suite_types.ts";

const PACKET = 1350;
const BATCH = 32;
const BYTES = PACKET * BATCH;

const pool = new PacketPool();
const pass = deriveKey("bench");
const packets: Packet[] = [];
for (let i = 0; i < BATCH; i++) {
  const p = pool.acquire();
  p.end = p.start + PACKET;
  crypto.getRandomValues(p.bytes());
  packets.push(p);
}

function encryptBatch(c: DatagramCipher): () => void {
  if (c.encryptPackets !== undefined) return () => c.encryptPackets!(packets, BATCH);
  return () => {
    for (const p of packets) c.encrypt(p.buffer, p.start, p.end);
  };
}

function decryptBatch(c: DatagramCipher): () => void {
  if (c.decryptPackets !== undefined) return () => c.decryptPackets!(packets, BATCH);
  return () => {
    for (const p of packets) c.decrypt(p.buffer, p.start, p.end);
  };
}

/** Payloads of PACKET - overhead bytes, sealed and opened back each iteration. */
function sealOpen(suite: CryptSuite): [() => void, () => void] {
  const payload = PACKET - suite.overhead;
  const headroom = pool.headroom;
  const seal = () => {
    for (const p of packets) {
      p.start = headroom;
      p.end = headroom + payload;
    }
    suite.sealBatch(packets, BATCH);
  };
  const ok = new Uint8Array(BATCH);
  const open = () => {
    seal();
    suite.openBatch(packets, BATCH, ok);
  };
  return [seal, open];
}

/** Name → one batch's work. */
const cases: [string, () => void][] = [];

for (const m of CRYPT_METHODS_2021) {
  const c = createDatagramCipher(m, pass)!;
  cases.push([`${m} encrypt`, encryptBatch(c)]);
  cases.push([`${m} decrypt`, decryptBatch(c)]);
}

// The AES engines we chose between (see docs/crypt.md).
const aesJs = new Cfb(new AesCipher(pass));
cases.push(["aes encrypt, JS engine only", encryptBatch(aesJs)]);
cases.push(["aes decrypt, JS engine only", () => {
  for (const p of packets) aesJs.decrypt(p.buffer, p.start, p.end);
}]);
// The node:crypto engine (the default where libcrypto cannot be loaded).
const aesNode = new Cfb(createAes(pass));
cases.push(["aes encrypt, node:crypto ECB engine", encryptBatch(aesNode)]);
cases.push(["aes decrypt, node:crypto ECB engine", decryptBatch(aesNode)]);
cases.push(["aes encrypt, @noble/ciphers cfb", () => {
  for (const p of packets) nobleCfb(pass, KCP_IV.slice()).encrypt(p.bytes());
}]);
cases.push(["salsa20, @noble/ciphers salsa20", () => {
  for (const p of packets) {
    const b = p.bytes();
    nobleSalsa20(pass, b.subarray(0, 8), b.subarray(8), b.subarray(8));
  }
}]);

// Whole path: nonce + CRC + cipher (+ check on open).
for (const m of ["aes", "salsa20", "none", "aes-128-gcm"]) {
  const [seal, open] = sealOpen(createCryptSuite(m, pass));
  cases.push([`${m} seal (nonce+crc+encrypt)`, seal]);
  cases.push([`${m} seal+open`, open]);
}
cases.push(["crc32 only", () => {
  for (const p of packets) crc32(p.buffer, p.start, p.end);
}]);
const nonces = new NonceSource();
cases.push(["nonces only (16 B each)", () => {
  for (const p of packets) nonces.write(p.buffer, p.start, 16);
}]);

if (Deno.args.includes("--table")) {
  const arg = (name: string, dflt: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
  };
  const budget = arg("--ms", 100), rounds = arg("--rounds", 5);
  const filter = Deno.args.includes("--only") ? Deno.args[Deno.args.indexOf("--only") + 1] : "";
  const selected = cases.filter(([name]) => name.includes(filter));
  console.log(
    `batches of ${BATCH} × ${PACKET} B; ${rounds} interleaved rounds of ~${budget} ms per case;` +
      " MB/s (10^6 B/s), median and best round",
  );
  const results: number[][] = selected.map(() => []);
  for (let r = 0; r < rounds; r++) {
    selected.forEach(([, run], k) => {
      for (let w = 0; w < 5; w++) run();
      let n = 0;
      const t0 = performance.now();
      let t = t0;
      while (t - t0 < budget) {
        run();
        n++;
        t = performance.now();
      }
      results[k].push((BYTES * n) / ((t - t0) / 1000) / 1e6);
    });
  }
  selected.forEach(([name], k) => {
    const s = results[k].sort((x, y) => x - y);
    const median = s[s.length >> 1], best = s[s.length - 1];
    console.log(
      `${name.padEnd(40)} ${median.toFixed(0).padStart(8)} ${best.toFixed(0).padStart(8)}`,
    );
  });
} else {
  for (const [name, run] of cases) {
    Deno.bench({ name: `${name} (${BYTES} B)`, group: name.split(" ")[0], fn: run });
  }
}
