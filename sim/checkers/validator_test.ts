import assert from "node:assert/strict";
import { checkHistory } from "./consistency.ts";
import type { History, ValidatorHistory, ValidatorVerdictEntry } from "../history.ts";

/** A history of one eventual key (bound 100 ms) written at versions 1 (t=0) and 2 (t=50). */
function history(validator: ValidatorHistory): History {
  return {
    format: "warp-history/1",
    keys: { k: { mode: "eventual-distributed", maxStalenessMs: 100, ttlMs: 1000 } },
    ops: [],
    storeLog: [
      { key: "k", version: 1, value: "a", atMs: 0 },
      { key: "k", version: 2, value: "b", atMs: 50 },
    ],
    validator,
  };
}

function verdict(fields: Partial<ValidatorVerdictEntry>): ValidatorVerdictEntry {
  return {
    process: "n1",
    key: "k",
    verdict: "inconsistent",
    cachedVersion: 1,
    storeVersion: 2,
    boundMs: 100,
    atMs: 200,
    heldVersion: 1,
    ...fields,
  };
}

function v1(validator: ValidatorHistory): string[] {
  const result = checkHistory(history(validator), { guarantees: ["V1"] });
  return result.violations.map((v) => v.message);
}

Deno.test("checkValidator() passes a count made a bound after the store applied the newer version", () => {
  assert.deepEqual(v1({ verdicts: [verdict({})], installs: [], checks: 3 }), []);
  const result = checkHistory(history({ verdicts: [], installs: [], checks: 3 }), {
    guarantees: ["V1"],
  });
  assert.equal(result.results.V1, "pass");
  assert.equal(result.stats.checked.V1, 3);
});

Deno.test("checkValidator() fails a count made before the bound had passed", () => {
  const [message] = v1({ verdicts: [verdict({ atMs: 140 })], installs: [] });
  assert.match(message!, /applied version 2 at 50 ms, less than the bound \(100 ms\) before/);
});

Deno.test("checkValidator() fails a count of a version L1 did not serve, or of one the store never applied", () => {
  assert.match(
    v1({ verdicts: [verdict({ heldVersion: 2 })], installs: [] })[0]!,
    /L1 served version 2/,
  );
  assert.match(
    v1({ verdicts: [verdict({ storeVersion: 3 })], installs: [] })[0]!,
    /never applied/,
  );
  // The node no longer serving anything right after the count (a flush) is no proof of a lie.
  assert.deepEqual(v1({ verdicts: [verdict({ heldVersion: null })], installs: [] }), []);
});

Deno.test("checkValidator() fails L1 found newer than the store", () => {
  const newer = verdict({ verdict: "newer-than-store", cachedVersion: 3, storeVersion: 2 });
  assert.match(v1({ verdicts: [newer], installs: [] })[0]!, /newer than the store's 2/);
});

Deno.test("checkValidator() fails a heal that installed an older version than L1 held, and only that", () => {
  const install = (version: number, heldBefore: number | null) => ({
    process: "n1",
    key: "k",
    version,
    heldBefore,
    atMs: 10,
  });
  assert.deepEqual(
    v1({ verdicts: [], installs: [install(2, 1), install(2, 2), install(1, null)] }),
    [],
  );
  assert.match(
    v1({ verdicts: [], installs: [install(1, 2)] })[0]!,
    /installed version 1 over version 2/,
  );
});

Deno.test("checkHistory() rejects a malformed validator part", () => {
  const bad = { verdicts: [{ ...verdict({}), verdict: "maybe" }], installs: [] };
  assert.throws(() => checkHistory(history(bad as unknown as ValidatorHistory)), TypeError);
});
