import {
  captureFilter,
  dropAll,
  eitherPortFilter,
  encodeProgram,
  noPayload,
  runFilter,
} from "../../transports/faketcp/bpf.ts";
import { TCP_HEADER, writeTcpHeader } from "../../transports/faketcp/segment.ts";
import { assert, assertEquals } from "../support/assert.ts";

function tcp(src: number, dst: number, payload = 0, doff = 5): Uint8Array {
  const b = new Uint8Array(doff * 4 + payload);
  writeTcpHeader(b, 0, src, dst, 1, 2, 0x18, 0x8000);
  b[12] = doff << 4;
  return b;
}

/** An IPv4 packet around `segment`, with `ihl` words of IP header. */
function ipv4(segment: Uint8Array, ihl = 5): Uint8Array {
  const b = new Uint8Array(ihl * 4 + segment.length);
  b[0] = 0x40 | ihl;
  b[9] = 6;
  b.set(segment, ihl * 4);
  return b;
}

Deno.test("faketcp bpf: a listener's capture filter keeps its port only (IPv4, with and without options)", () => {
  const f = captureFilter(true, 29900);
  assert(runFilter(f, ipv4(tcp(40000, 29900))) > 0);
  assert(runFilter(f, ipv4(tcp(40000, 29900, 100), 15)) > 0, "IHL 15");
  assertEquals(runFilter(f, ipv4(tcp(29900, 40000))), 0, "its own port as source");
  assertEquals(runFilter(f, ipv4(tcp(40000, 29901))), 0);
  assertEquals(runFilter(f, new Uint8Array(21).fill(0x45)), 0, "truncated");
});

Deno.test("faketcp bpf: a dialler's capture filter needs both ports (IPv6 starts at TCP)", () => {
  const f = captureFilter(false, 40000, 29900);
  assert(runFilter(f, tcp(29900, 40000, 10)) > 0);
  assertEquals(runFilter(f, tcp(29901, 40000)), 0, "other source port");
  assertEquals(runFilter(f, tcp(29900, 40001)), 0, "other destination port");
  assertEquals(runFilter(f, ipv4(tcp(29900, 40000))), 0, "an IPv4 layout is not read as TCP");
  const v4 = captureFilter(true, 40000, 29900);
  assert(runFilter(v4, ipv4(tcp(29900, 40000))) > 0);
  assertEquals(runFilter(v4, ipv4(tcp(29901, 40000))), 0);
});

Deno.test("faketcp bpf: the recording filter keeps a port at either end", () => {
  for (const v4 of [true, false]) {
    const f = eitherPortFilter(v4, 29900);
    const wrap = (seg: Uint8Array) => v4 ? ipv4(seg, 6) : seg;
    assert(runFilter(f, wrap(tcp(29900, 40000))) > 0);
    assert(runFilter(f, wrap(tcp(40000, 29900))) > 0);
    assertEquals(runFilter(f, wrap(tcp(40000, 40001))), 0);
  }
});

Deno.test("faketcp bpf: the kernel-socket filters keep the handshake and drop data", () => {
  const np = noPayload();
  assert(runFilter(np, tcp(1, 2)) > 0, "bare header");
  assert(runFilter(np, tcp(1, 2, 0, 8)) > 0, "header with options, no data");
  assertEquals(runFilter(np, tcp(1, 2, 1)), 0, "one byte of data");
  assertEquals(runFilter(np, tcp(1, 2, 1400, 8)), 0);
  assertEquals(runFilter(dropAll(), tcp(1, 2)), 0);
  assert(runFilter(np, tcp(1, 2)) >= 65536, "keeps whole packets (no trimming)");
});

Deno.test("faketcp bpf: programs encode as struct sock_filter (8 bytes each, little-endian)", () => {
  const prog = captureFilter(true, 0x1234, 0xabcd);
  const bytes = encodeProgram(prog);
  assertEquals(bytes.length, prog.length * 8);
  const v = new DataView(bytes.buffer);
  prog.forEach((ins, i) => {
    assertEquals(v.getUint16(i * 8, true), ins.code);
    assertEquals(bytes[i * 8 + 2], ins.jt);
    assertEquals(bytes[i * 8 + 3], ins.jf);
    assertEquals(v.getUint32(i * 8 + 4, true), ins.k);
  });
  // Every jump lands inside the program and every path ends in a return.
  prog.forEach((ins, i) => {
    if ((ins.code & 0x07) === 0x05) {
      assert(i + 1 + ins.jt < prog.length && i + 1 + ins.jf < prog.length, `jump at ${i}`);
    }
  });
  assertEquals(prog[prog.length - 1].code, 0x06);
  assertEquals(TCP_HEADER, 20);
});
