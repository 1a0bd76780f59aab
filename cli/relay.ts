/**
 * Relaying one smux stream and one local socket, as kcptun 2021 does: bytes are copied both
 * ways; when either direction ends (EOF or error), both sides are closed — after `closeWait`
 * seconds when that 2026 option is set. What a finished direction had written is delivered
 * first: the smux stream sends its queued frames before its FIN, and the socket's writes have
 * completed.
 *
 * @module
 */

/** Either end of a relay. */
export interface RelayEnd {
  /** Bytes coming out of this end. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes going into this end. */
  readonly writable: WritableStream<Uint8Array>;
  /** Closes this end (idempotent). */
  close(): void;
}

/** Copies `a` ⇄ `b` until either direction ends, then closes both. Never rejects. */
export async function relay(a: RelayEnd, b: RelayEnd, closeWaitSeconds = 0): Promise<void> {
  const stop = new AbortController();
  const opts: StreamPipeOptions = {
    preventClose: true,
    preventAbort: true,
    preventCancel: true,
    signal: stop.signal,
  };
  const ab = a.readable.pipeTo(b.writable, opts).catch(() => {});
  const ba = b.readable.pipeTo(a.writable, opts).catch(() => {});
  await Promise.race([ab, ba]);
  if (closeWaitSeconds > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([ab, ba]),
      new Promise<void>((r) => timer = setTimeout(r, closeWaitSeconds * 1000)),
    ]);
    clearTimeout(timer);
  }
  stop.abort();
  await Promise.all([ab, ba]);
  a.close();
  b.close();
}
