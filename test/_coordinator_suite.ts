/**
 * The one test suite every {@linkcode Coordinator} passes: `MemoryCoordinator`
 * (`src/coordinator/memory_test.ts`), `NatsKvCoordinator` (`test/nats_coordinator_test.ts`)
 * and `PostgresCoordinator` (`test/postgres_coordinator_test.ts`) each register it with a
 * harness of their own, and keep beside it only what is theirs (a counter's exact values,
 * a server going away, key escaping, bucket or table checks).
 *
 * It checks the contract of `src/coordinator.ts`: compare-and-set with `CONTENDED`,
 * revisions strictly increasing across all keys (deletes included), any valid key kept
 * apart from every other, argument errors before any I/O, one winner among concurrent
 * callers, bytes copied, watches in order, TTL records in key spaces of their own that
 * expire on the coordinator's clock, a random model check of the registers, and locks'
 * fencing tokens over it.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { Coordinator, CoordinatorEntry } from "../src/coordinator.ts";
import { Locks } from "../src/locks.ts";

/** A coordinator under test, and the means to drive its clock. */
export interface CoordinatorHarness {
  /** The coordinator, on a fresh namespace (bucket, table). */
  readonly coordinator: Coordinator;
  /** Another client of the same namespace, for races between clients. */
  another(): Promise<Coordinator>;
  /** The coordinator's clock in milliseconds, as the test can read it. */
  now(): number;
  /** Lets `ms` pass on the coordinator's clock: a fake clock advances, a real one sleeps. */
  elapse(ms: number): Promise<void>;
  /** Closes what `open` and `another` opened, and removes the namespace. */
  close(): Promise<void>;
}

/** How to run the suite on one implementation. */
export interface CoordinatorSuite {
  /** The class name, which starts every test name. */
  readonly name: string;
  /** Opens a harness on a fresh namespace. */
  open(): Promise<CoordinatorHarness>;
  /** The TTL of the TTL test (the implementation's expiry must resolve it). */
  readonly ttlMs: number;
  /** Runs of the model property. @default {100} */
  readonly modelRuns?: number;
  /**
   * A deleted key keeps a revision (NATS KV's delete marker): a conditional update or
   * delete at it may succeed. @default {false}
   */
  readonly deletedKeysKeepRevisions?: boolean;
}

const CONTENDED = { name: "WarpError", code: "CONTENDED" };
/** Warp's default drift bound (500 ppm). */
const MAX_DRIFT = 500e-6;

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Keys every coordinator must accept and keep apart, including ones that need escaping. */
export const AWKWARD_KEYS: readonly string[] = [
  "a",
  "A",
  "a.b",
  "a..b",
  ".a",
  "a.",
  ".",
  "a b",
  "*",
  ">",
  "a.*",
  "=",
  "=3D",
  ":",
  "=3A",
  "é",
  "日本",
  "😀",
  "\u0001",
  "$KV",
  "'; DROP TABLE x; --",
  "x".repeat(1024),
  "日".repeat(1024),
  "日".repeat(1023) + "本",
  "x".repeat(4096),
];

