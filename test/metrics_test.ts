/**
 * Metrics read back after a known sequence of operations: through a real OpenTelemetry SDK
 * (`@opentelemetry/sdk-metrics`, a `MetricReader` collected on demand) and through the
 * Prometheus text, both fed by the same two nodes, with the exact counts asserted.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { DataPoint, Histogram, ResourceMetrics } from "@opentelemetry/sdk-metrics";
import {
  type Coordinator,
  InProcessBus,
  Locks,
  MemoryCoordinator,
  MemoryStore,
  Warp,
  WARP_METRICS,
  type WarpMetrics,
} from "../mod.ts";
import { OpenTelemetryMetrics } from "../src/metrics/otel.ts";
import {
  escapeHelp,
  escapeLabel,
  PrometheusMetrics,
  prometheusName,
} from "../src/metrics/prometheus.ts";
import { REDIS_URL } from "./_stack.ts";
import { NATS_URL, PG_URL } from "./_process_cluster.ts";
import { NatsTransport } from "../src/nats/mod.ts";
import { PostgresTransport } from "../src/postgres/mod.ts";
import { RedisTransport } from "../src/redis/mod.ts";

/** A reader the test collects by hand: no timer, no exporter. */
class OnDemandReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** Every metrics object of `all`, as one. */
function fanOut(...all: WarpMetrics[]): WarpMetrics {
  return {
    addNode: (node) => all.forEach((m) => m.addNode(node)),
    removeNode: (node) => all.forEach((m) => m.removeNode(node)),
    recordInvalidationEcho: (nodeId, type, seconds) =>
      all.forEach((m) => m.recordInvalidationEcho(nodeId, type, seconds)),
    recordOperation: (node, operation, outcome, seconds) =>
      all.forEach((m) => m.recordOperation(node, operation, outcome, seconds)),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The data point of metric `name` whose attributes include `attributes`. */
function otelPoint(
  collected: ResourceMetrics,
  name: string,
  attributes: Record<string, string>,
): DataPoint<number | Histogram> | undefined {
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints as DataPoint<number | Histogram>[]) {
        if (Object.entries(attributes).every(([k, v]) => point.attributes[k] === v)) return point;
      }
    }
  }
  return undefined;
}

function otelValue(collected: ResourceMetrics, name: string, attributes: Record<string, string>) {
  const point = otelPoint(collected, name, attributes);
  assert.ok(point !== undefined, `no OpenTelemetry point ${name} ${JSON.stringify(attributes)}`);
  return point.value;
}

/**
 * Parses Prometheus text, checking the format as it goes: each family opens with HELP then
 * TYPE, every sample belongs to the family just opened, and every line is well formed.
 * Returns the samples by `name{labels}` exactly as written.
 */
function parsePrometheus(text: string): Map<string, number> {
  assert.ok(text.endsWith("\n"), "the text ends with a line feed");
  const samples = new Map<string, number>();
  let family: { name: string; type: string } | undefined;
  let help: string | undefined;
  const sample =
    /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/;
  for (const line of text.slice(0, -1).split("\n")) {
    const helpMatch = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (helpMatch !== null) {
      help = helpMatch[1];
      continue;
    }
    const typeMatch = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
    if (typeMatch !== null) {
      assert.equal(typeMatch[1], help, "TYPE follows the HELP of its family");
      family = { name: typeMatch[1]!, type: typeMatch[2]! };
      continue;
    }
    const match = sample.exec(line);
    assert.ok(match !== null, `malformed line: ${line}`);
    assert.ok(family !== undefined);
    const suffixes = family.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    assert.ok(
      suffixes.some((suffix) => match[1] === family!.name + suffix),
      `${match[1]} outside its family ${family.name}`,
    );
    const value = match[3] === "+Inf" ? Infinity : Number(match[3]);
    assert.ok(!Number.isNaN(value), `not a number: ${line}`);
    samples.set(match[1]! + (match[2] ?? ""), value);
  }
  return samples;
}

