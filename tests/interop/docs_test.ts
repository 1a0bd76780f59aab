/** docs/interop.md lists exactly the matrix cases of cases.ts. */

import { assert, assertEquals } from "../support/assert.ts";
import { allCases } from "./cases.ts";
import { DOC, updatedDoc } from "./doc_table.ts";

/** Table cells trimmed and separator rows reduced, so that `deno fmt`'s padding does not count. */
function normalize(md: string): string {
  return md.split("\n").map((line) => {
    if (!line.startsWith("|")) return line.trimEnd();
    if (/^\|[\s|:-]+\|$/.test(line)) return "|-|";
    return line.split("|").map((c) => c.trim()).join("|");
  }).join("\n");
}

Deno.test("interop docs: the case table in docs/interop.md is current", () => {
  const doc = Deno.readTextFileSync(DOC);
  assertEquals(
    normalize(doc),
    normalize(updatedDoc(doc)),
    "run `deno run -A tests/interop/doc_table.ts --write` to regenerate",
  );
});

Deno.test("interop docs: at least 40 cases, names unique, both directions of each crypt", () => {
  const cases = allCases();
  assert(cases.length >= 40, `only ${cases.length} cases`);
  assertEquals(new Set(cases.map((c) => c.name)).size, cases.length, "duplicate case names");
  for (const c of cases.filter((c) => c.name.startsWith("crypt "))) {
    assert(c.client !== c.server, `${c.name} is not an interop case`);
  }
});
