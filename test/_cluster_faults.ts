/**
 * Test helper: what the three-process fault tests over real servers share, whatever bus
 * and coordinator they run on (`test/nats_cluster_test.ts`, `test/postgres_cluster_test.ts`):
 * a cluster with short fault timeouts, a random workload on every node with a fault in the
 * middle, the history checked by the simulator's checkers, and the checks that nothing
 * acknowledged was lost and that the cluster recovered.
 *
 * @module
 */

import assert from "node:assert/strict";
import { checkHistory, GUARANTEES } from "../sim/checkers/consistency.ts";
import type { CheckHistoryResult } from "../sim/checkers/consistency.ts";
import type { History, HistoryOp } from "../sim/history.ts";
import { ProcessCluster, type ProcessClusterOptions } from "./_process_cluster.ts";

/** maxStalenessMs of the `ev:*` keys of a fault-test cluster. */
export const STALENESS_MS = 1000;
/** leaseMs of the `st:*` keys of a fault-test cluster. */
export const LEASE_MS = 1000;

/** Runs `fn` on a cluster with short fault timeouts (and `options`), then closes it. */
export async function withCluster(
  options: ProcessClusterOptions,
  fn: (cluster: ProcessCluster) => Promise<void>,
): Promise<void> {
  const cluster = await ProcessCluster.start({
    stalenessMs: STALENESS_MS,
    leaseMs: LEASE_MS,
    writeTimeoutMs: 5000,
    // A coordinator call to a dead server gives up after 1 s, so faults stay short.
    ioTimeoutMs: 2000,
    coordinatorTimeoutMs: 1000,
    ...options,
  });
  try {
    await fn(cluster);
  } finally {
    await cluster.close();
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads `key` on a node until `accept` holds, or fails after `timeoutMs`. */
export async function readUntil(
  cluster: ProcessCluster,
  node: number,
  key: string,
  accept: (op: HistoryOp) => boolean,
  timeoutMs: number,
): Promise<HistoryOp> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const read = await cluster.get(node, key);
    if (read.outcome === "ok" && accept(read)) return read;
    if (Date.now() > deadline) {
      throw new Error(
        `Node ${node} never read what was expected of ${key}: ${JSON.stringify(read)}`,
      );
    }
    await sleep(20);
  }
}

/** Asserts that an operation succeeded and has a version. */
export function assertOk(op: HistoryOp): asserts op is HistoryOp & { version: number } {
  assert.equal(op.outcome, "ok", `op failed: ${JSON.stringify(op)}`);
  assert.equal(typeof op.version, "number");
}

/** How long every node runs its random workload in a fault test. */
export const LOAD_MS = 8000;
/** When the fault starts, after the load started. */
export const FAULT_AT_MS = 2500;

/**
 * Problems with what the store holds at the end: an acknowledged write lost (its version
 * above the final one), or a final value that no write produced at the final version.
 */
export function lostWrites(history: History): string[] {
  const problems: string[] = [];
  const byKey = Map.groupBy(
    history.ops.filter((op) =>
      (op.kind === "write" || op.kind === "delete") && op.outcome !== "fail"
    ),
    (op) => op.key,
  );
  for (const [key, writes] of byKey) {
    const final = history.final?.[key];
    if (final === undefined) {
      problems.push(`${key}: no final state`);
      continue;
    }
    for (const op of writes) {
      if (op.outcome === "ok" && op.version! > final.version) {
        problems.push(
          `${key}: ok ${op.kind} ${op.id} at version ${op.version} is above the final ${final.version}`,
        );
      }
    }
    if (final.version === 0) {
      if (writes.some((op) => op.outcome === "ok")) problems.push(`${key}: ok writes, no row`);
      continue;
    }
    // The op that wrote the final state: values are unique per write; a delete leaves null.
    const authors = writes.filter((op) =>
      final.value === null ? op.kind === "delete" : op.kind === "write" && op.value === final.value
    );
    for (const op of writes) {
      if (op.outcome === "ok" && op.version === final.version && !authors.includes(op)) {
        problems.push(`${key}: ok ${op.kind} ${op.id} has the final version, not the final value`);
      }
    }
    const exact = authors.filter((op) => op.outcome === "ok" && op.version === final.version);
    const open = authors.filter((op) => op.outcome === "unknown");
    if (exact.length === 0 && open.length === 0) {
      problems.push(
        `${key}: final ${JSON.stringify(final)} was written by no ok op at that version ` +
          `and by no op of unknown outcome (candidates ${authors.map((op) => op.id).join(", ")})`,
      );
    }
  }
  return problems;
}

