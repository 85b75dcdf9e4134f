/**
 * The background validator and `audit` through the runtime, on a MemoryStore and on
 * PostgreSQL: a value written behind Warp's back is found by version, counted once it
 * outlasts its key's bound, reported by an event, and repaired by a heal that installs
 * the store's version; `audit` classifies every entry; bad options are typed errors.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { MemoryStore, Warp } from "../mod.ts";
import type { Store, ValidatorOptions, WarpEvent } from "../mod.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { PrometheusMetrics } from "../src/metrics/prometheus.ts";

const POSTGRES_URL = Deno.env.get("WARP_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const encode = (value: string) => new TextEncoder().encode(JSON.stringify(value));

/**
 * A node whose eventual keys have a 200 ms staleness bound and a long TTL: with the
 * in-memory coordinator it runs a session, so an entry outlives its bound under the
 * freshness proof, and a write behind Warp's back (no invalidation) outlasts the bound.
 */
function node(store: Store, validator: ValidatorOptions, metrics = new PrometheusMetrics()) {
  const warp = new Warp<string>({
    store,
    metrics,
    codec: {
      encode: (value: string) => encode(value),
      decode: (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)),
    },
    keys: {
      "ev:*": { mode: "eventual-distributed", maxStalenessMs: 200, ttlMs: 60_000 },
      "local:*": { mode: "strong-local", ttlMs: 60_000 },
    },
    validator: { samplePerS: 20, storeReadsPerS: 50, afterInvalidationShare: 0, ...validator },
  });
  const events: WarpEvent[] = [];
  warp.on("validator", (event) => events.push(event));
  return { warp, events, metrics };
}

/** Waits until `done` holds, checking every 20 ms, for at most `limitMs` (then fails). */
async function until(
  what: string,
  done: () => boolean | Promise<boolean>,
  limitMs = 10_000,
): Promise<void> {
  const start = performance.now();
  while (!(await done())) {
    if (performance.now() - start > limitMs) assert.fail(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A value written behind Warp's back is counted, alerted and (heal) repaired at its version. */
async function behindTheBack(store: Store, mode: "alert" | "heal"): Promise<void> {
  const { warp, events, metrics } = node(store, { mode });
  try {
    const first = await warp.set("ev:1", "ada");
    await warp.set("ev:2", "unchanged");
    const behind = await store.set("ev:1", encode("grace"));
    assert.ok(behind > first);
    assert.equal(await warp.get("ev:1"), "ada", "L1 serves the old value at first");
    await until("the difference counted", () => warp.validatorReport()!.inconsistent >= 1);
    await until("ev:2 checked consistent", () => warp.validatorReport()!.consistent >= 1);
    assert.equal(warp.validatorReport()!.newerThanStore, 0);
    assert.ok(warp.stats.validatorChecks.inconsistent >= 1);
    const exported = metrics.text();
    assert.match(exported, /warp_validator_checks_total\{[^}]*verdict="inconsistent"[^}]*\} [1-9]/);
    assert.match(exported, /warp_validator_checks_total\{[^}]*verdict="newer_than_store"[^}]*\} 0/);
    const event = events.find((e) => e.type === "validator");
    assert.deepEqual(event, {
      type: "validator",
      verdict: "inconsistent",
      key: "ev:1",
      cachedVersion: first,
      storeVersion: behind,
      boundMs: 200,
      healing: mode === "heal",
    });
    // The keys checked and those consistent within 1 s (ev:2 at least), as the report has them.
    const keys = /warp_validator_keys_total\{[^}]*count="(\w+)"[^}]*\} (\d+)/g;
    const counts = Object.fromEntries(
      [...metrics.text().matchAll(keys)].map((m) => [m[1], +m[2]!]),
    );
    assert.ok(counts.checked! >= 2 && counts.consistent_within_1s! >= 1, JSON.stringify(counts));
    assert.ok(counts.consistent_within_1s! <= counts.checked!);
    if (mode === "heal") {
      await until("the heal installed", () => warp.validatorReport()!.healed >= 1);
      assert.ok(warp.stats.validatorKeys.healed >= 1);
      assert.match(metrics.text(), /warp_validator_keys_total\{[^}]*count="healed"[^}]*\} [1-9]/);
      // The versioned fill installs the store's version: the next read is a hit on it.
      await until("L1 holds the store's version", async () => {
        const read = await warp.read("ev:1");
        return read.source === "l1" && read.version === behind;
      });
      const read = await warp.read("ev:1");
      assert.equal(read.source, "l1");
      assert.equal(read.value, "grace");
      assert.equal(read.version, behind);
    } else {
      const read = await warp.read("ev:1");
      assert.equal(read.value, "ada", "alert mode repairs nothing");
      assert.equal(read.source, "l1");
    }
  } finally {
    await warp.close();
  }
}

