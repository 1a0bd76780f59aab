/**
 * Checks made on the pipeline through the real entry points: stage options against what each
 * stage declares, and the room `-mtu` leaves KCP after the packet stages. Each bad configuration
 * is one stderr line naming what is wrong, exit code 1, nothing on stdout.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { exitWithin, spawnDeno } from "./harness.ts";

interface BadCase {
  name: string;
  script: "cli/client.ts" | "cli/server.ts";
  args: string[];
  /** Files to create in the working directory first. */
  files?: Record<string, string>;
  /** What the one line must contain. */
  mentions: string[];
  code: number;
}

const CLIENT = "cli/client.ts" as const;
const SERVER = "cli/server.ts" as const;
const LOCAL = ["-l", "127.0.0.1:0"];

const STAGE_OPTION_CASES: BadCase[] = [
  {
    name: "an option the stage does not declare (JSON pipelineOptions)",
    script: CLIENT,
    args: [...LOCAL, "-c", "opts.json"],
    files: { "opts.json": '{\n  "pipelineOptions": { "kcp": { "mtus": 1200 } }\n}\n' },
    mentions: ['config file "opts.json": "pipelineOptions" at line 2', 'stage "kcp"', '"mtus"'],
    code: 1,
  },
  {
    name: "a stage option of the wrong type (JSON pipeline entry)",
    script: SERVER,
    args: [...LOCAL, "-c", "entry.json"],
    files: {
      "entry.json": JSON.stringify({
        pipeline: ["tcp", "smux", "kcp", { stage: "fec", options: { dataShards: "10" } }, "udp"],
      }),
    },
    mentions: ["entry.json", 'option "dataShards" of stage "fec" must be an integer'],
    code: 1,
  },
  {
    name: "an option a plugin stage does not declare",
    script: CLIENT,
    args: [...LOCAL, "-c", "plug.json"],
    files: {
      "plug.js":
        "export default { name: 'plug', kind: 'packet', options: { max: { type: 'integer' } }," +
        " create: () => ({ overhead: 0, encode() {}, decode() {} }) };\n",
      "plug.json": JSON.stringify({
        pipeline: ["tcp", "smux", "kcp", "./plug.js", "udp"],
        pipelineOptions: { plug: { min: 1 } },
      }),
    },
    mentions: ['stage "./plug.js" takes no option "min" (it takes: max)'],
    code: 1,
  },
  {
    name: "pipelineOptions for a stage the pipeline does not have",
    script: SERVER,
    args: [...LOCAL, "-crypt", "null", "-c", "absent.json"],
    files: { "absent.json": '{ "pipelineOptions": { "crypt": { "key": "k" } } }' },
    mentions: ['"pipelineOptions" names stage "crypt"', "not in the pipeline"],
    code: 1,
  },
];

const MTU_CASES: BadCase[] = [
  {
    name: "-mtu too small for the packet stages' headers (client)",
    script: CLIENT,
    args: [...LOCAL, "-mtu", "77"],
    mentions: [
      "-mtu 77: the pipeline's packet stages take 28 bytes (fec 8, crypt 20), leaving KCP 49" +
      " (it needs at least 50, so -mtu at least 78)",
    ],
    code: 1,
  },
  {
    name: "-mtu too small for aes-128-gcm (server, from the JSON file)",
    script: SERVER,
    args: [...LOCAL, "-c", "gcm.json"],
    files: { "gcm.json": '{ "mtu": 85, "crypt": "aes-128-gcm" }' },
    mentions: ["-mtu 85 (from gcm.json)", "take 36 bytes (fec 8, crypt 28)", "-mtu at least 86"],
    code: 1,
  },
  {
    name: "-mtu too small for a plugin's own overhead",
    script: CLIENT,
    args: [...LOCAL, "-mtu", "160", "-c", "pad.json"],
    files: {
      "pad.js": "export default { name: 'pad', kind: 'packet'," +
        " create: () => ({ overhead: 100, encode() {}, decode() {} }) };\n",
      "pad.json": JSON.stringify({
        pipeline: ["tcp", "smux", "kcp", "fec", "./pad.js", "crypt", "udp"],
      }),
    },
    mentions: ["-mtu 160: ", "take 128 bytes (fec 8, ./pad.js 100, crypt 20), leaving KCP 32"],
    code: 1,
  },
  {
    name: "kcp's own mtu (JSON pipelineOptions) too small",
    script: SERVER,
    args: [...LOCAL, "-c", "kcpmtu.json"],
    files: { "kcpmtu.json": '{ "pipelineOptions": { "kcp": { "mtu": 60 } } }' },
    mentions: ['kcp option "mtu" 60: ', "leaving KCP 32"],
    code: 1,
  },
];

async function expectOneLine(cases: BadCase[]): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-checks-" });
  try {
    for (const c of cases) {
      for (const [name, text] of Object.entries(c.files ?? {})) {
        await Deno.writeTextFile(`${dir}/${name}`, text);
      }
    }
    const procs = cases.map((c) => spawnDeno(c.script, c.args, dir));
    try {
      // Generous: every case is a deno process, started together on a loaded machine.
      const results = await Promise.all(procs.map((p) => exitWithin(p, 60000)));
      cases.forEach((c, i) => {
        const p = procs[i];
        const what = `${c.name}: code ${results[i].code}, stderr ${JSON.stringify(p.stderr())}`;
        assertEquals(results[i].code, c.code, what);
        assertEquals(p.stdout(), "", what);
        const err = p.stderr();
        assert(err.endsWith("\n") && err.indexOf("\n") === err.length - 1, `one line: ${what}`);
        for (const m of c.mentions) assert(err.includes(m), `mentions ${m}: ${what}`);
      });
    } finally {
      for (const p of procs) await p.kill();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("e2e (subprocess): stage options a stage does not declare: one line naming both", () =>
  expectOneLine(STAGE_OPTION_CASES));

Deno.test("e2e (subprocess): -mtu leaving KCP too little after the packet stages: one line", () =>
  expectOneLine(MTU_CASES));
