/**
 * The whole public API of `Warp` (MemoryStore, InProcessBus, MemoryCoordinator) and
 * `Locks`, called with arbitrary arguments: strings with lone surrogates, NUL or a
 * million characters, values too deep or too large, odd option objects. Every call must
 * either succeed or fail with a typed error (`TypeError`, `RangeError`, `WarpError`, or
 * the caller's own abort reason), within a deadline and without an unhandled rejection;
 * and a failed call must leave no trace: no store write, no L1 change on any node, no
 * message on the bus, no coordinator write (no lock taken, no lease touched).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  InProcessBus,
  Locks,
  MemoryCoordinator,
  MemoryStore,
  type Transport,
  Warp,
  WarpError,
} from "../mod.ts";
import { decodeMessage } from "../src/wire.ts";

const CALL_DEADLINE_MS = 3000;
const VALUE_BYTES_MAX = 4096;
/** Placeholders for arguments too big to print in a counterexample, made at run time. */
const PLACEHOLDERS: Record<string, () => unknown> = {
  million: () => "k:" + "x".repeat(1_000_000),
  deep: () => {
    let value: unknown = 0;
    for (let i = 0; i < 5000; i++) value = [value];
    return value;
  },
};

// ------------------------------------------------------------------ arguments

/** Keys: registered ones, near misses and every kind of invalid string or non-string. */
const key: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom("k:1", "k:2", "s:1", "s:2", "l:1", "u:1"),
  fc.string({ unit: "binary", maxLength: 6 }).map((s) => `k:${s}`),
  fc.constantFrom("", "\ud800", "k:\ud800", "k:a\udc00b", "k:\u0000", "k:" + "x".repeat(1023)),
  fc.constant({ $: "million" }),
  fc.anything({ maxDepth: 1 }),
);

const value: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.anything({ maxDepth: 2 }),
  fc.constantFrom(
    undefined,
    "x".repeat(VALUE_BYTES_MAX),
    { $: "deep" },
    new Date(0),
    () => 1,
    Symbol("s"),
    10n,
  ),
);

/** A lease: one granted earlier in the run (by index), or something else. */
const lease: fc.Arbitrary<unknown> = fc.oneof(
  fc.nat({ max: 3 }).map((index) => ({ granted: index })),
  fc.constantFrom("u0.abcdefgh", "lease", "", "\ud800"),
  fc.anything({ maxDepth: 1 }),
);

const duration: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, 1, 50, 1000, 5000, 60_000, 0, -1, NaN, Infinity, 2 ** 40),
  fc.anything({ maxDepth: 0 }),
);

const signal: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, "signal", null),
  fc.constant({}),
  fc.constant("aborted"), // replaced by an aborted signal at run time
  fc.constant("live"), // replaced by a signal that is never aborted
);

/** Option objects: odd ones, and records of plausible and implausible fields. */
const options: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, "options", 7, []),
  fc.anything({ maxDepth: 1 }),
  fc.record(
    {
      lease: fc.oneof(lease, fc.array(lease, { maxLength: 3 })),
      ttlMs: duration,
      timeoutMs: duration,
      signal,
      mode: fc.constantFrom(
        "strong-local",
        "eventual-distributed",
        "strong-distributed",
        "bogus",
        undefined,
      ),
      maxStalenessMs: duration,
      leaseMs: duration,
      prefix: key,
      limit: duration,
    },
    { requiredKeys: [] },
  ),
);

/** Options of `new Warp` / `new Locks`: the shared services plus odd fields. */
const constructorOptions = fc.record(
  {
    nodeId: fc.oneof(fc.constantFrom("n1", "all", "", "a b", "x".repeat(65)), key),
    prefix: fc.oneof(fc.constantFrom("warp", "other.node", "a/b", "p".repeat(129)), key),
    entriesMax: duration,
    bytesMax: duration,
    maxDriftPpm: duration,
    ioTimeoutMs: duration,
    valueBytesMax: duration,
    waitersMax: duration,
    pollMs: duration,
    codec: fc.constantFrom(undefined, null, {}, { encode: 1, decode: 2 }),
    clock: fc.constantFrom(undefined, 5, "clock"),
  },
  { requiredKeys: [] },
);

// ------------------------------------------------------------------ operations

type Op =
  | { readonly api: "warp"; readonly node: 0 | 1; readonly call: string; readonly args: unknown[] }
  | { readonly api: "locks"; readonly node: 0 | 1; readonly call: string; readonly args: unknown[] }
  | { readonly api: "new"; readonly call: "Warp" | "Locks"; readonly args: unknown[] };

