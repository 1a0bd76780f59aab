import { V8_FLAGS_ARG } from "../../cli/v8_flags.ts";
import { assert } from "../support/assert.ts";

Deno.test("v8 flags: the client and server tasks run with the same V8 flags as binaries and benches", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  for (const task of ["client", "server"]) {
    const line: string = config.tasks[task];
    assert(line.includes(` ${V8_FLAGS_ARG} dist/kcptun-ts-${task}.js`), `task ${task}: ${line}`);
  }
  const compile = await Deno.readTextFile(new URL("../../cli/compile.ts", import.meta.url));
  assert(compile.includes("V8_FLAGS_ARG"), "cli/compile.ts does not pass V8_FLAGS_ARG");
});