/** Registers the suite's tests, each named after `suite.name`. */
export function testCoordinator(suite: CoordinatorSuite): void {
  const test = (name: string, fn: (h: CoordinatorHarness) => Promise<void>) =>
    Deno.test(`${suite.name} ${name}`, async () => {
      const harness = await suite.open();
      try {
        await fn(harness);
      } finally {
        await harness.close();
      }
    });

  test("compare-and-set: create, update, delete with revisions", async ({ coordinator: c }) => {
    assert.equal(await c.get("lock:a"), undefined);
    const first = await c.create("lock:a", bytes("one"));
    const entry = await c.get("lock:a");
    assert.equal(entry?.revision, first);
    assert.equal(text(entry!.value), "one");
    await assert.rejects(c.create("lock:a", bytes("again")), CONTENDED);

    const second = await c.update("lock:a", bytes("two"), first);
    assert.ok(second > first);
    await assert.rejects(c.update("lock:a", bytes("stale"), first), CONTENDED);
    await assert.rejects(c.delete("lock:a", first), CONTENDED);
    assert.equal(text((await c.get("lock:a"))!.value), "two");

    await c.delete("lock:a", second);
    assert.equal(await c.get("lock:a"), undefined);
    await assert.rejects(c.update("lock:a", bytes("gone"), second), CONTENDED);
    await assert.rejects(c.delete("lock:a", second), CONTENDED);
  });

  test("create() succeeds on a deleted key, with a newer revision", async ({ coordinator: c }) => {
    const first = await c.create("k", bytes("1"));
    await c.delete("k");
    const again = await c.create("k", bytes("2"));
    assert.ok(again > first, `${again} after ${first}`);
    assert.deepEqual(await c.get("k"), { value: bytes("2"), revision: again });
    await assert.rejects(c.create("k", bytes("3")), CONTENDED);
  });

  test("delete() without a revision succeeds on an absent key", async ({ coordinator: c }) => {
    await c.delete("never-written");
    assert.equal(await c.get("never-written"), undefined);
    await assert.rejects(c.delete("absent", 1), CONTENDED);
    await assert.rejects(c.update("absent", bytes("x"), 1), CONTENDED);
    assert.ok(await c.create("never-written", bytes("x")) >= 1);
  });

  test("revisions strictly increase across all keys, deletes included", async ({ coordinator: c }) => {
    const revisions: number[] = [];
    const a = await c.create("a", bytes("1"));
    revisions.push(a, await c.create("b", bytes("1")));
    revisions.push(await c.update("a", bytes("2"), a));
    await c.delete("b");
    revisions.push(await c.create("c", bytes("1")), await c.create("b", bytes("2")));
    for (let i = 1; i < revisions.length; i++) {
      assert.ok(revisions[i]! > revisions[i - 1]!, `revisions ${revisions.join(", ")}`);
    }
    // The delete took a revision of its own, or at least did not let b's come back lower.
    assert.ok(revisions.at(-1)! > revisions[1]!);
  });

  test("keeps arbitrary keys apart", async ({ coordinator: c }) => {
    const revisions = new Map<string, number>();
    for (const key of AWKWARD_KEYS) revisions.set(key, await c.create(key, bytes(key)));
    for (const key of AWKWARD_KEYS) {
      const entry = await c.get(key);
      assert.equal(entry?.revision, revisions.get(key), key.slice(0, 20));
      assert.equal(text(entry!.value), key);
    }
  });

  test("rejects invalid arguments with TypeError and RangeError", async ({ coordinator: c }) => {
    const keys = ["", "x".repeat(4097), "\ud800", "a\udc00b", "a\u0000", 7 as unknown as string];
    for (const key of keys) {
      await assert.rejects(Promise.resolve().then(() => c.get(key)), TypeError);
      await assert.rejects(Promise.resolve().then(() => c.create(key, bytes("x"))), TypeError);
      await assert.rejects(Promise.resolve().then(() => c.delete(key)), TypeError);
    }
    await assert.rejects(
      Promise.resolve().then(() => c.create("k", "x" as unknown as Uint8Array)),
      {
        name: "TypeError",
        message: 'Invalid value: expected a Uint8Array, got "x"',
      },
    );
    for (const revision of [0, -1, 1.5, NaN]) {
      await assert.rejects(Promise.resolve().then(() => c.update("k", bytes("x"), revision)), {
        name: "RangeError",
        message: `Invalid revision: ${revision}`,
      });
      await assert.rejects(Promise.resolve().then(() => c.delete("k", revision)), RangeError);
    }
    for (const ttlMs of [0, -1, NaN]) {
      await assert.rejects(Promise.resolve().then(() => c.get("k", { ttlMs })), RangeError);
    }
    await assert.rejects(
      Promise.resolve().then(() => c.watch!("k", "no" as never)),
      TypeError,
    );
    assert.equal(await c.get("k"), undefined, "nothing was written");
  });

  test("create() and update() let exactly one of many concurrent callers win", async (h) => {
    const clients = [h.coordinator, await h.another(), await h.another(), await h.another()];
    const creates = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => clients[i % 4]!.create("race", bytes(`${i}`))),
    );
    assert.equal(creates.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of creates) if (r.status === "rejected") assert.equal(r.reason.code, "CONTENDED");
    let revision = (await h.coordinator.get("race"))!.revision;
    for (const round of [1, 2, 3]) {
      const updates = await Promise.allSettled(
        Array.from(
          { length: 20 },
          (_, i) => clients[i % 4]!.update("race", bytes(`${round}:${i}`), revision),
        ),
      );
      const won = updates.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1, `round ${round}`);
      const next = (won[0] as PromiseFulfilledResult<number>).value;
      assert.ok(next > revision);
      revision = next;
    }
  });

  test("copies bytes in and out, as plain Uint8Arrays", async ({ coordinator: c }) => {
    const value = new Uint8Array([1, 2, 255, 0]);
    await c.create("k", value);
    value[0] = 9;
    const entry = await c.get("k");
    assert.equal(Object.getPrototypeOf(entry!.value), Uint8Array.prototype);
    assert.deepEqual(entry?.value, new Uint8Array([1, 2, 255, 0]));
    entry!.value[1] = 9;
    assert.deepEqual((await c.get("k"))?.value, new Uint8Array([1, 2, 255, 0]));
  });

  test("watch() reports later writes and deletes in order, then stops", async ({ coordinator: c }) => {
    const first = await c.create("watched", bytes("before"));
    const seen: (CoordinatorEntry | undefined)[] = [];
    const stop = await c.watch!("watched", (entry) => {
      seen.push(entry);
      throw new Error("Listener bug");
    });
    const otherKey: unknown[] = [];
    const stopOther = await c.watch!("watched2", (entry) => otherKey.push(entry));
    const second = await c.update("watched", bytes("after"), first);
    await c.delete("watched");
    const third = await c.create("watched", bytes("again"));
    await waitFor("three events", () => seen.length === 3);
    assert.deepEqual(seen, [
      { value: bytes("after"), revision: second },
      undefined,
      { value: bytes("again"), revision: third },
    ]);
    stop();
    stop();
    await c.update("watched", bytes("unseen"), third);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(seen.length, 3);
    assert.deepEqual(otherKey, []);
    stopOther();
  });

  test("records with a TTL expire ttl after their last write, in key spaces of their own", async (h) => {
    const c = h.coordinator;
    const ttlMs = suite.ttlMs;
    const ttl = { ttlMs };
    const first = await c.create("lease/x", bytes("a"), ttl);
    assert.equal(await c.get("lease/x"), undefined, "no TTL: another key space");
    assert.equal(await c.get("lease/x", { ttlMs: 2 * ttlMs }), undefined, "another TTL too");
    const plain = await c.create("lease/x", bytes("plain"));
    assert.equal((await c.get("lease/x", ttl))?.revision, first);
    await assert.rejects(c.create("lease/x", bytes("b"), ttl), CONTENDED);

    // An update restarts the age: past the first TTL the record is still there.
    const createdMs = h.now();
    await h.elapse(ttlMs * 0.6);
    const updateInvokedMs = h.now();
    const second = await c.update("lease/x", bytes("b"), first, ttl);
    const updatedMs = h.now();
    assert.ok(second > first);
    await h.elapse(Math.max(0, createdMs + ttlMs * 1.2 - h.now()));
    assert.equal((await c.get("lease/x", ttl))?.revision, second, "the update restarted the age");

    // Then it is gone, not before ttl after the update and within a generous bound of it.
    const stepMs = Math.max(1, ttlMs / 100);
    while (await c.get("lease/x", ttl) !== undefined) {
      assert.ok(h.now() - updatedMs < ttlMs + 2000, "the record expired");
      await h.elapse(stepMs);
    }
    const goneMs = h.now();
    assert.ok(goneMs - updateInvokedMs >= ttlMs * (1 - MAX_DRIFT), "not before its TTL");
    assert.deepEqual(await c.get("lease/x"), { value: bytes("plain"), revision: plain });

    // An expired record is absent: an update at its old revision conflicts, a create works.
    await assert.rejects(c.update("lease/x", bytes("c"), second, ttl), CONTENDED);
    const third = await c.create("lease/x", bytes("c"), ttl);
    assert.ok(third > second);
    assert.deepEqual(await c.get("lease/x", ttl), { value: bytes("c"), revision: third });
  });

  test("behaves like a map of compare-and-set registers", async (h) => {
    const c = h.coordinator;
    const key = fc.constantFrom("a", "b", "c");
    const offset = fc.integer({ min: -1, max: 1 });
    const op: fc.Arbitrary<ModelOp> = fc.oneof(
      fc.record({ type: fc.constant("create" as const), key }),
      fc.record({ type: fc.constant("update" as const), key, offset }),
      fc.record({
        type: fc.constant("delete" as const),
        key,
        offset: fc.option(offset, { nil: undefined }),
      }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        const space = `run${run++}/`;
        const model = new Map<string, number>();
        let last = 0;
        for (const [i, o] of ops.entries()) {
          const k = space + o.key;
          const current = model.get(o.key);
          // A revision next to the current one (or to the last one given, when absent).
          const sent = o.type === "create" || o.offset === undefined
            ? undefined
            : Math.max(1, (current ?? (last || 1)) + o.offset);
          const call = o.type === "create"
            ? c.create(k, bytes(`${i}`))
            : o.type === "update"
            ? c.update(k, bytes(`${i}`), sent!)
            : c.delete(k, sent).then(() => undefined);
          const outcome = await call.then((r) => ({ ok: true, r }), (e) => {
            assert.equal(e.code, "CONTENDED", String(e));
            return { ok: false, r: undefined };
          });
          const expected = o.type === "create"
            ? current === undefined
            : sent === undefined || sent === current;
          // Where deleted keys keep revisions, a conditional delete or update of an absent
          // key may go either way: NATS KV matches the revision of the key's delete marker,
          // which only a caller guessing it can send (Warp updates at revisions it read). A delete
          // leaves the key absent; an update that succeeds writes it, as the model does next.
          const absentAtRevision = suite.deletedKeysKeepRevisions === true &&
            o.type !== "create" && current === undefined && sent !== undefined;
          if (!absentAtRevision) {
            assert.equal(outcome.ok, expected, `op ${i}: ${JSON.stringify(o)} sent ${sent}`);
          }
          if (!(expected || (absentAtRevision && o.type === "update" && outcome.ok))) continue;
          if (o.type === "delete") {
            model.delete(o.key);
          } else {
            assert.ok(outcome.r! > last, `revision ${outcome.r} after ${last}`);
            last = outcome.r!;
            model.set(o.key, last);
          }
        }
        for (const k of ["a", "b", "c"]) {
          assert.equal((await c.get(space + k))?.revision, model.get(k), k);
        }
      }),
      { numRuns: suite.modelRuns ?? 100 },
    );
  });

  test("Locks over it: one holder at a time, fencing tokens strictly increase, a waiter wakes on release", async (h) => {
    const prefix = `locks${Math.floor(Math.random() * 1e9)}`;
    const a = new Locks({ coordinator: h.coordinator, nodeId: "a", prefix });
    const b = new Locks({ coordinator: await h.another(), nodeId: "b", prefix });
    try {
      const tokens: number[] = [];
      const first = await a.acquire("job", { ttlMs: 60_000 });
      tokens.push(first.token);
      assert.equal(await b.tryAcquire("job"), undefined, "held by a");
      const startedMs = performance.now();
      const waiting = b.acquire("job", { ttlMs: 5000, timeoutMs: 5000 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await first.release();
      const second = await waiting;
      assert.ok(performance.now() - startedMs < 2000, "woke on the release, not after a TTL");
      tokens.push(second.token);
      const other = await a.acquire("other-job", { ttlMs: 5000 });
      tokens.push(other.token);
      await second.release();
      const third = await a.acquire("job", { ttlMs: 5000 });
      tokens.push(third.token);
      await third.release();
      await other.release();
      for (let i = 1; i < tokens.length; i++) {
        assert.ok(tokens[i]! > tokens[i - 1]!, `fencing tokens ${tokens.join(", ")}`);
      }
    } finally {
      a.close();
      b.close();
    }
  });
}

type ModelOp =
  | { type: "create"; key: string }
  | { type: "update"; key: string; offset: number }
  | { type: "delete"; key: string; offset: number | undefined };

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Reads `key` once the coordinator's server is back: retries a failing `get` every 50 ms
 * (while the client reconnects) for up to `timeoutMs`, then rethrows; resolves to the first
 * answer, found or not.
 */
export async function getWhenBack(
  coordinator: Coordinator,
  key: string,
  timeoutMs = 10_000,
): Promise<CoordinatorEntry | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      return await coordinator.get(key);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
