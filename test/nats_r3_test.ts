/**
 * Warp on a NATS cluster: three private nats-servers routed into one cluster
 * (`test/_nats_cluster.ts`), the coordinator's KV buckets replicated on all three (R3),
 * three Warp node processes connected to every server (`test/_process_cluster.ts`), and
 * faults of the servers under the write load of the three-process fault tests
 * (`test/_cluster_faults.ts`: all three modes, strong writes through the coordinator and
 * eventual writes under sessions), each history checked by the simulator's checkers and
 * for acknowledged writes lost:
 *
 * - the stream leader of the coordinator's bucket killed, then restarted;
 * - the stream leader SIGSTOPped past the election timeout, then resumed;
 * - two of the three servers killed (no quorum), then both restarted.
 *
 * Each test prints how long operations failed. Needs PostgreSQL (the store) and the
 * Debian nats-server binary; never touches the shared NATS server.
 *
 * @module
 */

import assert from "node:assert/strict";
import { NatsCluster } from "./_nats_cluster.ts";
import type { ProcessCluster } from "./_process_cluster.ts";
import {
  assertRecovered,
  FAULT_AT_MS,
  runUnderFault,
  sleep,
  withCluster,
} from "./_cluster_faults.ts";

/** How long every node's load runs: the fault, then time to recover and write again. */
const LOAD_MS = 16_000;

/** Runs `fn` on a fresh three-server cluster with a three-node Warp cluster on R3 buckets. */
async function withR3(
  fn: (nats: NatsCluster, cluster: ProcessCluster) => Promise<void>,
): Promise<void> {
  const nats = await NatsCluster.start(3);
  try {
    await withCluster({ natsUrl: nats.urls, replicas: 3 }, (cluster) => fn(nats, cluster));
  } finally {
    await nats.stop();
  }
}

/** Epoch milliseconds, the clock of the history. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * What failed during a fault that began at `fromMs`: the operations that did not succeed
 * for a reason other than contention (a lost compare-and-set race is an ordinary outcome),
 * by mode, kind and error, the span from the first one's call to the last one's, and how
 * many per second from the fault on.
 */
function outage(cluster: ProcessCluster, fromMs: number): string {
  const failed = cluster.failures().filter((op) =>
    op.invokeMs >= fromMs - 1000 && !op.error.startsWith("CONTENDED")
  );
  if (failed.length === 0) return "no operation failed";
  const byKind = new Map<string, number>();
  const perSecond: number[] = [];
  for (const op of failed) {
    const name = `${op.key.split(":")[0]} ${op.kind} ${op.error.split(":")[0]}`;
    byKind.set(name, (byKind.get(name) ?? 0) + 1);
    const second = Math.max(0, Math.floor((op.invokeMs - fromMs) / 1000));
    perSecond[second] = (perSecond[second] ?? 0) + 1;
  }
  const first = Math.min(...failed.map((op) => op.invokeMs));
  const last = Math.max(...failed.map((op) => op.invokeMs));
  return `${failed.length} operations failed (${
    [...byKind].map(([k, n]) => `${k} ×${n}`).join(", ")
  }), invoked from +${Math.round(first - fromMs)} ms to +${Math.round(last - fromMs)} ms ` +
    `after the fault; per second from the fault: ${Array.from(perSecond, (n) => n ?? 0).join(" ")}`;
}

Deno.test("R3 cluster under load: the bucket's stream leader killed and restarted", async () => {
  await withR3(async (nats, cluster) => {
    let faultMs = 0, restartedMs = 0, victim = "";
    const { history } = await runUnderFault("R3 stream leader killed", cluster, async () => {
      victim = await nats.streamLeader(cluster.bucket);
      const meta = await nats.metaLeader();
      console.log(`  killing ${victim} (stream leader; metadata leader ${meta})`);
      faultMs = nowMs();
      await nats.server(victim).kill();
      const elected = await nats.streamLeader(cluster.bucket);
      console.log(`  new stream leader ${elected} after ${Math.round(nowMs() - faultMs)} ms`);
      await sleep(Math.max(0, 3000 - (nowMs() - faultMs)));
      await nats.server(victim).restart();
      restartedMs = nowMs();
    }, LOAD_MS);
    console.log(`  ${outage(cluster, faultMs)}`);
    assertRecovered(cluster, history, restartedMs);
  });
});

Deno.test("R3 cluster under load: the stream leader SIGSTOPped past the election timeout, then resumed", async () => {
  await withR3(async (nats, cluster) => {
    let faultMs = 0, resumedMs = 0;
    const { history } = await runUnderFault("R3 stream leader paused", cluster, async () => {
      const victim = await nats.streamLeader(cluster.bucket);
      console.log(
        `  pausing ${victim} (stream leader; metadata leader ${await nats.metaLeader()})`,
      );
      faultMs = nowMs();
      nats.server(victim).pause();
      const elected = await nats.streamLeader(cluster.bucket);
      console.log(`  stream leader ${elected} after ${Math.round(nowMs() - faultMs)} ms`);
      assert.notEqual(elected, victim, "the others elected a new stream leader");
      await sleep(Math.max(0, 6000 - (nowMs() - faultMs)));
      nats.server(victim).resume();
      resumedMs = nowMs();
    }, LOAD_MS);
    console.log(`  ${outage(cluster, faultMs)}`);
    assertRecovered(cluster, history, resumedMs);
  });
});

Deno.test("R3 cluster under load: two of three servers killed (no quorum), then both restarted", async () => {
  await withR3(async (nats, cluster) => {
    let faultMs = 0, restartedMs = 0;
    const { history } = await runUnderFault("R3 two servers killed", cluster, async () => {
      const leader = await nats.streamLeader(cluster.bucket);
      const victims = [leader, nats.servers.find((s) => s.name !== leader)!.name];
      console.log(`  killing ${victims.join(" and ")} (${leader} leads the stream)`);
      faultMs = nowMs();
      await Promise.all(victims.map((name) => nats.server(name).kill()));
      await sleep(3000);
      await Promise.all(victims.map((name) => nats.server(name).restart()));
      restartedMs = nowMs();
      await nats.streamLeader(cluster.bucket);
      console.log(`  stream leader back ${Math.round(nowMs() - restartedMs)} ms after the restart`);
    }, LOAD_MS);
    console.log(`  ${outage(cluster, faultMs)}`);
    assertRecovered(cluster, history, restartedMs);
  });
});

// The load's fault starts FAULT_AT_MS into it; LOAD_MS leaves it room to recover.
assert.ok(LOAD_MS > FAULT_AT_MS + 6000 + 4000);
