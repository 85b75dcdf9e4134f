/**
 * Test program: one Warp node in its own process, over a real bus and coordinator (NATS by
 * default; see `--bus` and `--coordinator`) and a PostgreSQL store, driven through JSON
 * lines. The harness (`test/_process_cluster.ts`) and the benchmarks spawn several of these.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env --allow-sys test/_cluster_process.ts \
 *   --node n1 --nats 127.0.0.1:4222 --bucket warp_x --pg postgres://postgres@127.0.0.1:5432/test \
 *   --table warp_x --prefix warp.x [--staleness-ms 1000] [--lease-ms 1000] [--write-timeout-ms 5000] \
 *   [--heartbeat-ms 100] [--gap-timeout-ms 200] [--io-timeout-ms N] [--coordinator-timeout-ms N] \
 *   [--session-ms N] [--bus-nats host:port] [--bus nats|postgres|redis] \
 *   [--coordinator nats|postgres] [--redis redis://host:port] [--replicas 3]
 * ```
 *
 * `--bus` and `--coordinator` choose the stack (`test/_stack.ts`; default NATS for both):
 * the PostgreSQL ones use `--pg`, the Redis bus `--redis`.
 *
 * `--session-ms` is Warp's `sessionMs` (absent: Warp's default; 0: sessions off).
 * `--bus-nats` gives the bus its own NATS connection to that server (a proxy, say, that a
 * test cuts), while the coordinator keeps its connection to `--nats`.
 *
 * Keys: `ev:*` eventual-distributed (`--staleness-ms`), `st:*` strong-distributed
 * (`--lease-ms`, `--write-timeout-ms`), `sl:*` strong-local.
 *
 * **stdin**, one command per line, answered in any order (commands run concurrently):
 * `{"id": 1, "op": "get"|"set"|"delete"|"invalidate", "key": "ev:1", "value": "v"}`,
 * `{"id": 2, "op": "stats"}`, `{"id": 3, "op": "exit"}`, `{"id": 5, "op": "increment",
 * "key": "st:c", "count": 50}` (`update` increments, see `increment`), `{"id": 4, "op": "workload",
 * "durationMs": 5000, ...}` (see {@linkcode WorkloadCommand}), and for the benchmark
 * `peek`, `watch`, `rawsub`, `rawpub`, `rawreply`, `baseline`, `rawincrement`.
 *
 * **stdout**, one JSON record per line:
 * - `{"type": "ready", "node": "n1"}` once connected;
 * - `{"type": "result", "id": 1, ...}` the answer to command 1; for an operation it holds
 *   an {@linkcode OpRecord};
 * - `{"type": "invoke", "n": 7, ...}` before a workload operation is started (written
 *   synchronously, so a SIGKILL cannot lose an operation that may have reached the store)
 *   and `{"type": "complete", "n": 7, ...}` when it ends;
 * - `{"type": "event", ...}` what a benchmark command observed.
 *
 * Times are epoch milliseconds, `performance.timeOrigin + performance.now()`: monotonic
 * within the process and comparable across processes on one machine.
 *
 * @module
 */

import postgres from "postgres";
import { Warp, WarpError } from "../mod.ts";
import type { Coordinator, ReadResult, Transport, TransportStatus, Unsubscribe } from "../mod.ts";
import { PostgresStore, reconnectBackoff } from "../src/postgres/mod.ts";
import { openStack, type Stack, stackKinds } from "./_stack.ts";
import { type Command, emit, epochMs, parseProgramOptions, serveCommands } from "./_child_io.ts";
import { Prng } from "../sim/prng.ts";

/** The kinds of operation a node records, as in the history format. */
export type OpKind = "read" | "write" | "delete" | "invalidate";

/** What a node records about one operation (the history op without its global id). */
export interface OpRecord {
  readonly process: string;
  readonly key: string;
  readonly kind: OpKind;
  readonly value?: unknown;
  readonly found?: boolean;
  readonly version?: number;
  readonly source?: ReadResult<unknown>["source"];
  readonly invokeMs: number;
  readonly completeMs: number | null;
  readonly outcome: "ok" | "fail" | "unknown";
  /** The error's code and message, when the operation failed. */
  readonly error?: string;
}

