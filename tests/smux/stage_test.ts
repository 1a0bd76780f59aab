import { StageError } from "../../pipeline/stage.ts";
import { smuxOptions, smuxStage, type SmuxStageInstance } from "../../transforms/smux/stage.ts";
import { testContext } from "../../testing.ts";
import { assertEquals, assertThrows } from "../support/assert.ts";

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

Deno.test("smux stage: definition and instance", async () => {
  assertEquals([smuxStage.name, smuxStage.kind, smuxStage.role], ["smux", "boundary", "mux"]);
  const inst = smuxStage.create({ smuxver: 2 }, testContext("server")) as SmuxStageInstance;
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const driver = inst.attach({ readable: pipe.readable, writable: pipe.writable });
  assertEquals([driver.session.role, driver.session.config.version], ["server", 2]);
  await driver.close();
});
