/**
 * V1, the background validator is honest: (a) no install made by a validator's store read
 * puts a version in L1 older than the one L1 held just before; (b) every difference it
 * counted is real — L1 served the version it names when it counted it, and the store log
 * shows the store's newer version applied at least the key's bound before; (c) it never
 * finds L1 newer than the store (the core would have served a version the store never
 * reached, or the validator misread one).
 *
 * Design chosen: judge the validator's word against what the driver saw itself — the L1
 * versions around each install and at each verdict are read by the simulator from the
 * node's L1, and the store's versions from its own log with true times — so a validator
 * that lies about what it found, or counts too early (on a fast clock, without the drift
 * factor), is caught. Rejected: re-deriving every inconsistency from the read history
 * (E3 does that for eventual keys); the validator's figures would then go unchecked.
 *
 * @module
 */

import type { History, StoreLogEntry, ValidatorVerdictEntry } from "../history.ts";
import type { Report } from "./_version_checks.ts";

/** Slack for float times, ms. */
const EPSILON_MS = 1e-6;

/**
 * Checks V1 over `history.validator` and the store log; returns how many verdicts,
 * installs and checks it covered (0 without a validator part).
 *
 * @example A heal that installed version 2 over version 3
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkValidator } from "./validator.ts";
 * const violations: string[] = [];
 * checkValidator({
 *   format: "warp-history/1", keys: {}, ops: [], storeLog: [],
 *   validator: {
 *     verdicts: [],
 *     installs: [{ process: "n1", key: "k", version: 2, heldBefore: 3, atMs: 10 }],
 *   },
 * }, (v) => violations.push(v.guarantee));
 * assert.deepEqual(violations, ["V1"]);
 * ```
 */
export function checkValidator(history: History, report: Report): number {
  const validator = history.validator;
  if (validator === undefined) return 0;
  const v1 = (key: string, message: string) => report({ guarantee: "V1", key, ops: [], message });
  for (const install of validator.installs) {
    if (install.heldBefore !== null && install.version < install.heldBefore) {
      v1(
        install.key,
        `${install.process} installed version ${install.version} over version ${install.heldBefore} at ${install.atMs} ms (validator heal)`,
      );
    }
  }
  const applied = new Map<string, StoreLogEntry>();
  for (const entry of history.storeLog ?? []) applied.set(`${entry.version}@${entry.key}`, entry);
  for (const verdict of validator.verdicts) {
    const problem = verdictProblem(history, verdict, applied);
    if (problem !== undefined) {
      v1(verdict.key, `${verdict.process} at ${verdict.atMs} ms: ${problem}`);
    }
  }
  return validator.installs.length + validator.verdicts.length + (validator.checks ?? 0);
}

function verdictProblem(
  history: History,
  verdict: ValidatorVerdictEntry,
  applied: ReadonlyMap<string, StoreLogEntry>,
): string | undefined {
  const { key, cachedVersion, storeVersion } = verdict;
  if (verdict.verdict === "newer-than-store") {
    return `L1 held version ${cachedVersion}, newer than the store's ${storeVersion}`;
  }
  if (verdict.heldVersion !== null && verdict.heldVersion !== cachedVersion) {
    return `counted version ${cachedVersion} as ${verdict.verdict}, but L1 served version ${verdict.heldVersion}`;
  }
  if (history.storeLog === undefined) return undefined;
  const entry = applied.get(`${storeVersion}@${key}`);
  if (entry === undefined || storeVersion <= cachedVersion) {
    return `counted version ${cachedVersion} against store version ${storeVersion}, which the store never applied over it`;
  }
  const boundMs = boundOf(history, verdict);
  if (entry.atMs > verdict.atMs - boundMs + EPSILON_MS) {
    return `counted version ${cachedVersion} as ${verdict.verdict}, but the store applied version ${storeVersion} at ${entry.atMs} ms, less than the bound (${boundMs} ms) before`;
  }
  return undefined;
}

/** The key's bound on the node that counted: its staleness bound, its TTL, else the one reported. */
function boundOf(history: History, verdict: ValidatorVerdictEntry): number {
  const info = history.keys[verdict.key];
  if (info === undefined) return history.validator?.keyBoundsMs?.[verdict.key] ?? verdict.boundMs;
  const own = info.byProcess?.[verdict.process];
  switch (info?.mode) {
    case "eventual-distributed": {
      const staleness = own?.maxStalenessMs ?? info.maxStalenessMs ?? verdict.boundMs;
      return Math.min(staleness, own?.ttlMs ?? info.ttlMs ?? Infinity);
    }
    case "strong-local":
      return own?.ttlMs ?? info.ttlMs ?? verdict.boundMs;
    default:
      return verdict.boundMs;
  }
}
