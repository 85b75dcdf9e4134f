import assert from "node:assert/strict";
import { MemoryCoordinator, MemoryStore, Warp } from "../mod.ts";
import { Cluster, rejectsWith, sleep } from "./_cluster.ts";

const CHECK_MS = 100;

/** Awaits `promise` while a test timer keeps the event loop alive (Warp unrefs its own). */
async function held<R>(promise: Promise<R>): Promise<R> {
  const timer = setInterval(() => {}, 10);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

Deno.test("revokeLease on one node: every attached key reads absent on every node when it resolves", async () => {
  const cluster = new Cluster({ node: { leaseCheckMs: CHECK_MS } });
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const lease = await a.grantLease({ ttlMs: 60_000 });
    await a.set("evl:s1", "one", { lease });
    await a.set("st:s2", "two", { lease });
    await a.set("evl:other", "kept");
    for (const node of [a, b, c]) {
      assert.equal(await node.get("evl:s1"), "one");
      assert.equal(await node.get("st:s2"), "two");
      // Served again from L1: the lease check is shared and fresh.
      assert.equal((await node.read("evl:s1")).source, "l1");
    }
    const started = performance.now();
    await held(b.revokeLease(lease));
    const tookMs = performance.now() - started;
    // It waits out every node's last check: at least leaseCheckMs.
    assert.ok(tookMs >= CHECK_MS, `revokeLease took ${tookMs} ms`);
    for (const node of [a, b, c]) {
      assert.equal(node.peek("evl:s1"), undefined);
      const read = await node.read("evl:s1");
      assert.deepEqual([read.found, read.value, read.version, read.source, read.stale], [
        false,
        undefined,
        1,
        "store",
        false,
      ]);
      assert.equal(await node.get("st:s2"), undefined);
      assert.equal(await node.get("evl:other"), "kept");
    }
    // G3: the dead lease takes no more keys and no keep-alive; revoking again is fine.
    await rejectsWith(c.set("evl:s3", "three", { lease }), "LEASE_REVOKED");
    await rejectsWith(c.keepAlive(lease), "LEASE_REVOKED");
    await held(c.revokeLease(lease));
    // Writing the key again, without the lease, brings it back.
    await a.set("evl:s1", "fresh");
    assert.equal(await c.get("evl:s1"), "fresh");
  } finally {
    await cluster.close();
  }
});

Deno.test("a lease not kept alive expires cluster-wide; kept alive, it outlives its TTL", async () => {
  const cluster = new Cluster({ node: { leaseCheckMs: CHECK_MS } });
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const kept = await a.grantLease({ ttlMs: 1000 });
    const dropped = await a.grantLease({ ttlMs: 1000 });
    await a.set("evl:kept", 1, { lease: kept });
    await a.set("evl:dropped", 2, { lease: dropped });
    assert.equal(await b.get("evl:dropped"), 2);
    const grantedAt = performance.now();
    while (performance.now() - grantedAt < 1000 + CHECK_MS + 200) {
      await b.keepAlive(kept);
      await sleep(250);
    }
    for (const node of [a, b, c]) {
      assert.equal(await node.get("evl:kept"), 1);
      assert.equal(await node.get("evl:dropped"), undefined);
    }
    await rejectsWith(c.keepAlive(dropped), "LEASE_EXPIRED");
    await rejectsWith(c.set("evl:new", 3, { lease: dropped }), "LEASE_EXPIRED");
  } finally {
    await cluster.close();
  }
});

Deno.test("attachKey adds a lease to a stored value, keeping the value and its other leases", async () => {
  const cluster = new Cluster({ node: { leaseCheckMs: CHECK_MS } });
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    const first = await a.grantLease({ ttlMs: 60_000 });
    const second = await a.grantLease({ ttlMs: 60_000 });
    await a.set("st:doc", { title: "draft" }, { lease: first });
    const version = await b.attachKey("st:doc", second);
    assert.equal(version, 2);
    assert.equal(await b.attachKey("st:doc", second), 2, "attaching twice changes nothing");
    assert.deepEqual(await a.get("st:doc"), { title: "draft" });
    await held(a.revokeLease(first));
    assert.equal(await b.get("st:doc"), undefined, "the first lease still holds the value");
    await rejectsWith(b.attachKey("st:none", second), "NOT_FOUND");
  } finally {
    await cluster.close();
  }
});

Deno.test("lease calls validate their arguments with typed errors", async () => {
  const warp = new Warp({ store: new MemoryStore(), coordinator: new MemoryCoordinator() });
  warp.register("k:*", { mode: "strong-local" });
  try {
    await assert.rejects(warp.grantLease({ ttlMs: 999 }), RangeError);
    await assert.rejects(warp.grantLease({ ttlMs: 1.5e3 + 0.5 }), RangeError);
    await assert.rejects(warp.grantLease(undefined as never), TypeError);
    await assert.rejects(warp.keepAlive("nope"), TypeError);
    await assert.rejects(warp.revokeLease(42 as never), TypeError);
    await assert.rejects(warp.set("k:1", 1, { lease: "nope" }), TypeError);
    const lease = await warp.grantLease({ ttlMs: 5000 });
    await assert.rejects(warp.set("k:1", 1, { lease: [lease, lease] }), TypeError);
    await rejectsWith(warp.keepAlive(`${lease.split(".")[0]}.neverGranted`), "LEASE_EXPIRED");
    // A failed write with a lease leaves nothing behind.
    assert.equal(warp.peek("k:1"), undefined);
    assert.equal((await warp.read("k:1")).version, 0);
  } finally {
    await warp.close();
  }
});

Deno.test("a raw value that starts like a lease envelope reads back unchanged", async () => {
  const { bytesCodec } = await import("../mod.ts");
  const store = new MemoryStore();
  const warp = new Warp<Uint8Array>({ store, codec: bytesCodec });
  warp.register("b:*", { mode: "strong-local", ttlMs: 1 });
  try {
    const tricky = new Uint8Array([0x00, 0x57, 0x61, 0x72, 0x70, 0x4c, 0x73, 0x31, 7]);
    await warp.set("b:1", tricky);
    await sleep(5); // past the TTL: the next read goes to the store
    assert.deepEqual([...(await warp.get("b:1"))!], [...tricky]);
  } finally {
    await warp.close();
  }
});
