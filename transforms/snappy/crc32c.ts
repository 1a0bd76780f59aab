/**
 * CRC-32C (Castagnoli), the checksum of the snappy framing format, and the "masked" form the
 * format stores. Table-driven, eight bytes per step (slicing-by-8): the checksum runs over every
 * byte that crosses the tunnel with compression on, so it is a hot path.
 *
 * @module
 */

/** The reflected Castagnoli polynomial. */
const POLY = 0x82f63b78;

/**
 * Eight 256-entry tables: T[k][b] is the CRC of byte b followed by k zero bytes. Filled by the
 * first checksum: at module load the loop would be optimised by V8, whose compiler code then
 * stays resident in idle processes (docs/performance.md, "Memory").
 */
const TABLES = new Uint32Array(8 * 256);
let ready = false;

function buildTables(t: Uint32Array): void {
  ready = true;
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + b] = c >>> 0;
    }
  }
}

/**
 * CRC-32C of `data[start, end)`, continuing from `crc` (0 for a fresh checksum).
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(
  data: Uint8Array,
  crc = 0,
  start = 0,
  end: number = data.length,
): number {
  if (native === undefined) native = loadNative();
  if (native !== null && end - start >= NATIVE_MIN) {
    const view = start === 0 && end === data.length ? data : data.subarray(start, end);
    return ~native(~crc >>> 0, view, end - start) >>> 0;
  }
  return crc32cJs(data, crc, start, end);
}

/** Which implementation {@link crc32c} uses for chunk-sized inputs here. */
export function crc32cEngine(): "ext2fs" | "js" {
  if (native === undefined) native = loadNative();
  return native === null ? "js" : "ext2fs";
}

/** Below this many bytes the FFI call costs more than the JavaScript loop. */
const NATIVE_MIN = 64;

type NativeCrc32c = (crc: number, data: Uint8Array, len: number) => number;

/**
 * e2fsprogs' `ext2fs_crc32c_le` (libext2fs.so.2, on every Debian system: 2.0 GB/s here against
 * 0.7–0.8 GB/s for the JavaScript below, and the checksum was a tenth of a default tunnel's CPU),
 * made on first use; null when it cannot be loaded (no FFI permission, not there).
 */
let native: NativeCrc32c | null | undefined;

function loadNative(): NativeCrc32c | null {
  if (Deno.build.os !== "linux") return null;
  try {
    const lib = Deno.dlopen("libext2fs.so.2", {
      ext2fs_crc32c_le: { parameters: ["u32", "buffer", "usize"], result: "u32" },
    });
    return lib.symbols.ext2fs_crc32c_le as unknown as NativeCrc32c;
  } catch {
    return null;
  }
}

/** The JavaScript CRC-32C (what {@link crc32c} uses without the native one, and for short inputs). */
export function crc32cJs(
  data: Uint8Array,
  crc = 0,
  start = 0,
  end: number = data.length,
): number {
  if (!ready) buildTables(TABLES);
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = start;
  // Slicing-by-8 over the aligned-length middle part; the tables fold eight bytes per step.
  const stop8 = end - ((end - i) & 7);
  while (i < stop8) {
    const lo = (c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>>
      0;
    c = t[1792 + (lo & 0xff)] ^ t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^ t[1024 + (lo >>> 24)] ^
      t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^ t[data[i + 7]];
    i += 8;
  }
  while (i < end) c = t[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The masked form of a CRC that the snappy framing format stores (rotate right by 15, add
 * 0xa282ead8), so that a checksum of data that itself holds checksums stays well distributed.
 */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The checksum a snappy chunk carries for its uncompressed bytes `data[start, end)`. */
export function snappyChecksum(data: Uint8Array, start = 0, end: number = data.length): number {
  return maskCrc(crc32c(data, 0, start, end));
}
