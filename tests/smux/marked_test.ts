/** Marked streams (kcptun-ts): ids of the peer's parity from 2^31, told apart at SYN time. */

import { CMD_PSH, CMD_SYN, parseFrames } from "../../transforms/smux/frame.ts";
import { isMarkedStream, MARKED_STREAM_BASE, SmuxSession } from "../../transforms/smux/session.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { concat } from "./capture_streams.ts";

function carry(from: SmuxSession, to: SmuxSession): Uint8Array {
  const out: Uint8Array[] = [];
  for (let f; (f = from.pollTransmit()) !== null;) out.push(f);
  const bytes = concat(out);
  to.receive(bytes.slice());
  return bytes;
}

Deno.test("smux marked streams: client even ids from 2^31 next to odd ones; the server knows them by id", () => {
  for (const version of [1, 2] as const) {
    const client = new SmuxSession("client", { version });
    const server = new SmuxSession("server", { version });
    const a = client.openStream();
    const m1 = client.openMarkedStream();
    const m2 = client.openMarkedStream();
    const b = client.openStream();
    assertEquals([a, m1, m2, b], [3, MARKED_STREAM_BASE, MARKED_STREAM_BASE + 2, 5]);
    client.write(m1, new Uint8Array([1, 2, 3]));
    const wire = parseFrames(carry(client, server));
    // On the wire a marked stream is an ordinary SYN, then PSH, with its id as the sid.
    assertEquals(
      wire.map((f) => [f.cmd, f.sid]),
      [[CMD_SYN, a], [CMD_SYN, m1], [CMD_SYN, m2], [CMD_SYN, b], [CMD_PSH, m1]],
    );
    const accepted = [server.accept(), server.accept(), server.accept(), server.accept()];
    assertEquals(accepted, [a, m1, m2, b]);
    assertEquals(accepted.map((id) => isMarkedStream("server", id)), [false, true, true, false]);
    assertEquals(server.read(m1), new Uint8Array([1, 2, 3]));
    server.write(m1, new Uint8Array([9]));
    carry(server, client);
    assertEquals(client.read(m1), new Uint8Array([9]));
    // The server's own marked ids are odd, and the client tells them apart the same way.
    const sm = server.openMarkedStream();
    assertEquals(sm, MARKED_STREAM_BASE + 1);
    carry(server, client);
    assertEquals(client.accept(), sm);
    assert(isMarkedStream("client", sm) && !isMarkedStream("client", server.openStream()));
  }
});

Deno.test("smux marked streams: a peer's ordinary streams (odd from the client) are never marked", () => {
  // A kcptun client's ids stay odd even after they wrap: no stream of its is ever marked.
  for (const id of [1, 3, 5, 0x7fffffff, 0x80000001, 0xffffffff]) {
    assert(!isMarkedStream("server", id), String(id));
  }
  for (const id of [2, 4, 0x80000000, 0xfffffffe]) assert(!isMarkedStream("client", id));
});
