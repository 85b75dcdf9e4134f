import assert from "node:assert/strict";
import { InProcessBus, jsonCodec, MemoryStore, Warp } from "../mod.ts";

interface User {
  readonly id: bigint;
  readonly name: string;
  readonly createdAt: Date;
  readonly deletedAt: Date | undefined;
  readonly roles: Set<string>;
  readonly avatar: Uint8Array;
}

const ada: User = {
  id: 2n ** 64n,
  name: "Ada",
  createdAt: new Date(1_700_000_000_000),
  deletedAt: undefined,
  roles: new Set(["admin"]),
  avatar: new Uint8Array([1, 2, 3]),
};

Deno.test("Warp's default codec carries a database row to another node unchanged, typed per call", async () => {
  const store = new MemoryStore();
  const bus = new InProcessBus();
  const a = new Warp({ store, transport: bus.connect(), nodeId: "a" });
  const b = new Warp({ store, transport: bus.connect(), nodeId: "b" });
  try {
    for (const node of [a, b]) {
      node.register("user:*", { mode: "strong-local" });
      node.register("count:*", { mode: "strong-local" });
    }
    await a.set<User>("user:1", ada);
    await a.set("count:1", 41);
    // Mixed keys on one node, no casts: the type is chosen per call.
    const user: User | undefined = await b.get<User>("user:1");
    const count: number | undefined = await b.get<number>("count:1");
    assert.deepStrictEqual(user, ada);
    assert.equal(count, 41);
    assert.ok(user?.createdAt instanceof Date);
    assert.equal(user.createdAt.getTime(), ada.createdAt.getTime());
    const read = await b.read<User>("user:1");
    assert.equal(read.value?.roles.has("admin"), true);
    assert.deepStrictEqual(a.peek<User>("user:1"), ada);
    const loaded = await b.getOrSet<User>("user:2", () => ({ ...ada, name: "Grace" }));
    assert.equal(loaded?.name, "Grace");
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("Warp with jsonCodec still refuses a Date with a TypeError, and writes nothing", async () => {
  const store = new MemoryStore();
  const warp = new Warp({ store, codec: jsonCodec });
  try {
    warp.register("user:*", { mode: "strong-local" });
    await assert.rejects(warp.set("user:1", ada), TypeError);
    assert.equal((await store.get("user:1")).value, undefined);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp<T> keeps one value type per node for callers that chose it", async () => {
  const warp = new Warp<string>({ store: new MemoryStore() });
  try {
    warp.register("greeting", { mode: "strong-local" });
    await warp.set("greeting", "hello");
    const value: string | undefined = await warp.get("greeting");
    assert.equal(value, "hello");
    // @ts-expect-error: a number is not a string on a Warp<string>
    await warp.set("greeting", 5).catch(() => {});
  } finally {
    await warp.close();
  }
});
