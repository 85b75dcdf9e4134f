/**
 * Test helper: a cluster of Warp nodes, each in its own process
 * (`test/_cluster_process.ts`), over real NATS and PostgreSQL. It sends commands, records
 * every operation into a {@linkcode History} the simulator's checkers read, can SIGKILL a
 * node, and can run a node's NATS connection through a {@linkcode TcpProxy} to cut it.
 * Every cluster uses its own table, KV bucket and subject prefix; `close` removes them.
 *
 * @module
 */

import postgres from "postgres";
import type { WarpStats } from "../mod.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { type History, HISTORY_FORMAT, type HistoryOp, type KeyInfo } from "../sim/history.ts";
import type { OpKind, OpRecord } from "./_cluster_process.ts";
import { epochMs } from "./_child_io.ts";
import { type ChildRecord, JsonLinesChild } from "./_json_lines_child.ts";
import { type BusKind, type CoordinatorKind, makeCoordinatorNamespace } from "./_stack.ts";

/** The shared NATS server of the test suite. */
export const NATS_URL = Deno.env.get("WARP_TEST_NATS_URL") ?? "127.0.0.1:4222";
/** The shared PostgreSQL database of the test suite. */
export const PG_URL = Deno.env.get("WARP_TEST_PG_URL") ?? "postgres://postgres@127.0.0.1:5432/test";
/** TTL of every key (the default of `register`). */
export const TTL_MS = 60_000;

const NODE_PROGRAM = new URL("./_cluster_process.ts", import.meta.url).pathname;

/** Options of {@linkcode ProcessCluster.start}. */
export interface ProcessClusterOptions {
  /** Node processes, named n1, n2, ... @default {3} */
  readonly size?: number;
  /**
   * The NATS server of the nodes and of the KV bucket, or a cluster's servers separated by
   * commas (`test/_nats_cluster.ts`). @default {NATS_URL}
   */
  readonly natsUrl?: string;
  /** Replicas of the coordinator's KV buckets (3 on a cluster of three). @default {1} */
  readonly replicas?: number;
  /**
   * Put a {@linkcode TcpProxy} between each node and NATS: `true` for its one connection,
   * `"bus"` for its bus alone (the bus then has its own connection, and the coordinator's
   * goes straight to the server, so cutting the proxy cuts the bus and nothing else).
   * @default {false}
   */
  readonly proxied?: boolean | "bus";
  /** PostgreSQL connection URL. @default {PG_URL} */
  readonly pgUrl?: string;
  /** maxStalenessMs of `ev:*`. @default {1000} */
  readonly stalenessMs?: number;
  /** leaseMs of `st:*`. @default {1000} */
  readonly leaseMs?: number;
  /** writeTimeoutMs of `st:*`. @default {5000} */
  readonly writeTimeoutMs?: number;
  /** Warp's `ioTimeoutMs`. @default {Warp's default} */
  readonly ioTimeoutMs?: number | undefined;
  /** NatsKvCoordinator's `timeoutMs`. @default {NatsKvCoordinator's default} */
  readonly coordinatorTimeoutMs?: number | undefined;
  /** Warp's `sessionMs` (0: sessions off). @default {Warp's default} */
  readonly sessionMs?: number | undefined;
  /** Warp's `heartbeatIntervalMs`. @default {100} */
  readonly heartbeatMs?: number;
  /** Warp's `gapTimeoutMs`. @default {200} */
  readonly gapTimeoutMs?: number;
  /** The nodes' bus (`test/_stack.ts`). @default {"nats"} */
  readonly bus?: BusKind;
  /** The nodes' coordinator (`test/_stack.ts`). @default {"nats"} */
  readonly coordinator?: CoordinatorKind;
  /** The Redis of a Redis bus. @default {REDIS_URL} */
  readonly redisUrl?: string;
}

/** One node process. */
export interface ClusterNode {
  /** The node id, `n1`, `n2`, ... */
  readonly id: string;
  /** Its process, driven through JSON lines. */
  readonly process: JsonLinesChild;
  /** The proxy between it and NATS (or its bus and NATS), if the cluster is proxied. */
  readonly proxy: TcpProxy | undefined;
  /** Whether it runs (not killed, not exited). */
  alive: boolean;
  /** Whether the cluster killed it (as opposed to it exiting on its own). */
  killed: boolean;
  /** The last lines it wrote to stderr, for failure messages. */
  readonly stderrTail: string[];
}

