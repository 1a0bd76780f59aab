import assert from "node:assert/strict";

const program = new URL("./tunnel.ts", import.meta.url);

/** Runs examples/tunnel.ts as a user would; its exit code and output lines. */
async function run(...args: string[]): Promise<{ code: number; lines: string[]; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", program.pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, lines: text.decode(stdout).trimEnd().split("\n"), stderr: text.decode(stderr) };
}

Deno.test("examples/tunnel.ts: listens, dials, echoes one stream, closes, exits 0", async () => {
  const { code, lines, stderr } = await run();
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assert.match(lines[0], /^server listening on 127\.0\.0\.1:\d+$/);
  const port = lines[0].split(":").at(-1);
  assert.match(lines[1], new RegExp(`^client session \\S+:\\d+ -> 127\\.0\\.0\\.1:${port}$`));
  assert.equal(lines[2], 'stream 3: sent 24 bytes, echoed "hello through the tunnel"');
  assert.equal(lines[3], "closed");
  assert.equal(lines.length, 4);
});

Deno.test("examples/tunnel.ts: echoes the message it is given, byte for byte", async () => {
  const { code, lines, stderr } = await run("grüße, 8 bytes?");
  assert.equal(code, 0, stderr);
  assert.equal(lines[2], 'stream 3: sent 17 bytes, echoed "grüße, 8 bytes?"');
});
