/**
 * The `crypt` packet stage: kcptun's packet encryption between FEC and the transport.
 *
 * Towards the wire every datagram gets the method's header in its headroom and is encrypted in
 * place (AES batches go through the batch-parallel CFB path). Away from the wire every datagram
 * is checked and decrypted in place; failures are dropped, released and counted in
 * `InCsumErrors`, never thrown. The stage holds no per-session state, so one instance serves
 * every session (`shared`): the server checks and decrypts before routing by address.
 *
 * With `replayWindow` (kcptun-ts, `aes-128-gcm` only) the stage also drops authenticated
 * datagrams whose nonce it accepted before ({@link ReplayFilter}), counted in `InReplays`. The
 * filter is the tunnel's, shared like the stage: a copy is caught whichever address sends it.
 *
 * @module
 */

import type { PacketBatch, PeerAddress } from "../../pipeline/packet.ts";
import type { PacketStage, PacketStageDefinition, StageContext } from "../../pipeline/stage.ts";
import type { Snmp } from "../../pipeline/snmp.ts";
import { StageError } from "../../pipeline/stage.ts";
import { GCM_NONCE_SIZE } from "./gcm.ts";
import { DEFAULT_KEY, deriveKeyAsync } from "./key.ts";
import type { NonceSource } from "./nonce.ts";
import { REPLAY_WINDOW_MAX, ReplayFilter } from "./replay.ts";
import { type AesEngine, createCryptSuite, type CryptGeneration } from "./suite.ts";
import type { CryptSuite } from "./suite_types.ts";

/** kcp-go's IKCP_OVERHEAD: 2021 drops decrypted payloads shorter than this before FEC/KCP. */
export const MIN_PAYLOAD_2021 = 24;

/** Options of the `crypt` stage. */
export type CryptStageOptions = {
  /** kcptun's `-crypt` (default `aes`); unknown names mean `aes`, as in kcptun. */
  crypt?: string;
  /** kcptun's `-key`, the raw string (default `it's a secrect`); derived once and cached. */
  key?: string;
  /** An already derived 32-byte key; takes precedence over `key`. */
  pass?: Uint8Array;
  /** Name table: `"2026"` (default) honours `null` and `aes-128-gcm`; `"2021"` maps them to aes. */
  generation?: CryptGeneration;
  /**
   * Decrypted payloads shorter than this are dropped (counted in `KCPInErrors`). Default 24,
   * kcp-go 2021's gate in front of FEC and KCP (no valid FEC or KCP datagram is shorter);
   * 0 turns the check off.
   */
  minPayload?: number;
  /** Nonce source (tests pass a seeded one). */
  nonces?: NonceSource;
  /** AES engine: `"auto"` (default, native bulk calls where they pay) or `"js"`. */
  engine?: AesEngine;
  /**
   * kcptun-ts: drop `aes-128-gcm` datagrams whose nonce was among the last `replayWindow` (up to
   * twice as many) accepted, counting them in `InReplays` (see {@link ReplayFilter}). 0 or absent:
   * off. Other methods refuse it: only the AEAD authenticates its nonce.
   */
  replayWindow?: number;
};

/**
 * Integrity failures are logged at once, then at most once per this many ms: a wrong `-key` or
 * `-crypt` fails every datagram, and kcptun's silence about it leaves users guessing.
 */
export const FAILURE_REPORT_MS = 60000;

/** One `crypt` stage instance around a {@link CryptSuite}. */
export class CryptStage implements PacketStage {
  /** Bytes added per datagram: 20, 28 for `aes-128-gcm`, 0 for `null`. */
  readonly overhead: number;
  /** The method and key in use. */
  readonly suite: CryptSuite;
  readonly #snmp: Snmp;
  readonly #minPayload: number;
  readonly #log: ((line: string) => void) | undefined;
  #ok = new Uint8Array(64);
  /** Failures since the last report, and when that was (-Infinity: never). */
  #unreported = 0;
  #reportedAt = -Infinity;
  readonly #replay: ReplayFilter | null;
  #unreportedReplays = 0;
  #replaysReportedAt = -Infinity;

  /**
   * A stage over `suite`, counting into `snmp`; integrity failures and replays are reported to
   * `log` (rate-limited, see {@link FAILURE_REPORT_MS}) when one is given. With `replay`
   * (`aes-128-gcm` suites only), datagrams whose nonce it saw before are dropped.
   */
  constructor(
    suite: CryptSuite,
    snmp: Snmp,
    minPayload: number = MIN_PAYLOAD_2021,
    log?: (line: string) => void,
    replay: ReplayFilter | null = null,
  ) {
    if (replay !== null && suite.method !== "aes-128-gcm") {
      throw new StageError(
        `crypt: replay protection needs -crypt aes-128-gcm (the only method that authenticates ` +
          `its nonce), not ${suite.method}`,
      );
    }
    this.suite = suite;
    this.overhead = suite.overhead;
    this.#snmp = snmp;
    this.#minPayload = minPayload;
    this.#log = log;
    this.#replay = replay;
  }

