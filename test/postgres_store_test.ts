import assert from "node:assert/strict";
import postgres from "postgres";
import { POSTGRES_VALUE_BYTES_MAX, PostgresStore } from "../src/store/postgres.ts";
import { VALUE_BYTES_MAX_DEFAULT } from "../src/warp.ts";
import { InProcessBus, MemoryCoordinator, Warp } from "../mod.ts";
import { silentServer } from "./_silent_server.ts";

const POSTGRES_URL = Deno.env.get("WARP_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = `${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
let tableCount = 0;

const bytes = (text: string) => new TextEncoder().encode(text);
const CONFLICT = { name: "WarpError", code: "STORE_CONFLICT" };

/** Drops a store's table and its sequence. */
async function dropTable(table: string): Promise<void> {
  const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
  try {
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
  } finally {
    await sql.end();
  }
}

/** Runs `fn` with a store on a fresh table, then drops the table and closes. */
async function withStore(fn: (store: PostgresStore) => Promise<void>): Promise<void> {
  const table = `warp_test_${RUN}_${tableCount++}`;
  const store = await PostgresStore.connect({ url: POSTGRES_URL, table, createTable: true });
  try {
    await fn(store);
  } finally {
    await store.close();
    await dropTable(table);
  }
}

/** Asserts that each version is above the one before. */
function assertIncreasing(versions: number[], what: string): void {
  for (let i = 1; i < versions.length; i++) {
    assert.ok(versions[i]! > versions[i - 1]!, `${what}: ${versions.join(", ")}`);
  }
}

Deno.test("PostgresStore versions increase with every write, across deletes", async () => {
  await withStore(async (store) => {
    assert.deepEqual(await store.get("k"), { value: undefined, version: 0 });
    const versions = [await store.set("k", bytes("a")), await store.set("k", bytes("b"))];
    assert.deepEqual(await store.get("k"), { value: bytes("b"), version: versions[1] });
    versions.push(await store.delete("k"));
    assert.deepEqual(await store.get("k"), { value: undefined, version: versions[2] });
    versions.push(await store.delete("k"), await store.set("k", bytes("c")));
    assert.deepEqual(await store.get("k"), { value: bytes("c"), version: versions[4] });
    assert.ok(versions[0]! >= 1);
    assertIncreasing(versions, "versions of k");
    // Deleting a never-written key leaves a tombstone at a version of its own.
    const never = await store.delete("never");
    assert.deepEqual(await store.get("never"), { value: undefined, version: never });
    assert.ok(never > versions[4]!, "one sequence: later writes of any key get larger versions");
  });
});

Deno.test("PostgresStore conditional writes succeed only at the expected version", async () => {
  await withStore(async (store) => {
    const first = await store.set("k", bytes("a"), { expectedVersion: 0 });
    await assert.rejects(store.set("k", bytes("x"), { expectedVersion: 0 }), CONFLICT);
    await assert.rejects(store.set("k", bytes("x"), { expectedVersion: first + 1 }), {
      ...CONFLICT,
      message: `Version conflict on key "k": expected ${first + 1}`,
    });
    const second = await store.set("k", bytes("b"), { expectedVersion: first });
    await assert.rejects(store.delete("k", { expectedVersion: first }), CONFLICT);
    const third = await store.delete("k", { expectedVersion: second });
    // A deleted key is not at version 0: it is at its tombstone's version.
    await assert.rejects(store.set("k", bytes("x"), { expectedVersion: 0 }), CONFLICT);
    const fourth = await store.set("k", bytes("c"), { expectedVersion: third });
    assertIncreasing([first, second, third, fourth], "versions of k");
    // A conditional write of a never-written key at a version above 0 creates nothing.
    await assert.rejects(store.set("absent", bytes("x"), { expectedVersion: 1 }), CONFLICT);
    assert.deepEqual(await store.get("absent"), { value: undefined, version: 0 });
    assert.ok(await store.delete("absent2", { expectedVersion: 0 }) > fourth);
    assert.deepEqual(await store.get("k"), { value: bytes("c"), version: fourth });
  });
});

Deno.test("PostgresStore lets exactly one of many concurrent conditional writers win", async () => {
  await withStore(async (store) => {
    const writers = 16;
    const creates = await Promise.allSettled(
      Array.from(
        { length: writers },
        (_, i) => store.set("race", bytes(`${i}`), { expectedVersion: 0 }),
      ),
    );
    const created = creates.filter((r) => r.status === "fulfilled");
    assert.equal(created.length, 1);
    let version = (created[0] as PromiseFulfilledResult<number>).value;
    for (const round of [1, 2, 3]) {
      const updates = await Promise.allSettled(
        Array.from(
          { length: writers },
          (_, i) => store.set("race", bytes(`${round}:${i}`), { expectedVersion: version }),
        ),
      );
      const winners = updates.filter((r) => r.status === "fulfilled");
      assert.equal(winners.length, 1, `round ${round}`);
      const next = (winners[0] as PromiseFulfilledResult<number>).value;
      assert.ok(next > version);
      version = next;
      for (const r of updates) {
        if (r.status === "rejected") assert.equal(r.reason.code, "STORE_CONFLICT");
      }
    }
    // Unconditional writers never share a version, and the last one is the row's.
    const unconditional = await Promise.all(
      Array.from({ length: writers }, () => store.set("race", bytes("u"))),
    );
    assert.equal(new Set(unconditional).size, writers);
    assert.ok(unconditional.every((v) => v > version));
    assert.equal((await store.get("race")).version, Math.max(...unconditional));
  });
});

Deno.test("PostgresStore round-trips arbitrary bytes and keys", async () => {
  await withStore(async (store) => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const large = new Uint8Array(1 << 20).map((_, i) => (i * 7919) & 0xff);
    const cases: [string, Uint8Array][] = [
      ["empty", new Uint8Array()],
      ["all bytes", all],
      ["large", large],
      ["ключ 日本 😀 'quote' \"double\" ; DROP TABLE x; --", bytes("text")],
    ];
    for (const [key, value] of cases) await store.set(key, value);
    for (const [key, value] of cases) {
      const record = await store.get(key);
      assert.ok(record.value instanceof Uint8Array);
      assert.equal(Object.getPrototypeOf(record.value), Uint8Array.prototype);
      assert.deepEqual(record.value, value, key);
    }
  });
});

