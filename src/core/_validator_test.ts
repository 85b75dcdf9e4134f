/** The background validator (`_validator.ts`): checks by version, the bound, budget, heals. */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import {
  readThrough,
  storeRead,
  strongFill,
  testNode,
  writeThrough as write,
} from "../../test/_node_core.ts";
import type { NodeConfig } from "./node.ts";
import type { Effect } from "./effects.ts";
import { validatorSettings } from "./_validator.ts";

type StoreGet = Extract<Effect, { type: "store-get" }>;

/** A test node whose validator samples once a second and checks nothing after invalidations. */
function node(validator: NodeConfig["validator"], options: Partial<NodeConfig> = {}) {
  return testNode("a", {
    validator: { samplePerS: 1, afterInvalidationShare: 0, ...validator },
    ...options,
  });
}

/** The validator's store read among `effects`. */
function validatorRead(effects: readonly Effect[]): StoreGet {
  const read = only(effects, "store-get");
  assert.equal(read.origin, "validator");
  return read;
}

Deno.test("validator counts a sampled entry equal to the store as consistent within 1 s", () => {
  const n = node({ mode: "count" });
  write(n, 1, "local:k", "v", 3, 500);
  n.tick(1000);
  const read = validatorRead(n.takeEffects());
  n.onStoreRead(read.io, storeRead("v", 3), 1001);
  const report = n.validatorReport()!;
  assert.equal(report.checked, 1);
  assert.equal(report.consistent, 1);
  assert.equal(report.consistentWithin["1s"], 1);
  assert.equal(report.storeReads, 1);
});

Deno.test("validator is off by default and adds nothing to a hit", () => {
  const off = testNode();
  assert.equal(off.validatorReport(), undefined);
  const n = node({ mode: "count" });
  write(n, 1, "local:k", "v", 1, 0);
  assert.equal(n.hit("local:k", 10)?.value, "v");
  assert.equal(n.effectsPending, false);
});

Deno.test("validator reports L1 newer than the store as a bug, with an event in alert mode", () => {
  const n = node({ mode: "alert" });
  n.observe("protocol");
  write(n, 1, "local:k", "v", 5, 500);
  n.tick(1000);
  const read = validatorRead(n.takeEffects());
  n.onStoreRead(read.io, storeRead("old", 3), 1001);
  assert.equal(n.validatorReport()!.newerThanStore, 1);
  const events = n.takeEvents().filter((e) => e.type === "validator");
  assert.deepEqual(events, [{
    type: "validator",
    verdict: "newer-than-store",
    key: "local:k",
    cachedVersion: 5,
    storeVersion: 3,
    boundMs: 0,
    healing: false,
  }]);
});

Deno.test("validator does not count a difference that L1 drops within its bound", () => {
  const n = node({ mode: "count" });
  readThrough(n, 1, "ev:k", "v1", 1, 900);
  n.tick(1000);
  const read = validatorRead(n.takeEffects());
  n.onStoreRead(read.io, storeRead("v2", 2), 1001);
  // 500 ms × (1 + 0.001) + 1 after the answer: the entry's own bound has ended it.
  n.tick(1503);
  n.tick(2001);
  const report = n.validatorReport()!;
  assert.equal(report.olderWithinBound, 1);
  assert.equal(report.inconsistent, 0);
  assert.equal(report.consistentWithin["1s"], 1);
  assert.equal(report.following, 0);
});

Deno.test("validator counts an entry still served a bound after the store held a newer version", () => {
  // The canary serves eventual entries for their TTL: a difference then outlasts the bound.
  const n = node({ mode: "alert" }, { canary: { ignoreStalenessBound: true } });
  n.observe("protocol");
  readThrough(n, 1, "ev:k", "v1", 1, 900);
  n.tick(1000);
  const read = validatorRead(n.takeEffects());
  n.onStoreRead(read.io, storeRead("v2", 2), 1001);
  n.tick(1502); // 1001 + 500.5 + 1 = 1502.5: not yet
  assert.equal(n.validatorReport()!.inconsistent, 0);
  assert.equal(n.validatorReport()!.following, 1);
  n.tick(1503);
  assert.equal(n.validatorReport()!.inconsistent, 1);
  const [event] = n.takeEvents().filter((e) => e.type === "validator");
  assert.equal(event?.type === "validator" && event.verdict, "inconsistent");
  n.tick(61_002);
  const report = n.validatorReport()!;
  assert.equal(report.inconsistent, 1, "counted once");
  assert.equal(report.consistentWithin["10s"], 0);
  assert.equal(report.consistentWithin["60s"], 1, "gone at its TTL, before the 60 s mark");
});

