/**
 * Loader-backed keys in front of the application's own PostgreSQL table, across two node
 * processes (`test/_loader_process.ts`) over NATS: the application writes its table and
 * calls `invalidate` on one node; the other node's next read of a strong-distributed key,
 * and its reads within `maxStalenessMs` of an eventual one, see the new row (LB3, LB2).
 * Then, with the source a private PostgreSQL that is stopped: fail-safe keys answer their
 * last value flagged stale, the others fail with a typed error, and once it is back the
 * reads are fresh again. The table (and the private server) belong to the test and are
 * removed after it; the shared servers are never stopped.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { NATS_URL, PG_URL } from "./_process_cluster.ts";
import { makeCoordinatorNamespace } from "./_stack.ts";
import { type ChildRecord, JsonLinesChild } from "./_json_lines_child.ts";
import { epochMs } from "./_child_io.ts";
import { PrivatePostgres } from "./_postgres_server.ts";
import { createSourceTable } from "./_loader_process.ts";

const PROGRAM = new URL("./_loader_process.ts", import.meta.url).pathname;
const STALENESS_MS = 1000;

/** Two loader nodes over one source table, and what they share. */
class LoaderPair {
  readonly sql: postgres.Sql;
  readonly table: string;
  readonly nodes: JsonLinesChild[] = [];
  readonly #namespace: { remove(): Promise<void> };

  private constructor(sql: postgres.Sql, table: string, namespace: { remove(): Promise<void> }) {
    this.sql = sql;
    this.table = table;
    this.#namespace = namespace;
  }

  /** Creates the table (rows `initial`) and the coordinator bucket, and spawns n1 and n2. */
  static async start(
    pgUrl: string,
    initial: Record<number, string>,
    args: readonly string[] = [],
  ): Promise<LoaderPair> {
    const name = `warp_src_${Date.now().toString(36)}_${
      Math.floor(Math.random() * 2 ** 32).toString(36)
    }`;
    const sql = postgres(pgUrl, { onnotice: () => {}, max: 2, connect_timeout: 2 });
    await createSourceTable(sql, name);
    for (const [id, value] of Object.entries(initial)) {
      await sql`INSERT INTO ${sql(name)} (id, value) VALUES (${Number(id)}, ${value})`;
    }
    const namespace = await makeCoordinatorNamespace("nats", {
      nats: NATS_URL,
      pg: pgUrl,
      bucket: name,
    });
    const pair = new LoaderPair(sql, name, namespace);
    try {
      for (const node of ["n1", "n2"]) {
        pair.nodes.push(
          await JsonLinesChild.spawn(PROGRAM, {
            name: node,
            args: [
              `--node=${node}`,
              `--nats=${NATS_URL}`,
              `--bucket=${name}`,
              `--pg=${pgUrl}`,
              `--table=${name}`,
              `--prefix=warp.${name}`,
              `--staleness-ms=${STALENESS_MS}`,
              ...args,
            ],
            commandTimeoutMs: 20_000,
          }),
        );
      }
    } catch (error) {
      await pair.close();
      throw error;
    }
    return pair;
  }

  /** The application's write of its own table (then it invalidates, on a node). */
  async write(id: number, value: string): Promise<void> {
    await this.sql`UPDATE ${this.sql(this.table)} SET value = ${value} WHERE id = ${id}`;
  }

  read(node: number, key: string): Promise<ChildRecord> {
    return this.nodes[node]!.send({ op: "read", key });
  }

  async invalidate(node: number, key: string): Promise<number> {
    const record = await this.nodes[node]!.send({ op: "invalidate", key });
    assert.equal(record.ok, true, `invalidate ${key}: ${record.error}`);
    return record.atMs as number;
  }

  /** Stops the nodes, drops the table and the bucket (whatever is still reachable). */
  async close(): Promise<void> {
    for (const node of this.nodes) await node.close();
    await this.sql`DROP TABLE IF EXISTS ${this.sql(this.table)}`.catch(() => {});
    await this.sql.end({ timeout: 1 });
    await this.#namespace.remove();
  }
}

function assertValue(record: ChildRecord, value: string, what: string): void {
  assert.equal(record.ok, true, `${what}: ${record.error}`);
  assert.equal(record.value, value, `${what}: ${JSON.stringify(record)}`);
  assert.equal(record.stale, false, `${what} is fresh`);
}