Deno.test("PostgresStore.list() pages by key order, skipping tombstones", async () => {
  await withStore(async (store) => {
    const keys = ["a:1", "a:2", "a:3", "a:4", "a:5", "b:1", "a", "a;", "a:\u{10FFFF}", "ä:1"];
    for (const key of keys) await store.set(key, bytes(key));
    await store.delete("a:3");
    const seen: string[] = [];
    let page = await store.list({ prefix: "a:", limit: 2 });
    const pages = [page.keys];
    while (page.cursor !== undefined) {
      page = await store.list({ prefix: "a:", limit: 2, cursor: page.cursor });
      pages.push(page.keys);
    }
    for (const keysOfPage of pages) seen.push(...keysOfPage);
    assert.deepEqual(seen, ["a:1", "a:2", "a:4", "a:5", "a:\u{10FFFF}"]);
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    // A page that ends exactly at the last key has no cursor.
    assert.deepEqual(await store.list({ prefix: "b", limit: 1 }), { keys: ["b:1"] });
    const everything = await store.list();
    assert.deepEqual(everything.keys, [
      "a",
      "a:1",
      "a:2",
      "a:4",
      "a:5",
      "a:\u{10FFFF}",
      "a;",
      "b:1",
      "ä:1",
    ]);
    assert.equal(everything.cursor, undefined);
    assert.deepEqual(await store.list({ prefix: "\u{10FFFF}" }), { keys: [] });
    assert.deepEqual(await store.list({ prefix: "a:", cursor: "a:4" }), {
      keys: ["a:5", "a:\u{10FFFF}"],
    });
    // LIKE wildcards in a prefix are plain characters.
    await store.set("x%y", bytes("1"));
    await store.set("x_y", bytes("1"));
    await store.set("xzy", bytes("1"));
    assert.deepEqual((await store.list({ prefix: "x%" })).keys, ["x%y"]);
    assert.deepEqual((await store.list({ prefix: "x_" })).keys, ["x_y"]);
  });
});