/** The `workload` command: random operations on a few keys of each mode until `durationMs`. */
export interface WorkloadCommand {
  readonly id: number;
  readonly op: "workload";
  readonly durationMs: number;
  /** Keys per mode: `ev:0..`, `st:0..`, and this node's own `sl:<node>:0..`. @default {3} */
  readonly keys?: number;
  /** Operations in flight at once. @default {3} */
  readonly concurrency?: number;
  /** Most random pause between one worker's operations. @default {5} */
  readonly thinkMs?: number;
  /**
   * Operations a second the node starts in all, spread evenly over the workers (each
   * starts its next operation a fixed interval after its last one started, at once if it
   * is late); replaces `thinkMs`, so a benchmark's rate does not depend on how fast the
   * operations are. @default {undefined} (`thinkMs` pauses)
   */
  readonly opsPerSecond?: number;
  /** Share of reads; the rest is 80% writes, 12% deletes, 8% invalidations. @default {0.6} */
  readonly readShare?: number;
  /** Seed of the operation mix. @default {1} */
  readonly seed?: number;
  /** Modes to use. @default {["ev", "st", "sl"]} */
  readonly modes?: readonly ("ev" | "st" | "sl")[];
}

/**
 * Error codes after which a write certainly did not happen (as in the simulator); any
 * other failure of a write leaves its outcome unknown. A read that fails did nothing.
 */
const DEFINITE_FAILURES: ReadonlySet<string> = new Set([
  "UNREGISTERED_KEY",
  "COORDINATOR_UNAVAILABLE",
  "CONTENDED",
  "LIMIT_EXCEEDED",
  "STORE_CONFLICT",
]);

/** Whether a failed operation certainly did not happen. */
export function failureOutcome(kind: OpKind, error: unknown): "fail" | "unknown" {
  if (kind === "read") return "fail";
  // Argument errors (TypeError, RangeError) are thrown before anything happens.
  if (!(error instanceof WarpError)) return "fail";
  return DEFINITE_FAILURES.has(error.code) ? "fail" : "unknown";
}

const encoder = new TextEncoder();

/**
 * A transport that tells a listener after each delivered bus message, so a benchmark can
 * see the instant an invalidation took an entry out of L1 without polling.
 */
class ObservedTransport implements Transport {
  readonly #inner: Transport;
  readonly #afterDelivery: () => void;

  constructor(inner: Transport, afterDelivery: () => void) {
    this.#inner = inner;
    this.#afterDelivery = afterDelivery;
  }

