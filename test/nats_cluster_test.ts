/**
 * The real runtime over NATS: three Warp nodes in three separate processes, sharing a
 * nats-server (bus and JetStream KV coordinator) and a PostgreSQL table. Operations are
 * recorded into a history and checked by the simulator's checkers, with faults injected
 * while every node writes: the NATS server killed and restarted, a node SIGKILLed, one
 * node's connection cut. These tests need NATS and PostgreSQL and fail without them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { checkHistory } from "../sim/checkers/consistency.ts";
import type { History, HistoryOp } from "../sim/history.ts";
import { PrivateNatsServer } from "./_nats_server.ts";
import type { ProcessCluster } from "./_process_cluster.ts";
import {
  assertKeysRecovered,
  assertOk,
  assertRecovered,
  assertWritesSeen,
  LEASE_MS,
  lostWrites,
  okWritesAfter,
  readUntil,
  runUnderFault,
  sleep,
  withCluster,
} from "./_cluster_faults.ts";

Deno.test("three processes: a write on one node is seen by the others, per mode", async () => {
  await withCluster({}, assertWritesSeen);
});

// ------------------------------------------------------------------ faults under load

Deno.test("lostWrites() reports a lost acknowledged write and a final value from nowhere", () => {
  const write = (id: number, value: string, outcome: HistoryOp["outcome"], version?: number) => ({
    id,
    process: "n1",
    key: "k",
    kind: "write" as const,
    value,
    invokeMs: id,
    completeMs: outcome === "unknown" ? null : id + 0.5,
    outcome,
    ...(version !== undefined && { version }),
  });
  const history = (final: { version: number; value: unknown }, ops: HistoryOp[]): History => ({
    format: "warp-history/1",
    keys: { k: { mode: "strong-distributed" } },
    ops,
    final: { k: final },
  });
  const ops = [write(1, "a", "ok", 1), write(2, "b", "ok", 2), write(3, "c", "unknown")];
  assert.deepEqual(lostWrites(history({ version: 2, value: "b" }, ops)), []);
  assert.deepEqual(lostWrites(history({ version: 3, value: "c" }, ops)), []);
  assert.equal(lostWrites(history({ version: 1, value: "a" }, ops)).length, 1);
  assert.equal(lostWrites(history({ version: 3, value: "x" }, ops)).length, 1);
  assert.equal(lostWrites(history({ version: 2, value: "c" }, ops)).length, 1);
});

Deno.test("three processes under load: the NATS server killed and restarted", async () => {
  const server = await PrivateNatsServer.start();
  try {
    await withCluster({ natsUrl: server.url }, async (cluster) => {
      let restartedMs = 0;
      const { history } = await runUnderFault("nats-server restart", cluster, async () => {
        await server.kill();
        await sleep(1500);
        await server.restart();
        restartedMs = performance.timeOrigin + performance.now();
      });
      // Once the server is back every node writes again (eventual and strong-local keys,
      // whose writes need no coordinator record left behind by the outage), strong keys too.
      assertRecovered(cluster, history, restartedMs);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("three processes under load: one node SIGKILLed in the middle of its writes", async () => {
  await withCluster({}, async (cluster) => {
    let killedMs = 0;
    const { history } = await runUnderFault("node SIGKILL", cluster, async () => {
      // Kill n3 the moment one of its strong writes is in flight (they take a few ms).
      const deadline = Date.now() + 2000;
      while (!cluster.inFlight(2).some((op) => op.kind === "write" && op.key.startsWith("st:"))) {
        if (Date.now() > deadline) throw new Error("n3 started no strong write");
        await sleep(1);
      }
      killedMs = performance.timeOrigin + performance.now();
      await cluster.kill(2);
    });
    const cut = history.ops.filter((op) => op.process === "n3" && op.completeMs === null);
    assert.ok(cut.length > 0, "the kill left operations of n3 without an answer");
    const recovered = okWritesAfter(history, "ev:", killedMs + 500);
    for (const id of ["n1", "n2"]) assert.ok((recovered.get(id) ?? 0) > 0, `${id} goes on`);
    assertKeysRecovered(history, "st", killedMs);
  });
});

Deno.test("three processes under load: one node's NATS connection cut, the others go on", async () => {
  await withCluster({ proxied: true }, async (cluster) => {
    let restoredMs = 0;
    const { history } = await runUnderFault("connection cut", cluster, async () => {
      const proxy = cluster.node(1).proxy!;
      // n2 holds a lease on st:cut (no workload touches it) when it is cut off: a write
      // of st:cut on n1 cannot revoke it, so it waits the lease out (S3) and succeeds.
      assertOk(await cluster.get(1, "st:cut"));
      const startMs = Date.now();
      proxy.blackhole();
      assertOk(await cluster.set(0, "st:cut", "while-cut"));
      assert.ok(Date.now() - startMs >= LEASE_MS, "the write waited out n2's lease");
      // Cut off, n2 cannot reach the coordinator: it reads the store, never its stale entry.
      const read = await cluster.get(1, "st:cut");
      assert.deepEqual([read.outcome, read.value, read.source], ["ok", "while-cut", "store"]);
      await sleep(3000 - (Date.now() - startMs));
      proxy.restore();
      restoredMs = performance.timeOrigin + performance.now();
    });
    // The write waited n2 out: by its lease, or (about 1 run in 4) by the sessions record
    // showing n2's session ended after notices were posted to it; both are a wait.
    const writer = (await cluster.stats(0)).warp;
    assert.ok(writer.leaseWaits > 0 || writer.noticesPosted > 0, JSON.stringify(writer));
    const recovered = okWritesAfter(history, "st:", restoredMs + 1000);
    for (const node of cluster.nodes) {
      assert.ok((recovered.get(node.id) ?? 0) > 0, `${node.id} writes strong keys again`);
    }
  });
});

Deno.test("a strong key whose writer was SIGKILLed after claiming it can be written again", async () => {
  const writeTimeoutMs = 2000;
  await withCluster({ writeTimeoutMs }, async (cluster) => {
    assertOk(await cluster.set(0, "st:x", "before"));
    // n3 must hold a lease on st:x: a read that finds the writer's release still in flight
    // reads through without registering, so read until n3 serves it from its L1.
    for (let i = 0; i < 50 && (await cluster.get(2, "st:x")).source !== "l1"; i++) {
      await sleep(20);
    }
    assert.equal((await cluster.get(2, "st:x")).source, "l1", "n3 caches st:x");
    // n3 pauses, so n1's write claims the slot and then waits out n3's lease; n1 dies
    // in that wait, leaving the slot claimed by a writer that will never release it.
    cluster.signal(2, "SIGSTOP");
    const orphan = cluster.set(0, "st:x", "orphan");
    await sleep(LEASE_MS / 2);
    await cluster.kill(0);
    assert.equal((await orphan).outcome, "unknown");
    cluster.signal(2, "SIGCONT");
    // protocol.md: another writer takes the slot over once the record has stayed
    // unchanged for writeTimeoutMs * (1 + drift). A caller that retries must get there.
    const deadline = Date.now() + 4 * writeTimeoutMs;
    let attempt = 0;
    let written: HistoryOp | undefined;
    while (Date.now() < deadline) {
      const op = await cluster.set(1, "st:x", `after-${attempt++}`);
      if (op.outcome === "ok") {
        written = op;
        break;
      }
    }
    const errors = cluster.failures().filter((f) => f.process === "n2").map((f) => f.error);
    assert.ok(
      written !== undefined,
      `n2 could never write st:x after its writer died (${attempt} attempts): ${errors.join("; ")}`,
    );
    const read = await cluster.get(2, "st:x");
    assert.equal(read.value, written.value);
    const result = checkHistory(await cluster.history());
    assert.deepEqual(result.violations, []);
  });
});

/** How soon a node that knows its connection is down should give up on the coordinator. */
const FAIL_FAST_MS = 250;

