/**
 * Strict options: unknown option names (typos), options of another mode and inconsistent
 * combinations are typed errors naming the option; messages say the type expected and the
 * value given; `peek` and `get` agree on unregistered keys.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Locks, MemoryCoordinator, MemoryStore, Warp, WarpError } from "../mod.ts";
import {
  KEY_OPTION_NAMES,
  READ_OPTION_NAMES,
  SET_OPTION_NAMES,
  WARP_OPTION_NAMES,
} from "../src/_options.ts";

function node(options: Record<string, unknown> = {}): Warp {
  return new Warp({ store: new MemoryStore(), ...options });
}

Deno.test("Warp refuses unknown option names with a TypeError naming the option and the nearest known one", async () => {
  assert.throws(
    () => node({ ttlMs: 5000 }),
    { name: "TypeError", message: /^Unknown option ttlMs of new Warp \(known options: store, / },
  );
  assert.throws(
    () => node({ entriesMac: 5 }),
    /Unknown option entriesMac of new Warp, did you mean entriesMax\?/,
  );
  const warp = node();
  try {
    assert.throws(
      () => warp.register("d:*", { mode: "strong-local", ttl: 5000 } as never),
      {
        name: "TypeError",
        message: /^Unknown option ttl of register\("d:\*"\), did you mean ttlMs\?/,
      },
    );
    // A refused registration registered nothing.
    await assert.rejects(warp.get("d:1"), { name: "WarpError", code: "UNREGISTERED_KEY" });
    warp.register("k:*", { mode: "strong-local" });
    await assert.rejects(
      warp.set("k:1", 1, { ttlMs: 10 } as never),
      /^TypeError: Unknown option ttlMs of set \(known options: lease\)$/,
    );
    await assert.rejects(
      warp.get("k:1", { ttl: 10 } as never),
      /Unknown option ttl of a read, did you mean ttlMs\?/,
    );
    await assert.rejects(
      warp.getMany(["k:1"], { hardTimeout: 10 } as never),
      /did you mean hardTimeoutMs\?/,
    );
    await assert.rejects(
      warp.grantLease({ ttl: 5000 } as never),
      /Unknown option ttl of grantLease/,
    );
    assert.throws(
      () =>
        new Warp({
          store: new MemoryStore(),
          keys: { "x:*": { mode: "strong-local", tll: 1 } as never },
        }),
      /Unknown option tll of register\("x:\*"\), did you mean ttlMs\?/,
    );
    assert.equal(warp.peek("k:1"), undefined, "nothing was written");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.register() refuses an option of another mode, and a write deadline every silent holder overruns", async () => {
  const warp = node({ sessionMs: 0 });
  try {
    assert.throws(
      () => warp.register("a:*", { mode: "strong-local", maxStalenessMs: 500 }),
      {
        name: "TypeError",
        message: /maxStalenessMs applies to eventual-distributed keys only, not strong-local: 500/,
      },
    );
    assert.throws(
      () => warp.register("b:*", { mode: "eventual-distributed", leaseMs: 500 }),
      { name: "TypeError", message: /leaseMs applies to strong-distributed keys only/ },
    );
    assert.throws(
      () =>
        warp.register("c:*", { mode: "strong-distributed", leaseMs: 2000, writeTimeoutMs: 1000 }),
      {
        name: "RangeError",
        message:
          /writeTimeoutMs must be above leaseMs × \(1 \+ drift\) \+ 1 ms = 2002\.0 ms, .*: 1000/,
      },
    );
    assert.throws(
      () => warp.register("d:*", { mode: "eventual-distributed", ttlMs: 100, maxStalenessMs: 500 }),
      { name: "RangeError", message: /maxStalenessMs above ttlMs 100 bounds nothing/ },
    );
    // The same options, consistent, are accepted.
    warp.register("c:*", { mode: "strong-distributed", leaseMs: 2000, writeTimeoutMs: 3000 });
    warp.register("d:*", { mode: "eventual-distributed", ttlMs: 100, maxStalenessMs: 50 });
  } finally {
    await warp.close();
  }
  // With sessions the same rule holds (how a session's wait compares is configProblems').
  const withSessions = node({ sessionMs: 2000, heartbeatIntervalMs: 250 });
  try {
    assert.throws(
      () => withSessions.register("s:*", { mode: "strong-distributed", writeTimeoutMs: 2000 }),
      /writeTimeoutMs must be above leaseMs × \(1 \+ drift\) \+ 1 ms = 2002\.0 ms/,
    );
    withSessions.register("s:*", { mode: "strong-distributed", writeTimeoutMs: 2500 });
  } finally {
    await withSessions.close();
  }
});

Deno.test("Option errors say the type expected and the value given", async () => {
  const warp = node();
  const coordinator = new MemoryCoordinator();
  const locks = new Locks({ coordinator, nodeId: "a" });
  try {
    assert.throws(
      () => warp.register("k:*", { mode: "strong-local", ttlMs: "1000" as never }),
      {
        name: "TypeError",
        message: 'ttlMs must be a number in (0, 31536000000] ms, got the string "1000"',
      },
    );
    assert.throws(
      () => warp.register("k:*", { mode: "strong-local", ttlMs: -1 }),
      {
        name: "RangeError",
        message: "ttlMs must be a number in (0, 31536000000] ms, got the number -1",
      },
    );
    assert.throws(
      () => warp.register("k:*", { mode: "strong-local", refreshAheadRatio: true as never }),
      {
        name: "TypeError",
        message: "refreshAheadRatio must be a number in (0, 1), got the boolean true",
      },
    );
    assert.throws(() => node({ entriesMax: "10" }), {
      name: "TypeError",
      message: 'entriesMax must be a number, got the string "10"',
    });
    await assert.rejects(
      locks.withLock("job", () => 1, { ttlMs: "1000" as never }),
      {
        name: "TypeError",
        message: 'ttlMs must be a number in [1, 86400000] ms, got the string "1000"',
      },
    );
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.peek() and get() agree on an unregistered key: UNREGISTERED_KEY, and on a bad key: TypeError", async () => {
  const warp = node();
  try {
    await assert.rejects(warp.get("nope:1"), { name: "WarpError", code: "UNREGISTERED_KEY" });
    assert.throws(
      () => warp.peek("nope:1"),
      (e) => e instanceof WarpError && e.code === "UNREGISTERED_KEY",
    );
    await assert.rejects(warp.get(""), TypeError);
    assert.throws(() => warp.peek(""), TypeError);
    warp.register("k:*", { mode: "strong-local" });
    assert.equal(warp.peek("k:1"), undefined, "registered, not cached: undefined");
  } finally {
    await warp.close();
  }
});

Deno.test("fast-check: an options object with any one name outside its list is refused, naming that name", async () => {
  const warp = node();
  warp.register("k:*", { mode: "strong-local" });
  const all: readonly string[] = [
    ...WARP_OPTION_NAMES,
    ...KEY_OPTION_NAMES,
    ...READ_OPTION_NAMES,
    ...SET_OPTION_NAMES,
    "loader",
  ];
  const stranger = fc.string({ minLength: 1, maxLength: 12 }).filter((name) =>
    !all.includes(name) && name !== "__proto__"
  );
  try {
    await fc.assert(
      fc.asyncProperty(stranger, async (name) => {
        const named = (error: unknown) =>
          error instanceof TypeError && error.message.startsWith("Unknown option ");
        assert.throws(() => node({ [name]: 1 }), named);
        assert.throws(
          () => warp.register(`s:${name.length}`, { mode: "strong-local", [name]: 1 } as never),
          named,
        );
        await assert.rejects(warp.get("k:1", { [name]: 1 } as never), named);
        await assert.rejects(warp.set("k:1", 1, { [name]: 1 } as never), named);
      }),
      { numRuns: 200 },
    );
  } finally {
    await warp.close();
  }
});