/** The outcomes and each guarantee's result of a checked history, as lines. */
export function summarize(name: string, history: History, result: CheckHistoryResult): string {
  const count = (predicate: (op: HistoryOp) => boolean) => history.ops.filter(predicate).length;
  const outcomes = ["ok", "fail", "unknown"].map((outcome) =>
    `${outcome} ${count((op) => op.outcome === outcome)}`
  );
  const guarantees = GUARANTEES.map((g) =>
    `${g} ${result.results[g]} (${result.stats.checked[g]} checked, ${
      result.stats.violations[g]
    } violations)`
  );
  return [
    `${name}: ${history.ops.length} ops (${outcomes.join(", ")}), ${result.stats.keys} keys`,
    `  ${guarantees.join("; ")}`,
  ].join("\n");
}

/** Error codes of the ops that did not succeed, counted, for the summary. */
export function failureCodes(cluster: ProcessCluster): string {
  const counts = new Map<string, number>();
  for (const failure of cluster.failures()) {
    const code = `${failure.kind} ${failure.outcome} ${failure.error.split(":")[0]}`;
    counts.set(code, (counts.get(code) ?? 0) + 1);
  }
  return [...counts].map(([code, n]) => `${code} x${n}`).join(", ") || "none";
}

/**
 * Runs the random workload on every node for `loadMs` ({@linkcode LOAD_MS}), calls `fault` at
 * {@linkcode FAULT_AT_MS}, waits for the load to end and for maxStalenessMs, probes every
 * eventual key on every live node, then checks the history: no violation of any
 * guarantee (S1 may be unknown when its search runs out of budget, never fail), and no
 * acknowledged write lost.
 */
export async function runUnderFault(
  name: string,
  cluster: ProcessCluster,
  fault: () => Promise<void>,
  loadMs: number = LOAD_MS,
): Promise<{ history: History; result: CheckHistoryResult }> {
  const loads = cluster.nodes.map((_, i) =>
    cluster.workload(i, { durationMs: loadMs, seed: 1000 + i, concurrency: 3, thinkMs: 5 })
  );
  await sleep(FAULT_AT_MS);
  await fault();
  const completed = await Promise.all(loads);
  await sleep(STALENESS_MS + 200);
  const live = cluster.nodes.filter((node) => node.alive);
  const evKeys = [0, 1, 2].map((i) => `ev:${i}`);
  await Promise.all(live.flatMap((node) => evKeys.map((key) => cluster.probe(node.id, key))));

  const history = await cluster.history();
  const result = checkHistory(history);
  console.log(summarize(name, history, result));
  console.log(`  not ok: ${failureCodes(cluster)}; completed per node: ${completed.join(", ")}`);
  for (const node of cluster.nodes) {
    assert.ok(node.alive || node.killed, `node ${node.id} died:\n${node.stderrTail.join("\n")}`);
  }
  assert.deepEqual(
    result.violations.map((v) => `${v.guarantee} ${v.key}: ${v.message}`),
    [],
    "no guarantee is violated",
  );
  for (const guarantee of ["E1", "E2", "E3", "E4", "S2", "SL1"] as const) {
    assert.equal(result.results[guarantee], "pass", `${guarantee} is checked and passes`);
  }
  assert.notEqual(result.results.S1, "fail");
  assert.notEqual(result.results.S1, "skipped");
  assert.deepEqual(lostWrites(history), [], "no acknowledged write is lost");
  return { history, result };
}

