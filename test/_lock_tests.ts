/**
 * Locks across real processes over a real coordinator (the shared NATS JetStream KV, or
 * PostgreSQL), guarding a counter in PostgreSQL with a fence that lives in the database
 * (`test/_lock_process.ts`). Checks L1 (grant intervals never overlap), L2 (tokens grow; a
 * stale token is refused by the fenced UPDATE) and L3 (a SIGKILLed holder's lock passes on
 * within the bound). `test/nats_lock_test.ts` and `test/postgres_lock_test.ts` register
 * these tests with their coordinator.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 and, for NATS, NATS with JetStream on 127.0.0.1:4222
 * (`WARP_TEST_PG_URL`, `WARP_TEST_NATS_URL`): if one is unreachable the tests fail.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { createCounterTable, fencedIncrement } from "./_lock_process.ts";
import { type CoordinatorKind, makeCoordinatorNamespace } from "./_stack.ts";
import { type ChildRecord, JsonLinesChild } from "./_json_lines_child.ts";
import { NATS_URL, PG_URL } from "./_process_cluster.ts";

const PROGRAM = new URL("./_lock_process.ts", import.meta.url).pathname;
const EVENT_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 2000;
/** The drift bound `Locks` assumes by default (500 ppm). */
const MAX_DRIFT = 500e-6;

/** A record a lock process wrote on stdout. */
type LockRecord = ChildRecord;

/** The grant, increment and release of one iteration, as one process reported them. */
interface Tenure {
  readonly node: string;
  readonly token: number;
  readonly invokeMs: number;
  readonly grantMs: number;
  readonly releaseMs: number;
  readonly accepted: boolean;
  readonly value: number | null;
}

