import { StageError } from "../../pipeline/stage.ts";
import { smuxOptions, smuxStage, type SmuxStageInstance } from "../../transforms/smux/stage.ts";
import { testContext } from "../../testing.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";

Deno.test("smux stage: kcptun flag names map onto the session settings", () => {
  const c = smuxOptions({
    smuxver: 2,
    smuxbuf: 8388608,
    streambuf: 1048576,
    framesize: 8192,
    keepalive: 5,
  });
  assertEquals(
    [c.version, c.maxReceiveBuffer, c.maxStreamBuffer, c.maxFrameSize, c.keepAliveInterval],
    [2, 8388608, 1048576, 8192, 5000],
  );
  assertEquals(smuxOptions({}).version, 1, "kcptun 2021 default");
  assertThrows(() => smuxOptions({ keepalive: 31 }), StageError, "keep-alive");
  assertThrows(() => smuxOptions({ smuxver: 3 }), StageError, "version");
  assertThrows(() => smuxOptions({ smuxver: "2" }), StageError, "must be a number");
  assertThrows(() => smuxOptions({ nope: 1 }), StageError, "unknown option");
});

Deno.test("smux stage: definition and instance (the settings the runtime's sessions get)", () => {
  assertEquals([smuxStage.name, smuxStage.kind, smuxStage.role], ["smux", "boundary", "mux"]);
  const inst = smuxStage.create(
    { smuxver: 2, keepalive: 5 },
    testContext("server"),
  ) as SmuxStageInstance;
  assertEquals(
    [inst.protocol, inst.version, inst.keepAliveInterval, inst.maxStreamBuffer],
    ["smux", 2, 5000, 2097152],
  );
  assert(Object.isFrozen(inst), "the settings can be changed after the check");
  // A pipeline may give kcptun's flag names (checked against the declared options).
  for (const k of ["smuxver", "smuxbuf", "streambuf", "framesize", "keepalive"]) {
    assert(k in smuxStage.options!, `option ${k} not declared`);
  }
});
