import fc from "fast-check";
import { encodeFrame, INITIAL_PEER_WINDOW, MAX_PAYLOAD } from "../../transforms/smux/frame.ts";
import { SmuxSession } from "../../transforms/smux/session.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { concat } from "./capture_streams.ts";
import { pattern, patternByte, prng, Wire } from "./harness.ts";

interface Plan {
  k: number;
  opener: SmuxSession;
  acceptor: SmuxSession;
  total: number;
  written: number;
  id: number;
  closed: boolean;
  got: number;
  eof: boolean;
  acceptorClosed: boolean;
}

interface Params {
  version: 1 | 2;
  streams: number;
  seed: number;
  maxWrite: number;
  frameSize: number;
  piece: number;
  smuxbuf: number;
  streambuf: number;
  /** The server is a version-0 session (it takes the client's version). */
  serverAuto?: boolean;
}

/**
 * Both sessions open streams (who opens each one is random); the opener writes its stream's
 * bytes in random pieces and closes it; the other side accepts, reads at random moments, and
 * closes once it sees EOF. The link moves random numbers of frames, split at random points.
 * Returns the plans for checking.
 */
function simulate(p: Params): { plans: Plan[]; client: SmuxSession; server: SmuxSession } {
  const rand = prng(p.seed);
  const cfg = {
    version: p.version,
    maxFrameSize: p.frameSize,
    maxReceiveBuffer: p.smuxbuf,
    maxStreamBuffer: p.streambuf,
  };
  const client = new SmuxSession("client", cfg);
  const server = new SmuxSession("server", { ...cfg, version: p.serverAuto ? 0 : p.version });
  // A version-0 server speaks only once the client did: a kcptun client's keepalive NOP may be
  // its first frame (when the server opens every stream).
  if (p.serverAuto) client.handleTimeout(client.config.keepAliveInterval);
  const ab = new Wire(client, server, rand, p.piece);
  const ba = new Wire(server, client, rand, p.piece);
  const plans: Plan[] = [];
  for (let k = 0; k < p.streams; k++) {
    const opener = rand() < 0.5 ? client : server;
    plans.push({
      k,
      opener,
      acceptor: opener === client ? server : client,
      total: Math.floor(rand() * rand() * p.maxWrite * 4),
      written: 0,
      id: -1,
      closed: false,
      got: 0,
      eof: false,
      acceptorClosed: false,
    });
  }
  const byId = new Map<string, Plan>();
  const key = (s: SmuxSession, id: number) => `${s.role}:${id}`;
  const unopened = plans.slice();
  const writing: Plan[] = [];
  const accepted: Plan[] = [];

  const checkBounds = (s: SmuxSession) => {
    assert(s.bufferedBytes <= p.smuxbuf + MAX_PAYLOAD, `buffered ${s.bufferedBytes}`);
    assert(s.pendingInputBytes <= p.piece + MAX_PAYLOAD + 8, `pending ${s.pendingInputBytes}`);
  };
  const acceptAll = (s: SmuxSession) => {
    for (let id; (id = s.accept()) >= 0;) {
      const plan = byId.get(key(s === client ? server : client, id))!;
      assert(plan !== undefined && plan.acceptor === s, `accepted stream ${id} was opened`);
      accepted.push(plan);
    }
  };
  const readOne = (plan: Plan) => {
    const s = plan.acceptor;
    for (let b; (b = s.read(plan.id, 1 + Math.floor(rand() * 5000))) !== null;) {
      for (let i = 0; i < b.length; i++) {
        if (b[i] !== patternByte(plan.k, plan.got + i)) {
          throw new Error(`stream ${plan.k}: wrong byte at ${plan.got + i}`);
        }
      }
      plan.got += b.length;
      if (rand() < 0.3) break;
    }
    if (!plan.eof && s.readEnded(plan.id)) {
      plan.eof = true;
      assertEquals(plan.got, plan.total, `stream ${plan.k} complete at EOF`);
    }
    if (plan.eof && !plan.acceptorClosed) {
      plan.acceptorClosed = true;
      s.closeStream(plan.id);
    }
  };

  for (let step = 0; step < 200000; step++) {
    const r = rand();
    if (r < 0.2 && unopened.length > 0) {
      const plan = unopened.splice(Math.floor(rand() * unopened.length), 1)[0];
      plan.id = plan.opener.openStream();
      byId.set(key(plan.opener, plan.id), plan);
      writing.push(plan);
    } else if (r < 0.55 && writing.length > 0) {
      const i = Math.floor(rand() * writing.length);
      const plan = writing[i];
      const n = Math.min(plan.total - plan.written, 1 + Math.floor(rand() * p.maxWrite));
      if (n > 0) plan.opener.write(plan.id, pattern(plan.k, plan.written, n));
      plan.written += n;
      if (plan.written === plan.total && rand() < 0.7) {
        plan.opener.closeStream(plan.id);
        plan.closed = true;
        writing[i] = writing[writing.length - 1];
        writing.pop();
      }
    } else if (r < 0.8) {
      (rand() < 0.5 ? ab : ba).step(1 + Math.floor(rand() * 20));
      checkBounds(client);
      checkBounds(server);
    } else {
      acceptAll(client);
      acceptAll(server);
      if (accepted.length > 0) readOne(accepted[Math.floor(rand() * accepted.length)]);
    }
    if (unopened.length === 0 && writing.length === 0) break;
  }
  // Writers that finished without closing close now; then everything drains.
  for (const plan of writing) {
    assertEquals(plan.written, plan.total, "the step budget let every writer finish");
    plan.opener.closeStream(plan.id);
    plan.closed = true;
  }
  for (let round = 0; round < 100000; round++) {
    let moved = ab.step() || ba.step();
    checkBounds(client);
    checkBounds(server);
    acceptAll(client);
    acceptAll(server);
    for (const plan of accepted) {
      if (plan.acceptorClosed) continue;
      const before = plan.got;
      readOne(plan);
      moved ||= plan.got !== before || plan.acceptorClosed;
    }
    if (!moved && !client.hasTransmit() && !server.hasTransmit()) break;
  }
  return { plans, client, server };
}

