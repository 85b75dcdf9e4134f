/**
 * Leases over real NATS (bus and JetStream KV coordinator) and PostgreSQL: the tests of
 * `test/_lease_tests.ts` (G1, G2, G3), and the TTL buckets of `NatsKvCoordinator` they rest
 * on.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NatsKvCoordinator } from "../src/nats/coordinator.ts";
import { testLeasesAcrossProcesses } from "./_lease_tests.ts";
import { NATS_URL } from "./_process_cluster.ts";

testLeasesAcrossProcesses({ bus: "nats", coordinator: "nats" }, "NATS");

const bytes = (text: string) => new TextEncoder().encode(text);

/** A name unique to this run, valid as a bucket name. */
function uniqueName(): string {
  return `warp_lt_${Date.now().toString(36)}_${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
}

/**
 * Deletes the KV buckets (streams `KV_<name>...`) whose name starts with `name`: the main
 * bucket and the `-ttl<ms>` buckets the coordinator made beside it.
 */
async function deleteBuckets(nc: NatsConnection, name: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const streams: string[] = [];
  for await (const stream of jsm.streams.names()) {
    if (stream.startsWith(`KV_${name}`)) streams.push(stream);
  }
  for (const stream of streams) await jsm.streams.delete(stream);
  return streams;
}

Deno.test("NatsKvCoordinator TTL records: a bucket per TTL, under 100 ms refused, one of another max age refused", async () => {
  const name = uniqueName();
  const nc = await connect({ servers: NATS_URL, name: "warp-lease-test" });
  try {
    const coordinator = await NatsKvCoordinator.create(nc, { bucket: name, timeoutMs: 2000 });
    const ttlMs = 1000;
    const ttl = { ttlMs };
    // The generic TTL behaviour is in test/_coordinator_suite.ts; here, how NATS does it.
    await coordinator.create("lease/x", bytes("a"), ttl);
    const jsm = await jetstreamManager(nc);
    assert.equal((await jsm.streams.info(`KV_${name}-ttl${ttlMs}`)).config.max_age, ttlMs * 1e6);
    await assert.rejects(coordinator.get("lease/y", { ttlMs: 50 }), RangeError);
    await assert.rejects(coordinator.create("lease/y", bytes("a"), { ttlMs: 1.5 }), RangeError);

    // A TTL bucket that already exists with another max age is refused, never trusted.
    const otherName = `${name}_b`;
    const kvm = new Kvm(jetstream(nc));
    const existing = await kvm.create(`${otherName}-ttl${ttlMs}`, { history: 1, ttl: 2 * ttlMs });
    const other = await NatsKvCoordinator.create(nc, { bucket: otherName, timeoutMs: 2000 });
    const refused = { name: "WarpError", code: "COORDINATOR_UNAVAILABLE" };
    await assert.rejects(other.create("lease/x", bytes("a"), ttl), refused);
    await assert.rejects(other.get("lease/x", ttl), refused, "refused again on the next call");
    await assert.rejects(other.update("lease/x", bytes("a"), 1, ttl), refused);
    assert.equal((await existing.status()).ttl, 2 * ttlMs, "the existing bucket is left as it was");
    const written: string[] = [];
    for await (const key of await existing.keys()) written.push(key);
    assert.deepEqual(written, [], "and nothing was written to it");
    // The same coordinator works with a TTL whose bucket it creates itself.
    const revision = await other.create("lease/x", bytes("a"), { ttlMs: 2 * ttlMs });
    assert.equal((await other.get("lease/x", { ttlMs: 2 * ttlMs }))?.revision, revision);
    await other.close();
    await coordinator.close();
  } finally {
    await deleteBuckets(nc, name);
    await nc.close();
  }
});
