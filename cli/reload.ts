/**
 * What a `SIGHUP` reload may change: the running settings against the ones the `-c` file gives
 * now. Settings marked `reload` in the settings table (`-log`, `-snmplog`, `-snmpperiod`,
 * `-quiet`) are applied by `cli/run.ts`; every other changed setting needs a restart and is
 * only named, so that the log says the file and the process disagree.
 *
 * ```ts
 * import { parseServerConfig } from "./config.ts";
 * import { compareConfigs } from "./reload.ts";
 * const a = parseServerConfig(["-quiet=false", "-mtu", "1350"]);
 * const b = parseServerConfig(["-quiet", "-mtu", "1200"]);
 * if (a.kind !== "run" || b.kind !== "run") throw new Error("config");
 * const diff = compareConfigs(a.config, b.config);
 * if (diff.reloadable[0].key !== "quiet" || diff.restart[0] !== "mtu") throw new Error("diff");
 * ```
 *
 * @module
 */

import type { ClientConfig, ServerConfig } from "./config.ts";
import { goQuote } from "./flags.ts";
import { type Setting, type SettingKey, SETTINGS, settingsOf } from "./settings.ts";

/** Either end's resolved configuration. */
export type AnyConfig = ClientConfig | ServerConfig;

/** The settings a `SIGHUP` applies without a restart, by key, in table order. */
export const RELOADABLE_SETTINGS: readonly SettingKey[] = SETTINGS.filter((s) => s.reload).map(
  (s) => s.key,
);

/** One setting whose value differs. */
export interface SettingChange {
  /** The setting's key (its name in the config objects). */
  readonly key: SettingKey;
  /** The running value. */
  readonly from: unknown;
  /** The value the file gives now. */
  readonly to: unknown;
}

/** How a re-read configuration differs from the running one. */
export interface ConfigDiff {
  /** Changed settings a reload applies, in table order. */
  readonly reloadable: readonly SettingChange[];
  /**
   * Changed settings that need a restart, as their JSON keys, in table order. Names only: the
   * values may be secret (`key`).
   */
  readonly restart: readonly string[];
}

/** The config object's field for a setting (one key is spelt differently there). */
function fieldOf(s: Setting<SettingKey>): string {
  return s.key === "pipelineoptions" ? "pipelineOptions" : s.key;
}

/**
 * Compares every setting of `running`'s role. Values are compared as JSON, so pipelines and
 * stage options compare by content.
 */
export function compareConfigs(running: AnyConfig, next: AnyConfig): ConfigDiff {
  const reloadable: SettingChange[] = [];
  const restart: string[] = [];
  const a = running as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  for (const s of settingsOf(running.role)) {
    const f = fieldOf(s);
    if (JSON.stringify(a[f]) === JSON.stringify(b[f])) continue;
    if (s.reload) reloadable.push({ key: s.key, from: a[f], to: b[f] });
    else restart.push(s.json);
  }
  return { reloadable, restart };
}

/** A value for a reload line: strings quoted as Go quotes them (an empty path shows `""`). */
function shown(v: unknown): string {
  return typeof v === "string" ? goQuote(v) : String(v);
}

/** `quiet false -> true`, `log "" -> "/var/log/kcptun-ts/server.log"`. */
export function describeChange(c: SettingChange): string {
  return `${c.key} ${shown(c.from)} -> ${shown(c.to)}`;
}

/** The startup warnings of `next` that `running` did not have (an unknown key added since). */
export function newWarnings(running: AnyConfig, next: AnyConfig): string[] {
  const had = new Set(running.warnings);
  return next.warnings.filter((w) => !had.has(w));
}