Deno.test("two processes, loader-backed keys over a PostgreSQL table: after the app writes and invalidates on one node, the other's next strong read and its eventual reads within the bound see the new row", async () => {
  const pair = await LoaderPair.start(PG_URL, { 1: "e0", 2: "s0" });
  try {
    for (const node of [0, 1]) {
      assertValue(await pair.read(node, "ev:1"), "e0", `n${node + 1} ev:1`);
      assertValue(await pair.read(node, "st:2"), "s0", `n${node + 1} st:2`);
    }
    assert.equal((await pair.read(1, "ev:1")).source, "l1", "cached in L1");
    assert.equal((await pair.read(1, "st:2")).source, "l1", "cached in L1");
    for (let round = 1; round <= 5; round++) {
      // Strong (LB3): the invalidate completes only when n2 can no longer serve s<round-1>.
      await pair.write(2, `s${round}`);
      await pair.invalidate(0, "st:2");
      const strong = await pair.read(1, "st:2");
      assertValue(strong, `s${round}`, `round ${round}: n2's next strong read`);
      assert.equal(strong.source, "loader");
      // Cached again once the invalidation's release is in (a read while the slot is still
      // claimed loads through, uncached).
      let cached = false;
      for (let i = 0; i < 50 && !cached; i++) {
        const again = await pair.read(1, "st:2");
        assertValue(again, `s${round}`, `round ${round}: n2 reads again`);
        cached = again.source === "l1";
        if (!cached) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(cached, `round ${round}: st:2 cached again on n2`);
      // Eventual (LB2): every read of n2 that completes past invalidate + maxStalenessMs
      // sees the row; the drop usually arrives within milliseconds.
      await pair.write(1, `e${round}`);
      const completedMs = await pair.invalidate(0, "ev:1");
      let seenAfterMs: number | undefined;
      let boundReads = 0;
      while (epochMs() < completedMs + 1.5 * STALENESS_MS) {
        const read = await pair.read(1, "ev:1");
        assert.equal(read.ok, true, `ev:1 read: ${read.error}`);
        if (read.value === `e${round}`) seenAfterMs ??= (read.atMs as number) - completedMs;
        if ((read.atMs as number) > completedMs + STALENESS_MS) {
          boundReads++;
          assertValue(read, `e${round}`, `round ${round}: an eventual read past the bound`);
        }
        if (seenAfterMs !== undefined && boundReads > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(seenAfterMs !== undefined && seenAfterMs <= STALENESS_MS, `round ${round}`);
    }
  } finally {
    await pair.close();
  }
});

Deno.test("two processes, loader-backed keys over a private PostgreSQL that is stopped: fail-safe keys answer their last value flagged stale, the others fail typed, and reads are fresh once it is back", async () => {
  const server = await PrivatePostgres.start();
  try {
    const pair = await LoaderPair.start(server.url, { 1: "e", 2: "s", 3: "ef", 4: "sf" }, [
      "--ttl-ms=300",
      "--hard-timeout-ms=1000",
      "--fail-safe-ms=60000",
    ]);
    try {
      const keys = { "ev:1": "e", "st:2": "s", "evfs:3": "ef", "stfs:4": "sf" };
      for (const [key, value] of Object.entries(keys)) {
        assertValue(await pair.read(0, key), value, `n1 ${key}`);
      }
      await server.stop("immediate");
      await new Promise((resolve) => setTimeout(resolve, 500)); // past every TTL
      for (const [key, value] of Object.entries(keys)) {
        const read = await pair.read(0, key);
        if (key.includes("fs")) {
          // F1: a stale answer says so (F3: the strong key's registration asked for it).
          assert.equal(read.ok, true, `${key}: ${read.error}`);
          assert.equal(read.value, value);
          assert.equal(read.stale, true, `${key}: ${JSON.stringify(read)}`);
          assert.equal(read.source, "fallback");
        } else {
          assert.equal(read.ok, false, `${key} has no fail-safe: ${JSON.stringify(read)}`);
          assert.ok(["LOADER_ERROR", "TIMEOUT"].includes(read.code as string), String(read.error));
        }
      }
      // n2 never loaded evfs:3: nothing to fall back on, a typed error.
      const cold = await pair.read(1, "evfs:3");
      assert.equal(cold.ok, false);
      assert.ok(["LOADER_ERROR", "TIMEOUT"].includes(cold.code as string), String(cold.error));
      await server.restart();
      await new Promise((resolve) => setTimeout(resolve, 200)); // past failSafeThrottleMs
      let fresh: ChildRecord | undefined;
      for (let i = 0; i < 50 && fresh?.stale !== false; i++) {
        fresh = await pair.read(0, "evfs:3");
        if (fresh.stale !== false) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assertValue(fresh!, "ef", "evfs:3 once the source is back");
    } finally {
      await pair.close();
    }
  } finally {
    await server.remove();
  }
});