Deno.test("Warp validator counts a write behind its back once past the bound, alerts, and repairs nothing in alert mode", async () => {
  await behindTheBack(new MemoryStore(), "alert");
});

Deno.test("Warp validator heals a write behind its back with the store's version", async () => {
  await behindTheBack(new MemoryStore(), "heal");
});

Deno.test("Warp validator heals a write made on PostgreSQL behind its back", async () => {
  const table = `warp_validator_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const store = await PostgresStore.connect({ url: POSTGRES_URL, table, createTable: true });
  try {
    await behindTheBack(store, "heal");
  } finally {
    await store.close();
    const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
    try {
      await sql`DROP TABLE IF EXISTS ${sql(table)}`;
      await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
    } finally {
      await sql.end();
    }
  }
});

Deno.test("Warp validator is off by default and a strong-local difference stays within its TTL bound", async () => {
  const plain = new Warp({ store: new MemoryStore() });
  assert.equal(plain.validatorReport(), undefined);
  await plain.close();
  const store = new MemoryStore();
  const { warp } = node(store, { mode: "count" });
  try {
    await warp.set("local:1", "ada");
    await store.set("local:1", encode("grace"));
    await until("the difference found", () => warp.validatorReport()!.olderWithinBound >= 1);
    // Its bound is its TTL (60 s): other nodes' writes never reach a strong-local key.
    assert.equal(warp.validatorReport()!.inconsistent, 0);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.audit() classifies every entry L1 would serve by version, in one pass", async () => {
  const store = new MemoryStore();
  const warp = new Warp<string>({
    store,
    keys: { "local:*": { mode: "strong-local", ttlMs: 60_000 } },
  });
  try {
    await warp.set("local:same", "a");
    await warp.set("local:older", "a");
    await warp.set("local:deleted", "a");
    await store.set("local:older", new TextEncoder().encode("b"));
    await store.delete("local:deleted");
    const report = await warp.audit();
    assert.deepEqual(report, {
      checked: 3,
      consistent: 1,
      olderThanStore: 1,
      newerThanStore: 0,
      deletedInStore: 1,
      errors: 0,
      keys: {
        olderThanStore: ["local:older"],
        newerThanStore: [],
        deletedInStore: ["local:deleted"],
      },
    });
    assert.deepEqual((await warp.audit({ keysMax: 0 })).keys.olderThanStore, []);
    const aborted = new AbortController();
    aborted.abort(new Error("stop"));
    await assert.rejects(warp.audit({ signal: aborted.signal }), /stop/);
    await assert.rejects(async () => await warp.audit({ keysMax: -1 }), RangeError);
    await assert.rejects(
      async () => await warp.audit({ keyMax: 1 } as unknown as { keysMax: number }),
      /Unknown option keyMax of audit, did you mean keysMax\?/,
    );
  } finally {
    await warp.close();
  }
});

Deno.test("new Warp() names a bad validator option", () => {
  const store = new MemoryStore();
  assert.throws(
    () => new Warp({ store, validator: { mode: "count", samplePerSec: 1 } as ValidatorOptions }),
    /Unknown option samplePerSec of validator, did you mean samplePerS\?/,
  );
  assert.throws(
    () => new Warp({ store, validator: { mode: "repair" as "heal" } }),
    { name: "TypeError", message: /mode.*repair/ },
  );
  assert.throws(() => new Warp({ store, validator: { storeReadsPerS: -1 } }), RangeError);
  assert.throws(
    () => new Warp({ store, validator: null as unknown as ValidatorOptions }),
    TypeError,
  );
});
