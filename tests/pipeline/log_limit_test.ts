/** The per-kind log line limiter: lines per window, summaries, close. */

import { assertEquals } from "../support/assert.ts";
import { sleep } from "../support/net.ts";
import { LineLimiter } from "../../pipeline/log_limit.ts";

Deno.test("LineLimiter: max lines per kind per window, one summary after it", async () => {
  const lines: string[] = [];
  let now = 0;
  const lim = new LineLimiter((s) => lines.push(s), { max: 2, windowMs: 50, clock: () => now });
  for (let i = 0; i < 5; i++) lim.line("a:", `a: ${i}`);
  lim.line("b:", "b: 0");
  assertEquals(lines, ["a: 0", "a: 1", "b: 0"]);
  assertEquals(lim.suppressed("a:"), 3);
  await sleep(120); // the summary timer fires at the end of the window
  assertEquals(lines.slice(3), ['(… 3 similar "a:" lines suppressed)']);
  now = 1000;
  lim.line("a:", "a: again");
  assertEquals(lines.at(-1), "a: again");
  lim.line("a:", "a: x");
  lim.line("a:", "a: y");
  lim.close(); // writes the pending summary, stops its timer
  assertEquals(lines.slice(-2), ["a: x", '(… 1 similar "a:" line suppressed)']);
  lim.line("a:", "a: after close");
  assertEquals(lines.at(-1), "a: after close");
});

Deno.test("LineLimiter: without summaries, suppressed lines leave no trace", () => {
  const lines: string[] = [];
  let now = 0;
  const lim = new LineLimiter((s) => lines.push(s), {
    max: 1,
    windowMs: 10000,
    summary: false,
    clock: () => now,
  });
  for (let i = 0; i < 50; i++) lim.line("x", `x ${i}`);
  now = 10000;
  lim.line("x", "x later");
  lim.close();
  assertEquals(lines, ["x 0", "x later"]);
});