/** A record a node wrote on stdout. */
type NodeRecord = ChildRecord;

/** A history op while it is being recorded. */
type DraftOp = { -readonly [K in keyof HistoryOp]: HistoryOp[K] } & { error?: string };

/** The history mode of a key, from its prefix. */
function keyInfo(key: string, stalenessMs: number): KeyInfo {
  if (key.startsWith("ev:")) {
    return { mode: "eventual-distributed", maxStalenessMs: stalenessMs, ttlMs: TTL_MS };
  }
  if (key.startsWith("st:")) return { mode: "strong-distributed", ttlMs: TTL_MS };
  if (key.startsWith("sl:")) return { mode: "strong-local", ttlMs: TTL_MS };
  throw new TypeError(`Key of no registered mode: ${key}`);
}

/** A name unique to this run, valid as a table, bucket and subject token. */
function uniqueName(): string {
  return `warp_pc_${Date.now().toString(36)}_${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
}

/**
 * Three (or `size`) Warp node processes sharing a bus, a coordinator (NATS by default;
 * PostgreSQL, or a Redis bus, by the options) and a PostgreSQL table, with every operation
 * recorded for the checkers.
 */
export class ProcessCluster {
  readonly nodes: ClusterNode[] = [];
  readonly table: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly stalenessMs: number;
  readonly #options: ProcessClusterOptions;
  readonly #sql: postgres.Sql;
  readonly #namespace: { remove(): Promise<void> };
  readonly #ops: DraftOp[] = [];
  readonly #workloadOps = new Map<string, Map<number, DraftOp>>();
  readonly #events = new Map<string, NodeRecord[]>();
  #nextOp = 1;
  #closed = false;

  /**
   * Creates the table and the coordinator's namespace, spawns the nodes and waits until
   * each is connected. Rejects (after cleaning up) if a server cannot be reached.
   */
  static async start(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const name = uniqueName();
    const natsUrl = options.natsUrl ?? NATS_URL;
    const pgUrl = options.pgUrl ?? PG_URL;
    const sql = postgres(pgUrl, { onnotice: () => {}, max: 2 });
    let namespace: { remove(): Promise<void> };
    try {
      const store = await PostgresStore.connect({ sql, table: name, createTable: true });
      await store.close();
      namespace = await makeCoordinatorNamespace(options.coordinator ?? "nats", {
        nats: natsUrl,
        pg: pgUrl,
        bucket: name,
        replicas: options.replicas,
      });
    } catch (error) {
      await sql`DROP TABLE IF EXISTS ${sql(name)}`.catch(() => {});
      await sql.end({ timeout: 1 });
      throw error;
    }
    const cluster = new ProcessCluster(name, options, sql, namespace);
    // Every spawn settles (a node that failed closed itself) before the others are closed.
    const spawned = await Promise.allSettled(
      Array.from({ length: options.size ?? 3 }, (_, i) => cluster.#spawn(`n${i + 1}`, natsUrl)),
    );
    const failed = spawned.find((s) => s.status === "rejected");
    if (failed !== undefined) {
      await cluster.close();
      throw failed.reason;
    }
    return cluster;
  }

  private constructor(
    name: string,
    options: ProcessClusterOptions,
    sql: postgres.Sql,
    namespace: { remove(): Promise<void> },
  ) {
    this.table = name;
    this.bucket = name;
    this.prefix = `warp.${name}`;
    this.stalenessMs = options.stalenessMs ?? 1000;
    this.#options = options;
    this.#sql = sql;
    this.#namespace = namespace;
  }

  async #spawn(id: string, natsUrl: string): Promise<void> {
    const proxied = this.#options.proxied ?? false;
    const proxy = proxied === false ? undefined : await TcpProxy.start(natsUrl);
    this.#workloadOps.set(id, new Map());
    this.#events.set(id, []);
    let process: JsonLinesChild;
    try {
      process = await JsonLinesChild.spawn(NODE_PROGRAM, {
        name: `Node ${id}`,
        args: proxied === "bus"
          ? [...this.#args(id, natsUrl), `--bus-nats=${proxy!.url}`]
          : this.#args(id, proxy?.url ?? natsUrl),
        onRecord: (record) => this.#onRecord(id, record),
        onExit: () => {
          const node = this.nodes.find((n) => n.id === id);
          if (node !== undefined) node.alive = false;
        },
      });
    } catch (error) {
      await proxy?.close();
      throw error;
    }
    const node: ClusterNode = {
      id,
      process,
      proxy,
      alive: !process.exited,
      killed: false,
      stderrTail: process.stderrTail,
    };
    this.nodes.push(node);
    this.nodes.sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));
  }

  /** The arguments of node `id`'s program. */
  #args(id: string, natsUrl: string): string[] {
    const options = this.#options;
    return [
      `--node=${id}`,
      `--nats=${natsUrl}`,
      `--bucket=${this.bucket}`,
      `--pg=${options.pgUrl ?? PG_URL}`,
      `--table=${this.table}`,
      `--prefix=${this.prefix}`,
      `--staleness-ms=${this.stalenessMs}`,
      `--lease-ms=${options.leaseMs ?? 1000}`,
      `--write-timeout-ms=${options.writeTimeoutMs ?? 5000}`,
      ...(options.ioTimeoutMs === undefined ? [] : [`--io-timeout-ms=${options.ioTimeoutMs}`]),
      ...(options.coordinatorTimeoutMs === undefined
        ? []
        : [`--coordinator-timeout-ms=${options.coordinatorTimeoutMs}`]),
      ...(options.sessionMs === undefined ? [] : [`--session-ms=${options.sessionMs}`]),
      ...(options.heartbeatMs === undefined ? [] : [`--heartbeat-ms=${options.heartbeatMs}`]),
      ...(options.gapTimeoutMs === undefined ? [] : [`--gap-timeout-ms=${options.gapTimeoutMs}`]),
      `--bus=${options.bus ?? "nats"}`,
      `--coordinator=${options.coordinator ?? "nats"}`,
      ...(options.redisUrl === undefined ? [] : [`--redis=${options.redisUrl}`]),
      ...(options.replicas === undefined ? [] : [`--replicas=${options.replicas}`]),
    ];
  }

  /** The node with this id (`n1`...) or index (0...). */
  node(which: string | number): ClusterNode {
    const node = typeof which === "number"
      ? this.nodes[which]
      : this.nodes.find((n) => n.id === which);
    if (node === undefined) throw new RangeError(`No such node: ${which}`);
    return node;
  }

  /** Sends a command to a node and resolves to its `result` record. */
  command(which: string | number, command: Record<string, unknown>): Promise<NodeRecord> {
    const node = this.node(which);
    if (!node.alive) return Promise.reject(new Error(`Node ${node.id} is not running`));
    return node.process.send(command).then((record) => {
      // An operation's failure is its outcome; an error without one is the command's.
      if (typeof record.error === "string" && record.process === undefined) {
        throw new Error(`Node ${node.id}: ${record.error}`);
      }
      return record;
    });
  }

  /**
   * Runs one operation on a node and records it in the history. If the node dies first,
   * the op stays in the history as unknown, invoked when it was sent.
   */
  async operate(
    which: string | number,
    kind: OpKind,
    key: string,
    value?: unknown,
    probe = false,
  ): Promise<HistoryOp> {
    const node = this.node(which);
    const draft: DraftOp = {
      ...(probe && { probe }),
      id: this.#nextOp++,
      process: node.id,
      key,
      kind,
      ...(kind === "write" && { value }),
      invokeMs: epochMs(),
      completeMs: null,
      outcome: "unknown",
    };
    this.#ops.push(draft);
    const op = kind === "read" ? "get" : kind === "write" ? "set" : kind;
    let record: NodeRecord;
    try {
      record = await this.command(node.id, { op, key, value });
    } catch (error) {
      if (node.alive) throw error;
      return { ...draft };
    }
    Object.assign(draft, pickOp(record as unknown as OpRecord));
    return { ...draft };
  }

  /** Reads a key on a node (recorded). */
  get(which: string | number, key: string): Promise<HistoryOp> {
    return this.operate(which, "read", key);
  }

  /** A convergence probe (E4): a read made after faults and writes stopped. */
  probe(which: string | number, key: string): Promise<HistoryOp> {
    return this.operate(which, "read", key, undefined, true);
  }

  /** Writes a key on a node (recorded); the value should be unique in the history. */
  set(which: string | number, key: string, value: unknown): Promise<HistoryOp> {
    return this.operate(which, "write", key, value);
  }

  /**
   * Runs a node's random workload for `durationMs` (see `WorkloadCommand`); its
   * operations are recorded as they are invoked. Resolves to how many completed, or to
   * `undefined` if the node was killed first.
   */
  async workload(
    which: string | number,
    options: Record<string, unknown> & { durationMs: number },
  ): Promise<number | undefined> {
    const node = this.node(which);
    try {
      const record = await this.command(node.id, { op: "workload", ...options });
      return record.ops as number;
    } catch (error) {
      if (node.alive) throw error;
      return undefined;
    }
  }

  /** The node's workload operations invoked and not yet answered. */
  inFlight(which: string | number): HistoryOp[] {
    return [...this.#workloadOps.get(this.node(which).id)!.values()].map((draft) => ({ ...draft }));
  }

  /** Resolves to the next event (benchmark observation) of a node that `match`es. */
  event(
    which: string | number,
    match: (event: NodeRecord) => boolean,
    timeoutMs = 5000,
  ): Promise<NodeRecord> {
    const node = this.node(which);
    const queue = this.#events.get(node.id)!;
    return node.process.until(
      () => {
        const index = queue.findIndex(match);
        return index >= 0 ? queue.splice(index, 1)[0]! : undefined;
      },
      timeoutMs,
      "event",
    );
  }

  /** Kills a node with SIGKILL; its operations in flight stay unknown, never completed. */
  async kill(which: string | number): Promise<void> {
    const node = this.node(which);
    if (!node.alive) return;
    node.alive = false;
    node.killed = true;
    await node.process.kill();
  }

  /** Stops (SIGSTOP) or continues (SIGCONT) a node: a pause longer than its leases. */
  signal(which: string | number, signal: "SIGSTOP" | "SIGCONT"): void {
    const node = this.node(which);
    if (node.alive) node.process.signal(signal);
  }

  /** A node's counters: `warp` (Warp's stats) and `transport` (its bus's). */
  async stats(
    which: string | number,
  ): Promise<{ warp: WarpStats; transport: Record<string, number> }> {
    const record = await this.command(which, { op: "stats" });
    return {
      warp: record.warp as WarpStats,
      transport: record.transport as Record<string, number>,
    };
  }

  /** The recorded history, with `final` read from the table. */
  async history(): Promise<History> {
    const ops = this.#ops.map((draft) => {
      const { error: _error, ...op } = draft;
      return op as HistoryOp;
    });
    const keys: Record<string, KeyInfo> = {};
    for (const op of ops) keys[op.key] ??= keyInfo(op.key, this.stalenessMs);
    const final: Record<string, { version: number; value: unknown }> = {};
    for (const key of Object.keys(keys)) final[key] = { version: 0, value: null };
    const sql = this.#sql;
    const rows = await sql`SELECT key, value, version FROM ${sql(this.table)}`;
    const decoder = new TextDecoder();
    for (const row of rows) {
      if (!Object.hasOwn(keys, row.key)) continue;
      final[row.key] = {
        version: Number(row.version),
        value: row.value === null ? null : JSON.parse(decoder.decode(row.value)),
      };
    }
    return { format: HISTORY_FORMAT, keys, ops, final };
  }

  /** Operations that failed or have an unknown outcome, with their errors, for messages. */
  failures(): {
    id: number;
    process: string | number;
    kind: string;
    key: string;
    outcome: string;
    invokeMs: number;
    error: string;
  }[] {
    return this.#ops.filter((op) => op.outcome !== "ok").map((op) => ({
      id: op.id,
      process: op.process,
      kind: op.kind,
      key: op.key,
      outcome: op.outcome,
      invokeMs: op.invokeMs,
      error: op.error ?? "no answer (killed)",
    }));
  }

  /**
   * Stops every node (an `exit` command, then SIGKILL), the proxies, and removes the
   * table and the coordinator's namespace. Safe to call twice; never throws for a cleanup
   * step that fails.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.nodes.map(async (node) => {
      await node.process.close();
      node.alive = false;
      await node.proxy?.close();
    }));
    const sql = this.#sql;
    await sql`DROP TABLE IF EXISTS ${sql(this.table)}`.catch(() => {});
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${this.table}_version`)}`.catch(() => {});
    await sql.end({ timeout: 1 });
    await this.#namespace.remove();
  }

  #onRecord(id: string, record: NodeRecord): void {
    switch (record.type) {
      case "invoke": {
        const draft: DraftOp = {
          id: this.#nextOp++,
          process: id,
          key: record.key as string,
          kind: record.kind as OpKind,
          ...(record.value !== undefined && { value: record.value }),
          invokeMs: record.invokeMs as number,
          completeMs: null,
          outcome: "unknown",
        };
        this.#ops.push(draft);
        this.#workloadOps.get(id)!.set(record.n as number, draft);
        return;
      }
      case "complete": {
        const drafts = this.#workloadOps.get(id)!;
        const draft = drafts.get(record.n as number);
        if (draft === undefined) return;
        drafts.delete(record.n as number);
        Object.assign(draft, pickOp(record as unknown as OpRecord));
        return;
      }
      case "event":
        this.#events.get(id)!.push(record);
        return;
    }
  }
}

/** The history fields of a node's op record (its own invoke time replaces the send time). */
function pickOp(record: OpRecord): Partial<DraftOp> {
  const op: Partial<DraftOp> = {
    invokeMs: record.invokeMs,
    completeMs: record.completeMs,
    outcome: record.outcome,
  };
  if (record.version !== undefined && record.outcome === "ok" && record.kind !== "invalidate") {
    op.version = record.version;
  }
  if (record.kind === "read" && record.outcome === "ok") {
    op.found = record.found!;
    if (record.found) op.value = record.value;
    // The history format (sim/history.ts) knows l1 and store; these runs use neither
    // loader-backed keys nor fail-safe, so every other answer came through the store.
    op.source = record.source === "l1" ? "l1" : "store";
  }
  if (record.error !== undefined) op.error = record.error;
  return op;
}

/**
 * A TCP proxy in front of one server, to cut one client's connection while the others
 * go on. {@linkcode TcpProxy.blackhole} keeps the connections open but drops every byte
 * both ways (a partition the client does not notice until its requests time out);
 * {@linkcode TcpProxy.restore} then resets those connections (their streams lost bytes)
 * and forwards again, so the client reconnects.
 */
export class TcpProxy {
  readonly port: number;
  readonly #target: { hostname: string; port: number };
  readonly #listener: Deno.Listener;
  readonly #connections = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;
  #dropping = false;

  /** Listens on a free port of 127.0.0.1 and forwards to `target` (`host:port`). */
  static start(target: string): Promise<TcpProxy> {
    const [hostname, port] = target.replace(/^nats:\/\//, "").split(":");
    return Promise.resolve(new TcpProxy({ hostname: hostname!, port: Number(port ?? 4222) }));
  }

  private constructor(target: { hostname: string; port: number }) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  /** The proxy's address, for a client's `servers`. */
  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Drops every byte in both directions from now on, keeping the connections open. */
  blackhole(): void {
    this.#dropping = true;
  }

  /** Resets every connection and forwards again; the client reconnects. */
  restore(): void {
    this.#dropping = false;
    this.#closeConnections();
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    this.#closeConnections();
    await this.#accepting;
  }

  #closeConnections(): void {
    for (const conn of this.#connections) {
      try {
        conn.close();
      } catch {
        // Already closed by the other side.
      }
    }
    this.#connections.clear();
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        let server: Deno.Conn;
        try {
          server = await Deno.connect(this.#target);
        } catch {
          client.close();
          continue;
        }
        this.#connections.add(client);
        this.#connections.add(server);
        const pair = [client, server] as const;
        const done = () => {
          for (const conn of pair) {
            if (this.#connections.delete(conn)) {
              try {
                conn.close();
              } catch {
                // Already closed.
              }
            }
          }
        };
        this.#pump(client, server).finally(done);
        this.#pump(server, client).finally(done);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const read = await from.read(buffer);
        if (read === null) return;
        if (this.#dropping) continue;
        let written = 0;
        while (written < read) written += await to.write(buffer.subarray(written, read));
      }
    } catch {
      // One side closed: the pair ends.
    }
  }
}