  /** The replay filter, or null when replays are not looked for. */
  get replayFilter(): ReplayFilter | null {
    return this.#replay;
  }

  /** Seals every packet of the batch in place. */
  encode(batch: PacketBatch, _now: number): void {
    this.suite.sealBatch(batch.packets, batch.length);
  }

  /** Opens every packet in place (batched); drops, releases and counts the ones that fail. */
  decode(batch: PacketBatch, now: number): void {
    const packets = batch.packets;
    const count = batch.length;
    if (this.#ok.length < count) this.#ok = new Uint8Array(count * 2);
    const ok = this.#ok;
    this.suite.openBatch(packets, count, ok);
    const min = this.#minPayload;
    const replay = this.#replay;
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const p = packets[i];
      if (ok[i] === 0) {
        this.#snmp.InCsumErrors++;
        if (this.#log !== undefined) this.#failed(p.peer, now);
        p.release();
      } else if (replay !== null && replay.seenBefore(p.buffer, p.start - GCM_NONCE_SIZE)) {
        this.#snmp.InReplays++;
        if (this.#log !== undefined) this.#replayed(p.peer, now);
        p.release();
      } else if (p.end - p.start < min) {
        this.#snmp.KCPInErrors++;
        p.release();
      } else {
        packets[kept++] = p;
      }
    }
    batch.length = kept;
  }

  #failed(from: PeerAddress | null, now: number): void {
    this.#unreported++;
    if (now - this.#reportedAt < FAILURE_REPORT_MS) return;
    const n = this.#unreported;
    this.#unreported = 0;
    this.#reportedAt = now;
    this.#log!(
      `crypt: ${n} datagram${n === 1 ? "" : "s"} failed the integrity check` +
        (from ? `, latest from ${from.key}` : "") +
        ` (InCsumErrors ${this.#snmp.InCsumErrors}): -key and -crypt must be the same on both` +
        ` ends (this end: -crypt ${this.suite.method})`,
    );
  }

  #replayed(from: PeerAddress | null, now: number): void {
    this.#unreportedReplays++;
    if (now - this.#replaysReportedAt < FAILURE_REPORT_MS) return;
    const n = this.#unreportedReplays;
    this.#unreportedReplays = 0;
    this.#replaysReportedAt = now;
    this.#log!(
      `crypt: ${n} datagram${n === 1 ? "" : "s"} dropped as ${n === 1 ? "a copy" : "copies"} of ` +
        `one already received (a replay, or a duplicate made by the network)` +
        (from ? `, latest from ${from.key}` : "") + ` (InReplays ${this.#snmp.InReplays})`,
    );
  }
}

/** Makes a {@link CryptStage} from stage options. */
export function createCryptStage(options: CryptStageOptions, ctx: StageContext): CryptStage {
  const suite = createCryptSuite(
    options.crypt ?? "aes",
    options.pass ?? options.key ?? DEFAULT_KEY,
    { generation: options.generation, nonces: options.nonces, engine: options.engine },
  );
  const window = options.replayWindow ?? 0;
  if (!Number.isInteger(window) || window < 0 || window > REPLAY_WINDOW_MAX) {
    throw new StageError(
      `crypt: replayWindow must be 0 (off) or a number of datagrams up to ${REPLAY_WINDOW_MAX}, ` +
        `got ${window}`,
    );
  }
  const replay = window > 0 ? new ReplayFilter(window) : null;
  return new CryptStage(suite, ctx.snmp, options.minPayload ?? MIN_PAYLOAD_2021, ctx.log, replay);
}

/** The `crypt` stage definition (options: `{ crypt, key }`, see {@link CryptStageOptions}). */
export const cryptStage: PacketStageDefinition<CryptStageOptions> = {
  name: "crypt",
  kind: "packet",
  description: "kcptun packet encryption (-crypt, -key): nonce + CRC32 header, or AES-GCM",
  shared: true,
  // PBKDF2 through WebCrypto, once per tunnel: `create` then finds the key in the cache instead
  // of running 4096 rounds of JavaScript (and the optimising compilers) at startup.
  prepare: async (options: CryptStageOptions): Promise<void> => {
    if (options.pass === undefined) await deriveKeyAsync(options.key ?? DEFAULT_KEY);
  },
  options: {
    crypt: { type: "string", description: "-crypt: the method (aes, salsa20, none, null, ...)" },
    key: { type: "string", description: "-key: the pre-shared secret" },
    pass: { type: "object", description: "an already derived 32-byte key (Uint8Array)" },
    generation: { type: "string", description: '"2021" or "2026": which method names exist' },
    minPayload: { type: "integer", description: "shorter decrypted payloads are dropped" },
    nonces: { type: "object", description: "a NonceSource (tests)" },
    engine: { type: "string", description: 'AES engine: "auto" or "js"' },
    replayWindow: {
      type: "integer",
      description: "aes-128-gcm: drop datagrams whose nonce was among the last N accepted (0: off)",
    },
  },
  create: createCryptStage,
};
