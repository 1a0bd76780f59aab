/**
 * The KCP layer: wire format ({@link parseDatagram}, header accessors), the sans-IO ARQ core
 * ({@link Kcp}) and kcptun's mode presets ({@link modeParams}).
 *
 * @module
 */

export * from "./wire.ts";
export * from "./segment.ts";
export * from "./arq.ts";
export * from "./modes.ts";