Deno.test("metrics read through an OpenTelemetry SDK reader and the Prometheus text give the exact counts of a known sequence", async () => {
  const reader = new OnDemandReader();
  const provider = new MeterProvider({ readers: [reader] });
  const otel = new OpenTelemetryMetrics(provider.getMeter("warp-test"));
  const prometheus = new PrometheusMetrics();
  const metrics = fanOut(otel, prometheus);
  const store = new MemoryStore();
  const bus = new InProcessBus();
  const shared = new MemoryCoordinator();
  // Each node's coordinator counts its compare-and-sets by outcome, independently of Warp.
  const casCounts = { a: { ok: 0, conflict: 0 }, b: { ok: 0, conflict: 0 } };
  const counting = (node: "a" | "b"): Coordinator => {
    const count = (call: Promise<number>) =>
      call.then((revision) => {
        casCounts[node].ok++;
        return revision;
      }, (error) => {
        casCounts[node].conflict++;
        throw error;
      });
    return {
      get: (key, options) => shared.get(key, options),
      create: (key, value, options) => count(shared.create(key, value, options)),
      update: (key, value, revision, options) =>
        count(shared.update(key, value, revision, options)),
      delete: (key, options) => shared.delete(key, options),
    };
  };
  // No session: the coordinator sees only what the sequence asks of it.
  const common = { store, metrics, sessionMs: 0 };
  const a = new Warp({
    ...common,
    nodeId: "a",
    coordinator: counting("a"),
    transport: bus.connect(),
    entriesMax: 2,
  });
  const b = new Warp({
    ...common,
    nodeId: "b",
    coordinator: counting("b"),
    transport: bus.connect(),
  });
  for (const node of [a, b]) {
    node.register("k:*", { mode: "strong-local", ttlMs: 30, failSafeMaxMs: 60_000 });
    node.register("e:*", { mode: "eventual-distributed" });
    node.register("s:*", { mode: "strong-distributed" });
  }
  try {
    assert.equal(await a.get("k:1"), undefined); // miss 1 (an absence, cached)
    await a.set("k:1", "v1"); // write 1
    assert.equal(await a.get("k:1"), "v1"); // hit 1 (not timed)
    assert.equal(a.peek("k:1"), "v1"); // hit 2
    await a.set("k:2", "v2"); // write 2
    await a.set("k:3", "v3"); // write 3: three entries, entriesMax 2: k:1 is evicted
    await sleep(50); // k:2 and k:3 are past their 30 ms TTL
    store.failNext(new Error("store down"));
    const stale = await a.read("k:3"); // miss 2, answered stale by fail-safe
    assert.deepEqual([stale.value, stale.stale], ["v3", true]);
    await b.set("e:1", 1); // b broadcasts one inv
    await a.invalidate("e:1"); // a broadcasts one drop
    await b.set("s:1", "x"); // a strong write: claim, store write, release
    assert.equal(await a.get("s:1"), "x"); // a registers as a holder, then reads the store
    await b.set("s:1", "y"); // revokes a: one revoke sent, one ack back
    const locks = new Locks({ coordinator: shared, nodeId: "a", metrics });
    const lock = await locks.acquire("report"); // a lock wait that ends in a grant
    await assert.rejects(locks.acquire("report", { timeoutMs: 30 })); // one that times out
    await lock.release();
    locks.close();
    await sleep(20); // every message delivered

    const { resourceMetrics: collected, errors } = await reader.collect();
    assert.deepEqual(errors, []);
    const text = prometheus.text();
    const samples = parsePrometheus(text);
    /** The figure `name` (OpenTelemetry) of `node`, read both ways, must be `expected`. */
    const expect = (
      name: string,
      node: string,
      labels: Record<string, string>,
      expected: number,
    ) => {
      const definition = WARP_METRICS.find((d) => d.name === name)!;
      assert.equal(otelValue(collected, name, { node, ...labels }), expected, `${name} otel`);
      const labelText = Object.entries({ node, ...labels }).map(([k, v]) => `${k}="${v}"`);
      const id = `${prometheusName(definition)}{${labelText.join(",")}}`;
      assert.equal(samples.get(id), expected, `${id} prometheus`);
    };
    expect("warp.requests", "a", { result: "hit" }, 2);
    expect("warp.requests", "a", { result: "miss" }, 2); // k:1 at first, and s:1
    expect("warp.requests", "a", { result: "stale" }, 1);
    // entriesMax 2: k:3 pushed k:1 out, then s:1 pushed k:2 out.
    expect("warp.l1.evictions", "a", { reason: "capacity" }, 2);
    expect("warp.l1.evictions", "a", { reason: "flush" }, 0);
    expect("warp.l1.entries", "a", {}, a.stats.entries);
    expect("warp.l1.size", "a", {}, a.stats.bytes);
    expect("warp.invalidations.sent", "b", { type: "inv" }, 1);
    expect("warp.invalidations.sent", "a", { type: "drop" }, 1);
    expect("warp.invalidations.received", "a", { type: "inv" }, 1);
    expect("warp.invalidations.received", "b", { type: "drop" }, 1);
    expect("warp.invalidations.sent", "b", { type: "revoke" }, 1);
    expect("warp.invalidations.received", "a", { type: "revoke" }, 1);
    expect("warp.invalidations.applied", "a", {}, 1); // the revoke dropped s:1
    expect("warp.store.writes", "b", {}, 3);
    expect("warp.gaps", "a", {}, 0);
    expect("warp.flushes", "a", {}, 0);
    expect("warp.fills.rejected", "a", { reason: "older_version" }, 0);
    // b's two strong writes (claim, pin, release...) and a's registration as a holder.
    for (const node of ["a", "b"] as const) {
      expect("warp.coordinator.compare_and_sets", node, { result: "ok" }, casCounts[node].ok);
      const { conflict } = casCounts[node];
      expect("warp.coordinator.compare_and_sets", node, { result: "conflict" }, conflict);
      expect("warp.coordinator.compare_and_sets", node, { result: "error" }, 0);
    }
    assert.ok(casCounts.b.ok >= 4 && casCounts.a.ok >= 1);
    expect("warp.strong.lease_waits", "b", {}, 0);
    expect("warp.lease.checks", "a", {}, 0);
    expect("warp.listener.errors", "a", {}, 0);

    // Durations of a: the two reads that missed, three writes, one invalidate, one read of s:1.
    const histogram = WARP_METRICS.find((d) => d.kind === "histogram")!;
    const hName = prometheusName(histogram);
    const timed = [
      ["read", "ok", 3],
      ["write", "ok", 3],
      ["invalidate", "ok", 1],
      ["lock", "ok", 1],
      ["lock", "error", 1],
    ] as const;
    for (const [operation, outcome, count] of timed) {
      const point = otelValue(collected, histogram.name, { node: "a", operation, outcome });
      assert.equal((point as Histogram).count, count, `otel ${operation}`);
      const labels = `node="a",operation="${operation}",outcome="${outcome}"`;
      assert.equal(samples.get(`${hName}_count{${labels}}`), count, `prometheus ${operation}`);
      assert.equal(samples.get(`${hName}_bucket{${labels},le="+Inf"}`), count);
      let previous = 0;
      for (const bound of [0.0001, 0.001, 0.01, 0.1, 1, 10]) {
        const bucket = samples.get(`${hName}_bucket{${labels},le="${bound}"}`)!;
        assert.ok(bucket >= previous && bucket <= count, "buckets are cumulative");
        previous = bucket;
      }
    }
    assert.equal(
      otelPoint(collected, histogram.name, { node: "a", operation: "lease" }),
      undefined,
    );
    // Each node heard its own invalidation back from the bus once: b's inv, a's drop.
    const echo = WARP_METRICS.find((d) => d.name === "warp.invalidation.echo_delay")!;
    for (const [node, type] of [["b", "inv"], ["a", "drop"]] as const) {
      const point = otelValue(collected, echo.name, { node, type }) as Histogram;
      assert.equal(point.count, 1, `otel echo ${node} ${type}`);
      assert.ok(point.sum! >= 0 && point.sum! < 1);
      const id = `${prometheusName(echo)}_count{node="${node}",type="${type}"}`;
      assert.equal(samples.get(id), 1, id);
    }
    assert.equal(otelPoint(collected, echo.name, { node: "a", type: "inv" }), undefined);
    for (const definition of WARP_METRICS) {
      assert.ok(text.includes(`# TYPE ${prometheusName(definition)} ${definition.kind}\n`));
    }
    assert.ok(!text.includes("k:1") && !text.includes("e:1"), "a key is never a label");
  } finally {
    await a.close();
    await b.close();
    await provider.shutdown();
  }
  const left = [...parsePrometheus(prometheus.text()).keys()];
  assert.ok(
    left.length > 0 &&
      left.every((id) => /^warp_(operation_duration|invalidation_echo_delay)_seconds/.test(id)),
  );
  assert.ok(!left.some((id) => id.startsWith("warp_requests")), "closed nodes' counters go");
});

