// A Node user's first hour with the built package: run with `node --test` after
// `deno task build:node` (scripts/build_node.ts) has built dist/ and installed its dependencies.
//
//   node --test --test-reporter=tap test/node/smoke.node.mjs
//
// The package is loaded by its name, "@warp/warp", through the exports map of
// dist/package.json (a package may require itself by name from inside its folder), so a
// wrong map fails here as it would for a user. This file is plain JavaScript, and it is
// named so that `deno test` does not pick it up: it tests Node, not Deno.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

const NATS_URL = process.env.WARP_TEST_NATS_URL ?? "127.0.0.1:4222";
const RUN = `${Date.now().toString(36)}_${process.pid}`;
const requireFromDist = createRequire(new URL("../../dist/package.json", import.meta.url));

/** Imports an entry point of the built package by its public name. */
function importPackage(name) {
  return import(pathToFileURL(requireFromDist.resolve(name)).href);
}

/** Polls `read` every 5 ms until `done(value)`; returns the value and the wait in ms. */
async function waitFor(what, read, done, timeoutMs = 5000) {
  const started = performance.now();
  for (;;) {
    const value = await read();
    if (done(value)) return { value, waitedMs: performance.now() - started };
    if (performance.now() - started > timeoutMs) {
      assert.fail(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const warp = await importPackage("@warp/warp");
const nats = await importPackage("@warp/warp/nats");

test("Node globals Warp needs exist, and Deno's do not", () => {
  assert.equal(typeof performance.now, "function");
  assert.equal(typeof crypto.randomUUID, "function");
  assert.equal(typeof crypto.subtle.digest, "function");
  assert.equal(globalThis.Deno, undefined);
});

test("every entry point of the exports map loads", async () => {
  const core = await importPackage("@warp/warp/core");
  const postgres = await importPackage("@warp/warp/postgres");
  const redis = await importPackage("@warp/warp/redis");
  assert.equal(typeof warp.Warp, "function");
  assert.equal(typeof core.NodeCore, "function");
  assert.equal(typeof nats.NatsTransport.connect, "function");
  assert.equal(typeof postgres.PostgresStore.connect, "function");
  assert.equal(typeof postgres.PostgresCoordinator.connect, "function");
  assert.equal(typeof postgres.PostgresTransport.connect, "function");
  assert.equal(typeof redis.RedisTransport.connect, "function");
});

test("three in-process nodes: a strong write is visible everywhere, an eventual one spreads", async () => {
  const { InProcessBus, MemoryCoordinator, MemoryStore, Warp } = warp;
  const store = new MemoryStore();
  const bus = new InProcessBus();
  const coordinator = new MemoryCoordinator();
  const nodes = [1, 2, 3].map(() => new Warp({ store, coordinator, transport: bus.connect() }));
  try {
    for (const node of nodes) {
      node.register("account:*", { mode: "strong-distributed" });
      node.register("session:*", { mode: "eventual-distributed", maxStalenessMs: 60_000 });
    }
    for (const node of nodes) assert.equal(await node.get("account:7"), undefined);
    await nodes[0].set("account:7", { balance: 10 });
    for (const node of nodes) assert.deepEqual(await node.get("account:7"), { balance: 10 });

    // Each node caches the absence first, so only an invalidation can change its answer
    // within the 60 s staleness bound.
    for (const node of nodes) assert.equal(await node.get("session:1"), undefined);
    await nodes[1].set("session:1", "alive");
    for (const node of nodes) {
      await waitFor("the eventual write", () => node.get("session:1"), (v) => v === "alive");
    }
  } finally {
    await Promise.all(nodes.map((node) => node.close()));
  }
});

test("three in-process nodes: revoking a lease on one drops its keys on all", async () => {
  const { InProcessBus, MemoryCoordinator, MemoryStore, Warp } = warp;
  const store = new MemoryStore();
  const bus = new InProcessBus();
  const coordinator = new MemoryCoordinator();
  const nodes = [1, 2, 3].map(() =>
    new Warp({ store, coordinator, transport: bus.connect(), leaseCheckMs: 50 })
  );
  // Warp unrefs its timer; under node --test a pending revocation must keep the loop alive.
  const keepLoop = setInterval(() => {}, 10);
  try {
    for (const node of nodes) node.register("session:*", { mode: "eventual-distributed" });
    const lease = await nodes[0].grantLease({ ttlMs: 60_000 });
    await nodes[0].set("session:1", "alive", { lease });
    for (const node of nodes) assert.equal(await node.get("session:1"), "alive");
    await nodes[2].revokeLease(lease);
    for (const node of nodes) assert.equal(await node.get("session:1"), undefined);
    await assert.rejects(nodes[1].keepAlive(lease), { code: "LEASE_REVOKED" });
  } finally {
    clearInterval(keepLoop);
    await Promise.all(nodes.map((node) => node.close()));
  }
});

describe("two nodes over the real NATS", () => {
  const { MemoryStore, Warp } = warp;
  const { NatsKvCoordinator, NatsTransport } = nats;
  const bucket = `warp_node_smoke_${RUN}`;
  const prefix = `warp_node_smoke.${RUN}`;
  const store = new MemoryStore();
  const transports = [];
  const coordinators = [];
  const nodes = [];

  before(async () => {
    for (const name of ["node-a", "node-b"]) {
      const transport = await NatsTransport.connect({ servers: NATS_URL, name });
      transports.push(transport);
      coordinators.push(await NatsKvCoordinator.create(transport.connection, { bucket }));
      const node = new Warp({
        store,
        transport,
        coordinator: coordinators.at(-1),
        prefix,
        nodeId: name,
      });
      node.register("session:*", { mode: "eventual-distributed", maxStalenessMs: 60_000 });
      node.register("account:*", { mode: "strong-distributed" });
      nodes.push(node);
    }
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    await coordinators[0]?.destroy();
    await Promise.all(coordinators.slice(1).map((coordinator) => coordinator.close()));
    await Promise.all(transports.map((transport) => transport.close()));
  });

  test("an eventual write on one node reaches the other through a NATS invalidation", async () => {
    const [a, b] = nodes;
    assert.equal(await b.get("session:42"), undefined);
    assert.equal(b.peek("session:42"), undefined);
    await a.set("session:42", { user: "ada" });
    const { value, waitedMs } = await waitFor(
      "the invalidation over NATS",
      () => b.get("session:42"),
      (v) => v?.user === "ada",
    );
    assert.deepEqual(value, { user: "ada" });
    assert.ok(waitedMs < 5000);
    assert.ok(transports[0].stats.published > 0);
    assert.ok(transports[1].stats.received > 0);
  });

  test("a strong write through the NATS KV coordinator is visible on the other node", async () => {
    const [a, b] = nodes;
    assert.equal(await b.get("account:1"), undefined);
    await a.set("account:1", { balance: 5 });
    assert.deepEqual(await b.get("account:1"), { balance: 5 });
    await b.set("account:1", { balance: 6 });
    assert.deepEqual(await a.get("account:1"), { balance: 6 });
  });
});