Deno.test("PostgresStore rejects invalid arguments with TypeError and RangeError", async () => {
  await withStore(async (store) => {
    for (const key of ["", "x".repeat(1025), "\ud800", "a\u0000b", 1 as unknown as string]) {
      await assert.rejects(store.get(key), TypeError);
      await assert.rejects(store.set(key, bytes("x")), TypeError);
      await assert.rejects(store.delete(key), TypeError);
    }
    await assert.rejects(store.set("k", "x" as unknown as Uint8Array), {
      name: "TypeError",
      message: 'Invalid value: expected a Uint8Array, got "x"',
    });
    for (const expectedVersion of [-1, 1.5, NaN]) {
      await assert.rejects(store.set("k", bytes("x"), { expectedVersion }), RangeError);
    }
    for (const limit of [0, 10_001, 1.5]) {
      await assert.rejects(store.list({ limit }), { name: "RangeError" });
    }
    await assert.rejects(store.list({ prefix: "\u0000" }), TypeError);
  });
  for (const table of ["Warp", "1x", "a-b", 'x"; DROP TABLE y; --', "a".repeat(53)]) {
    await assert.rejects(PostgresStore.connect({ url: POSTGRES_URL, table }), TypeError);
  }
});

Deno.test("PostgresStore refuses a value over POSTGRES_VALUE_BYTES_MAX before any I/O, and stores Warp's default maximum", async () => {
  await withStore(async (store) => {
    await assert.rejects(store.set("big", new Uint8Array(POSTGRES_VALUE_BYTES_MAX + 1)), {
      name: "WarpError",
      code: "VALUE_TOO_LARGE",
    });
    assert.deepEqual(await store.get("big"), { value: undefined, version: 0 });
    const value = new Uint8Array(VALUE_BYTES_MAX_DEFAULT).fill(7);
    assert.equal(await store.set("big", value), 1);
    assert.equal((await store.get("big")).value?.byteLength, VALUE_BYTES_MAX_DEFAULT);
  });
});

