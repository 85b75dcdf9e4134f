/**
 * Test program: one process contending for a Warp lock over a real coordinator (NATS
 * JetStream KV, or PostgreSQL with `--coordinator postgres`) and writing a fenced counter
 * in PostgreSQL under it, driven through JSON lines. The lock tests
 * (`test/_lock_tests.ts`) spawn several of these and SIGKILL some.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env --allow-sys test/_lock_process.ts \
 *   --node a --nats 127.0.0.1:4222 --bucket warp_lock_x \
 *   --pg postgres://postgres@127.0.0.1:5432/test --table warp_lock_x [--prefix warp] \
 *   [--coordinator nats|postgres] [--replicas 3]
 * ```
 *
 * Each option may come from the environment instead: `WARP_LOCK_NODE`, `WARP_LOCK_NATS`,
 * `WARP_LOCK_BUCKET`, `WARP_LOCK_PG`, `WARP_LOCK_TABLE`, `WARP_LOCK_PREFIX`. The table
 * must exist (see {@linkcode createCounterTable}).
 *
 * **stdin**, one command per line:
 * - `{"id": 1, "op": "run", "iterations": 30, "ttlMs": 5000, "timeoutMs": 20000,
 *   "thinkMs": 2}`: `iterations` times, acquire the lock, increment the counter fenced by
 *   the token, release, then pause up to `thinkMs` (random); with `"durationMs": N` it
 *   stops once N ms have passed, and with `"tolerant": true` a failed acquire or release
 *   (a coordinator fault) is reported as an `acquire-failed` or `release-failed` record
 *   and the loop goes on;
 * - `{"id": 2, "op": "hold", "ttlMs": 1000, "timeoutMs": 5000, "increment": true}`:
 *   acquire, increment once (if asked), answer, then never renew nor release: the
 *   process is meant to be SIGKILLed;
 * - `{"id": 3, "op": "exit"}`: close everything and exit.
 *
 * **stdout**, one JSON record per line, written synchronously (a SIGKILL cannot lose a
 * record of something already done):
 * - `{"type": "ready", "node": "a"}` once connected;
 * - `{"type": "acquiring", "node", "i", "invokeMs"}` just before `acquire` is called;
 * - `{"type": "grant", "node", "i", "token", "ttlMs", "invokeMs", "grantMs"}` when it
 *   resolved;
 * - `{"type": "increment", "node", "i", "token", "accepted", "value", "atMs"}` after the
 *   fenced update (`value` is the counter after it, `null` when the fence rejected it);
 * - `{"type": "release", "node", "i", "token", "releaseMs"}`: `releaseMs` is read right
 *   after `release()` was called, when the holder's belief had already ended;
 * - `{"type": "result", "id", ...}` the answer to a command (`error` if it failed).
 *
 * Times are epoch milliseconds, `performance.timeOrigin + performance.now()`: monotonic
 * within the process and comparable across processes on one machine.
 *
 * @module
 */

import postgres from "postgres";
import { Locks, WarpError } from "../mod.ts";
import { type CoordinatorKind, openCoordinator, stackKinds } from "./_stack.ts";
import {
  type Command,
  emit,
  epochMs,
  parseProgramOptions,
  type ProgramOptions,
  serveCommands,
} from "./_child_io.ts";

/** The name of the lock every process contends for. */
export const LOCK_NAME = "counter";

const ITERATIONS_MAX = 10_000;

/** Creates the counter table with its one row: value 0, highest accepted token 0. */
export async function createCounterTable(sql: postgres.Sql, table: string): Promise<void> {
  await sql`
    CREATE TABLE ${sql(table)} (
      id integer PRIMARY KEY,
      value integer NOT NULL,
      token bigint NOT NULL
    )`;
  await sql`INSERT INTO ${sql(table)} (id, value, token) VALUES (1, 0, 0)`;
}

/**
 * Increments the counter if `token` is not below the highest token the row has
 * accepted, and records `token` as the highest: one statement, so the fence check and
 * the write are atomic in the database. Resolves to the new value, or `undefined` when
 * the fence rejected a stale token (no row updated).
 */
export async function fencedIncrement(
  sql: postgres.Sql,
  table: string,
  token: number,
): Promise<number | undefined> {
  if (!Number.isSafeInteger(token) || token < 1) {
    throw new RangeError(`Invalid fencing token: ${token}`);
  }
  const rows = await sql<{ value: number }[]>`
    UPDATE ${sql(table)} SET value = value + 1, token = ${token}
    WHERE id = 1 AND token <= ${token}
    RETURNING value`;
  return rows[0]?.value;
}

/** The options of a lock process: the common ones, its coordinator and the bucket's replicas. */
type LockOptions = ProgramOptions & {
  readonly coordinator: CoordinatorKind;
  readonly replicas: number | undefined;
};

/** Reads the options, with their `WARP_LOCK_*` variables and defaults. */
function parseOptions(): LockOptions {
  const { options, text } = parseProgramOptions({}, {
    env: "WARP_LOCK",
    defaults: {
      nats: "127.0.0.1:4222",
      pg: "postgres://postgres@127.0.0.1:5432/test",
      prefix: "warp",
    },
  }, ["coordinator", "replicas"]);
  return {
    ...options,
    coordinator: stackKinds(text).coordinator,
    replicas: text.replicas === undefined ? undefined : Number(text.replicas),
  };
}

