/**
 * Private: the loader-backed part of the cache scenario — keys whose values come from the
 * application's loader over its own source (`origin: "loader"`), and the application
 * that writes that source and then calls `invalidate(key)`.
 *
 * The source is a second {@linkcode SimStore} (the application's database, not Warp's
 * store): linearizable, with the run's store latency, errors and latency spikes, so a load
 * is slow, fails or outlives its timeouts exactly when a store read would. The simulated
 * loader reads it and tags the value it returns with the load's id (`value|L<id>`), so
 * every answer names the load it came from, and the checker (`checkers/loader.ts`) can
 * hold it to LB1–LB3 and F1–F3 stated over load starts. Each node's drops of a loader key
 * (`drop` and `revoke` messages delivered, its own eventual or strong-local `invalidate`)
 * are logged with their place in one order with load starts and answers.
 *
 * Registrations are drawn per seed on their own stream (TTL, staleness bound, cache
 * lease, soft and hard timeouts, fail-safe on some modes, refresh-ahead, TTL jitter) and
 * are the same on every node; the workload has its own streams too (operations, the
 * source), so it changes none of the draws of the store-backed workload — only the bus
 * and coordinator traffic its keys add.
 *
 * Rejected: loading through the cluster's store. The loads would then share the store's
 * random stream, shifting every store-backed draw, and a source write would be a Warp
 * write — the opposite of what loader-backed keys are for.
 *
 * @module
 */

import type { NodeCore } from "../src/core/node.ts";
import type { Effect, LoadResult, OpResult } from "../src/core/effects.ts";
import { WarpError } from "../src/core/errors.ts";
import type { Message } from "../src/core/messages.ts";
import type { ConsistencyMode, KeyOptions, ReadOptions } from "../src/core/registry.ts";
import { deriveSeed, Prng } from "./prng.ts";
import { SimStore } from "./_store.ts";
import type { StoreMix } from "./_store.ts";
import type { ProcessHost, SimProcess } from "./_processes.ts";
import type { Timeline } from "./_timeline.ts";
import type {
  DropLogEntry,
  LoaderHistory,
  LoaderKeyInfo,
  LoaderOp,
  LoadLogEntry,
  StoreLogEntry,
} from "./history.ts";

/** Op ids of the loader workload start here, apart from the store-backed workload's. */
export const LOADER_OP_BASE = 1_000_000_000;

/** The canaries that break a loader-backed rule in the core. */
export type LoaderCanary = "fallback-serves-removed" | "cache-overtaken-loads";

/** Options of a {@linkcode LoaderWorkload}. */
export interface LoaderWorkloadOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly modes: readonly ConsistencyMode[];
  readonly keysPerMode: number;
  readonly safetyMs: number;
  /** When clients stop issuing operations. */
  readonly endMs: number;
  /** Loader-key operations per simulated second per node. */
  readonly opsPerSecondPerNode: number;
  /** The source's latency and error rate (the run's store mix). */
  readonly mix: StoreMix;
  /** Most loader-key operations in flight per node. */
  readonly inflightPerNode: number;
  /** A loader canary: registrations that expose it quickly. @default {undefined} */
  readonly canary?: LoaderCanary;
}

/** What the workload needs of its cluster. */
export interface LoaderDriver<P extends SimProcess<NodeCore>> {
  readonly timeline: Timeline;
  readonly host: ProcessHost<NodeCore, P>;
  readonly nodes: readonly P[];
  /** Reads per `loader <mode>/<phase>`, split into L1 and the rest. */
  readonly hits: Record<string, { l1: number; store: number }>;
  /** What the node's clock reads now. */
  local(node: P): number;
  /** Whether clients issue operations now. */
  issuing(): boolean;
  /** Counts a client operation issued (the run's op count). */
  counted(): void;
}

type LoaderKey = { readonly key: string; readonly mode: ConsistencyMode; readonly owner?: number };
type OpDraft = { -readonly [K in keyof LoaderOp]: LoaderOp[K] };
type LoadDraft = { -readonly [K in keyof LoadLogEntry]: LoadLogEntry[K] };
type LoadEffect = Extract<Effect, { type: "load" }>;

const PATTERNS: Record<ConsistencyMode, string> = {
  "strong-local": "ldl",
  "eventual-distributed": "lde",
  "strong-distributed": "lds",
};

/**
 * The loader-backed workload of one run.
 *
 * @example
 * ```ts
 * import { SimCluster } from "./cluster.ts";
 * const run = new SimCluster({ seed: 3, nodes: 3, safetyMs: 300, livenessMs: 300 }).run();
 * console.log(run.history.loaders!.loads.length > 0); // true
 * ```
 */