Deno.test("PostgresStore.connect() rejects a missing table and an unreachable server", async () => {
  await assert.rejects(
    PostgresStore.connect({ url: POSTGRES_URL, table: `warp_missing_${RUN}` }),
    /does not exist/,
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  await assert.rejects(
    PostgresStore.connect({ url: `postgres://postgres@127.0.0.1:${port}/test` }),
  );
});

Deno.test("PostgresStore.close() leaves a given client open", async () => {
  const sql = postgres(POSTGRES_URL, { onnotice: () => {} });
  const table = `warp_test_${RUN}_given`;
  try {
    const store = await PostgresStore.connect({ sql, table, createTable: true });
    await store.set("k", bytes("v"));
    await store.close();
    await store.close();
    const rows = await sql`SELECT version FROM ${sql(table)} WHERE key = 'k'`;
    assert.equal(rows[0]?.version, "1", "a new table's first version is 1");
  } finally {
    await sql.end();
    await dropTable(table);
  }
});

Deno.test("PostgresStore.connect() with createTable: nodes starting together never collide", async () => {
  // Three instances at once used to fail 9 times in 15 with 23505 on pg_type_typname_nsp_index.
  const failures: string[] = [];
  for (let round = 0; round < 5; round++) {
    const table = `warp_test_${RUN}_race${round}`;
    const results = await Promise.allSettled(
      [1, 2, 3].map(() => PostgresStore.connect({ url: POSTGRES_URL, table, createTable: true })),
    );
    for (const r of results) {
      if (r.status === "rejected") failures.push(String(r.reason));
      else await r.value.close();
    }
    await dropTable(table);
  }
  assert.deepEqual(failures, []);
});

Deno.test("PostgresStore.connect() gives up at connectTimeoutMs, on a silent server and an unroutable host", async () => {
  const server = silentServer();
  try {
    // 10.255.255.1:5432 is in the test task's --allow-net list for this case: without it Deno
    // refuses the connect with NotCapable before any packet leaves.
    for (const url of [server.url("postgres"), "postgres://postgres@10.255.255.1:5432/test"]) {
      const startedMs = performance.now();
      await assert.rejects(PostgresStore.connect({ url, connectTimeoutMs: 500 }), {
        name: "WarpError",
        code: "TIMEOUT",
      });
      const tookMs = performance.now() - startedMs;
      assert.ok(tookMs >= 490 && tookMs < 3000, `${url}: gave up after ${tookMs.toFixed(0)} ms`);
    }
  } finally {
    await server.close();
  }
  await assert.rejects(
    PostgresStore.connect({ url: POSTGRES_URL, connectTimeoutMs: 1.5 }),
    RangeError,
  );
});

Deno.test("PostgresStore.sweepTombstones() removes old tombstones and no version goes back", async () => {
  await withStore(async (store) => {
    const kept = await store.set("kept", bytes("v"));
    const deleted = await store.set("gone", bytes("v"));
    const tombstone = await store.delete("gone");
    const other = await store.delete("gone2");
    assert.ok(tombstone > deleted);
    await assert.rejects(store.sweepTombstones({ olderThanMs: 999 }), RangeError);
    await assert.rejects(store.sweepTombstones({ olderThanMs: 1000, limit: 0 }), RangeError);
    assert.equal(await store.sweepTombstones({ olderThanMs: 60_000 }), 0, "none that old yet");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const recent = await store.delete("recent");
    assert.equal(await store.sweepTombstones({ olderThanMs: 1000 }), 2);
    // A swept key reads at the floor: the largest version swept, never below its tombstone.
    const floor = Math.max(tombstone, other);
    assert.deepEqual(await store.get("gone"), { value: undefined, version: floor });
    assert.deepEqual(await store.get("never-written"), { value: undefined, version: floor });
    assert.deepEqual(await store.get("recent"), { value: undefined, version: recent });
    assert.deepEqual(await store.get("kept"), { value: bytes("v"), version: kept });
    // A writer that read the tombstone loses; one that read the floor wins, higher still.
    await assert.rejects(store.set("gone", bytes("w"), { expectedVersion: tombstone }), CONFLICT);
    await assert.rejects(store.set("gone", bytes("w"), { expectedVersion: 0 }), CONFLICT);
    const rewritten = await store.set("gone", bytes("w"), { expectedVersion: floor });
    assert.ok(rewritten > recent);
    assert.ok(await store.set("gone2", bytes("w")) > rewritten);
    assert.deepEqual(
      (await store.list()).keys,
      ["gone", "gone2", "kept"],
      "the floor row is no key",
    );
  });
});

Deno.test("PostgresStore.getMany() answers each key as get does, in order, in one statement", async () => {
  await withStore(async (store) => {
    const a = await store.set("a", bytes("1"));
    await store.set("gone", bytes("v"));
    const gone = await store.delete("gone");
    const keys = ["a", "missing", "gone", "a", "b\u00e9"];
    const b = await store.set("b\u00e9", bytes("2"));
    const many = await store.getMany(keys);
    assert.deepEqual(many, await Promise.all(keys.map((key) => store.get(key))));
    assert.deepEqual(many, [
      { value: bytes("1"), version: a },
      { value: undefined, version: 0 },
      { value: undefined, version: gone },
      { value: bytes("1"), version: a },
      { value: bytes("2"), version: b },
    ]);
    assert.deepEqual(await store.getMany([]), []);
    await assert.rejects(store.getMany(["ok", "\u0000"]), TypeError);
    await assert.rejects(
      store.getMany(Array.from({ length: 1001 }, (_, i) => `k${i}`)),
      RangeError,
    );
    // After a sweep, keys without a row read at the floor, as get does.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal(await store.sweepTombstones({ olderThanMs: 1000 }), 1);
    assert.deepEqual(await store.getMany(["gone", "never", "a"]), [
      { value: undefined, version: gone },
      { value: undefined, version: gone },
      { value: bytes("1"), version: a },
    ]);
  });
});

Deno.test("PostgresStore tombstoneSweep: off by default, sweeps in the background when asked", async () => {
  const table = `warp_test_${RUN}_${tableCount++}`;
  await assert.rejects(
    PostgresStore.connect({ url: POSTGRES_URL, table, tombstoneSweep: { olderThanMs: 10 } }),
    RangeError,
  );
  const store = await PostgresStore.connect({
    url: POSTGRES_URL,
    table,
    createTable: true,
    tombstoneSweep: { olderThanMs: 1000, intervalMs: 100 },
  });
  const plain = await PostgresStore.connect({ url: POSTGRES_URL, table });
  try {
    const tombstone = await plain.delete("k");
    const deadline = Date.now() + 5000;
    const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
    try {
      while ((await sql`SELECT 1 FROM ${sql(table)} WHERE key = 'k'`).length > 0) {
        assert.ok(Date.now() < deadline, "the background sweep removed the tombstone");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await sql.end();
    }
    assert.deepEqual(await plain.get("k"), { value: undefined, version: tombstone });
  } finally {
    await store.close();
    await plain.close();
    await dropTable(table);
  }
});

Deno.test("PostgresStore swept while Warp nodes write, delete and read: no read goes back, nothing fails", async () => {
  await withStore(async (store) => {
    // Entries live 200 ms, so the nodes read the store again and again, swept keys included.
    const bus = new InProcessBus();
    const coordinator = new MemoryCoordinator();
    const nodes = [0, 1, 2].map(() =>
      new Warp({
        store,
        coordinator,
        transport: bus.connect(),
        heartbeatIntervalMs: 20,
        keys: {
          "ev:*": { mode: "eventual-distributed", maxStalenessMs: 100, ttlMs: 200 },
          "st:*": { mode: "strong-distributed", ttlMs: 200 },
          "sl:*": { mode: "strong-local", ttlMs: 200 },
        },
      })
    );
    const sweeps: number[] = [];
    const seen = new Map<string, number>(); // per node and key: the last version read
    const errors: string[] = [];
    const keys = ["ev", "st", "sl"].flatMap((mode) =>
      Array.from({ length: 8 }, (_, i) => `${mode}:${i}`)
    );
    const startMs = performance.now();
    // First every key is written and most are deleted; then the nodes read them all while
    // the tombstones age past the sweep's bound and go, and keep writing a few of them.
    const writing = (key: string, ms: number) =>
      ms < 800 || key.endsWith(":0") || key.endsWith(":1");
    const endMs = startMs + 3500;
    const sweeper = (async () => {
      while (performance.now() < endMs) {
        sweeps.push(await store.sweepTombstones({ olderThanMs: 1000 }));
        // What a node that forgot every version sees: the store itself must not go back.
        for (const key of keys) {
          const { version } = await store.get(key);
          const last = seen.get(`store ${key}`) ?? 0;
          if (version < last) errors.push(`the store read ${key} at ${version} after ${last}`);
          seen.set(`store ${key}`, version);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      await Promise.all([
        sweeper,
        ...nodes.map(async (node, n) => {
          for (let i = 0; performance.now() < endMs; i++) {
            const key = keys[(i * 7 + n * 3) % keys.length]!;
            const ms = performance.now() - startMs;
            try {
              const roll = (i * 13 + n * 5) % 10;
              // strong-local keys have one writer, node 0.
              if (writing(key, ms) && roll < 5 && (n === 0 || !key.startsWith("sl:"))) {
                if (roll < 2) await node.set(key, `${n}-${i}`);
                else await node.delete(key);
              } else {
                const read = await node.read(key);
                const last = seen.get(`${n} ${key}`) ?? 0;
                if (read.version < last) {
                  errors.push(`node ${n} read ${key} at ${read.version} after ${last}`);
                }
                seen.set(`${n} ${key}`, read.version);
              }
            } catch (error) {
              errors.push(`node ${n} ${key}: ${error}`);
            }
            await new Promise((resolve) => setTimeout(resolve, 3));
          }
        }),
      ]);
    } finally {
      await Promise.all(nodes.map((node) => node.close()));
    }
    const swept = sweeps.reduce((a, b) => a + b, 0);
    console.log(
      `  ${swept} tombstones swept in ${sweeps.length} sweeps, ${seen.size} node-key pairs read`,
    );
    assert.deepEqual(errors, []);
    assert.ok(swept > 0, "tombstones were swept while the nodes ran");
  });
});

Deno.test("PostgresStore on a table of an earlier Warp: refused without createTable, upgraded with it", async () => {
  const table = `warp_test_${RUN}_old`;
  const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
  try {
    await sql`
      CREATE TABLE ${sql(table)} (
        key text COLLATE "C" PRIMARY KEY, value bytea,
        version bigint NOT NULL CHECK (version > 0), deleted boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT now(), CHECK (deleted = (value IS NULL)))`;
    await sql`INSERT INTO ${sql(table)} (key, value, version) VALUES ('a', '\\x01', 7)`;
    await assert.rejects(PostgresStore.connect({ url: POSTGRES_URL, table }), {
      name: "WarpError",
      code: "STORE_ERROR",
    });
    const store = await PostgresStore.connect({ url: POSTGRES_URL, table, createTable: true });
    try {
      assert.equal((await store.get("a")).version, 7);
      assert.ok(await store.set("a", bytes("x"), { expectedVersion: 7 }) > 7);
      assert.ok(await store.set("b", bytes("x")) > 7, "the sequence starts above the table");
    } finally {
      await store.close();
    }
  } finally {
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
    await sql.end();
  }
});
