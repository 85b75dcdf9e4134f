/**
 * Test program: one Warp node in its own process, over a real bus and coordinator (NATS by
 * default; `--bus` and `--coordinator`, see `test/_stack.ts`) and PostgreSQL, driven
 * through JSON lines, for the lease tests (`test/_lease_tests.ts`).
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env --allow-sys test/_lease_process.ts \
 *   --node a --nats 127.0.0.1:4222 --bucket warp_x --pg postgres://postgres@127.0.0.1:5432/test \
 *   --table warp_x --prefix warp.x [--lease-check-ms 200] [--bus nats|postgres|redis] \
 *   [--coordinator nats|postgres]
 * ```
 *
 * Keys: `ev:*` eventual-distributed, `st:*` strong-distributed, `sl:*` strong-local.
 *
 * **stdin**, one command per line, answered in any order (commands run concurrently):
 * - `{"id": 1, "op": "grant", "ttlMs": 5000}` → `lease`;
 * - `{"id": 2, "op": "set", "key": "ev:1", "value": "v", "lease": "<id>"}` → `version`
 *   (`lease` optional);
 * - `{"id": 3, "op": "read", "key": "ev:1"}` → `found`, `value`, `version`, `source`;
 * - `{"id": 4, "op": "keepAlive" | "revoke", "lease": "<id>"}`;
 * - `{"id": 5, "op": "readLoop", "keys": ["ev:1"], "durationMs": 1000, "pauseMs": 5}` →
 *   `reads`: every read of `keys`, one after another, until `durationMs` has passed;
 * - `{"id": 6, "op": "stats"}` → `warp`; `{"id": 7, "op": "exit"}`.
 *
 * **stdout**, one JSON record per line: `{"type": "ready", "node": "a"}` once connected;
 * `{"type": "result", "id", "invokeMs", "completeMs", ...}` the answer to a command, with
 * `code` and `error` if it failed.
 *
 * Times are epoch milliseconds, `performance.timeOrigin + performance.now()`: monotonic
 * within the process and comparable across processes on one machine.
 *
 * @module
 */

import postgres from "postgres";
import { Warp, WarpError } from "../mod.ts";
import type { ReadResult } from "../mod.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { openStack, type Stack, stackKinds } from "./_stack.ts";
import { type Command, emit, epochMs, parseProgramOptions, serveCommands } from "./_child_io.ts";

/** One read as a node reports it. */
export interface LeaseRead {
  readonly key: string;
  readonly invokeMs: number;
  readonly completeMs: number;
  readonly found?: boolean;
  readonly value?: unknown;
  readonly version?: number;
  readonly source?: ReadResult<unknown>["source"];
  /** `CODE: message` when the read failed. */
  readonly error?: string;
}

const DURATION_MAX_MS = 120_000;

/** The options of a lease node: the common ones, `--lease-check-ms` and its stack. */
function parseOptions() {
  const { options, ms, text } = parseProgramOptions({ "lease-check-ms": 200 }, {}, [
    "bus",
    "coordinator",
  ]);
  return { ...options, leaseCheckMs: ms["lease-check-ms"], ...stackKinds(text) };
}

type Options = ReturnType<typeof parseOptions>;

function errorText(error: unknown): { code: string; error: string } {
  if (error instanceof WarpError) {
    return { code: error.code, error: `${error.code}: ${error.message}` };
  }
  const name = error instanceof Error ? error.name : "Error";
  return { code: name, error: String(error) };
}