Deno.test("property: every stream's bytes arrive exactly, in order, with EOF (≤1000 streams)", () => {
  const params = fc.record({
    version: fc.constantFrom(1 as const, 2 as const),
    streams: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 900, max: 1000 })),
    seed: fc.integer(),
    maxWrite: fc.integer({ min: 1, max: 3000 }),
    frameSize: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 512, max: 65535 })),
    piece: fc.integer({ min: 1, max: 20000 }),
    smuxbuf: fc.integer({ min: 1 << 16, max: 1 << 22 }),
    streambuf: fc.integer({ min: 1024, max: 1 << 16 }),
  }).filter((p) => p.frameSize >= 64 || p.maxWrite <= 300);
  fc.assert(
    fc.property(params, (p) => {
      const { plans, client, server } = simulate(p);
      for (const plan of plans) {
        assertEquals(plan.got, plan.total, `stream ${plan.k} (id ${plan.id}) bytes`);
        assert(plan.eof && plan.acceptorClosed, `stream ${plan.k} saw EOF and closed`);
      }
      for (const s of [client, server]) {
        assertEquals(s.stats.activeStreams, 0, `${s.role}: no stream left`);
        assertEquals([s.bufferedBytes, s.queuedSendBytes, s.pendingInputBytes], [0, 0, 0]);
        assertEquals(s.bucket, p.smuxbuf, `${s.role}: every token back`);
        assert(!s.closed);
      }
      const opened = client.stats.streamsOpened + server.stats.streamsOpened;
      assertEquals(opened, p.streams);
      assertEquals(client.stats.streamsAccepted + server.stats.streamsAccepted, p.streams);
      assertEquals(client.stats.streamsClosed + server.stats.streamsClosed, 2 * p.streams);
    }),
    { numRuns: 25, seed: 1234 },
  );
});

Deno.test("property: a version-0 server delivers as a server of the client's version", () => {
  const params = fc.record({
    version: fc.constantFrom(1 as const, 2 as const),
    streams: fc.integer({ min: 1, max: 40 }),
    seed: fc.integer(),
    maxWrite: fc.integer({ min: 1, max: 3000 }),
    frameSize: fc.integer({ min: 512, max: 65535 }),
    piece: fc.integer({ min: 1, max: 20000 }),
    smuxbuf: fc.integer({ min: 1 << 16, max: 1 << 22 }),
    streambuf: fc.integer({ min: 1024, max: 1 << 16 }),
    serverAuto: fc.constant(true),
  });
  fc.assert(
    fc.property(params, (p) => {
      const { plans, client, server } = simulate(p);
      assertEquals(server.version, p.version);
      for (const plan of plans) {
        assertEquals(plan.got, plan.total, `stream ${plan.k} (id ${plan.id}) bytes`);
        assert(plan.eof && plan.acceptorClosed, `stream ${plan.k} saw EOF and closed`);
      }
      for (const s of [client, server]) {
        assertEquals(s.stats.activeStreams, 0, `${s.role}: no stream left`);
        assertEquals(s.bucket, p.smuxbuf, `${s.role}: every token back`);
        assert(!s.closed, `${s.role}: ${s.closeReason}`);
      }
    }),
    { numRuns: 20, seed: 4321 },
  );
});

/** Shared bytes that writers hand over as views (nothing modifies written chunks). */
const BULK = pattern(0, 0, 1 << 20);

