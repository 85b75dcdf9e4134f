/**
 * Leases over real servers: three Warp node processes (`test/_lease_process.ts`) sharing a
 * coordinator, a bus prefix and a PostgreSQL table. Checks G1 (once `revokeLease`
 * resolves, no node serves a value attached to the lease), G2 (a lease not kept alive is
 * gone from every node within ttl × (1 + drift) + leaseCheckMs) and G3 (a dead lease stays
 * dead: keep-alive and writes with it reject). `test/nats_lease_test.ts` and
 * `test/postgres_lease_test.ts` register these tests with their bus and coordinator.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 and, for NATS, NATS with JetStream on 127.0.0.1:4222
 * (`WARP_TEST_PG_URL`, `WARP_TEST_NATS_URL`): if one is unreachable the tests fail.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { PostgresStore } from "../src/store/postgres.ts";
import type { LeaseRead } from "./_lease_process.ts";
import { type ChildRecord, JsonLinesChild } from "./_json_lines_child.ts";
import { NATS_URL, PG_URL } from "./_process_cluster.ts";
import { type BusKind, type CoordinatorKind, makeCoordinatorNamespace } from "./_stack.ts";

const PROGRAM = new URL("./_lease_process.ts", import.meta.url).pathname;
const COMMAND_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 3000;
/** Warp's default drift bound (500 ppm). */
const MAX_DRIFT = 500e-6;
/** The nodes' `leaseCheckMs`. */
const LEASE_CHECK_MS = 200;
/** Slack for scheduling, pipes and NATS on a loaded two-core machine. */
const SLACK_MS = 300;

/** A record a node process wrote on stdout. */
type NodeRecord = ChildRecord;