function ms(command: Command, name: string, fallback: number): number {
  const value = command[name] ?? fallback;
  if (typeof value !== "number" || !(value >= 0) || value > DURATION_MAX_MS) {
    throw new RangeError(`Invalid ${name}: ${String(value)}`);
  }
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One node process: its connections and its Warp. */
class LeaseNode {
  readonly #stack: Stack;
  readonly #sql: postgres.Sql;
  readonly #store: PostgresStore;
  readonly warp: Warp<unknown>;

  static async start(options: Options): Promise<LeaseNode> {
    const stack = await openStack(options);
    const sql = postgres(options.pg, { onnotice: () => {}, max: 4 });
    const store = await PostgresStore.connect({ sql, table: options.table });
    return new LeaseNode(options, stack, sql, store);
  }

  private constructor(options: Options, stack: Stack, sql: postgres.Sql, store: PostgresStore) {
    this.#stack = stack;
    this.#sql = sql;
    this.#store = store;
    this.warp = new Warp<unknown>({
      store,
      coordinator: stack.coordinator,
      transport: stack.transport,
      nodeId: options.node,
      prefix: options.prefix,
      heartbeatIntervalMs: 100,
      gapTimeoutMs: 200,
      leaseCheckMs: options.leaseCheckMs,
    });
    this.warp.register("ev:*", { mode: "eventual-distributed", maxStalenessMs: 1000 });
    this.warp.register("st:*", {
      mode: "strong-distributed",
      leaseMs: 1000,
      writeTimeoutMs: 5000,
    });
    this.warp.register("sl:*", { mode: "strong-local" });
  }

  async read(key: string): Promise<LeaseRead> {
    const invokeMs = epochMs();
    try {
      const read = await this.warp.read(key);
      return {
        key,
        invokeMs,
        completeMs: epochMs(),
        found: read.found,
        ...(read.found && { value: read.value }),
        version: read.version,
        source: read.source,
      };
    } catch (error) {
      return { key, invokeMs, completeMs: epochMs(), error: errorText(error).error };
    }
  }

  async #readLoop(command: Command): Promise<Record<string, unknown>> {
    const keys = command.keys;
    if (!Array.isArray(keys) || keys.length === 0) throw new TypeError("Invalid keys");
    const durationMs = ms(command, "durationMs", 1000);
    const pauseMs = ms(command, "pauseMs", 5);
    const reads: LeaseRead[] = [];
    const deadline = epochMs() + durationMs;
    while (epochMs() < deadline) {
      for (const key of keys) reads.push(await this.read(String(key)));
      if (pauseMs > 0) await sleep(pauseMs);
    }
    return { reads };
  }

  /** Runs a command; resolves to the fields of its answer, rejects if it failed. */
  async #run(command: Command): Promise<Record<string, unknown>> {
    const warp = this.warp;
    switch (command.op) {
      case "grant":
        return { lease: await warp.grantLease({ ttlMs: command.ttlMs as number }) };
      case "set": {
        const lease = command.lease as string | undefined;
        const options = lease === undefined ? undefined : { lease };
        return { version: await warp.set(command.key as string, command.value, options) };
      }
      case "read":
        return { ...(await this.read(command.key as string)) };
      case "keepAlive":
        await warp.keepAlive(command.lease as string);
        return {};
      case "revoke":
        await warp.revokeLease(command.lease as string);
        return {};
      case "readLoop":
        return await this.#readLoop(command);
      case "stats":
        return { warp: warp.stats };
      default:
        throw new TypeError(`Unknown op: ${command.op}`);
    }
  }

  async handle(command: Command): Promise<void> {
    if (command.op === "exit") {
      await this.close();
      emit({ type: "result", id: command.id });
      Deno.exit(0);
    }
    const invokeMs = epochMs();
    try {
      const fields = await this.#run(command);
      emit({ ...fields, type: "result", id: command.id, invokeMs, completeMs: epochMs() });
    } catch (error) {
      emit({
        type: "result",
        id: command.id,
        invokeMs,
        completeMs: epochMs(),
        ...errorText(error),
      });
    }
  }

  async close(): Promise<void> {
    await this.warp.close();
    await this.#stack.close();
    await this.#store.close();
    await this.#sql.end({ timeout: 1 });
  }
}

async function main(): Promise<void> {
  const options = parseOptions();
  const node = await LeaseNode.start(options);
  emit({ type: "ready", node: options.node });
  await serveCommands((command) => node.handle(command));
  await node.close();
}

if (import.meta.main) await main();