Deno.test("property: with stalled readers the session holds at most its buffers plus a frame", () => {
  const params = fc.record({
    version: fc.constantFrom(1 as const, 2 as const),
    seed: fc.integer(),
    streams: fc.integer({ min: 1, max: 12 }),
    stalled: fc.integer({ min: 1, max: 4 }),
    frameSize: fc.integer({ min: 100, max: 65535 }),
    piece: fc.integer({ min: 64, max: 30000 }),
    smuxbuf: fc.integer({ min: 1 << 12, max: 1 << 19 }),
    streambufShift: fc.integer({ min: 0, max: 6 }),
  });
  fc.assert(
    fc.property(params, (p) => {
      const streambuf = Math.max(1, p.smuxbuf >> p.streambufShift);
      const cfg = {
        version: p.version,
        maxFrameSize: p.frameSize,
        maxReceiveBuffer: p.smuxbuf,
        maxStreamBuffer: streambuf,
      };
      const rand = prng(p.seed);
      const client = new SmuxSession("client", cfg);
      const server = new SmuxSession("server", cfg);
      const ab = new Wire(client, server, rand, p.piece);
      const ba = new Wire(server, client, rand, p.piece);
      // A stalled v2 stream never sends an UPD, so its peer keeps the initial window.
      const perStreamCap = Math.max(INITIAL_PEER_WINDOW, streambuf);
      const total = Math.min(BULK.length, p.smuxbuf + perStreamCap + 1000);
      const ids: number[] = [];
      for (let k = 0; k < p.streams; k++) {
        const id = client.openStream();
        ids.push(id);
        client.write(id, BULK.subarray(0, total));
      }
      const stalled = new Set(ids.slice(0, Math.min(p.stalled, p.streams)));
      const got = new Map<number, number>();
      let peak = 0;
      for (let step = 0; step < 100000; step++) {
        let moved = ab.step(1 + Math.floor(rand() * 50));
        moved = ba.step() || moved;
        // What the session holds: stream buffers within the bucket plus at most one frame, and
        // unparsed input within the last piece plus one partial frame.
        peak = Math.max(peak, server.bufferedBytes);
        assert(server.bufferedBytes <= p.smuxbuf + MAX_PAYLOAD, `held ${server.bufferedBytes}`);
        assert(server.pendingInputBytes <= p.piece + MAX_PAYLOAD + 8);
        for (let id; (id = server.accept()) >= 0;) got.set(id, 0);
        for (const id of got.keys()) {
          if (p.version === 2) {
            assert(server.readableBytes(id) <= perStreamCap, `stream ${id} within its window`);
          }
          if (stalled.has(id)) continue;
          for (let b; (b = server.read(id)) !== null;) {
            got.set(id, got.get(id)! + b.length);
            moved = true;
          }
        }
        if (!moved) break;
      }
      assert(peak > 0, "data flowed");
      // A stalled stream never reads, so never sends an UPD: its sender stays at the initial window.
      const stalledHold = INITIAL_PEER_WINDOW * stalled.size;
      if (p.version === 2 && stalledHold <= p.smuxbuf - MAX_PAYLOAD) {
        // Windows keep the stalled streams from filling the shared buffer: the others finish.
        for (const id of ids) if (!stalled.has(id)) assertEquals(got.get(id), total, `${id}`);
      }
      if (p.version === 1 || stalledHold >= p.smuxbuf) {
        // The stalled streams alone can use up the bucket: the session stops reading.
        assert(!server.wantsInput(), "input stopped while the bucket is empty");
      }
      for (const id of stalled) assertEquals(got.get(id) ?? 0, 0);
      assert(!server.closed && !client.closed);
    }),
    { numRuns: 40, seed: 99 },
  );
});

Deno.test("property: arbitrary input never throws; the session stays consistent", () => {
  const frame = fc.record({
    ver: fc.constantFrom(1, 2, 2, 2, 0, 3),
    cmd: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.nat(255)),
    sid: fc.oneof(fc.constantFrom(0, 1, 2, 3, 5), fc.nat(0xffffffff)),
    len: fc.oneof(fc.constant(0), fc.constant(8), fc.nat(300)),
  });
  const input = fc.oneof(
    fc.array(frame, { maxLength: 30 }).map((fs) =>
      concat(fs.map((f) => encodeFrame(f.ver, f.cmd, f.sid, new Uint8Array(f.len).fill(7))))
    ),
    fc.uint8Array({ maxLength: 2000 }),
  );
  fc.assert(
    fc.property(input, fc.integer({ min: 1, max: 64 }), (bytes, cut) => {
      const s = new SmuxSession("server", {
        version: bytes.length % 2 === 0 ? 2 : 0,
        maxReceiveBuffer: 1000,
        maxStreamBuffer: 500,
      });
      for (let at = 0; at < bytes.length; at += cut) s.receive(bytes.slice(at, at + cut));
      for (let id; (id = s.accept()) >= 0;) {
        while (s.read(id) !== null) { /* drain */ }
        s.closeStream(id);
      }
      while (s.pollTransmit() !== null) { /* drain */ }
      s.handleTimeout(1e9);
      assert(s.bufferedBytes >= 0 && s.bufferedBytes <= 1000 + MAX_PAYLOAD);
      assert(s.closed || s.wantsInput() || s.bucket <= 0);
    }),
    { numRuns: 1500, seed: 17 },
  );
});
