import { assert, assertEquals } from "../support/assert.ts";
import { CLIENT_FLAGS, SERVER_FLAGS } from "../../cli/settings.ts";
import { renderHelp, VERSION, versionText } from "../../cli/usage.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

/** Options lines we changed on purpose (docs/cli.md): newer kcptun wording, our own flags. */
const CHANGED = ["--remoteaddr", "--listen", "--crypt", "--pprof"];
const ADDED = [
  "--QPP",
  "--QPPCount",
  "--ratelimit",
  "--framesize",
  "--closewait",
  "--pprof",
  "--pipeline",
  "--autofec",
  "--replaywindow",
  "-V",
  "--udp",
  "--udptimeout",
  "--metrics",
  "--stats",
];

function compare(role: "client" | "server", ours: string, theirs: string) {
  const a = ours.split("\n");
  const b = theirs.split("\n");
  const isOption = (l: string) => /^ {3}-/.test(l);
  // Everything but the options block is the same shape.
  const head = (lines: string[]) => lines.filter((l) => !isOption(l));
  assertEquals(
    head(a),
    head(b).map((l) =>
      l === `   kcptun - ${role}(with SMUX)`
        ? `   kcptun-ts - ${role}(with SMUX)`
        : l === "   SELFBUILD"
        ? `   ${VERSION}`
        : l
    ),
  );
  // Options: theirs in the same order and byte for byte, except the ones we changed.
  const name = (l: string) => l.trim().split(/[ ,]/)[0];
  const theirsKept = b.filter(isOption).filter((l) => !CHANGED.includes(name(l)));
  const oursKept = a.filter(isOption).filter((l) =>
    !CHANGED.includes(name(l)) && !ADDED.includes(name(l))
  );
  assertEquals(oursKept, theirsKept);
}

Deno.test("usage: client help has kcptun 2021's shape, columns and texts", () => {
  const ours = renderHelp("client", CLIENT_FLAGS, "kcptun-client");
  compare("client", ours, fixture("kcptun_client_help.txt"));
  assert(
    ours.includes(
      `   --key value${
        " ".repeat(22)
      }pre-shared secret between client and server (default: "it's a secrect") [$KCPTUN_KEY]\n`,
    ),
  );
  assert(
    ours.includes("   --framesize value                smux max frame size (default: 32768)\n"),
  );
  assert(ours.endsWith("   --version, -v                    print the version\n"));
  for (const hidden of ["--nodelay", "--interval", "--resend", "--nc ", "--acknodelay"]) {
    assert(!ours.includes(hidden), hidden);
  }
  // kcptun 2026's QPP flags, after --mode as there.
  assert(
    ours.includes("   --QPP                            enable Quantum Permutation Pads(QPP)\n"),
  );
  assert(ours.indexOf("--QPPCount value") > ours.indexOf("--mode value"));
});

Deno.test("usage: server help has kcptun 2021's shape, columns and texts", () => {
  const ours = renderHelp("server", SERVER_FLAGS, "kcptun-server");
  compare("server", ours, fixture("kcptun_server_help.txt"));
  assert(
    ours.includes(
      "   --target value, -t value         target server address, or path/to/unix_socket",
    ),
  );
  assert(!ours.includes("--conn"));
});

Deno.test("usage: version line", () => {
  assertEquals(versionText(), `kcptun-ts version ${VERSION}\n`);
  assert(/^\d+\.\d+\.\d+/.test(VERSION));
});