Deno.test("PrometheusMetrics escapes HELP texts and label values, and refuses bad buckets", () => {
  assert.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(escapeHelp("one\\two\nthree"), "one\\\\two\\nthree");
  assert.throws(() => new PrometheusMetrics({ buckets: [1, 1] }), RangeError);
  assert.throws(() => new PrometheusMetrics({ buckets: [] }), RangeError);
  const metrics = new PrometheusMetrics({ buckets: [0.5, 1] });
  metrics.recordOperation("n", "read", "ok", 0.5);
  metrics.recordOperation("n", "read", "ok", 0.7);
  metrics.recordOperation("n", "read", "ok", 3);
  const text = metrics.text();
  const labels = 'node="n",operation="read",outcome="ok"';
  for (
    const line of [
      `warp_operation_duration_seconds_bucket{${labels},le="0.5"} 1`,
      `warp_operation_duration_seconds_bucket{${labels},le="1"} 2`,
      `warp_operation_duration_seconds_bucket{${labels},le="+Inf"} 3`,
      `warp_operation_duration_seconds_sum{${labels}} 4.2`,
      `warp_operation_duration_seconds_count{${labels}} 3`,
    ]
  ) {
    assert.ok(text.includes(`${line}\n`), line);
  }
});

Deno.test("Warp refuses a metrics or logger option that lacks a method", async () => {
  assert.throws(
    () => new Warp({ store: new MemoryStore(), metrics: {} as WarpMetrics }),
    (error) => error instanceof TypeError && /Invalid metrics/.test(error.message),
  );
  assert.throws(
    () => new Warp({ store: new MemoryStore(), logger: { info() {} } as never }),
    (error) => error instanceof TypeError && /Invalid logger/.test(error.message),
  );
  const warp = new Warp({ store: new MemoryStore() });
  await warp.close();
});