function count(command: Command, name: string, fallback: number, max: number): number {
  const value = command[name] ?? fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`Invalid ${name}: ${String(value)}`);
  }
  return value;
}

/** One contending process: its connections and its lock client. */
class LockProcess {
  readonly #options: LockOptions;
  readonly #coordinator: Awaited<ReturnType<typeof openCoordinator>>;
  readonly #locks: Locks;
  readonly #sql: postgres.Sql;

  static async start(options: LockOptions): Promise<LockProcess> {
    const coordinator = await openCoordinator(options);
    const sql = postgres(options.pg, { onnotice: () => {}, max: 2 });
    await sql`SELECT 1`;
    return new LockProcess(options, coordinator, sql);
  }

  private constructor(
    options: LockOptions,
    coordinator: Awaited<ReturnType<typeof openCoordinator>>,
    sql: postgres.Sql,
  ) {
    this.#options = options;
    this.#coordinator = coordinator;
    this.#sql = sql;
    this.#locks = new Locks({
      coordinator: coordinator.coordinator,
      nodeId: options.node,
      prefix: options.prefix,
    });
  }

  async handle(command: Command): Promise<void> {
    switch (command.op) {
      case "run":
        emit({ type: "result", id: command.id, ...(await this.#run(command)) });
        return;
      case "hold":
        emit({ type: "result", id: command.id, ...(await this.#hold(command)) });
        return;
      case "exit":
        await this.close();
        emit({ type: "result", id: command.id });
        Deno.exit(0);
        break;
      default:
        emit({ type: "result", id: command.id, error: `Unknown op: ${command.op}` });
    }
  }

  /** The contention loop: acquire, fenced increment, release, `iterations` times. */
  async #run(command: Command): Promise<Record<string, unknown>> {
    const iterations = count(command, "iterations", 1, ITERATIONS_MAX);
    const ttlMs = count(command, "ttlMs", 5000, 3_600_000);
    const timeoutMs = count(command, "timeoutMs", 20_000, 3_600_000);
    const thinkMs = count(command, "thinkMs", 0, 60_000);
    const durationMs = count(command, "durationMs", 3_600_000, 3_600_000);
    const tolerant = command.tolerant === true;
    const node = this.#options.node, endMs = epochMs() + durationMs;
    let accepted = 0, done = 0;
    for (let i = 0; i < iterations && epochMs() < endMs; i++, done++) {
      let lock;
      try {
        lock = await this.#acquire(i, ttlMs, timeoutMs);
      } catch (error) {
        if (!tolerant || !(error instanceof WarpError)) throw error;
        emit({ type: "acquire-failed", node, i, code: error.code, atMs: epochMs() });
        await sleep(50);
        continue;
      }
      if (await this.#increment(i, lock.token)) accepted++;
      const releasing = lock.release();
      emit({ type: "release", node, i, token: lock.token, releaseMs: epochMs() });
      try {
        await releasing;
      } catch (error) {
        if (!tolerant || !(error instanceof WarpError)) throw error;
        emit({ type: "release-failed", node, i, code: error.code, atMs: epochMs() });
      }
      if (thinkMs > 0) await sleep(Math.random() * thinkMs);
    }
    return { iterations: done, accepted };
  }

  /** Acquires and increments, then stops: no renewal, no release, no more work. */
  async #hold(command: Command): Promise<Record<string, unknown>> {
    const ttlMs = count(command, "ttlMs", 1000, 3_600_000);
    const timeoutMs = count(command, "timeoutMs", 5000, 3_600_000);
    const lock = await this.#acquire(0, ttlMs, timeoutMs);
    const value = command.increment === true ? await this.#increment(0, lock.token) : undefined;
    return { token: lock.token, ttlMs, value: value ?? null };
  }

  async #acquire(i: number, ttlMs: number, timeoutMs: number) {
    const node = this.#options.node;
    const invokeMs = epochMs();
    emit({ type: "acquiring", node, i, invokeMs });
    const lock = await this.#locks.acquire(LOCK_NAME, { ttlMs, timeoutMs });
    emit({ type: "grant", node, i, token: lock.token, ttlMs, invokeMs, grantMs: epochMs() });
    return lock;
  }

  async #increment(i: number, token: number): Promise<number | undefined> {
    const value = await fencedIncrement(this.#sql, this.#options.table, token);
    emit({
      type: "increment",
      node: this.#options.node,
      i,
      token,
      accepted: value !== undefined,
      value: value ?? null,
      atMs: epochMs(),
    });
    return value;
  }

  async close(): Promise<void> {
    this.#locks.close();
    await this.#coordinator.close();
    await this.#sql.end({ timeout: 1 });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const options = parseOptions();
  const process = await LockProcess.start(options);
  emit({ type: "ready", node: options.node });
  await serveCommands((command) =>
    process.handle(command).catch((error) => {
      const text = error instanceof WarpError ? `${error.code}: ${error.message}` : String(error);
      emit({ type: "result", id: command.id, error: text });
    })
  );
  await process.close();
}

if (import.meta.main) await main();