Deno.test("validator heals through a versioned fill: an older answer is not installed, a newer one is", () => {
  const n = node({ mode: "heal" }, { canary: { ignoreStalenessBound: true } });
  readThrough(n, 1, "ev:k", "v1", 1, 900);
  n.tick(1000);
  n.onStoreRead(validatorRead(n.takeEffects()).io, storeRead("v2", 2), 1001);
  n.tick(1503);
  const heal = validatorRead(n.takeEffects());
  assert.equal(n.validatorReport()!.healed, 1);
  assert.equal(n.inspect("ev:k")?.version, 1, "not evicted before the heal's answer");
  // An answer older than the version found (a lagging replica): read again, not installed.
  n.onStoreRead(heal.io, storeRead("v1", 1), 1504);
  const again = validatorRead(n.takeEffects());
  assert.equal(n.inspect("ev:k")?.version, 1);
  n.onStoreRead(again.io, storeRead("v3", 3), 1505);
  assert.equal(n.inspect("ev:k")?.version, 3);
});

Deno.test("validator's heal loses to an invalidation that raced it", () => {
  const n = node({ mode: "heal" }, { canary: { ignoreStalenessBound: true } });
  readThrough(n, 1, "ev:k", "v1", 1, 900);
  n.tick(1000);
  n.onStoreRead(validatorRead(n.takeEffects()).io, storeRead("v2", 2), 1001);
  n.tick(1503);
  const heal = validatorRead(n.takeEffects());
  n.onMessage({ t: "inv", from: "b", inc: 1, seq: 1, key: "ev:k", version: 4 }, 1504);
  n.onStoreRead(heal.io, storeRead("v2", 2), 1505);
  const retry = validatorRead(n.takeEffects());
  assert.equal(n.inspect("ev:k"), undefined, "neither the old entry nor the older answer");
  n.onStoreRead(retry.io, storeRead("v4", 4), 1506);
  assert.equal(n.inspect("ev:k")?.version, 4);
});

Deno.test("validator keeps to its store-read budget and counts what it skipped", () => {
  const n = node({ mode: "count", samplePerS: 10, storeReadsPerS: 1 });
  write(n, 1, "local:k", "v", 1, 0);
  write(n, 2, "local:j", "v", 1, 0);
  let reads = 0;
  for (let t = 100; t <= 900; t += 100) {
    n.tick(t);
    for (const e of n.takeEffects()) {
      if (e.type !== "store-get") continue;
      reads++;
      n.onStoreRead(e.io, storeRead("v", 1), t);
    }
  }
  assert.equal(reads, 1);
  assert.equal(n.validatorReport()!.skippedByRateLimit, 8);
});

Deno.test("validator checks a key a delay after an invalidation from a peer", () => {
  const n = node({ mode: "count", samplePerS: 0, afterInvalidationShare: 1, checkDelayMs: 50 });
  readThrough(n, 1, "ev:k", "v1", 1, 0);
  n.onMessage({ t: "inv", from: "b", inc: 1, seq: 1, key: "ev:k", version: 2 }, 10);
  none(n.takeEffects(), "store-get");
  readThrough(n, 2, "ev:k", "v2", 2, 20);
  n.tick(60);
  n.onStoreRead(validatorRead(n.takeEffects()).io, storeRead("v2", 2), 61);
  assert.equal(n.validatorReport()!.consistent, 1);
});

Deno.test("validator checks a strong key a delay after a peer's revocation", () => {
  const n = node({ mode: "count", samplePerS: 0, afterInvalidationShare: 1, checkDelayMs: 50 });
  strongFill(n, 1, "st:k", undefined, 0, 0, "v1", 1);
  n.onMessage({ t: "revoke", from: "b", inc: 1, id: 7, key: "st:k", rev: 3, nonce: 9 }, 10);
  none(n.takeEffects(), "store-get");
  strongFill(n, 2, "st:k", { holders: [], pending: undefined, version: 2 }, 4, 20, "v2", 2);
  n.tick(60);
  n.onStoreRead(validatorRead(n.takeEffects()).io, storeRead("v2", 2), 61);
  assert.equal(n.validatorReport()!.consistent, 1);
});

Deno.test("validatorSettings() names the bad option", () => {
  assert.throws(() => validatorSettings({ mode: "fix" as "heal" }), /mode.*fix/);
  assert.throws(() => validatorSettings({ storeReadsPerS: 0 }), RangeError);
  assert.throws(() => validatorSettings({ afterInvalidationShare: 2 }), /afterInvalidationShare/);
  assert.throws(
    () => validatorSettings({ samplePerSec: 1 } as unknown as { mode: "count" }),
    /Unknown validator option: samplePerSec/,
  );
  assert.throws(() => testNode("a", { validator: { checksMax: 1.5 } }), RangeError);
});
