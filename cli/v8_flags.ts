/**
 * The V8 flags our client and server run with (the `client`/`server` tasks, compiled binaries,
 * the benchmarks). A 1 MiB young generation (V8's default grows it to 16 MiB and more under
 * load) makes the collector free short-lived byte buffers, the bulk of what a tunnel allocates,
 * long before they add up: peak resident memory under 100 streams fell from 108/130 MiB to
 * 88/92 MiB (client/server) at the same throughput (docs/performance.md, "Memory").
 *
 * @module
 */

/** The flags themselves. */
export const V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=1",
  "--no-concurrent-array-buffer-sweeping",
];

/** As one `deno run` / `deno compile` argument. */
export const V8_FLAGS_ARG: string = `--v8-flags=${V8_FLAGS.join(",")}`;
