/**
 * Checks of the QPP settings, with kcptun 2026's judgement: a count of 0 or less cannot work;
 * a short key, few pads or an even count work but weaken the cipher, and only earn a warning.
 *
 * @module
 */

import { QPP_MAX_COUNT, QPP_MIN_KEY_BYTES, QPP_MIN_PADS } from "./pads.ts";

/** What {@link checkQppParams} found. */
export interface QppParamCheck {
  /** Why the settings cannot run, or null. */
  readonly error: string | null;
  /** Non-fatal advice, one line each (kcptun prints them in red after the settings). */
  readonly warnings: string[];
}

/**
 * Judges `-QPPCount` and the key length (in bytes, UTF-8, as kcptun counts it) for a run with
 * `-QPP`. Counts above {@link QPP_MAX_COUNT} are refused too: kcptun would silently use the
 * count modulo 65536.
 */
export function checkQppParams(count: number, keyBytes: number): QppParamCheck {
  if (count <= 0) {
    return { error: "QPPCount must be greater than 0 when QPP is enabled", warnings: [] };
  }
  if (count > QPP_MAX_COUNT) {
    return { error: `QPPCount must be at most ${QPP_MAX_COUNT}, got ${count}`, warnings: [] };
  }
  const warnings: string[] = [];
  if (keyBytes < QPP_MIN_KEY_BYTES) {
    warnings.push(
      `QPP Warning: 'key' has size of ${keyBytes} bytes, required ${QPP_MIN_KEY_BYTES} bytes at least`,
    );
  }
  if (count < QPP_MIN_PADS) {
    warnings.push(`QPP Warning: QPPCount ${count}, required ${QPP_MIN_PADS} at least`);
  }
  // kcptun asks for a count coprime with 8 (the bytes per PRNG output): that is, an odd count.
  if (count % 2 === 0) {
    warnings.push(`QPP Warning: QPPCount ${count}, choose a prime number for security`);
  }
  return { error: null, warnings };
}