  publish(subject: string, data: Uint8Array): void {
    this.#inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    return this.#inner.subscribe(subject, (data) => {
      handler(data);
      this.#afterDelivery();
    });
  }

  onStatus(listener: (status: TransportStatus) => void): void {
    this.#inner.onStatus?.(listener);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** The options of a cluster node: the common ones (or `WARP_NODE_*`) and its timings. */
function parseOptions() {
  const { options, ms, text } = parseProgramOptions(
    {
      "staleness-ms": 1000,
      "lease-ms": 1000,
      "write-timeout-ms": 5000,
      "heartbeat-ms": 100,
      "gap-timeout-ms": 200,
      // Absent: Warp's and NatsKvCoordinator's own defaults.
      "io-timeout-ms": undefined,
      "coordinator-timeout-ms": undefined,
      "session-ms": undefined,
    },
    { env: "WARP_NODE" },
    ["bus-nats", "bus", "coordinator", "redis", "replicas"],
  );
  return {
    ...options,
    stalenessMs: ms["staleness-ms"],
    leaseMs: ms["lease-ms"],
    writeTimeoutMs: ms["write-timeout-ms"],
    heartbeatMs: ms["heartbeat-ms"],
    gapTimeoutMs: ms["gap-timeout-ms"],
    ioTimeoutMs: ms["io-timeout-ms"],
    coordinatorTimeoutMs: ms["coordinator-timeout-ms"],
    sessionMs: ms["session-ms"],
    busNats: text["bus-nats"],
    redis: text.redis,
    replicas: text.replicas === undefined ? undefined : Number(text.replicas),
    ...stackKinds(text),
  };
}

/** One node process: its connections, its Warp, and what the benchmark commands watch. */
class NodeProcess {
  readonly options: ReturnType<typeof parseOptions>;
  readonly stack: Stack;
  readonly coordinator: Coordinator;
  readonly sql: postgres.Sql;
  readonly store: PostgresStore;
  readonly warp: Warp<unknown>;
  readonly #watched = new Set<string>();
  readonly #rawSubjects = new Set<string>();
  #nextOp = 1;

  static async start(options: ReturnType<typeof parseOptions>): Promise<NodeProcess> {
    const stack = await openStack(options);
    const sql = postgres(options.pg, { onnotice: () => {}, max: 4, backoff: reconnectBackoff });
    const store = await PostgresStore.connect({ sql, table: options.table });
    return new NodeProcess(options, stack, sql, store);
  }

  private constructor(
    options: ReturnType<typeof parseOptions>,
    stack: Stack,
    sql: postgres.Sql,
    store: PostgresStore,
  ) {
    this.options = options;
    this.stack = stack;
    this.coordinator = stack.coordinator;
    this.sql = sql;
    this.store = store;
    const coordinator = stack.coordinator;
    this.warp = new Warp<unknown>({
      store,
      coordinator,
      transport: new ObservedTransport(stack.transport, () => this.#checkWatched()),
      nodeId: options.node,
      prefix: options.prefix,
      heartbeatIntervalMs: options.heartbeatMs,
      gapTimeoutMs: options.gapTimeoutMs,
      ...(options.ioTimeoutMs !== undefined && { ioTimeoutMs: options.ioTimeoutMs }),
      ...(options.sessionMs !== undefined && { sessionMs: options.sessionMs }),
    });
    this.warp.register("ev:*", {
      mode: "eventual-distributed",
      maxStalenessMs: options.stalenessMs,
    });
    this.warp.register("st:*", {
      mode: "strong-distributed",
      leaseMs: options.leaseMs,
      writeTimeoutMs: options.writeTimeoutMs,
    });
    this.warp.register("sl:*", { mode: "strong-local" });
  }

  /**
   * `count` increments of `key` with `update`, two in flight: how many were acknowledged,
   * lost every race (`conflict`), certainly failed, or have an unknown outcome (a store
   * or bus failure after the write may have landed), and the milliseconds each ok one took.
   */
  async increment(key: string, count: number): Promise<{
    ok: number;
    conflict: number;
    failed: number;
    unknown: number;
    attempts: number;
    latenciesMs: number[];
    errors: string[];
  }> {
    const tally = {
      ok: 0,
      conflict: 0,
      failed: 0,
      unknown: 0,
      attempts: 0,
      latenciesMs: [] as number[],
      errors: [] as string[],
    };
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const startMs = performance.now();
        try {
          const result = await this.warp.update(
            key,
            (n) => ((n as number | undefined) ?? 0) + 1,
            { attemptsMax: 100, backoffMaxMs: 50 },
          );
          tally.attempts += result.attempts;
          if (result.status === "ok") {
            tally.ok++;
            tally.latenciesMs.push(performance.now() - startMs);
          } else tally.conflict++;
        } catch (error) {
          if (failureOutcome("write", error) === "fail") tally.failed++;
          else tally.unknown++;
          if (tally.errors.length < 5) {
            tally.errors.push(error instanceof WarpError ? error.code : String(error));
          }
        }
      }
    };
    await Promise.all([worker(), worker()]);
    return tally;
  }

  /**
   * The baseline of `increment`: `count` plain `UPDATE … SET n = n + 1` statements on row 1
   * of `table` (made by the caller), two in flight; the milliseconds each took.
   */
  async rawIncrement(table: string, count: number): Promise<{ latenciesMs: number[] }> {
    const sql = this.sql;
    const latenciesMs: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const startMs = performance.now();
        await sql`UPDATE ${sql(table)} SET n = n + 1 WHERE id = 1`;
        latenciesMs.push(performance.now() - startMs);
      }
    };
    await Promise.all([worker(), worker()]);
    return { latenciesMs };
  }

  /** Runs one operation and records it; never rejects. */
  async operate(kind: OpKind, key: string, value?: unknown): Promise<OpRecord> {
    const base = { process: this.options.node, key, kind, ...(kind === "write" && { value }) };
    const invokeMs = epochMs();
    try {
      switch (kind) {
        case "read": {
          const read = await this.warp.read(key);
          return {
            ...base,
            invokeMs,
            completeMs: epochMs(),
            outcome: "ok",
            found: read.found,
            ...(read.found && { value: read.value }),
            version: read.version,
            source: read.source,
          };
        }
        case "write": {
          const version = await this.warp.set(key, value);
          return { ...base, invokeMs, completeMs: epochMs(), outcome: "ok", version };
        }
        case "delete": {
          const version = await this.warp.delete(key);
          return { ...base, invokeMs, completeMs: epochMs(), outcome: "ok", version };
        }
        case "invalidate":
          await this.warp.invalidate(key);
          return { ...base, invokeMs, completeMs: epochMs(), outcome: "ok" };
      }
    } catch (error) {
      const completeMs = epochMs();
      const outcome = failureOutcome(kind, error);
      const text = error instanceof WarpError ? `${error.code}: ${error.message}` : String(error);
      // As in the simulator, an unknown outcome stays open to the end of the history.
      return {
        ...base,
        invokeMs,
        completeMs: outcome === "unknown" ? null : completeMs,
        outcome,
        error: text,
      };
    }
  }

  async handle(command: Command): Promise<void> {
    const { id, op } = command;
    const key = command.key as string;
    switch (op) {
      case "get":
      case "set":
      case "delete":
      case "invalidate": {
        const kind: OpKind = op === "get" ? "read" : op === "set" ? "write" : op;
        emit({ type: "result", id, ...(await this.operate(kind, key, command.value)) });
        return;
      }
      case "workload":
        emit({
          type: "result",
          id,
          ops: await this.workload(command as unknown as WorkloadCommand),
        });
        return;
      case "stats":
        emit({ type: "result", id, warp: this.warp.stats, transport: this.stack.transport.stats });
        return;
      case "increment":
        emit({ type: "result", id, ...(await this.increment(key, command.count as number)) });
        return;
      case "rawincrement":
        emit({
          type: "result",
          id,
          ...(await this.rawIncrement(command.table as string, command.count as number)),
        });
        return;
      case "peek":
        emit({ type: "result", id, cached: this.warp.peek(key) !== undefined, atMs: epochMs() });
        return;
      case "watch":
        // Reports (an event) the first delivery after which `key` is no longer in L1.
        this.#watched.add(key);
        emit({ type: "result", id });
        return;
      case "rawsub": {
        // Reports each delivery on `subject` with the sequence number it carries.
        const subject = command.subject as string;
        if (!this.#rawSubjects.has(subject)) {
          this.#rawSubjects.add(subject);
          await this.stack.rawSubscribe(subject, (seq) => {
            emit({ type: "event", event: "raw", subject, seq, atMs: epochMs() });
          });
        }
        emit({ type: "result", id });
        return;
      }
      case "rawpub": {
        const atMs = epochMs();
        await this.stack.rawPublish(command.subject as string, command.seq as number);
        emit({ type: "result", id, atMs });
        return;
      }
      case "rawreply": {
        const subject = command.subject as string;
        if (!this.#rawSubjects.has(subject)) {
          this.#rawSubjects.add(subject);
          this.#nats().subscribe(subject, {
            callback: (_error, msg) => {
              msg.respond(new Uint8Array(16));
            },
          });
          await this.#nats().flush();
        }
        emit({ type: "result", id });
        return;
      }
      case "baseline":
        emit({ type: "result", id, ...(await this.baseline(command)) });
        return;
      case "exit":
        await this.close();
        emit({ type: "result", id });
        Deno.exit(0);
        break;
      default:
        emit({ type: "result", id, error: `Unknown op: ${op}` });
    }
  }

  /**
   * A raw NATS request/reply round trip, then a raw Postgres write of one row (the
   * baseline, `totalMs`); then, timed apart, a KV read and compare-and-set (`kvMs`).
   */
  async baseline(command: Command): Promise<Record<string, number>> {
    const sql = this.sql;
    const start = epochMs();
    await this.#nats().request(command.subject as string, new Uint8Array(64), {
      timeout: 2000,
    });
    const replied = epochMs();
    await sql`
      UPDATE ${sql(this.options.table)}
      SET value = ${encoder.encode(JSON.stringify(`raw-${start}`))}, version = version + 1
      WHERE key = ${command.key as string}`;
    const end = epochMs();
    // What a strong write needs besides: reading its holder record and a compare-and-set.
    const kvKey = `bench-raw/${this.options.node}`;
    const entry = await this.coordinator.get(kvKey);
    if (entry === undefined) await this.coordinator.create(kvKey, new Uint8Array(8));
    else await this.coordinator.update(kvKey, new Uint8Array(8), entry.revision);
    const kvEnd = epochMs();
    return {
      totalMs: end - start,
      requestMs: replied - start,
      storeMs: end - replied,
      kvMs: kvEnd - end,
    };
  }

  /** Random operations from `concurrency` workers, each streamed as invoke then complete. */
  async workload(command: WorkloadCommand): Promise<number> {
    const node = this.options.node;
    const prng = new Prng(command.seed ?? 1);
    const keysPerMode = command.keys ?? 3;
    const modes = command.modes ?? ["ev", "st", "sl"];
    const keys = modes.flatMap((mode) =>
      Array.from(
        { length: keysPerMode },
        (_, i) => mode === "sl" ? `sl:${node}:${i}` : `${mode}:${i}`,
      )
    );
    const readShare = command.readShare ?? 0.6;
    const thinkMs = command.thinkMs ?? 5;
    const concurrency = command.concurrency ?? 3;
    // Paced: each worker starts an operation every `intervalMs`, the workers staggered.
    const intervalMs = command.opsPerSecond === undefined
      ? undefined
      : concurrency * 1000 / command.opsPerSecond;
    const startMs = epochMs();
    const endMs = startMs + command.durationMs;
    let ops = 0;
    const worker = async (w: number) => {
      let nextMs = startMs + (intervalMs ?? 0) * w / concurrency;
      while (epochMs() < endMs) {
        if (intervalMs !== undefined) {
          const waitMs = nextMs - epochMs();
          if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
          nextMs += intervalMs;
          if (epochMs() >= endMs) break;
        }
        const key = prng.pick(keys);
        const roll = prng.float();
        const rest = (roll - readShare) / (1 - readShare);
        const kind: OpKind = roll < readShare
          ? "read"
          : rest < 0.8
          ? "write"
          : rest < 0.92
          ? "delete"
          : "invalidate";
        const n = this.#nextOp++;
        const value = kind === "write" ? `${node}-${n}` : undefined;
        emit({ type: "invoke", n, key, kind, invokeMs: epochMs(), ...(value && { value }) });
        const record = await this.operate(kind, key, value);
        emit({ type: "complete", n, ...record });
        ops++;
        if (intervalMs === undefined && thinkMs > 0) {
          await new Promise((resolve) => setTimeout(resolve, prng.float() * thinkMs));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
    return ops;
  }

  /** The bus's NATS connection, for the NATS-only baselines. */
  #nats() {
    const nc = this.stack.natsConnection;
    if (nc === undefined) throw new TypeError(`A NATS baseline on a ${this.options.bus} bus`);
    return nc;
  }

  #checkWatched(): void {
    if (this.#watched.size === 0) return;
    for (const key of this.#watched) {
      if (this.warp.peek(key) !== undefined) continue;
      this.#watched.delete(key);
      emit({ type: "event", event: "evicted", key, atMs: epochMs() });
    }
  }

  async close(): Promise<void> {
    await this.warp.close();
    await this.stack.close();
    await this.store.close();
    await this.sql.end({ timeout: 1 });
  }
}

async function main(): Promise<void> {
  const node = await NodeProcess.start(parseOptions());
  emit({ type: "ready", node: node.options.node });
  await serveCommands((command) =>
    node.handle(command).catch((error) => {
      emit({ type: "result", id: command.id, error: String(error?.stack ?? error) });
    })
  );
  await node.close();
}

if (import.meta.main) await main();