Deno.test("a node whose NATS server is down fails strong writes fast and reads the store, with default timeouts", async () => {
  const server = await PrivateNatsServer.start();
  try {
    // Warp's and NatsKvCoordinator's default timeouts, as a user gets them.
    await withCluster(
      { natsUrl: server.url, ioTimeoutMs: undefined, coordinatorTimeoutMs: undefined, size: 1 },
      async (cluster) => {
        assertOk(await cluster.set(0, "st:k", "before"));
        await server.kill();
        await sleep(200); // the client has seen the connection drop
        // CONSISTENCY.md S4: a write whose node cannot reach the coordinator fails fast
        // (COORDINATOR_UNAVAILABLE) instead of waiting; and a read of a strong key the node
        // does not cache goes to the store. The client knows its connection is down.
        const write = await cluster.set(0, "st:other", "during");
        const writeError = cluster.failures().at(-1)?.error ?? "";
        const read = await cluster.get(0, "st:cold");
        const writeMs = Math.round((write.completeMs ?? Infinity) - write.invokeMs);
        const readMs = Math.round((read.completeMs ?? Infinity) - read.invokeMs);
        assert.equal(write.outcome, "fail", `the write failed definitely: ${writeError}`);
        assert.match(writeError, /^COORDINATOR_UNAVAILABLE/);
        assert.equal(read.outcome, "ok", "the read went to the store");
        assert.ok(
          writeMs < FAIL_FAST_MS && readMs < FAIL_FAST_MS,
          `the write failed after ${writeMs} ms and the read answered after ${readMs} ms, ` +
            `not within ${FAIL_FAST_MS} ms`,
        );
      },
    );
  } finally {
    await server.stop();
  }
});

