/**
 * The `unix` application stage: unix stream sockets (a server `-t` path, a 2026-style client
 * `-l` path).
 *
 * @module
 */

import type { BoundaryStageDefinition, StageContext, StageOptions } from "../pipeline/stage.ts";
import type { AppConn, AppEndpoint, AppListener } from "../pipeline/app.ts";
import { type ListenerOptions, wrapConn, wrapListener } from "./tcp.ts";

/** Unix socket endpoints; `host` is the socket path, `port` is ignored. */
export class UnixEndpoint implements AppEndpoint {
  readonly #options: ListenerOptions;

  /** `options.log` receives the listeners' accept diagnostics. */
  constructor(options: ListenerOptions = {}) {
    this.#options = options;
  }

  /** Listens at the path (an old socket file there is removed first, as Go's kcptun does). */
  listen(path: string): Promise<AppListener> {
    try {
      if (Deno.lstatSync(path).isSocket) Deno.removeSync(path);
    } catch { /* nothing there */ }
    const listener = Deno.listen({ transport: "unix", path });
    return Promise.resolve(wrapListener(listener, path, 0, this.#options));
  }

  /** Connects to the socket at the path. */
  async dial(path: string): Promise<AppConn> {
    const conn = await Deno.connect({ transport: "unix", path });
    return wrapConn(conn, path);
  }
}

/** The `unix` boundary stage definition (role "app"). */
export const unixStage: BoundaryStageDefinition = {
  name: "unix",
  kind: "boundary",
  role: "app",
  description: "unix stream sockets: a client -l path, a server -t path",
  create: (_options: StageOptions, ctx: StageContext): AppEndpoint =>
    new UnixEndpoint({ log: ctx.log }),
};
