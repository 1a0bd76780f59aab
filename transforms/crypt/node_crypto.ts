/**
 * `node:crypto`, loaded on first use rather than imported: importing it loads Deno's Node
 * compatibility layer, megabytes in every process (docs/performance.md, "Memory"), while only
 * the fallbacks need it (AES bulk calls without OpenSSL's libcrypto, and `aes-128-gcm`).
 *
 * @module
 */

/** The `node:crypto` module. */
export type NodeCrypto = typeof import("node:crypto");

let loaded: NodeCrypto | null | undefined;

/**
 * `node:crypto`, loaded synchronously on the first call (`process.getBuiltinModule`), or null
 * where the runtime has no such module.
 */
export function nodeCrypto(): NodeCrypto | null {
  if (loaded === undefined) {
    try {
      loaded = process.getBuiltinModule("node:crypto") ?? null;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}