/** A name unique to this run, valid as a table and a bucket name. */
function uniqueName(): string {
  return `warp_lock_${Date.now().toString(36)}_${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
}

/** One `test/_lock_process.ts` child, its records, and the means to kill it. */
class LockChild {
  readonly node: string;
  readonly records: LockRecord[];
  readonly #process: JsonLinesChild;

  /** Spawns the process and waits until it is connected to its coordinator and PostgreSQL. */
  static async spawn(
    node: string,
    names: Names,
  ): Promise<LockChild> {
    const { bucket, table, coordinator } = names;
    const records: LockRecord[] = [];
    const process = await JsonLinesChild.spawn(PROGRAM, {
      name: node,
      args: [
        `--node=${node}`,
        `--nats=${names.nats ?? NATS_URL}`,
        `--bucket=${bucket}`,
        `--pg=${PG_URL}`,
        `--table=${table}`,
        `--coordinator=${coordinator}`,
        ...(names.replicas === undefined ? [] : [`--replicas=${names.replicas}`]),
      ],
      onRecord: (record) => records.push(record),
      commandTimeoutMs: EVENT_TIMEOUT_MS,
      exitTimeoutMs: EXIT_TIMEOUT_MS,
    });
    return new LockChild(node, process, records);
  }

  private constructor(node: string, process: JsonLinesChild, records: LockRecord[]) {
    this.node = node;
    this.#process = process;
    this.records = records;
  }

  /** Sends a command; resolves to its `result` record, rejects if that holds an error. */
  async command(command: Record<string, unknown>): Promise<LockRecord> {
    const result = await this.#process.send(command);
    if (result.error !== undefined) throw new Error(`${this.node}: ${String(result.error)}`);
    return result;
  }

  /** The first record (already written or still to come) that matches. */
  next(match: (record: LockRecord) => boolean, timeoutMs: number): Promise<LockRecord> {
    return this.#process.until(() => this.records.find(match), timeoutMs);
  }

  /** The `index`-th record (from 0) of one type, already written or still to come. */
  nth(type: string, index: number, timeoutMs: number): Promise<LockRecord> {
    return this.#process.until(() => this.of(type)[index], timeoutMs);
  }

  /** The records of one type. */
  of(type: string): LockRecord[] {
    return this.records.filter((r) => r.type === type);
  }

  /** SIGKILLs the process and waits for it to be gone. */
  kill(): Promise<void> {
    return this.#process.kill();
  }

  /** Asks the process to exit (SIGKILL if it does not), then frees every stream. */
  close(): Promise<void> {
    return this.#process.close();
  }
}

/** The coordinator namespace and counter table of one test. */
interface Names {
  readonly bucket: string;
  readonly table: string;
  readonly coordinator: CoordinatorKind;
  /** The NATS server, or a cluster's servers separated by commas. @default {NATS_URL} */
  readonly nats?: string;
  /** Replicas of the NATS bucket. @default {1} */
  readonly replicas?: number;
}

/** A fresh coordinator namespace and counter table; removed, and everything closed, after `fn`. */
async function withCounter(
  coordinator: CoordinatorKind,
  fn: (names: Names, sql: postgres.Sql) => Promise<void>,
  where: { readonly nats?: string; readonly replicas?: number } = {},
): Promise<void> {
  const name = uniqueName();
  const sql = postgres(PG_URL, { onnotice: () => {}, max: 2 });
  let namespace: { remove(): Promise<void> } | undefined;
  try {
    namespace = await makeCoordinatorNamespace(coordinator, {
      nats: where.nats ?? NATS_URL,
      pg: PG_URL,
      bucket: name,
      replicas: where.replicas,
    });
    await createCounterTable(sql, name);
    await fn({ bucket: name, table: name, coordinator, ...where }, sql);
  } finally {
    await namespace?.remove();
    await sql`DROP TABLE IF EXISTS ${sql(name)}`.catch(() => {});
    await sql.end({ timeout: 1 });
  }
}

/** Spawns processes `nodes`, runs `fn`, and closes every one of them whatever happens. */
async function withProcesses(
  nodes: string[],
  names: Names,
  fn: (processes: LockChild[]) => Promise<void>,
): Promise<void> {
  const spawned = await Promise.allSettled(nodes.map((node) => LockChild.spawn(node, names)));
  const processes = spawned.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  try {
    for (const s of spawned) if (s.status === "rejected") throw s.reason;
    await fn(processes);
  } finally {
    await Promise.all(processes.map((p) => p.close()));
  }
}

/** The tenures a process reported, matched up by iteration. */
function tenures(process: LockChild): Tenure[] {
  const increments = process.of("increment");
  const releases = process.of("release");
  return process.of("grant").map((grant) => {
    const increment = increments.find((r) => r.i === grant.i)!;
    const release = releases.find((r) => r.i === grant.i)!;
    assert.ok(increment !== undefined && release !== undefined, `${process.node} ${grant.i}`);
    return {
      node: process.node,
      token: grant.token as number,
      invokeMs: grant.invokeMs as number,
      grantMs: grant.grantMs as number,
      releaseMs: release.releaseMs as number,
      accepted: increment.accepted as boolean,
      value: increment.value as number | null,
    };
  });
}

async function counterRow(sql: postgres.Sql, table: string) {
  const [row] = await sql<{ value: number; token: string }[]>`
    SELECT value, token FROM ${sql(table)} WHERE id = 1`;
  return { value: row!.value, token: Number(row!.token) };
}

/**
 * Registers the lock tests on `coordinator`, named "Locks over `label`: ...". The counter
 * table is always on the shared PostgreSQL.
 */
export function testLocksAcrossProcesses(coordinator: CoordinatorKind, label: string): void {
  Deno.test(`Locks over ${label}: three processes contending never overlap, fenced increments all count`, async () => {
    const ITERATIONS = 30;
    await withCounter(coordinator, async (names, sql) => {
      await withProcesses(["a", "b", "c"], names, async (processes) => {
        await Promise.all(
          processes.map((p) =>
            p.command({
              op: "run",
              iterations: ITERATIONS,
              ttlMs: 5000,
              timeoutMs: 30_000,
              thinkMs: 3,
            })
          ),
        );
        const all = processes.flatMap(tenures).sort((x, y) => x.grantMs - y.grantMs);
        const total = ITERATIONS * processes.length;
        assert.equal(all.length, total);

        // No lost or doubled increment: every one accepted, each value seen once, all counted.
        const accepted = all.filter((t) => t.accepted);
        assert.equal(
          accepted.length,
          total,
          "a fenced increment was rejected under a correct lock",
        );
        const row = await counterRow(sql, names.table);
        assert.equal(row.value, accepted.length);
        assert.deepEqual(
          accepted.map((t) => t.value).sort((x, y) => x! - y!),
          Array.from({ length: total }, (_, i) => i + 1),
        );

        // L2: in grant order, tokens strictly increase; the row keeps the last one.
        for (let i = 1; i < all.length; i++) {
          assert.ok(all[i]!.token > all[i - 1]!.token, `token ${i}: ${JSON.stringify(all)}`);
        }
        assert.equal(row.token, all.at(-1)!.token);
        // The fence admitted them in token order: each value is one more than the last.
        all.forEach((t, i) => assert.equal(t.value, i + 1, `value of grant ${i}`));

        // L1: each tenure (grant → release) ends before the next begins.
        let gapMinMs = Infinity;
        for (let i = 1; i < all.length; i++) {
          const previous = all[i - 1]!, current = all[i]!;
          assert.ok(previous.grantMs < previous.releaseMs);
          assert.ok(
            previous.releaseMs < current.grantMs,
            `overlap: ${JSON.stringify(previous)} and ${JSON.stringify(current)}`,
          );
          gapMinMs = Math.min(gapMinMs, current.grantMs - previous.releaseMs);
        }
        // They did contend: a grant while another process held the lock, more than once.
        const waited = all.filter((t, i) =>
          i > 0 && t.node !== all[i - 1]!.node && t.invokeMs < all[i - 1]!.releaseMs
        ).length;
        const handoffs = all.filter((t, i) =>
          i > 0 && t.node !== all[i - 1]!.node
        ).length;
        assert.ok(waited >= 5, `only ${waited} grants came after a wait`);
        console.log(
          `${total} grants, ${handoffs} handoffs between processes, ${waited} after a wait; ` +
            `smallest release → next grant gap ${gapMinMs.toFixed(3)} ms`,
        );
      });
    });
  });

  Deno.test(`Locks over ${label}: a SIGKILLed holder's lock passes to a waiter within ttl × (1 + drift) + slack, and its stale token is fenced off`, async () => {
    const TTL_MS = 1000;
    const ROUNDS = 3;
    // What the takeover may take beyond ttl × (1 + drift): the waiter's first sight of the
    // holder's record (a failed create and a read, about 1 ms), the takeover's
    // compare-and-set (under 1 ms), the core's 1 ms margin, and a late timer or process
    // scheduling on a loaded 2-core machine (tens of ms at worst seen). 500 ms is far above
    // all of that and still catches a waiter that waits out a second TTL.
    const SLACK_MS = 500;
    await withCounter(coordinator, async (names, sql) => {
      const holders = Array.from({ length: ROUNDS }, (_, i) => `holder${i + 1}`);
      await withProcesses(["waiter", ...holders], names, async ([waiter, ...victims]) => {
        const delays: number[] = [], lags: number[] = [];
        let expectedValue = 0;
        for (const [round, victim] of victims.entries()) {
          // The victim takes the lock, increments once with its token, and goes silent.
          const held = await victim!.command({
            op: "hold",
            ttlMs: TTL_MS,
            timeoutMs: 5000,
            increment: true,
          });
          const victimGrant = await victim!.next((r) => r.type === "grant", 1000);
          assert.equal(held.value, ++expectedValue);

          // The waiter is waiting when the holder dies.
          const waiting = waiter!.command({
            op: "run",
            iterations: 1,
            ttlMs: 5000,
            timeoutMs: 20_000,
          });
          const acquiring = await waiter!.nth("acquiring", round, 5000);
          await victim!.kill();
          await waiting;
          const grant = waiter!.of("grant")[round]!;
          const increment = waiter!.of("increment")[round]!;

          const victimToken = victimGrant.token as number, token = grant.token as number;
          assert.ok(token > victimToken, `token ${token} after ${victimToken}`);
          // L1: the victim's belief, which began before its grant was reported, was over.
          const victimGrantMs = victimGrant.grantMs as number, grantMs = grant.grantMs as number;
          assert.ok(grantMs > victimGrantMs + TTL_MS * (1 - MAX_DRIFT), `taken over early`);
          // L3: within the bound.
          const delayMs = grantMs - (victimGrantMs + TTL_MS);
          delays.push(delayMs);
          lags.push((acquiring.invokeMs as number) - victimGrantMs);
          assert.ok(delayMs <= TTL_MS * MAX_DRIFT + SLACK_MS, `takeover ${delayMs} ms late`);

          // L2: the waiter's increment counts; the dead holder's token is now refused.
          assert.equal(increment.accepted, true);
          assert.equal(increment.value, ++expectedValue);
          assert.equal(await fencedIncrement(sql, names.table, victimToken), undefined);
          assert.deepEqual(await counterRow(sql, names.table), { value: expectedValue, token });
        }
        console.log(
          `takeover delays after grant + ttl (${TTL_MS} ms): ${
            delays.map((d) => d.toFixed(1)).join(", ")
          } ms (bound ${(TTL_MS * MAX_DRIFT + SLACK_MS).toFixed(1)} ms); the waiter began ${
            lags.map((d) => d.toFixed(1)).join(", ")
          } ms after the grant`,
        );
      });
    });
  });
}

