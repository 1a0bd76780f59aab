/**
 * Decoding of the constant tables that ciphers keep as hex text.
 *
 * @module
 */

/** Concatenates `lines` and parses them as big-endian 32-bit words (8 hex digits each). */
export function hexWords(lines: readonly string[]): Uint32Array {
  const text = lines.join("");
  const out = new Uint32Array(text.length >>> 3);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 8, 8), 16);
  return out;
}

/** Concatenates `lines` and parses them as bytes (2 hex digits each). */
export function fromHexText(lines: readonly string[]): Uint8Array {
  const text = lines.join("");
  const out = new Uint8Array(text.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}