const node = fc.constantFrom(0 as const, 1 as const);
const warpCall = (call: string, ...args: fc.Arbitrary<unknown>[]): fc.Arbitrary<Op> =>
  fc.tuple(node, ...args).map(([n, ...rest]) => ({ api: "warp", node: n, call, args: rest }));
const locksCall = (call: string, ...args: fc.Arbitrary<unknown>[]): fc.Arbitrary<Op> =>
  fc.tuple(node, ...args).map(([n, ...rest]) => ({ api: "locks", node: n, call, args: rest }));

const op: fc.Arbitrary<Op> = fc.oneof(
  warpCall("register", key, options),
  warpCall("get", key),
  warpCall("read", key),
  warpCall("peek", key),
  warpCall("set", key, value, options),
  warpCall("delete", key),
  warpCall("invalidate", key),
  warpCall("getOrSet", key, value),
  warpCall("warmup", fc.oneof(fc.array(key, { maxLength: 3 }), options)),
  warpCall("grantLease", options),
  warpCall("keepAlive", lease),
  warpCall("revokeLease", lease),
  warpCall("attachKey", key, lease),
  warpCall("stats"),
  locksCall("acquire", key, options),
  locksCall("tryAcquire", key, options),
  locksCall("withLock", key, options),
  fc.tuple(fc.constantFrom("Warp" as const, "Locks" as const), constructorOptions).map((
    [call, args],
  ) => ({ api: "new" as const, call, args: [args] })),
);

// ------------------------------------------------------------------ the system under test

class System {
  readonly store = new MemoryStore();
  readonly coordinator = new MemoryCoordinator();
  readonly bus = new InProcessBus();
  readonly transports: Transport[] = [];
  readonly nodes: Warp[] = [];
  readonly locks: Locks[];
  readonly probe: Locks;
  readonly leases: string[] = [];
  /** Bus messages other than heartbeats. */
  messages = 0;

  constructor() {
    this.bus.filter = (_subject, data) => {
      if (decodeMessage(data)?.t !== "hb") this.messages++;
      return true;
    };
    for (const nodeId of ["a", "b"]) {
      const transport = this.bus.connect({ label: nodeId });
      this.transports.push(transport);
      const node = new Warp({
        store: this.store,
        coordinator: this.coordinator,
        transport,
        nodeId,
        valueBytesMax: VALUE_BYTES_MAX,
        leaseCheckMs: 20,
      });
      node.register("k:*", { mode: "eventual-distributed" });
      node.register("s:*", { mode: "strong-distributed" });
      node.register("l:*", { mode: "strong-local" });
      this.nodes.push(node);
    }
    this.locks = ["a", "b"].map((nodeId) => new Locks({ coordinator: this.coordinator, nodeId }));
    this.probe = new Locks({ coordinator: this.coordinator, nodeId: "probe" });
  }

  /** What a failed call must not change. */
  footprint() {
    const { set, delete: deletes } = this.store.counts;
    return {
      store: { set, delete: deletes, size: this.store.size },
      l1: this.nodes.map((node) => ({ entries: node.stats.entries, bytes: node.stats.bytes })),
      messages: this.messages,
      coordinatorRevision: this.coordinator.revision,
    };
  }

  /** Replaces the placeholders of generated arguments with live objects. */
  resolve(arg: unknown): unknown {
    if (Array.isArray(arg)) return arg.map((item) => this.resolve(item));
    if (
      typeof arg !== "object" || arg === null || Object.getPrototypeOf(arg) !== Object.prototype
    ) {
      return arg;
    }
    const record = arg as Record<string, unknown>;
    if (typeof record.$ === "string" && Object.keys(record).length === 1) {
      return PLACEHOLDERS[record.$]?.() ?? record;
    }
    if ("granted" in record && Object.keys(record).length === 1) {
      return this.leases[(record.granted as number) % Math.max(1, this.leases.length)] ??
        "u0.abcdefgh";
    }
    const resolved: Record<string, unknown> = {};
    for (const [name, item] of Object.entries(record)) {
      if (name === "signal" && item === "aborted") resolved[name] = AbortSignal.abort();
      else if (name === "signal" && item === "live") resolved[name] = new AbortController().signal;
      else resolved[name] = this.resolve(item);
    }
    return resolved;
  }