/**
 * Three processes contend for the lock on the NATS cluster `where` (its servers separated by
 * commas, `replicas` for the bucket) for `durationMs` while `fault` runs on the servers,
 * tolerating acquires and releases that fail; then checks what must hold whatever the
 * coordinator went through: grants never overlap (L1), tokens grow in grant order (L2),
 * and the fence accepted every increment, each counted once. Returns a summary line.
 */
export async function contendUnderFault(
  where: { readonly nats: string; readonly replicas: number },
  durationMs: number,
  fault: () => Promise<void>,
): Promise<string> {
  let summary = "";
  await withCounter("nats", async (names, sql) => {
    await withProcesses(["a", "b", "c"], names, async (processes) => {
      const runs = processes.map((p) =>
        p.command({
          op: "run",
          iterations: 10_000,
          durationMs,
          ttlMs: 2000,
          timeoutMs: 3000,
          thinkMs: 20,
          tolerant: true,
        })
      );
      await fault();
      await Promise.all(runs);
      const all = processes.flatMap(tenures).sort((x, y) => x.grantMs - y.grantMs);
      assert.ok(all.length > 0, "no lock was ever granted");
      for (let i = 1; i < all.length; i++) {
        const previous = all[i - 1]!, current = all[i]!;
        assert.ok(current.token > previous.token, `L2: token ${i}: ${JSON.stringify(all)}`);
        assert.ok(
          previous.releaseMs < current.grantMs,
          `L1: overlap: ${JSON.stringify(previous)} and ${JSON.stringify(current)}`,
        );
      }
      const accepted = all.filter((t) => t.accepted);
      assert.equal(accepted.length, all.length, "a fenced increment was rejected");
      const row = await counterRow(sql, names.table);
      assert.equal(row.value, accepted.length, "every accepted increment counted once");
      const failed = processes.flatMap((
        p,
      ) => [...p.of("acquire-failed"), ...p.of("release-failed")]);
      const codes = new Map<string, number>();
      for (const f of failed) {
        codes.set(`${f.type} ${f.code}`, (codes.get(`${f.type} ${f.code}`) ?? 0) + 1);
      }
      const times = failed.map((f) => f.atMs as number);
      summary = `locks: ${all.length} grants, none overlapping, tokens growing, every fenced ` +
        `increment accepted; ${failed.length} failed calls (${
          [...codes].map(([c, n]) => `${c} ×${n}`).join(", ") || "none"
        })` +
        (times.length === 0
          ? ""
          : `, over ${Math.round(Math.max(...times) - Math.min(...times))} ms`);
    });
  }, where);
  return summary;
}