// ------------------------------------------------------------------ sessions

/** `sessionMs` of the session tests: Warp's default. */
const SESSION_MS = 2000;

/** Writes `key` on n1, then reads it on n2 until n2 serves it from L1 (a holder). */
async function makeHolder(cluster: ProcessCluster, key: string): Promise<void> {
  assertOk(await cluster.set(0, key, "before"));
  const read = await readUntil(cluster, 1, key, (op) => op.source === "l1", 2000);
  assert.equal(read.value, "before");
}

for (const cut of ["blocked", "closed"] as const) {
  Deno.test(`sessions: a strong holder whose bus is ${cut} takes a write's notice through the coordinator, before its session ends`, async () => {
    // n2's bus has a connection of its own, through a proxy; its coordinator's does not.
    await withCluster({ proxied: "bus", sessionMs: SESSION_MS }, async (cluster) => {
      await makeHolder(cluster, "st:cut");
      const before = (await cluster.stats(0)).warp;
      const proxy = cluster.node(1).proxy!;
      if (cut === "blocked") proxy.blackhole();
      else await proxy.close();
      // n1's revoke cannot reach n2: n1 posts a notice into n2's session entry, n2's next
      // renewal (every sessionMs / 3) takes it in and drops the key, and n1, reading n2's
      // entry renewed past the notice, completes without waiting out n2's session.
      const write = await cluster.set(0, "st:cut", "while-cut");
      assertOk(write);
      const writeMs = write.completeMs! - write.invokeMs;
      const after = (await cluster.stats(0)).warp;
      console.log(`  write with n2's bus ${cut}: ${Math.round(writeMs)} ms`);
      assert.equal(after.noticesPosted - before.noticesPosted, 1, "n1 posted one notice");
      assert.equal(after.leaseWaits, before.leaseWaits, "n1 did not wait n2's session out");
      assert.ok(writeMs < SESSION_MS, `the write took ${writeMs} ms, not under sessionMs`);
      // n2, still cut off the bus, serves the new value.
      const read = await cluster.get(1, "st:cut");
      assert.deepEqual([read.outcome, read.value, read.version], [
        "ok",
        "while-cut",
        write.version,
      ]);
      const result = checkHistory(await cluster.history());
      assert.deepEqual(result.violations, []);
      assert.equal(result.results.S1, "pass");
    });
  });
}

Deno.test("sessions: a strong holder SIGSTOPped past its session holds a write up for about sessionMs, and resumed does not serve the old value", async () => {
  await withCluster({ sessionMs: SESSION_MS }, async (cluster) => {
    await makeHolder(cluster, "st:paused");
    const before = (await cluster.stats(0)).warp;
    cluster.signal(1, "SIGSTOP");
    const stoppedMs = Date.now();
    let write: HistoryOp;
    try {
      // n2 answers neither the revoke nor the notice: n1 completes once n2's session has
      // provably ended, by waiting it out from its notice or by seeing n2 removed from
      // the sessions record (a member removes n2 once its entry has stayed unchanged for
      // sessionMs, so at least 2/3 sessionMs after the pause: n2 renewed every sessionMs / 3).
      write = await cluster.set(0, "st:paused", "while-paused");
      await sleep(stoppedMs + 2 * SESSION_MS - Date.now());
    } finally {
      cluster.signal(1, "SIGCONT");
    }
    assertOk(write);
    const writeMs = write.completeMs! - write.invokeMs;
    const after = (await cluster.stats(0)).warp;
    const waitedOut = after.leaseWaits - before.leaseWaits;
    console.log(
      `  write with n2 stopped: ${Math.round(writeMs)} ms (${
        waitedOut > 0 ? "waited out its session" : "saw it removed"
      })`,
    );
    assert.equal(after.noticesPosted - before.noticesPosted, 1, "n1 posted one notice");
    assert.ok(
      writeMs >= (2 / 3) * SESSION_MS && writeMs < 2 * SESSION_MS,
      `the write took ${writeMs} ms, not about sessionMs`,
    );
    // Resumed, n2 never serves "before": its belief ran out while it was stopped.
    const read = await cluster.get(1, "st:paused");
    assert.deepEqual([read.outcome, read.value], ["ok", "while-paused"]);
    const later = await readUntil(cluster, 1, "st:paused", (op) => op.source === "l1", 3000);
    assert.equal(later.value, "while-paused");
    const result = checkHistory(await cluster.history());
    assert.deepEqual(result.violations, []);
    assert.equal(result.results.S1, "pass");
  });
});