  /** Runs one operation; resolves to what it returned (sync or async). */
  async run(op: Op): Promise<unknown> {
    const args = op.args.map((arg) => this.resolve(arg));
    if (op.api === "new") return await this.construct(op.call, args[0] as Record<string, unknown>);
    if (op.api === "locks") {
      const locks = this.locks[op.node]!;
      const [name, opts] = args;
      if (op.call === "withLock") {
        return await locks.withLock(name as string, (token) => token, opts as never);
      }
      const handle = await (op.call === "acquire"
        ? locks.acquire(name as string, opts as never)
        : locks.tryAcquire(name as string, opts as never));
      await handle?.release(); // sequential calls: no lock stays held to block the next
      return handle?.token;
    }
    const warp = this.nodes[op.node]! as unknown as Record<string, (...a: unknown[]) => unknown>;
    if (op.call === "stats") return (this.nodes[op.node]!).stats;
    if (op.call === "getOrSet") return await warp.getOrSet!(args[0], () => args[1]);
    const result = await warp[op.call]!(...args);
    if (op.call === "grantLease") this.leases.push(result as string);
    return result;
  }

  async construct(what: "Warp" | "Locks", fields: Record<string, unknown>): Promise<void> {
    const services = { store: this.store, coordinator: this.coordinator };
    if (what === "Locks") {
      new Locks({ ...services, ...fields } as never).close();
      return;
    }
    const transport = this.bus.connect();
    try {
      await new Warp({ ...services, transport, ...fields } as never).close();
    } finally {
      await transport.close();
    }
  }

  async close(): Promise<void> {
    for (const node of this.nodes) await node.close();
    for (const locks of [...this.locks, this.probe]) locks.close();
    for (const transport of this.transports) await transport.close();
  }
}

/** Whether `error` is a typed failure; `signal` is what the caller passed, if anything. */
function isTyped(error: unknown): boolean {
  if (error instanceof WarpError || error instanceof TypeError || error instanceof RangeError) {
    return true;
  }
  // An aborted signal rejects with the signal's own reason, as documented.
  return error instanceof DOMException && error.name === "AbortError";
}

/** Two macrotask turns: every microtask chain of the in-memory services has run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

async function withDeadline(what: string, run: () => Promise<unknown>): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Hang: ${what} did not settle in ${CALL_DEADLINE_MS} ms`)),
      CALL_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([run(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function show(op: Op): string {
  const args = op.args.map((arg) => {
    try {
      const text = typeof arg === "string" ? JSON.stringify(arg) : fc.stringify(arg);
      return text.length > 80 ? `${text.slice(0, 80)}…` : text;
    } catch {
      return String(arg);
    }
  });
  return op.api === "new"
    ? `new ${op.call}(${args.join(", ")})`
    : `${op.api}[${op.node}].${op.call}(${args.join(", ")})`;
}

Deno.test("Warp and Locks: every call succeeds or fails typed, in time, and a failed call leaves no trace", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (event: PromiseRejectionEvent) => {
    unhandled.push(event.reason);
    event.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const system = new System();
        unhandled.length = 0;
        try {
          for (const op of ops) {
            await settle(); // the previous call's own trailing effects land before the snapshot
            assert.deepEqual(unhandled, [], "unhandled rejections");
            const before = system.footprint();
            let failure: unknown;
            let failed = false;
            try {
              await withDeadline(show(op), () => system.run(op));
            } catch (error) {
              failed = true;
              failure = error;
            }
            await settle();
            assert.deepEqual(unhandled, [], `unhandled rejections after ${show(op)}`);
            if (!failed) continue;
            assert.ok(isTyped(failure), `${show(op)} failed untyped: ${String(failure)}`);
            const message = (failure as Error).message ?? "";
            assert.ok(message.length < 1000, `${show(op)}: a ${message.length}-character message`);
            const after = system.footprint();
            if (op.api === "warp" && op.call === "getOrSet") {
              // getOrSet reads before it calls the loader: that read may fill the caller's L1
              // and (strong-distributed) register it as a holder, like any get. The write
              // that failed must leave nothing else: no store write, no message.
              after.l1[op.node] = before.l1[op.node]!;
              after.coordinatorRevision = before.coordinatorRevision;
            }
            assert.deepEqual(after, before, `${show(op)} left a trace`);
            // And no lock is held: a fresh client takes any name at once.
            const name = system.resolve(op.args[0]);
            if (op.api === "locks" && typeof name === "string" && name.length <= 1024) {
              const probe = await system.probe.tryAcquire(name).catch(() => "invalid");
              if (typeof probe === "object") await probe.release();
              assert.notEqual(probe, undefined, `${show(op)} left the lock taken`);
            }
          }
          await new Promise((resolve) => setTimeout(resolve, 0));
          assert.deepEqual(unhandled, [], "unhandled rejections");
          for (const node of system.nodes) assert.equal(node.failure, undefined);
        } finally {
          await system.close();
        }
      }),
      { numRuns: 100 },
    );
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
});
