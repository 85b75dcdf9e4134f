/**
 * Warp's metrics in the Prometheus text exposition format (version 0.0.4): a
 * {@linkcode PrometheusMetrics} given to every node of a process, and its `text()` served
 * by whatever HTTP handler the application has. No dependency and no server of its own.
 *
 * Names come from the OpenTelemetry ones of {@linkcode WARP_METRICS} as OpenTelemetry's
 * Prometheus exporter maps them: dots become underscores, the unit is added (`_seconds`,
 * `_bytes`; a count in braces adds nothing) and counters end in `_total`. Every series has
 * a `node` label (the node id); a key is never a label.
 *
 * Design: counters and gauges are read from each node's `stats` when `text()` runs, so a
 * scrape costs one pass over the nodes and a node pays nothing per read; durations are
 * kept as cumulative bucket counts per series (node, operation, outcome: a bounded set).
 * Rejected: a dependency on `prom-client` — its registry is global per process, and Warp's
 * figures are already counted; only the text format was missing.
 *
 * @example Serve the metrics next to your application
 * ```ts
 * import { MemoryStore, Warp } from "../../mod.ts";
 * import { PROMETHEUS_CONTENT_TYPE, PrometheusMetrics } from "./prometheus.ts";
 * const metrics = new PrometheusMetrics();
 * const warp = new Warp({ store: new MemoryStore(), nodeId: "a", metrics });
 * warp.register("user:*", { mode: "strong-local" });
 * await warp.set("user:1", "ada");
 * await warp.get("user:1");
 * // Deno.serve((request) => new Response(metrics.text(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } }));
 * console.log(metrics.text().includes('warp_requests_total{node="a",result="hit"} 1')); // true
 * await warp.close();
 * ```
 *
 * @module
 */

import { DURATION_BUCKETS_S, WARP_METRICS } from "../metrics.ts";
import type { MetricDefinition, MetricsSource, OperationName, WarpMetrics } from "../metrics.ts";

export type { MetricDefinition, MetricsSource, OperationName, WarpMetrics } from "../metrics.ts";
export type {
  CompareAndSetCounts,
  MessageType,
  MetricsCounterName,
  MetricsStats,
} from "../metrics.ts";

/** The `Content-Type` of {@linkcode PrometheusMetrics.text}'s answer. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Options of a {@linkcode PrometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /**
   * Upper bounds of the duration histogram's buckets, seconds, increasing; `+Inf` is
   * added. @default {DURATION_BUCKETS_S} (100 µs to 10 s)
   */
  readonly buckets?: readonly number[];
}

/** One histogram series: cumulative counts per bucket, and the sum and count. */
interface Series {
  readonly labels: string;
  readonly counts: number[];
  sum: number;
  count: number;
}

/** The most duration series kept: nodes × operations × outcomes stays far below it. */
const SERIES_MAX = 10_000;

/**
 * The Prometheus name of a figure: `warp.operation.duration` (s, histogram) →
 * `warp_operation_duration_seconds`; `warp.requests` (counter) → `warp_requests_total`.
 *
 * @example
 * ```ts
 * import { prometheusName } from "./prometheus.ts";
 * console.log(prometheusName({ name: "warp.l1.size", kind: "gauge", unit: "By", description: "" })); // warp_l1_size_bytes
 * ```
 */
export function prometheusName(definition: MetricDefinition): string {
  const unit = definition.unit === "s" ? "_seconds" : definition.unit === "By" ? "_bytes" : "";
  const total = definition.kind === "counter" ? "_total" : "";
  return definition.name.replaceAll(".", "_") + unit + total;
}

/**
 * Collects the metrics of the nodes given it and renders them as Prometheus text.
 *
 * @example
 * ```ts
 * import { MemoryStore, Warp } from "../../mod.ts";
 * import { PrometheusMetrics } from "./prometheus.ts";
 * const metrics = new PrometheusMetrics();
 * const warp = new Warp({ store: new MemoryStore(), nodeId: "n1", metrics });
 * console.log(metrics.text().includes('warp_l1_entries{node="n1"} 0')); // true
 * await warp.close();
 * ```
 */
export class PrometheusMetrics implements WarpMetrics {
  readonly #nodes = new Set<MetricsSource>();
  /** Histogram series by figure name, then by their labels. */
  readonly #series = new Map<string, Map<string, Series>>();
  readonly #buckets: readonly number[];

