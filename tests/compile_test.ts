import { BASE_MISSING, compileAll } from "../cli/compile.ts";
import { assert, assertEquals } from "./support/assert.ts";

/** Whether Deno's compile base can be had: DENORT_BIN names a file, or dl.deno.land answers. */
async function compileBase(): Promise<string | null> {
  const bin = Deno.env.get("DENORT_BIN");
  if (bin) {
    try {
      if (Deno.statSync(bin).isFile) return null;
    } catch { /* fall through */ }
    return `DENORT_BIN=${bin} is not a file`;
  }
  try {
    const r = await fetch("https://dl.deno.land/", {
      method: "HEAD",
      signal: AbortSignal.timeout(3000),
    });
    await r.body?.cancel();
    return null;
  } catch (e) {
    return `dl.deno.land is unreachable (${
      (e as Error).message.split("\n")[0]
    }) and DENORT_BIN is unset`;
  }
}

const missingBase = await compileBase();
if (missingBase) {
  console.error(
    `skipping the compile test: Deno's compile base (denort) is missing: ${missingBase}`,
  );
}

Deno.test({
  name: "compile: deno task compile builds client and server binaries that run",
  ignore: missingBase !== null,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const r = await compileAll(dir);
      assert(r.code !== BASE_MISSING, r.message);
      assertEquals(r.code, 0, r.message);
      for (const name of ["kcptun-ts-client", "kcptun-ts-server"]) {
        const out = await new Deno.Command(`${dir}/${name}`, { args: ["-v"] }).output();
        assertEquals(out.code, 0);
        assert(new TextDecoder().decode(out.stdout).includes("kcptun-ts"), `${name} -v`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "compile: a missing base is reported in one line naming DENORT_BIN",
  // Where the base is available the test above compiles for real.
  ignore: missingBase === null,
  async fn() {
    const r = await compileAll(await Deno.makeTempDir());
    assertEquals(r.code, BASE_MISSING);
    assert(!r.message.includes("\n") && r.message.includes("DENORT_BIN"), r.message);
  },
});
