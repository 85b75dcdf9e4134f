/**
 * Test program: one Warp node in its own process whose keys are **loader-backed**: values
 * come from a PostgreSQL table the test owns (the application's own source, `--pg` and
 * `--table`), through a loader, and are cached in L1 only; the bus and the coordinator are
 * NATS (`test/_stack.ts`). Warp's store is an in-memory one that loader-backed keys never
 * touch. Driven through JSON lines (`test/_child_io.ts`); `test/loader_pg_test.ts` runs two.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env --allow-sys test/_loader_process.ts \
 *   --node n1 --nats 127.0.0.1:4222 --bucket warp_x --pg postgres://postgres@127.0.0.1:5432/test \
 *   --table warp_src_x --prefix warp.x [--ttl-ms 60000] [--staleness-ms 1000] \
 *   [--lease-ms 1000] [--hard-timeout-ms 1000] [--fail-safe-ms 60000]
 * ```
 *
 * Keys (`<id>` is the row's `id`): `ev:<id>` eventual-distributed (`--staleness-ms`),
 * `st:<id>` strong-distributed (`--lease-ms`), `evfs:<id>` eventual-distributed with
 * fail-safe (`--fail-safe-ms`), `stfs:<id>` strong-distributed with fail-safe asked
 * explicitly by its registration (F3). Every key has `--ttl-ms` and `--hard-timeout-ms`.
 *
 * **stdin**: `{"id": 1, "op": "read", "key": "ev:1"}`, `{"id": 2, "op": "invalidate",
 * "key": "ev:1"}`, `{"id": 3, "op": "stats"}`, `{"id": 4, "op": "exit"}`.
 *
 * **stdout**: `{"type": "ready", "node": "n1"}` once connected; `{"type": "result", "id": 1,
 * "ok": true, "value": …, "found": …, "source": …, "stale": …, "atMs": …}` or
 * `{"type": "result", "id": 1, "ok": false, "code": "LOADER_ERROR", "error": "…"}`.
 *
 * @module
 */

import postgres from "postgres";
import { MemoryStore, Warp, WarpError } from "../mod.ts";
import type { LoaderContext } from "../mod.ts";
import { openStack, type Stack } from "./_stack.ts";
import { type Command, emit, epochMs, parseProgramOptions, serveCommands } from "./_child_io.ts";

/**
 * Creates the source table: one text value per integer id.
 *
 * @example
 * ```ts ignore
 * await createSourceTable(sql, "warp_src_x");
 * ```
 */
export async function createSourceTable(sql: postgres.Sql, table: string): Promise<void> {
  await sql`CREATE TABLE ${sql(table)} (id integer PRIMARY KEY, value text NOT NULL)`;
}

function parseOptions() {
  const { options, ms } = parseProgramOptions({
    "ttl-ms": 60_000,
    "staleness-ms": 1000,
    "lease-ms": 1000,
    "hard-timeout-ms": 1000,
    "fail-safe-ms": 60_000,
  });
  return {
    ...options,
    ttlMs: ms["ttl-ms"],
    stalenessMs: ms["staleness-ms"],
    leaseMs: ms["lease-ms"],
    hardTimeoutMs: ms["hard-timeout-ms"],
    failSafeMs: ms["fail-safe-ms"],
  };
}

/** One node: its bus and coordinator, its source connection, its Warp. */
class LoaderNode {
  readonly warp: Warp<unknown>;
  readonly #stack: Stack;
  readonly #sql: postgres.Sql;

  static async start(options: ReturnType<typeof parseOptions>): Promise<LoaderNode> {
    const stack = await openStack({ ...options, bus: "nats", coordinator: "nats" });
    // A source that is down fails a query at once, not after a long connect.
    const sql = postgres(options.pg, { onnotice: () => {}, max: 4, connect_timeout: 2 });
    return new LoaderNode(options, stack, sql);
  }

  private constructor(
    options: ReturnType<typeof parseOptions>,
    stack: Stack,
    sql: postgres.Sql,
  ) {
    this.#stack = stack;
    this.#sql = sql;
    this.warp = new Warp<unknown>({
      store: new MemoryStore(),
      coordinator: stack.coordinator,
      transport: stack.transport,
      nodeId: options.node,
      prefix: options.prefix,
      heartbeatIntervalMs: 100,
      gapTimeoutMs: 200,
    });
    // The application's loader: one row of its own table, or "not found".
    const loader = async (context: LoaderContext<unknown>): Promise<unknown> => {
      const id = Number(context.key.slice(context.key.indexOf(":") + 1));
      const rows = await sql`SELECT value FROM ${sql(options.table)} WHERE id = ${id}`;
      return rows[0]?.value ?? undefined;
    };
    // Bounds above the TTL bound nothing, and register refuses them.
    const maxStalenessMs = Math.min(options.stalenessMs, options.ttlMs);
    const leaseMs = Math.min(options.leaseMs, options.ttlMs);
    const common = {
      origin: "loader",
      loader,
      ttlMs: options.ttlMs,
      hardTimeoutMs: options.hardTimeoutMs,
    } as const;
    this.warp.register("ev:*", {
      ...common,
      mode: "eventual-distributed",
      maxStalenessMs,
    });
    this.warp.register("st:*", { ...common, mode: "strong-distributed", leaseMs });
    this.warp.register("evfs:*", {
      ...common,
      mode: "eventual-distributed",
      maxStalenessMs,
      failSafeMaxMs: options.failSafeMs,
      failSafeThrottleMs: 100,
    });
    this.warp.register("stfs:*", {
      ...common,
      mode: "strong-distributed",
      leaseMs,
      failSafeMaxMs: options.failSafeMs,
      failSafeThrottleMs: 100,
    });
  }

  async handle(command: Command): Promise<void> {
    const { id, op } = command;
    const key = command.key as string;
    try {
      switch (op) {
        case "read": {
          const read = await this.warp.read(key);
          emit({
            type: "result",
            id,
            ok: true,
            found: read.found,
            value: read.found ? read.value : null,
            source: read.source,
            stale: read.stale,
            atMs: epochMs(),
          });
          return;
        }
        case "invalidate":
          await this.warp.invalidate(key);
          emit({ type: "result", id, ok: true, atMs: epochMs() });
          return;
        case "stats":
          emit({ type: "result", id, ok: true, warp: this.warp.stats });
          return;
        case "exit":
          await this.close();
          emit({ type: "result", id, ok: true });
          Deno.exit(0);
          break;
        default:
          emit({ type: "result", id, ok: false, error: `Unknown op: ${op}` });
      }
    } catch (error) {
      emit({
        type: "result",
        id,
        ok: false,
        ...(error instanceof WarpError && { code: error.code }),
        error: String(error),
        atMs: epochMs(),
      });
    }
  }

  async close(): Promise<void> {
    await this.warp.close();
    await this.#stack.close();
    await this.#sql.end({ timeout: 1 });
  }
}

async function main(): Promise<void> {
  const options = parseOptions();
  const node = await LoaderNode.start(options);
  emit({ type: "ready", node: options.node });
  await serveCommands((command) => node.handle(command));
  await node.close();
}

if (import.meta.main) await main();