/** A name unique to this run, valid as a table, bucket and subject token. */
function uniqueName(): string {
  return `warp_lt_${Date.now().toString(36)}_${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One `test/_lease_process.ts` child. */
class LeaseChild {
  readonly node: string;
  readonly #process: JsonLinesChild;

  /** Spawns the process and waits until it is connected to NATS and PostgreSQL. */
  static async spawn(node: string, names: Names): Promise<LeaseChild> {
    const process = await JsonLinesChild.spawn(PROGRAM, {
      name: node,
      args: [
        `--node=${node}`,
        `--nats=${NATS_URL}`,
        `--bucket=${names.bucket}`,
        `--pg=${PG_URL}`,
        `--table=${names.table}`,
        `--prefix=${names.prefix}`,
        `--lease-check-ms=${LEASE_CHECK_MS}`,
        `--bus=${names.bus}`,
        `--coordinator=${names.coordinator}`,
      ],
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      exitTimeoutMs: EXIT_TIMEOUT_MS,
    });
    return new LeaseChild(node, process);
  }

  private constructor(node: string, process: JsonLinesChild) {
    this.node = node;
    this.#process = process;
  }

  /** Sends a command; resolves to its `result` record, whether it failed or not. */
  attempt(command: Record<string, unknown>): Promise<NodeRecord> {
    return this.#process.send(command);
  }

  /** Sends a command; resolves to its `result` record, rejects if that holds an error. */
  async command(command: Record<string, unknown>): Promise<NodeRecord> {
    const result = await this.attempt(command);
    if (result.error !== undefined) {
      throw new Error(`${this.node} ${JSON.stringify(command)}: ${String(result.error)}`);
    }
    return result;
  }

  /** Reads a key; rejects if the read failed. */
  async read(key: string): Promise<LeaseRead> {
    return (await this.command({ op: "read", key })) as unknown as LeaseRead;
  }

  /** Asks the process to exit (SIGKILL if it does not), then frees every stream. */
  close(): Promise<void> {
    return this.#process.close();
  }
}

/** The table, coordinator namespace, bus prefix and stack of one cluster. */
interface Names {
  readonly table: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly bus: BusKind;
  readonly coordinator: CoordinatorKind;
}

/**
 * Three node processes (`a`, `b`, `c`) on a fresh table, bucket and prefix; everything is
 * closed and removed after `fn`, whatever happens.
 */
async function withLeaseCluster(
  stack: { bus: BusKind; coordinator: CoordinatorKind },
  fn: (nodes: LeaseChild[], names: Names) => Promise<void>,
): Promise<void> {
  const name = uniqueName();
  const names: Names = { table: name, bucket: name, prefix: `warp.${name}`, ...stack };
  const sql = postgres(PG_URL, { onnotice: () => {}, max: 2 });
  let namespace: { remove(): Promise<void> } | undefined;
  let nodes: LeaseChild[] = [];
  try {
    const store = await PostgresStore.connect({ sql, table: name, createTable: true });
    await store.close();
    namespace = await makeCoordinatorNamespace(stack.coordinator, {
      nats: NATS_URL,
      pg: PG_URL,
      bucket: name,
    });
    const spawned = await Promise.allSettled(
      ["a", "b", "c"].map((node) => LeaseChild.spawn(node, names)),
    );
    nodes = spawned.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    for (const s of spawned) if (s.status === "rejected") throw s.reason;
    await fn(nodes, names);
  } finally {
    await Promise.all(nodes.map((node) => node.close()));
    await namespace?.remove();
    await sql`DROP TABLE IF EXISTS ${sql(name)}`.catch(() => {});
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${name}_version`)}`.catch(() => {});
    await sql.end({ timeout: 1 });
  }
}

/** Asserts that a command's record failed with WarpError `code`. */
function assertCode(record: NodeRecord, code: string, what: string): void {
  assert.equal(record.code, code, `${what}: expected ${code}, got ${String(record.error)}`);
}

/** Reads failed in a read loop, as text. */
function readErrors(reads: readonly LeaseRead[]): string[] {
  return reads.filter((r) => r.error !== undefined).map((r) => `${r.key}: ${r.error}`);
}

/** Registers the lease tests on `stack`, named "leases over `label`: ...". */
export function testLeasesAcrossProcesses(
  stack: { bus: BusKind; coordinator: CoordinatorKind },
  label: string,
): void {
  Deno.test(`leases over ${label}: three processes, a revocation by another node hides every attached key on every node at once (G1, G3)`, async () => {
    await withLeaseCluster(stack, async (nodes) => {
      const [a, b, c] = nodes as [LeaseChild, LeaseChild, LeaseChild];
      const lease = (await a.command({ op: "grant", ttlMs: 60_000 })).lease as string;
      const other = (await a.command({ op: "grant", ttlMs: 60_000 })).lease as string;
      const attached = ["ev:1", "ev:2", "st:1", "st:2"];
      const controls = ["ev:ctl", "st:ctl"];
      const ofOther = ["ev:other", "st:other"];
      for (const key of attached) await a.command({ op: "set", key, value: `v-${key}`, lease });
      await a.command({ op: "set", key: "sl:a", value: "v-sl:a", lease });
      for (const key of controls) await a.command({ op: "set", key, value: `v-${key}` });
      for (const key of ofOther) {
        await a.command({ op: "set", key, value: `v-${key}`, lease: other });
      }
      const shared = [...attached, ...controls, ...ofOther];

      // Every node reads every key: found; a later read comes from L1.
      for (const node of nodes) {
        const keys = node === a ? [...shared, "sl:a"] : shared;
        for (const key of keys) {
          const first = await node.read(key);
          assert.deepEqual([first.found, first.value], [true, `v-${key}`], `${node.node} ${key}`);
          // On a loaded machine a session renewal can come late, and a strong read then
          // reads through (by design) until the session is current again: allow two more
          // tries, 250 ms apart, before calling the entry uncached.
          let later = await node.read(key);
          for (let tries = 0; later.source !== "l1" && tries < 2; tries++) {
            await new Promise((resolve) => setTimeout(resolve, 250));
            later = await node.read(key);
          }
          assert.deepEqual(
            [later.found, later.value, later.source],
            [true, `v-${key}`, "l1"],
            `${node.node} ${key}: a later read is served from L1`,
          );
        }
      }

      // Every node keeps reading while b (not the granter) revokes the lease.
      const loopKeys = [...attached, "ev:ctl", "st:ctl"];
      const loops = nodes.map((node) =>
        node.command({
          op: "readLoop",
          keys: node === a ? [...loopKeys, "sl:a"] : loopKeys,
          durationMs: 1500 + LEASE_CHECK_MS,
          pauseMs: 2,
        })
      );
      await sleep(500);
      const revoke = await b.command({ op: "revoke", lease });
      const revokeMs = (revoke.completeMs as number) - (revoke.invokeMs as number);
      // As soon as it resolved: absent everywhere, with no waiting.
      const after = await Promise.all(nodes.map((node) => {
        const keys = node === a ? [...attached, "sl:a"] : attached;
        return Promise.all(keys.map((key) => node.read(key)));
      }));
      for (const [i, reads] of after.entries()) {
        for (const read of reads) {
          assert.equal(read.found, false, `${nodes[i]!.node} ${read.key} read right after revoke`);
          assert.equal(read.value, undefined);
        }
      }
      const loopReads = (await Promise.all(loops)).map((r) => r.reads as LeaseRead[]);

      console.log(
        `  revokeLease on b took ${revokeMs.toFixed(1)} ms (leaseCheckMs ${LEASE_CHECK_MS}); ` +
          `reads right after it: ${after.flat().length} absent`,
      );
      // The design: revokeLease waits leaseCheckMs × (1 + drift) after its coordinator write.
      assert.ok(revokeMs >= LEASE_CHECK_MS * (1 + MAX_DRIFT), `revokeLease took ${revokeMs} ms`);
      assert.ok(revokeMs < 5000, `revokeLease took ${revokeMs} ms`);

      // The concurrent reads: an attached key is found before the revocation began, never
      // after it resolved; the control keys always.
      const revokeInvokeMs = revoke.invokeMs as number;
      const revokeCompleteMs = revoke.completeMs as number;
      for (const [i, reads] of loopReads.entries()) {
        const node = nodes[i]!.node;
        assert.deepEqual(readErrors(reads), [], `${node}: no read failed`);
        const leased = reads.filter((r) => r.key !== "ev:ctl" && r.key !== "st:ctl");
        const before = leased.filter((r) => r.completeMs < revokeInvokeMs);
        const later = leased.filter((r) => r.invokeMs > revokeCompleteMs);
        assert.ok(before.length > 0 && later.length > 0, `${node} read before and after`);
        const missing = before.filter((r) => !r.found).map((r) => r.key);
        assert.deepEqual(missing, [], `${node}: attached keys found before the revocation`);
        assert.ok(before.some((r) => r.source === "l1"), `${node} served attached keys from L1`);
        const served = later.filter((r) => r.found).map((r) =>
          `${r.key}@+${(r.invokeMs - revokeCompleteMs).toFixed(1)}ms (${r.source})`
        );
        assert.deepEqual(served, [], `${node} served an attached key after revokeLease resolved`);
        const lostControls = reads.filter((r) => r.key.endsWith(":ctl") && !r.found);
        assert.deepEqual(lostControls, [], `${node}: the unattached keys stay found`);
        const lastFound = Math.max(...leased.filter((r) => r.found).map((r) => r.completeMs));
        const firstAbsent = Math.min(...leased.filter((r) => !r.found).map((r) => r.invokeMs));
        console.log(
          `  ${node}: ${reads.length} reads; last attached found ${
            (lastFound - revokeInvokeMs).toFixed(1)
          } ms after revoke began, first absent ${
            (firstAbsent - revokeInvokeMs).toFixed(1)
          } ms after (revoke resolved at +${(revokeCompleteMs - revokeInvokeMs).toFixed(1)})`,
        );
      }

      // Unattached keys and keys of another lease stay found on every node.
      for (const node of nodes) {
        for (const key of [...controls, ...ofOther]) {
          const read = await node.read(key);
          assert.deepEqual([read.found, read.value], [true, `v-${key}`], `${node.node} ${key}`);
        }
      }

      // G3: the lease stays dead, on the node that never touched it and on the granter.
      assertCode(
        await c.attempt({ op: "set", key: "ev:3", value: "late", lease }),
        "LEASE_REVOKED",
        "set on c",
      );
      assertCode(await c.attempt({ op: "keepAlive", lease }), "LEASE_REVOKED", "keepAlive on c");
      assertCode(await a.attempt({ op: "keepAlive", lease }), "LEASE_REVOKED", "keepAlive on a");
      assertCode(
        await a.attempt({ op: "set", key: "st:1", value: "late", lease }),
        "LEASE_REVOKED",
        "set on a",
      );
      for (const node of nodes) {
        assert.equal(
          (await node.read("ev:3")).found,
          false,
          `${node.node}: the refused write left nothing`,
        );
        assert.equal((await node.read("st:1")).found, false, `${node.node}: st:1 stays absent`);
      }
      // Revoking a dead lease succeeds.
      await c.command({ op: "revoke", lease });
      // A key written again without the lease is found again.
      await c.command({ op: "set", key: "st:1", value: "again" });
      for (const node of nodes) {
        const read = await node.read("st:1");
        assert.deepEqual([read.found, read.value], [true, "again"], `${node.node} st:1 rewritten`);
      }
      const stats = await Promise.all(nodes.map((node) => node.command({ op: "stats" })));
      for (const [i, record] of stats.entries()) {
        const warp = record.warp as { leaseDeadValues: number; leaseChecks: number };
        assert.ok(warp.leaseChecks > 0, `${nodes[i]!.node} checked leases`);
      }
    });
  });

  Deno.test(`leases over ${label}: a lease kept alive outlives its TTL, then expires on every node within ttl × (1 + drift) + leaseCheckMs (G2, G3)`, async () => {
    await withLeaseCluster(stack, async (nodes) => {
      const [a, b, c] = nodes as [LeaseChild, LeaseChild, LeaseChild];
      const ttlMs = 1000;
      const grant = await a.command({ op: "grant", ttlMs });
      const lease = grant.lease as string;
      const keys = ["ev:1", "st:1"];
      for (const key of keys) await a.command({ op: "set", key, value: `v-${key}`, lease });
      await a.command({ op: "set", key: "ev:ctl", value: "ctl" });
      for (const node of nodes) {
        for (const key of keys) {
          assert.equal((await node.read(key)).found, true, `${node.node} ${key}`);
        }
      }

      // Keep-alives every 300 ms for 2.5 TTLs, from each node in turn, while every node reads.
      const keepAliveForMs = 2500;
      const expiryBoundMs = ttlMs * (1 + MAX_DRIFT) + LEASE_CHECK_MS + SLACK_MS;
      const loops = nodes.map((node) =>
        node.command({
          op: "readLoop",
          keys: [...keys, "ev:ctl"],
          durationMs: keepAliveForMs + expiryBoundMs + 500,
          pauseMs: 5,
        })
      );
      const startMs = Date.now();
      let lastKeepAlive: NodeRecord | undefined;
      for (let i = 0; Date.now() - startMs < keepAliveForMs; i++) {
        await sleep(Math.max(0, startMs + i * 300 - Date.now()));
        lastKeepAlive = await nodes[i % 3]!.command({ op: "keepAlive", lease });
      }
      assert.ok(lastKeepAlive !== undefined);
      const keptFromMs = grant.completeMs as number;
      const lastWriteMs = lastKeepAlive.completeMs as number; // the record's last write is before
      const aliveUntilMs = (lastKeepAlive.invokeMs as number) + ttlMs - SLACK_MS;
      const loopReads = (await Promise.all(loops)).map((r) => r.reads as LeaseRead[]);

      const lines: string[] = [];
      for (const [i, reads] of loopReads.entries()) {
        const node = nodes[i]!.node;
        assert.deepEqual(readErrors(reads), [], `${node}: no read failed`);
        const leased = reads.filter((r) => r.key !== "ev:ctl");
        // While kept alive (up to the last keep-alive's start plus the TTL, minus slack),
        // and well past the first TTL, the attached keys are found.
        const alive = leased.filter((r) => r.completeMs < aliveUntilMs);
        assert.ok(
          alive.some((r) => r.invokeMs > keptFromMs + ttlMs + LEASE_CHECK_MS + SLACK_MS),
          `${node} read while the lease was kept alive past its first TTL`,
        );
        const lost = alive.filter((r) => !r.found).map((r) =>
          `${r.key}@+${(r.invokeMs - keptFromMs).toFixed(0)}ms`
        );
        assert.deepEqual(lost, [], `${node}: attached keys read as absent while kept alive`);
        // After the bound: absent.
        const late = leased.filter((r) => r.invokeMs > lastWriteMs + expiryBoundMs);
        assert.ok(late.length > 0, `${node} read after the expiry bound`);
        const served = late.filter((r) => r.found).map((r) =>
          `${r.key}@+${(r.invokeMs - lastWriteMs).toFixed(0)}ms (${r.source})`
        );
        assert.deepEqual(served, [], `${node} served an attached key after the lease expired`);
        assert.ok(reads.filter((r) => r.key === "ev:ctl").every((r) => r.found), `${node} ev:ctl`);
        const lastFound = Math.max(...leased.filter((r) => r.found).map((r) => r.completeMs));
        const firstAbsent = Math.min(...leased.filter((r) => !r.found).map((r) => r.invokeMs));
        lines.push(
          `${node}: last found +${(lastFound - lastWriteMs).toFixed(0)} ms, first absent +${
            (firstAbsent - lastWriteMs).toFixed(0)
          } ms`,
        );
      }
      console.log(
        `  after the last keep-alive resolved (ttl ${ttlMs}, leaseCheckMs ${LEASE_CHECK_MS}, ` +
          `bound +${expiryBoundMs.toFixed(0)} ms): ${lines.join("; ")}`,
      );

      for (const node of nodes) {
        for (const key of keys) {
          assert.equal((await node.read(key)).found, false, `${node.node} ${key} after expiry`);
        }
      }
      // G3: an expired lease stays dead.
      assertCode(await b.attempt({ op: "keepAlive", lease }), "LEASE_EXPIRED", "keepAlive on b");
      assertCode(await a.attempt({ op: "keepAlive", lease }), "LEASE_EXPIRED", "keepAlive on a");
      assertCode(
        await c.attempt({ op: "set", key: "ev:2", value: "late", lease }),
        "LEASE_EXPIRED",
        "set on c",
      );
      assertCode(
        await a.attempt({ op: "set", key: "st:1", value: "late", lease }),
        "LEASE_EXPIRED",
        "set on a",
      );
      for (const node of nodes) {
        assert.equal((await node.read("ev:2")).found, false);
        assert.equal((await node.read("st:1")).found, false);
      }
    });
  });
}