/** Undoes the text format's escapes of a label value or HELP text. */
function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

Deno.test("escapeLabel() and escapeHelp() round-trip any string and leave no raw line feed or bare quote", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      const label = escapeLabel(text);
      assert.equal(unescape(label), text);
      assert.ok(!label.includes("\n") && !/(^|[^\\])(\\\\)*"/.test(label));
      const help = escapeHelp(text);
      assert.ok(!help.includes("\n"));
      assert.equal(unescape(help), text);
    }),
    { numRuns: 300 },
  );
});

Deno.test("PrometheusMetrics histogram buckets equal a naive count of the durations at or below each bound", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.double({ min: 0.001, max: 100, noNaN: true }), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.array(fc.double({ min: 0, max: 200, noNaN: true }), { maxLength: 50 }),
      (bounds, durations) => {
        const buckets = [...bounds].sort((a, b) => a - b);
        const metrics = new PrometheusMetrics({ buckets });
        for (const seconds of durations) metrics.recordOperation("n", "write", "ok", seconds);
        const samples = parsePrometheus(metrics.text());
        const labels = 'node="n",operation="write",outcome="ok"';
        const name = "warp_operation_duration_seconds";
        if (durations.length === 0) {
          assert.equal(samples.get(`${name}_count{${labels}}`), undefined);
          return;
        }
        for (const bound of buckets) {
          const expected = durations.filter((d) => d <= bound).length;
          assert.equal(samples.get(`${name}_bucket{${labels},le="${bound}"}`), expected);
        }
        assert.equal(samples.get(`${name}_bucket{${labels},le="+Inf"}`), durations.length);
        assert.equal(samples.get(`${name}_count{${labels}}`), durations.length);
        const sum = durations.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(samples.get(`${name}_sum{${labels}}`)! - sum) <= 1e-9 * (1 + sum));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("warp.invalidation.echo_delay is measured over NATS, PostgreSQL LISTEN/NOTIFY and Redis pub/sub alike", async () => {
  const buses = {
    nats: () => NatsTransport.connect({ servers: NATS_URL }),
    postgres: () => PostgresTransport.connect({ url: PG_URL, client: { max: 2 } }),
    redis: () => RedisTransport.connect({ url: REDIS_URL }),
  };
  for (const [bus, connect] of Object.entries(buses)) {
    const prefix = `metrics_echo_${bus}_${crypto.randomUUID().slice(0, 8)}`;
    const transport = await connect();
    const metrics = new PrometheusMetrics();
    const warp = new Warp({
      store: new MemoryStore(),
      transport,
      nodeId: "echo",
      prefix,
      metrics,
      sessionMs: 0,
    });
    warp.register("e:*", { mode: "eventual-distributed" });
    try {
      // A subscription becomes active a moment after it is made: wait to hear a heartbeat.
      for (let waited = 0; waited < 5000; waited += 20) {
        if (warp.stats.messagesReceivedByType.hb > 0) break;
        await sleep(20);
      }
      assert.ok(warp.stats.messagesReceivedByType.hb > 0, `${bus}: no heartbeat came back`);
      await warp.set("e:1", 1);
      await warp.invalidate("e:1");
      const count = (type: string) =>
        parsePrometheus(metrics.text()).get(
          `warp_invalidation_echo_delay_seconds_count{node="echo",type="${type}"}`,
        );
      for (let waited = 0; waited < 5000 && count("drop") === undefined; waited += 20) {
        await sleep(20);
      }
      assert.equal(count("inv"), 1, `${bus}: the inv came back once`);
      assert.equal(count("drop"), 1, `${bus}: the drop came back once`);
    } finally {
      await warp.close();
      await transport.close();
    }
  }
});
