/**
 * Synthetic histories of a correct system, for tests and benchmarks of the checkers: a
 * linearizable store whose every op takes effect at one instant inside its interval.
 * Some writes fail (never applied) or have an unknown outcome (applied or not). The store
 * logs what it applied; L1 reads see the store at once, so propagation takes no longer than
 * the longest op.
 *
 * @module
 */

import type { History, HistoryOp, KeyInfo, StoreLogEntry } from "../history.ts";

/** Options of {@linkcode syntheticHistory}. */
export interface SyntheticOptions {
  readonly seed: number;
  readonly ops: number;
  /** Keys per mode. @default {4} */
  readonly keysPerMode?: number;
  /** Nodes. @default {5} */
  readonly nodes?: number;
  /** The longest op, in ms; longer ops overlap more. @default {5} */
  readonly durationMaxMs?: number;
}

/** A seeded generator of numbers in [0, 1) (mulberry32). */
export function random(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Planned {
  op: Omit<HistoryOp, "value" | "found" | "version"> & {
    value?: unknown;
    found?: boolean;
    version?: number;
  };
  atMs: number;
  applies: boolean;
}

/** A history of a correct store, with probe reads after the last op and the final state. */
export function syntheticHistory(options: SyntheticOptions): History {
  const rand = random(options.seed);
  const keysPerMode = options.keysPerMode ?? 4;
  const nodes = options.nodes ?? 5;
  const durationMaxMs = options.durationMaxMs ?? 5;
  const keys: Record<string, KeyInfo> = {};
  const modes = ["eventual-distributed", "strong-distributed", "strong-local"] as const;
  for (const mode of modes) {
    for (let i = 0; i < keysPerMode; i++) {
      keys[`${mode[0]}${mode.split("-")[1]![0]}:${i}`] = { mode, maxStalenessMs: 100, ttlMs: 1000 };
    }
  }
  const keyNames = Object.keys(keys);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const planned: Planned[] = [];
  let nowMs = 0;
  for (let id = 1; id <= options.ops; id++) {
    nowMs += rand() * 0.5;
    const key = pick(keyNames);
    const local = keys[key]!.mode === "strong-local";
    const isWrite = rand() < 0.3;
    // A strong-local key is written only by its own node, n0.
    const process = local && isWrite ? "n0" : `n${Math.floor(rand() * nodes)}`;
    const invokeMs = nowMs;
    const completeMs = invokeMs + rand() * durationMaxMs;
    const atMs = invokeMs + rand() * (completeMs - invokeMs);
    const roll = rand();
    const outcome = !isWrite || roll < 0.9 ? "ok" : roll < 0.95 ? "fail" : "unknown";
    const kind = !isWrite ? "read" : rand() < 0.1 ? "delete" : "write";
    planned.push({
      op: {
        id,
        process,
        key,
        kind,
        ...(kind === "write" ? { value: `${process}-${id}` } : {}),
        ...(kind === "read" ? { source: rand() < 0.5 ? "l1" : "store", ageMs: rand() * 999 } : {}),
        invokeMs,
        completeMs: outcome === "unknown" && rand() < 0.5 ? null : completeMs,
        outcome,
      },
      atMs,
      applies: outcome === "ok" || (outcome === "unknown" && rand() < 0.5),
    });
  }
  for (const key of keyNames) {
    for (let n = 0; n < nodes; n++) {
      const invokeMs = nowMs + 1000 + n;
      planned.push({
        op: {
          id: planned.length + 1,
          process: `n${n}`,
          key,
          kind: "read",
          probe: true,
          source: "store",
          invokeMs,
          completeMs: invokeMs + 1,
          outcome: "ok",
        },
        atMs: invokeMs + 0.5,
        applies: true,
      });
    }
  }
  const store = new Map<string, { version: number; value: unknown }>();
  const storeLog: StoreLogEntry[] = [];
  for (const { op, applies, atMs } of [...planned].sort((a, b) => a.atMs - b.atMs)) {
    if (!applies) continue;
    const current = store.get(op.key) ?? { version: 0, value: null };
    if (op.kind === "read") {
      op.found = current.value !== null;
      if (op.found) op.value = current.value;
      op.version = current.version;
    } else {
      const next = { version: current.version + 1, value: op.kind === "write" ? op.value : null };
      store.set(op.key, next);
      storeLog.push(
        op.kind === "write"
          ? { key: op.key, version: next.version, value: op.value, atMs }
          : { key: op.key, version: next.version, deleted: true, atMs },
      );
      if (op.outcome === "ok") op.version = next.version;
    }
  }
  return {
    format: "warp-history/1",
    keys,
    ops: planned.map((p) => p.op as HistoryOp),
    final: Object.fromEntries(store),
    storeLog,
    propagation: { fromMs: 0, boundMs: durationMaxMs, healBoundMs: durationMaxMs, samples: [] },
  };
}
