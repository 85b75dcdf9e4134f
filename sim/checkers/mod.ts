/**
 * Checkers for recorded histories: the guarantees of CONSISTENCY.md
 * ({@linkcode checkHistory}), linearizability against a named model
 * ({@linkcode checkModel}: register, cas-register, kv, append-kv), the generic
 * linearizability search under both ({@linkcode checkLinearizability}) with its models,
 * and an importer of Jepsen/Knossos EDN histories ({@linkcode importJepsenHistory}).
 * Usable on a history from any system that writes the documented format
 * (`sim/history.ts`).
 *
 * @example Checking a history
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHistory } from "./mod.ts";
 *
 * const { results } = checkHistory({
 *   format: "warp-history/1",
 *   keys: { k: { mode: "strong-distributed" } },
 *   ops: [
 *     { id: 1, process: "n1", key: "k", kind: "write", value: "a", version: 1, invokeMs: 0, completeMs: 1, outcome: "ok" },
 *     { id: 2, process: "n2", key: "k", kind: "read", value: "a", found: true, version: 1, invokeMs: 2, completeMs: 3, outcome: "ok" },
 *   ],
 * });
 * assert.equal(results.S1, "pass");
 * assert.equal(results.S2, "pass");
 * assert.equal(results.E1, "skipped");
 * ```
 *
 * @module
 */

export * from "./consistency.ts";
export * from "./jepsen.ts";
export * from "./linearizability.ts";
export * from "./model_check.ts";
export * from "./models.ts";
export * from "./validate_history.ts";
