import { RATE_LIMIT_BURST, RateLimiter } from "../../transforms/kcp/rate_limit.ts";
import { assert, assertEquals } from "../support/assert.ts";

Deno.test("rate limit: a full burst goes at once, then the rate holds", () => {
  const r = new RateLimiter(100_000, 0); // 100 kB/s
  let sent = 0;
  while (r.take(1500, 0)) sent += 1500;
  assertEquals(sent, RATE_LIMIT_BURST);
  assertEquals(r.take(1500, 0), false);
  assertEquals(r.waitMs(1500, 0), 15);
  assert(!r.take(1500, 14), "too early");
  assert(r.take(1500, 15), "tokens after 15 ms");
  // Over one simulated second past the burst, about `rate` bytes get through.
  let bytes = 0;
  for (let t = 16; t <= 1015; t++) while (r.take(1000, t)) bytes += 1000;
  assert(bytes >= 99_000 && bytes <= 101_000, `${bytes} bytes in a second at 100 kB/s`);
});

Deno.test("rate limit: the bucket never holds more than the burst", () => {
  const r = new RateLimiter(1_000_000, 0);
  let sent = 0;
  while (r.take(1000, 60_000)) sent += 1000;
  assertEquals(sent, RATE_LIMIT_BURST);
});
