/**
 * Warp's metrics through OpenTelemetry: a {@linkcode OpenTelemetryMetrics} made from a
 * `Meter` of `@opentelemetry/api`, given to every node of a process. Whatever SDK and
 * exporter the application set up (OTLP, Prometheus, console) then carries them.
 *
 * Each figure of {@linkcode WARP_METRICS} becomes an instrument of the same name:
 * counters are observable counters and gauges observable gauges, all read from the nodes'
 * `stats` in one batch callback when the SDK collects; durations are a histogram recorded
 * as operations complete, with the bucket bounds of `DURATION_BUCKETS_S` as advice. Every
 * data point has a `node` attribute (the node id); a key is never an attribute.
 *
 * Design: the API package only (`@opentelemetry/api`, the stable part meant for
 * libraries), so the application's SDK and its version decide everything else; without a
 * registered SDK the API's no-op meter makes all of it free. Rejected: synchronous
 * counters incremented as things happen — the read path would pay for every hit.
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api";
 * import { MemoryStore, Warp } from "../../mod.ts";
 * import { OpenTelemetryMetrics } from "./otel.ts";
 * const warpMetrics = new OpenTelemetryMetrics(metrics.getMeter("warp"));
 * const warp = new Warp({ store: new MemoryStore(), metrics: warpMetrics });
 * await warp.close();
 * ```
 *
 * @module
 */

import type {
  Attributes,
  BatchObservableResult,
  Histogram,
  Meter,
  Observable,
} from "@opentelemetry/api";
import { DURATION_BUCKETS_S, WARP_METRICS } from "../metrics.ts";
import type { MetricDefinition, MetricsSource, OperationName, WarpMetrics } from "../metrics.ts";

export type { MetricsSource, OperationName, WarpMetrics } from "../metrics.ts";
export type {
  CompareAndSetCounts,
  MessageType,
  MetricsCounterName,
  MetricsStats,
} from "../metrics.ts";

/**
 * Reports the metrics of the nodes given it through an OpenTelemetry `Meter`.
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api";
 * import { OpenTelemetryMetrics } from "./otel.ts";
 * const warpMetrics = new OpenTelemetryMetrics(metrics.getMeter("my-service"));
 * warpMetrics.dispose();
 * ```
 */
export class OpenTelemetryMetrics implements WarpMetrics {
  readonly #meter: Meter;
  readonly #nodes = new Set<MetricsSource>();
  readonly #observed: [MetricDefinition, Observable][] = [];
  readonly #duration: Histogram;
  readonly #echo: Histogram;
  readonly #callback = (result: BatchObservableResult) => this.#observe(result);

  /** Creates every instrument on `meter`. */
  constructor(meter: Meter) {
    if (
      typeof meter !== "object" || meter === null || typeof meter.createHistogram !== "function"
    ) {
      throw new TypeError(`Invalid meter, expected an OpenTelemetry Meter: ${String(meter)}`);
    }
    this.#meter = meter;
    const histograms = new Map<string, Histogram>();
    for (const definition of WARP_METRICS) {
      const options = { description: definition.description, unit: definition.unit };
      if (definition.kind === "histogram") {
        histograms.set(
          definition.name,
          meter.createHistogram(definition.name, {
            ...options,
            advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
          }),
        );
      } else if (definition.kind === "counter") {
        this.#observed.push([definition, meter.createObservableCounter(definition.name, options)]);
      } else {
        this.#observed.push([definition, meter.createObservableGauge(definition.name, options)]);
      }
    }
    this.#duration = histograms.get("warp.operation.duration")!;
    this.#echo = histograms.get("warp.invalidation.echo_delay")!;
    meter.addBatchObservableCallback(this.#callback, this.#observed.map(([, o]) => o));
  }

  /** Starts reading `node` at each collection. */
  addNode(node: MetricsSource): void {
    this.#nodes.add(node);
  }

  /** Stops reading `node`. */
  removeNode(node: MetricsSource): void {
    this.#nodes.delete(node);
  }

  /** Records one duration on the `warp.operation.duration` histogram. */
  recordOperation(
    nodeId: string,
    operation: OperationName,
    outcome: "ok" | "error",
    seconds: number,
  ): void {
    this.#duration.record(seconds, { node: nodeId, operation, outcome });
  }

  /** Records one echo delay on the `warp.invalidation.echo_delay` histogram. */
  recordInvalidationEcho(nodeId: string, type: "inv" | "drop", seconds: number): void {
    this.#echo.record(seconds, { node: nodeId, type });
  }

  /** Unregisters the collection callback: the instruments report nothing more. */
  dispose(): void {
    this.#meter.removeBatchObservableCallback(this.#callback, this.#observed.map(([, o]) => o));
    this.#nodes.clear();
  }

  #observe(result: BatchObservableResult): void {
    for (const node of this.#nodes) {
      const stats = node.stats;
      for (const [definition, observable] of this.#observed) {
        for (const [value, count] of definition.read!(stats)) {
          const attributes: Attributes = { node: node.nodeId };
          if (definition.attribute !== undefined) attributes[definition.attribute] = value;
          result.observe(observable, count, attributes);
        }
      }
    }
  }
}
