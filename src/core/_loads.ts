/**
 * Loads: calls of the application's loader, which the driver runs as an effect (`load`,
 * reported with `NodeCore.onLoad`) exactly like a store read — the core never calls user
 * code. This module owns what every load has whoever started it: the `load` effect, the
 * hard timeout (past it the driver is told to abort the loader's signal, `load-abort`, and
 * the load's owner hears `TIMEOUT` at once, so its key is free for the next reader), and
 * the abort of every load when the node closes.
 *
 * Two owners start loads. The read path (`_fills.ts`) loads a loader-backed key on a miss,
 * as its fill: single flight, a holder registration first for strong-distributed keys,
 * and the invalidation epoch that keeps an overtaken load out of L1 (LB1). And
 * {@linkcode Loads.run} runs `getOrSet`'s loader for a store-backed key whose store read
 * found nothing: it answers the value, and the runtime writes it to the store (which
 * installs it, under the store's version).
 *
 * Rejected: running the loader in the runtime with its own timers — timeouts, aborts and
 * `close()` would then be implemented twice (runtime and core), and the simulator, which
 * drives only the core, could not check them.
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import type { LoadResult } from "./effects.ts";
import type { ReadSettings } from "./registry.ts";
import type { NodeKernel } from "./_kernel.ts";

/** The stale value handed to a loader's context. */
export type StaleValue = { readonly found: boolean; readonly value: unknown } | undefined;

/** The loads of one node. */
export class Loads {
  readonly #k: NodeKernel;
  /** The hard-timeout timer of each load in flight, by the load's io. */
  readonly #timers = new Map<number, number>();

  /** Makes the loads of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel) {
    this.#k = kernel;
  }

  /**
   * Starts a load of `key` for caller op `op` (`undefined`: a background load, with no
   * caller waiting). `then` gets the loader's outcome, or `TIMEOUT` once `hardTimeoutMs`
   * has passed (the loader is then aborted, and its late report ignored). Returns the io.
   */
  start(
    key: string,
    op: number | undefined,
    stale: StaleValue,
    hardTimeoutMs: number,
    then: (result: LoadResult) => void,
  ): number {
    const k = this.#k;
    k.stats.loads++;
    const io = k.load(key, op, stale, (result) => {
      k.disarm(this.#timers.get(io) ?? 0);
      this.#timers.delete(io);
      then(result);
    });
    const timer = k.arm(k.now + hardTimeoutMs, () => {
      this.#timers.delete(io);
      k.stats.loadTimeouts++;
      if (k.events !== undefined) k.note({ type: "load-timeout", key, hardTimeoutMs });
      k.abortLoad(io);
      then({
        ok: false,
        error: new WarpError(
          "TIMEOUT",
          `Loader did not settle within hardTimeoutMs (${hardTimeoutMs} ms), aborted: ${key}`,
        ),
      });
    });
    this.#timers.set(io, timer);
    return io;
  }

  /** Abandons load `io` (overtaken, or no longer wanted): its loader is aborted. */
  abort(io: number): void {
    this.#k.disarm(this.#timers.get(io) ?? 0);
    this.#timers.delete(io);
    this.#k.abortLoad(io);
  }

  /**
   * Runs the loader of store-backed `key` as caller op `op` (admitted by `NodeCore`):
   * `getOrSet` after its store read found nothing. Answers the value (`source: "loader"`),
   * installs nothing: the runtime writes it to the store, conditionally on the version
   * that read found, and that write installs it. Its deadline is the hard timeout.
   */
  run(op: number, key: string, settings: ReadSettings): void {
    const k = this.#k;
    k.ops.set(op, { kind: "read", key, timer: 0, fill: undefined, settings, softTimer: 0 });
    this.start(key, op, undefined, settings.hardTimeoutMs, (result) => {
      if (!k.ops.has(op)) return;
      if (!result.ok) {
        k.reject(op, result.error);
        return;
      }
      k.resolve(op, {
        found: result.found,
        value: result.value,
        version: 0,
        source: "loader",
        stale: false,
        freshForMs: 0,
      });
    });
  }

  /** The node closes: every load in flight is aborted. */
  abortAll(): void {
    for (const io of [...this.#k.loads.keys()]) this.abort(io);
  }
}

/**
 * Why `result` is not a well-formed {@linkcode LoadResult}, or `undefined`: the driver
 * reports it, and a malformed report is the driver's bug (a `TypeError`).
 *
 * @example
 * ```ts
 * import { loadResultProblem } from "./_loads.ts";
 * console.log(loadResultProblem({ ok: true, found: true, value: 1, sizeBytes: 1 })); // undefined
 * console.log(loadResultProblem({ ok: true, found: true, value: 1, sizeBytes: -1 })); // "sizeBytes -1"
 * ```
 */
export function loadResultProblem(result: LoadResult): string | undefined {
  if (typeof result !== "object" || result === null) return "not an object";
  if (!result.ok) return result.error instanceof WarpError ? undefined : "error not a WarpError";
  if (typeof result.found !== "boolean") return `found ${String(result.found)}`;
  if (!(Number.isFinite(result.sizeBytes) && result.sizeBytes >= 0)) {
    return `sizeBytes ${String(result.sizeBytes)}`;
  }
  const ttlMs = result.ttlMs;
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) return `ttlMs ${ttlMs}`;
  if (result.cache !== undefined && typeof result.cache !== "boolean") {
    return `cache ${String(result.cache)}`;
  }
  return undefined;
}
