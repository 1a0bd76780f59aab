/**
 * What the server's endpoint accepts as KCP before it opens a session: the per-session stages'
 * `peek` (FEC's: a data shard's KCP bytes, nothing in a parity shard) and then `datagramConv`
 * (well-formed KCP). Every datagram real kcptun binaries sent (captures, `-crypt none`/`null`,
 * with and without FEC) must pass; junk must not.
 */

import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { loadCapture } from "../support/captures.ts";
import { Packet, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { type KcpLocator, locatorFor } from "../../runtime/endpoint.ts";
import { createCryptSuite } from "../../transforms/crypt/suite.ts";
import { FecStage } from "../../transforms/fec/stage.ts";
import { datagramConv, KcpCmd, writeSegmentHeader } from "../../transforms/kcp/wire.ts";

/** What the endpoint makes of a datagram. */
const Peek = { Kcp: "kcp", Parity: "parity", Invalid: "invalid" } as const;
type PeekKind = typeof Peek[keyof typeof Peek];
interface PeekedSegment {
  conv: number;
  sn: number;
}

const LOCATORS: Record<"kcp" | "fec", KcpLocator> = {
  kcp: locatorFor([])!,
  fec: locatorFor([
    new FecStage({ dataShards: 10, parityShards: 3 }, {
      role: "server",
      pool: new PacketPool(),
      snmp: new Snmp(),
      log: () => {},
    }),
  ])!,
};

function peekDatagram(
  b: Uint8Array,
  start: number,
  end: number,
  locator: "kcp" | "fec",
  into: PeekedSegment,
): PeekKind {
  const range = { start, end };
  if (!LOCATORS[locator](b, range)) return Peek.Parity;
  const first = { sn: -1 };
  const conv = datagramConv(b, range.start, range.end, first);
  if (conv < 0) return Peek.Invalid;
  into.conv = conv;
  into.sn = first.sn;
  return Peek.Kcp;
}

function segment(conv: number, cmd: number, sn: number, payload = 0): Uint8Array {
  const b = new Uint8Array(24 + payload).fill(0xab);
  writeSegmentHeader(b, 0, conv, cmd, 0, 128, 1000, sn, 0, payload);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function dataShard(inner: Uint8Array, size = inner.length + 2): Uint8Array {
  const b = new Uint8Array(8 + inner.length);
  b.set([7, 0, 0, 0, 0xf1, 0, size & 0xff, size >> 8]);
  b.set(inner, 8);
  return b;
}

const seg = (): PeekedSegment => ({ conv: -1, sn: -1 });

function peek(b: Uint8Array, locator: "kcp" | "fec", into = seg()) {
  return peekDatagram(b, 0, b.length, locator, into);
}

Deno.test("admission: well-formed KCP gives the first segment's conv and sn", () => {
  const d = concat(segment(0xc9d90d82, KcpCmd.Ack, 5), segment(0xc9d90d82, KcpCmd.Push, 9, 100));
  for (const locator of ["kcp", "fec"] as const) {
    const into = seg();
    assertEquals(peek(d, locator, into), Peek.Kcp);
    assertEquals(into, { conv: 0xc9d90d82, sn: 5 });
  }
  // KCP ignores fewer than 24 trailing bytes, and so does the check.
  assertEquals(peek(concat(d, new Uint8Array(23)), "kcp"), Peek.Kcp);
  assertEquals(datagramConv(d, 0, d.length, { sn: 0 }), 0xc9d90d82);
});

Deno.test("admission: not KCP: bad command, length past the end, mixed convs, 24 bytes of junk after", () => {
  const bad = segment(1, 80, 0);
  assertEquals(peek(bad, "kcp"), Peek.Invalid);
  assertEquals(peek(segment(1, 85, 0), "kcp"), Peek.Invalid);
  const long = segment(1, KcpCmd.Push, 0, 10);
  assertEquals(peek(long.subarray(0, 33), "kcp"), Peek.Invalid);
  assertEquals(
    peek(concat(segment(1, KcpCmd.Ack, 0), segment(2, KcpCmd.Ack, 0)), "kcp"),
    Peek.Invalid,
  );
  assertEquals(peek(concat(segment(1, KcpCmd.Ack, 0), new Uint8Array(24)), "kcp"), Peek.Invalid);
  assertEquals(peek(new Uint8Array(23), "kcp"), Peek.Invalid);
});

Deno.test("admission: FEC data shards are checked inside, parity shards carry no conv", () => {
  const inner = segment(42, KcpCmd.Push, 0, 16);
  const into = seg();
  assertEquals(peek(dataShard(inner), "fec", into), Peek.Kcp);
  assertEquals(into.conv, 42);
  assertEquals(peek(dataShard(new Uint8Array(40).fill(9)), "fec"), Peek.Invalid);
  // size must count itself (≥ 2) and stay within the datagram (else FEC's peek finds no KCP
  // bytes: no session, and a known session's FEC drops and counts it); KCP ends where size says.
  assertEquals(peek(dataShard(inner, 1), "fec"), Peek.Parity);
  assertEquals(peek(dataShard(inner, inner.length + 3), "fec"), Peek.Parity);
  assertEquals(
    peek(dataShard(concat(inner, new Uint8Array(30)), inner.length + 2), "fec"),
    Peek.Kcp,
  );
  const parity = new Uint8Array(60).fill(3);
  parity.set([8, 0, 0, 0, 0xf2, 0]);
  assertEquals(peek(parity, "fec"), Peek.Parity);
  // With no FEC stage the same bytes are just junk.
  assertEquals(peek(parity, "kcp"), Peek.Invalid);
  assertEquals(peek(dataShard(inner), "kcp"), Peek.Invalid);
});

Deno.test("admission: every datagram kcptun sent in the captures passes", () => {
  const files: Array<[string, number, "kcp" | "fec"]> = [
    ["old_comp.jsonl", 20, "kcp"],
    ["old_fec.jsonl", 20, "fec"],
    ["new_none.jsonl", 20, "kcp"],
    ["new_null.jsonl", 0, "kcp"],
    ["new_ka.jsonl", 0, "kcp"],
    ["new_fecdrop.jsonl", 20, "fec"],
    ["new_fecgap.jsonl", 20, "fec"],
    ["rec_none_fec.jsonl", 20, "fec"],
  ];
  for (const [file, header, locator] of files) {
    const convs = new Set<number>();
    let kcp = 0, parity = 0;
    for (const d of loadCapture(file)) {
      const into = seg();
      const kind = peekDatagram(d.bytes, header, d.bytes.length, locator, into);
      assert(kind === Peek.Kcp || kind === Peek.Parity, `${file} ${d.dir} #${d.i}: ${kind}`);
      if (kind === Peek.Kcp) {
        kcp++;
        convs.add(into.conv);
      } else parity++;
    }
    assert(kcp > 0, file);
    assertEquals(convs.size, 1, `${file}: one conversation`);
    if (locator === "kcp") assertEquals(parity, 0, file);
  }
});

Deno.test("admission: every datagram in the encrypted captures passes once decrypted", () => {
  const files: Array<[string, string, "kcp" | "fec"]> = [
    ["old_fec10.jsonl", "aes", "fec"],
    ["new_fec10.jsonl", "aes", "fec"],
    ["rec_aes_fec.jsonl", "aes", "fec"],
    ["new_aes-128-gcm.jsonl", "aes-128-gcm", "kcp"],
    ["new_qpp.jsonl", "null", "kcp"],
  ];
  for (const [file, crypt, locator] of files) {
    const suite = createCryptSuite(crypt, "test");
    for (const d of loadCapture(file)) {
      const p = new Packet(new Uint8Array(2048), 64).set(d.bytes, 64);
      assert(suite.open(p), `${file} ${d.dir} #${d.i} decrypts`);
      const kind = peekDatagram(p.buffer, p.start, p.end, locator, seg());
      assert(kind === Peek.Kcp || kind === Peek.Parity, `${file} ${d.dir} #${d.i}: ${kind}`);
    }
  }
});

Deno.test("admission: random junk is not KCP (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 24, maxLength: 1500 }), (b) => {
      // Junk is KCP only if every header happens to be right: 4/256 commands, a len that fits.
      const k = peek(b, "kcp");
      const f = peek(b, "fec");
      return k !== Peek.Kcp && f !== Peek.Kcp;
    }),
    { numRuns: 5000, seed: 11 },
  );
});
