import { PacketPool } from "../../pipeline/packet.ts";
import {
  diffKernelUdpCounters,
  parseSnmp6Udp,
  parseSnmpUdp,
  readKernelUdpCounters,
} from "../../transports/kernel_counters.ts";
import { C } from "../../transports/libc.ts";
import { UdpTransport } from "../../transports/udp.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { batchOf, payloads, turns } from "./helpers.ts";

Deno.test("kernel counters: parse /proc/net/snmp and /proc/net/snmp6 text", () => {
  const snmp = [
    "Ip: Forwarding DefaultTTL",
    "Ip: 1 64",
    "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors",
    "Udp: 10 2 7 11 5 1 0 0 0",
    "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors",
    "UdpLite: 99 99 99 99 99 99 99 99 99",
  ].join("\n");
  assertEquals(parseSnmpUdp(snmp), {
    InDatagrams: 10,
    NoPorts: 2,
    InErrors: 7,
    OutDatagrams: 11,
    RcvbufErrors: 5,
    SndbufErrors: 1,
    InCsumErrors: 0,
  });
  assertEquals(parseSnmpUdp("Ip: a\nIp: 1"), null);
  const six = parseSnmp6Udp("Udp6InDatagrams  \t4\nUdp6RcvbufErrors 3\nUdpLite6RcvbufErrors 8\n");
  assertEquals([six.InDatagrams, six.RcvbufErrors, six.OutDatagrams], [4, 3, 0]);
});

Deno.test("kernel counters: a full receive buffer shows up as RcvbufErrors", async () => {
  const before = readKernelUdpCounters();
  assert(before !== null, "/proc/net/snmp readable");
  const pool = new PacketPool();
  // Without GSO: the kernel counts a segmented message once in OutDatagrams.
  const t = new UdpTransport({ pool, gso: false });
  const sink = await t.listen("127.0.0.1", 0); // never receives
  sink.setOption(C.SOL_SOCKET, C.SO_RCVBUF, 0); // the kernel's minimum: a couple of datagrams
  const cli = await t.dial("127.0.0.1", sink.localAddr.port);
  cli.send(batchOf(pool, payloads(200, 1350)));
  await turns(2);
  const after = readKernelUdpCounters()!;
  const d = diffKernelUdpCounters(before, after);
  assertEquals(cli.stats.txPackets, 200);
  assert(d.RcvbufErrors >= 150, `RcvbufErrors +${d.RcvbufErrors}`);
  assert(d.OutDatagrams >= 200, `OutDatagrams +${d.OutDatagrams}`);
  await cli.close();
  await sink.close();
});