  /** A collector with no node yet; the bucket bounds are checked (RangeError). */
  constructor(options: PrometheusMetricsOptions = {}) {
    const buckets = options.buckets ?? DURATION_BUCKETS_S;
    if (
      !Array.isArray(buckets) || buckets.length === 0 ||
      buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))
    ) {
      throw new RangeError(`Invalid buckets, expected increasing finite numbers: ${buckets}`);
    }
    this.#buckets = [...buckets];
  }

  /** Starts reading `node` at each `text()`. */
  addNode(node: MetricsSource): void {
    this.#nodes.add(node);
  }

  /**
   * Stops reading `node`. Its duration series stay: a histogram is cumulative over the
   * process's life, as Prometheus expects.
   */
  removeNode(node: MetricsSource): void {
    this.#nodes.delete(node);
  }

  /** Adds one duration to its series' buckets. */
  recordOperation(
    nodeId: string,
    operation: OperationName,
    outcome: "ok" | "error",
    seconds: number,
  ): void {
    const labels = [["node", nodeId], ["operation", operation], ["outcome", outcome]] as const;
    this.#observe("warp.operation.duration", labels, seconds);
  }

  /** Adds one echo delay to its series' buckets. */
  recordInvalidationEcho(nodeId: string, type: "inv" | "drop", seconds: number): void {
    this.#observe("warp.invalidation.echo_delay", [["node", nodeId], ["type", type]], seconds);
  }

  #observe(
    figure: string,
    labelPairs: readonly (readonly [string, string])[],
    seconds: number,
  ): void {
    let table = this.#series.get(figure);
    if (table === undefined) this.#series.set(figure, table = new Map());
    const labels = labelText(labelPairs);
    let series = table.get(labels);
    if (series === undefined) {
      if (table.size >= SERIES_MAX) return;
      series = { labels, counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      table.set(labels, series);
    }
    const buckets = this.#buckets;
    for (let i = buckets.length - 1; i >= 0 && seconds <= buckets[i]!; i--) series.counts[i]!++;
    series.sum += seconds;
    series.count++;
  }

  /** Every figure of every node now, in the text exposition format. */
  text(): string {
    const lines: string[] = [];
    const stats = [...this.#nodes].map((node) => [node.nodeId, node.stats] as const);
    for (const definition of WARP_METRICS) {
      const name = prometheusName(definition);
      lines.push(`# HELP ${name} ${escapeHelp(definition.description)}`);
      lines.push(`# TYPE ${name} ${definition.kind}`);
      if (definition.kind === "histogram") {
        this.#histogramLines(definition.name, name, lines);
        continue;
      }
      for (const [nodeId, nodeStats] of stats) {
        for (const [value, count] of definition.read!(nodeStats)) {
          const labels: [string, string][] = [["node", nodeId]];
          if (definition.attribute !== undefined) labels.push([definition.attribute, value!]);
          lines.push(`${name}${labelText(labels)} ${formatNumber(count)}`);
        }
      }
    }
    return lines.join("\n") + "\n";
  }

  #histogramLines(figure: string, name: string, lines: string[]): void {
    for (const series of this.#series.get(figure)?.values() ?? []) {
      const open = series.labels.slice(0, -1); // without its closing brace, to add `le`
      for (const [i, bound] of this.#buckets.entries()) {
        lines.push(`${name}_bucket${open},le="${formatNumber(bound)}"} ${series.counts[i]}`);
      }
      lines.push(`${name}_bucket${open},le="+Inf"} ${series.count}`);
      lines.push(`${name}_sum${series.labels} ${formatNumber(series.sum)}`);
      lines.push(`${name}_count${series.labels} ${series.count}`);
    }
  }
}

/** `{a="1",b="2"}`, values escaped as the format wants. */
function labelText(labels: readonly (readonly [string, string])[]): string {
  return `{${labels.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(",")}}`;
}

/**
 * A label value as the text format wants it: backslash, double quote and line feed escaped.
 *
 * @example
 * ```ts
 * import { escapeLabel } from "./prometheus.ts";
 * console.log(escapeLabel('a"b\\c\nd')); // a\"b\\c\nd
 * ```
 */
export function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/**
 * A HELP text as the text format wants it: backslash and line feed escaped.
 *
 * @example
 * ```ts
 * import { escapeHelp } from "./prometheus.ts";
 * console.log(escapeHelp("one\ntwo")); // one\ntwo
 * ```
 */
export function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