export class LoaderWorkload<P extends SimProcess<NodeCore>> {
  readonly #o: LoaderWorkloadOptions;
  readonly #d: LoaderDriver<P>;
  readonly #prng: Prng;
  readonly #source: SimStore;
  readonly #registrations: Record<string, KeyOptions> = {};
  readonly #info: Record<string, LoaderKeyInfo> = {};
  readonly #keys: LoaderKey[] = [];
  readonly #ops: OpDraft[] = [];
  readonly #pending = new Map<number, OpDraft>();
  readonly #inflight: number[];
  readonly #loads: LoadDraft[] = [];
  /** Loads in flight by `node/incarnation/io`, and whether they were aborted. */
  readonly #running = new Map<string, { aborted: boolean }>();
  readonly #drops: DropLogEntry[] = [];
  readonly #sourceLog: StoreLogEntry[] = [];
  #seq = 0;
  #nextOp = LOADER_OP_BASE;

  /** Draws the registrations and keys; nothing runs until {@linkcode start}. */
  constructor(options: LoaderWorkloadOptions, driver: LoaderDriver<P>) {
    this.#o = options;
    this.#d = driver;
    this.#prng = new Prng(deriveSeed(options.seed, "loader-workload"));
    this.#source = new SimStore(
      driver.timeline,
      options.nodes,
      new Prng(deriveSeed(options.seed, "loader-source")),
      options.mix,
    );
    this.#inflight = new Array(options.nodes).fill(0);
    this.#draw(new Prng(deriveSeed(options.seed, "loader-config")));
  }

  /** The registrations every node makes. */
  get registrations(): Readonly<Record<string, KeyOptions>> {
    return this.#registrations;
  }

  /** The source, for the run's faults (latency spikes, heal). */
  get source(): SimStore {
    return this.#source;
  }

  /** Whether `op` is one of this workload's. */
  owns(op: number): boolean {
    return op >= LOADER_OP_BASE;
  }

  #draw(prng: Prng): void {
    const canary = this.#o.canary;
    for (const mode of this.#o.modes) {
      const ttlMs = Math.round(prng.range(150, 1500));
      const strong = mode === "strong-distributed";
      // Fail-safe on most eventual and strong-local registrations; on a strong one only
      // sometimes (F3: reads of the others ask for it per call).
      const failSafe = canary === "fallback-serves-removed" || prng.chance(strong ? 0.3 : 0.7);
      const soft = canary === "fallback-serves-removed" || prng.chance(0.5);
      const options: KeyOptions = {
        mode,
        origin: "loader",
        ttlMs,
        ...(mode === "eventual-distributed" &&
          { maxStalenessMs: Math.min(ttlMs, Math.round(prng.range(100, 400))) }),
        ...(strong && { leaseMs: Math.round(prng.range(100, 400)) }),
        writeTimeoutMs: 1500,
        readTimeoutMs: 1000,
        hardTimeoutMs: Math.round(prng.range(20, 200)),
        ...(soft && { softTimeoutMs: canary ? 1 : Math.round(prng.range(1, 8)) }),
        failSafeMaxMs: failSafe ? Math.round(prng.range(200, 2000)) : 0,
        failSafeThrottleMs: Math.round(prng.range(20, 300)),
        refreshAheadRatio: prng.range(0.5, 0.9),
        ...(prng.chance(0.5) && { ttlJitterRatio: 0.2 }),
      };
      const pattern = PATTERNS[mode];
      this.#registrations[`${pattern}:*`] = options;
      for (let k = 0; k < this.#o.keysPerMode; k++) {
        const owners = mode === "strong-local" ? this.#o.nodes : 1;
        for (let i = 0; i < owners; i++) {
          const local = mode === "strong-local";
          const key = local ? `${pattern}:n${i}:${k}` : `${pattern}:${k}`;
          this.#keys.push({ key, mode, ...(local && { owner: i }) });
          this.#info[key] = {
            mode,
            ttlMs,
            failSafeMaxMs: options.failSafeMaxMs ?? 0,
            ...(options.maxStalenessMs !== undefined &&
              { maxStalenessMs: options.maxStalenessMs }),
          };
        }
      }
    }
  }

  /** Registers the loader-backed patterns on a node's new core. */
  register(core: NodeCore): void {
    for (const [pattern, options] of Object.entries(this.#registrations)) {
      core.register(pattern, options);
    }
  }

  /** Schedules every node's client operations. */
  start(): void {
    if (this.#keys.length === 0) return;
    for (const node of this.#d.nodes) this.#schedule(node);
  }

  #schedule(node: P): void {
    const rate = this.#o.opsPerSecondPerNode;
    if (rate <= 0) return;
    const next = this.#d.timeline.now + this.#prng.exp(1000 / rate);
    if (next >= this.#o.endMs) return;
    this.#d.timeline.at(next, () => {
      this.#clientOp(node);
      this.#schedule(node);
    });
  }

  #clientOp(node: P): void {
    const w = this.#prng;
    // Drawn whatever the node's state, so that faults do not shift the workload.
    let picked = w.pick(this.#keys);
    const roll = w.float();
    const ask = w.chance(0.3);
    const core = node.core;
    if (!this.#d.issuing() || core === undefined || node.pausedUntil > this.#d.timeline.now) {
      return;
    }
    if (this.#inflight[node.index]! >= this.#o.inflightPerNode) return;
    if (picked.owner !== undefined && picked.owner !== node.index) {
      // Another node's strong-local key: this node's own of the same slot.
      const own = picked.key.replace(/:n\d+:/, `:n${node.index}:`);
      picked = this.#keys.find((k) => k.key === own)!;
    }
    if (roll < 0.8) this.#read(node, core, picked, ask);
    else if (roll < 0.95) this.#appWrite(node, core, picked);
    else this.#invalidate(node, core, picked.key);
  }

  #draft(node: P, key: string, kind: LoaderOp["kind"]): OpDraft {
    const draft: OpDraft = {
      id: this.#nextOp++,
      process: node.id,
      key,
      kind,
      invokeMs: this.#d.timeline.now,
      completeMs: null,
      outcome: "unknown",
    };
    this.#ops.push(draft);
    this.#pending.set(draft.id, draft);
    this.#inflight[node.index]!++;
    this.#d.counted();
    return draft;
  }

  /** A read; one in three of a key without fail-safe asks for it on the call. */
  #read(node: P, core: NodeCore, key: LoaderKey, ask: boolean): void {
    const draft = this.#draft(node, key.key, "read");
    const registered = this.#info[key.key]!.failSafeMaxMs;
    const options: ReadOptions | undefined = registered === 0 && ask
      ? { failSafeMaxMs: 1000 }
      : undefined;
    draft.failSafeMs = options?.failSafeMaxMs ?? registered;
    this.#d.host.step(node, core, (c) => c.get(draft.id, key.key, this.#d.local(node), options));
  }

  /**
   * The application's write: its source first, then `invalidate` on the same node once
   * the source answered (whatever it answered: a failed write may have landed).
   */
  #appWrite(node: P, core: NodeCore, key: LoaderKey): void {
    const value = `${node.id}-s${this.#nextOp}`;
    this.#inflight[node.index]!++; // the source write, until the invalidate takes over
    this.#d.host.calling(node, "store-call");
    this.#source.call(node.index, () => {
      const result = this.#source.write(key.key, value, undefined);
      if (result.ok) {
        this.#sourceLog.push({
          key: key.key,
          version: result.version,
          value,
          atMs: this.#d.timeline.now,
        });
      }
      return result;
    }, () => {
      this.#d.host.whenRunning(node, core, () => {
        this.#inflight[node.index]!--;
        this.#invalidate(node, core, key.key);
      });
    });
  }

  #invalidate(node: P, core: NodeCore, key: string): void {
    const draft = this.#draft(node, key, "invalidate");
    const mode = this.#info[key]!.mode;
    // An eventual or strong-local invalidate drops the key here at once; a strong one only
    // at its revoke phase, which the log cannot see (a drop missing from it hides nothing).
    if (mode !== "strong-distributed") this.#drop(node, key);
    this.#d.host.step(node, core, (c) => c.invalidate(draft.id, key, this.#d.local(node)));
  }

  #drop(node: P, key: string): void {
    this.#drops.push({ process: node.id, key, atMs: this.#d.timeline.now, seq: ++this.#seq });
  }

  /** A message is about to be delivered to `node`'s core: logs the drops of loader keys. */
  delivering(node: P, message: Message): void {
    if (message.t !== "drop" && message.t !== "revoke") return;
    if (this.#info[message.key] !== undefined) this.#drop(node, message.key);
  }

  /** Performs a `load` or `load-abort` effect of `node`'s core. */
  perform(node: P, core: NodeCore, effect: LoadEffect | { type: "load-abort"; io: number }): void {
    const tag = `${node.index}/${node.incarnation}/${effect.io}`;
    if (effect.type === "load-abort") {
      const running = this.#running.get(tag);
      if (running !== undefined) running.aborted = true;
      return;
    }
    const w = this.#prng;
    const info = this.#info[effect.key];
    if (info === undefined) {
      // Not a loader key of this workload: nothing can load it.
      const error = new WarpError("LOADER_ERROR", `No loader: ${effect.key}`);
      this.#d.host.deliver(
        node,
        core,
        (c) => c.onLoad(effect.io, { ok: false, error }, this.#d.local(node)),
      );
      return;
    }
    // The loader sets its entry's TTL now and then (adaptive TTL), or asks not to cache.
    const ownTtlMs = w.chance(0.2) ? Math.round(w.range(50, info.ttlMs)) : undefined;
    const noCache = w.chance(0.05);
    const load: LoadDraft = {
      id: this.#loads.length + 1,
      process: node.id,
      key: effect.key,
      startMs: this.#d.timeline.now,
      startSeq: ++this.#seq,
      ttlMs: ownTtlMs ?? info.ttlMs,
    };
    this.#loads.push(load);
    const running = { aborted: false };
    this.#running.set(tag, running);
    this.#d.host.calling(node, "store-call");
    this.#source.call(node.index, () => {
      const cell = this.#source.cell(effect.key);
      load.version = cell?.version ?? 0;
      load.value = cell?.found ? cell.value : null;
      return cell;
    }, (cell) => {
      this.#running.delete(tag);
      if (running.aborted) return;
      let result: LoadResult;
      if (cell !== undefined && "ok" in cell) {
        result = {
          ok: false,
          error: new WarpError("LOADER_ERROR", `Source read failed: ${effect.key}`),
        };
      } else {
        result = {
          ok: true,
          found: cell?.found ?? false,
          value: `${cell?.found ? cell.value : "absent"}|L${load.id}`,
          sizeBytes: 16,
          ...(ownTtlMs !== undefined && { ttlMs: ownTtlMs }),
          ...(noCache && { cache: false }),
        };
      }
      this.#d.host.deliver(node, core, (c) => c.onLoad(effect.io, result, this.#d.local(node)));
    });
  }

  /** Caller op `op` of `node` succeeded. */
  resolve(node: P, op: number, result: OpResult): void {
    const draft = this.#pending.get(op);
    if (draft === undefined) return;
    this.#settle(node, draft);
    draft.completeMs = this.#d.timeline.now;
    draft.outcome = "ok";
    if (draft.kind !== "read") return;
    const [value, load] = untag(result.value);
    draft.found = result.found;
    draft.value = result.found ? value : null;
    if (load !== undefined) draft.load = load;
    draft.source = result.source === "l1" || result.source === "fallback"
      ? result.source
      : "loader";
    draft.stale = result.stale === true;
    draft.answerSeq = ++this.#seq;
    const phase = draft.invokeMs < this.#o.safetyMs ? "safety" : "liveness";
    const bucket = (this.#d.hits[`loader ${this.#info[draft.key]!.mode}/${phase}`] ??= {
      l1: 0,
      store: 0,
    });
    bucket[draft.source === "l1" ? "l1" : "store"]++;
  }

  /** Caller op `op` of `node` failed: a read certainly did nothing; an invalidate may have. */
  reject(node: P, op: number): void {
    const draft = this.#pending.get(op);
    if (draft === undefined) return;
    this.#settle(node, draft);
    if (draft.kind === "read") {
      draft.completeMs = this.#d.timeline.now;
      draft.outcome = "fail";
    }
  }

  #settle(node: P, draft: OpDraft): void {
    this.#pending.delete(draft.id);
    this.#inflight[node.index]!--;
  }

  /** `node` crashed: its operations stay unknown, its loads are gone. */
  crashed(node: P): void {
    for (const [id, draft] of this.#pending) {
      if (draft.process === node.id) this.#pending.delete(id);
    }
    this.#inflight[node.index] = 0;
  }

  /** The loader-backed part of the run's history. */
  history(): LoaderHistory {
    return {
      keys: { ...this.#info },
      ops: this.#ops.map((d) => ({ ...d })),
      loads: this.#loads.map((d) => ({ ...d })),
      drops: [...this.#drops],
      sourceLog: [...this.#sourceLog],
    };
  }
}

/** Splits a tagged loader value `value|L<id>` into the source value and the load's id. */
function untag(tagged: unknown): [unknown, number | undefined] {
  if (typeof tagged !== "string") return [tagged, undefined];
  const at = tagged.lastIndexOf("|L");
  if (at < 0) return [tagged, undefined];
  const value = tagged.slice(0, at);
  return [value === "absent" ? null : value, Number(tagged.slice(at + 2))];
}