/**
 * Asserts that every workload key of `mode` ("ev", "st") got an ok write invoked after
 * `afterMs`, i.e. that the cluster recovered from the fault; prints how soon.
 */
export function assertKeysRecovered(history: History, mode: string, afterMs: number): void {
  const delays = [0, 1, 2].map((i) => {
    const key = `${mode}:${i}`;
    const first = history.ops.find((op) =>
      op.key === key && op.kind === "write" && op.outcome === "ok" && op.invokeMs > afterMs
    );
    assert.ok(first !== undefined, `${key} was written again after the fault`);
    return `${key} +${Math.round(first.invokeMs - afterMs)} ms`;
  });
  console.log(`  first ok write after the fault: ${delays.join(", ")}`);
}

/** Ok writes of `prefix` keys per node that were invoked after `afterMs`. */
export function okWritesAfter(
  history: History,
  prefix: string,
  afterMs: number,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const op of history.ops) {
    if (op.kind !== "write" || op.outcome !== "ok" || !op.key.startsWith(prefix)) continue;
    if (op.invokeMs <= afterMs) continue;
    const node = String(op.process);
    counts.set(node, (counts.get(node) ?? 0) + 1);
  }
  return counts;
}

/**
 * A write on one node is seen by the others, per mode: a strong write at once (then from L1
 * again), an eventual one within maxStalenessMs, a strong-local one by its writer from L1
 * and by another node from the store; then the history passes the checkers.
 */
export async function assertWritesSeen(cluster: ProcessCluster): Promise<void> {
  // strong-distributed: every node caches the key, then a write on n1 is visible on
  // n2 and n3 the moment set returns, and their next reads are L1 hits again.
  const first = await cluster.set(0, "st:a", "one");
  assertOk(first);
  for (const node of [0, 1, 2]) assertOk(await cluster.get(node, "st:a"));
  const cached = await cluster.get(1, "st:a");
  assert.equal(cached.source, "l1", "a fresh strong key is an L1 hit");
  const second = await cluster.set(0, "st:a", "two");
  assertOk(second);
  for (const node of [1, 2]) {
    const read = await cluster.get(node, "st:a");
    assert.equal(read.value, "two", `node ${node} read ${JSON.stringify(read)}`);
    assert.equal(read.version, second.version);
  }

  // eventual-distributed: others drop their entry on the invalidation, and in any case
  // serve the new version within maxStalenessMs.
  assertOk(await cluster.set(0, "ev:a", "one"));
  for (const node of [1, 2]) assertOk(await cluster.get(node, "ev:a"));
  const written = await cluster.set(0, "ev:a", "two");
  assertOk(written);
  for (const node of [1, 2]) {
    const read = await readUntil(
      cluster,
      node,
      "ev:a",
      (op) => op.version === written.version,
      STALENESS_MS,
    );
    assert.equal(read.value, "two");
    assert.ok(read.completeMs! - written.completeMs! <= STALENESS_MS + 50);
  }

  // strong-local: the writer reads its own write at once (from L1); another node that
  // has no entry reads the store's value.
  const local = await cluster.set(2, "sl:a", "mine");
  assertOk(local);
  const own = await cluster.get(2, "sl:a");
  assert.deepEqual([own.value, own.version, own.source], ["mine", local.version, "l1"]);
  const other = await cluster.get(0, "sl:a");
  assert.deepEqual([other.value, other.version, other.source], ["mine", local.version, "store"]);
  assert.deepEqual(checkHistory(await cluster.history()).violations, []);
}

/**
 * Asserts that the cluster recovered from a fault that ended at `sinceMs`: every node wrote
 * eventual keys again (invoked from a second after), and every strong key was written again.
 */
export function assertRecovered(cluster: ProcessCluster, history: History, sinceMs: number): void {
  const recovered = okWritesAfter(history, "ev:", sinceMs + 1000);
  for (const node of cluster.nodes) {
    assert.ok((recovered.get(node.id) ?? 0) > 0, `${node.id} writes again after the fault`);
  }
  assertKeysRecovered(history, "st", sinceMs);
}
