/**
 * Human-readable output of the simulator: a counterexample as a timeline, a space-time
 * diagram as one self-contained HTML file, and the summary table of a sweep.
 *
 * @module
 */

import type { SimStats, TraceEvent } from "./cluster.ts";
import type { HistoryOp, Violation } from "./history.ts";

/** The events of a trace that matter for a violation: its key's traffic, ops and faults. */
export function relevantEvents(
  trace: readonly TraceEvent[],
  ops: readonly HistoryOp[],
  violation: Violation,
): TraceEvent[] {
  const opIds = new Set(ops.filter((o) => o.key === violation.key).map((o) => o.id));
  const offending = ops.filter((o) => violation.ops.includes(o.id));
  const last = Math.max(...offending.map((o) => o.completeMs ?? o.invokeMs), 0);
  const first = Math.min(...offending.map((o) => o.invokeMs), last);
  const from = first - 200;
  return trace.filter((e) => {
    if (e.t < from || e.t > last + 1) return false;
    if (e.type === "fault") return true;
    if (e.type === "op") return opIds.has(e.op);
    return e.msg.includes(` ${violation.key}`);
  });
}

/**
 * The counterexample as a timeline: one line per event, true time first.
 *
 * @example
 * ```ts
 * import { timeline } from "./report.ts";
 * const text = timeline([{ t: 1, type: "fault", text: "crash n1" }], new Set());
 * console.log(text.includes("crash n1")); // true
 * ```
 */
export function timeline(events: readonly TraceEvent[], offending: ReadonlySet<number>): string {
  return events.map((e) => {
    const t = e.t.toFixed(3).padStart(10);
    switch (e.type) {
      case "fault":
        return `${t}  ** ${e.text}`;
      case "op":
        return `${t}  n${e.node}  ${offending.has(e.op) ? ">>" : "  "} op ${e.op}: ${e.text}`;
      case "send":
        return e.deliverAt === null
          ? `${t}  n${e.from} -> n${e.to}  ${e.msg}  LOST (${e.why})`
          : `${t}  n${e.from} -> n${e.to}  ${e.msg}  (arrives ${e.deliverAt.toFixed(3)})`;
    }
  }).join("\n");
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!,
  );
}

/**
 * A self-contained HTML space-time diagram: a lane per node, time downwards, messages as
 * arrows (lost ones dashed, ending in a cross), operations as bars, the offending ones red.
 */
export function spaceTimeHtml(
  title: string,
  nodes: number,
  events: readonly TraceEvent[],
  ops: readonly HistoryOp[],
  violation: Violation,
): string {
  const t0 = Math.min(
    ...events.map((e) => e.t),
    ...ops.filter((o) => violation.ops.includes(o.id)).map((o) => o.invokeMs),
  );
  const t1 = Math.max(
    ...events.map((e) => (e.type === "send" && e.deliverAt !== null ? e.deliverAt : e.t)),
    t0 + 1,
  );
  const laneW = 170, top = 60, height = Math.min(4000, Math.max(600, events.length * 14));
  const x = (n: number) => 80 + n * laneW;
  const y = (t: number) => top + ((t - t0) / (t1 - t0)) * height;
  const parts: string[] = [];
  for (let n = 0; n < nodes; n++) {
    parts.push(
      `<line x1="${x(n)}" y1="${top - 10}" x2="${x(n)}" y2="${top + height}" stroke="#bbb"/>`,
    );
    parts.push(
      `<text x="${x(n)}" y="${top - 20}" text-anchor="middle" font-weight="bold">n${n}</text>`,
    );
  }
  const byId = new Map(ops.map((o) => [o.id, o]));
  for (const e of events) {
    if (e.type === "send") {
      const lost = e.deliverAt === null;
      const end = lost ? e.t + (t1 - t0) * 0.01 : e.deliverAt!;
      const x2 = lost ? x(e.from) + (x(e.to) - x(e.from)) * 0.5 : x(e.to);
      parts.push(
        `<line x1="${x(e.from)}" y1="${y(e.t)}" x2="${x2}" y2="${y(end)}" stroke="${
          lost ? "#c60" : "#36c"
        }" ${lost ? 'stroke-dasharray="4 3"' : 'marker-end="url(#arrow)"'}><title>${
          escapeHtml(`${e.msg} at ${e.t.toFixed(3)}${lost ? ` lost: ${e.why}` : ""}`)
        }</title></line>`,
      );
      if (lost) {
        parts.push(`<text x="${x2}" y="${y(end) + 4}" fill="#c60" text-anchor="middle">✕</text>`);
      }
    } else if (e.type === "fault") {
      parts.push(
        `<line x1="40" y1="${y(e.t)}" x2="${x(nodes - 1) + 60}" y2="${
          y(e.t)
        }" stroke="#e88" stroke-dasharray="2 4"/>`,
      );
      parts.push(
        `<text x="${x(nodes - 1) + 64}" y="${y(e.t) + 4}" fill="#b33" font-size="11">${
          escapeHtml(e.text)
        }</text>`,
      );
    } else if (e.text.startsWith("invoke")) {
      const op = byId.get(e.op);
      const end = op?.completeMs ?? t1;
      const bad = violation.ops.includes(e.op);
      parts.push(
        `<rect x="${x(e.node) - 5}" y="${y(e.t)}" width="10" height="${
          Math.max(2, y(end) - y(e.t))
        }" fill="${bad ? "#d22" : "#6a6"}"><title>${
          escapeHtml(`op ${e.op}: ${e.text}`)
        }</title></rect>`,
      );
      const label = `${op?.kind ?? ""} ${
        op?.kind === "read"
          ? `→ v${op.version ?? "?"}`
          : op?.kind === "write"
          ? `v${op.version ?? "?"}`
          : ""
      }`;
      parts.push(
        `<text x="${x(e.node) + 8}" y="${y(e.t) + 10}" font-size="11" fill="${
          bad ? "#d22" : "#333"
        }">#${e.op} ${escapeHtml(label)}</text>`,
      );
    }
  }
  const w = x(nodes - 1) + 320;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:16px}svg{font-family:ui-monospace,monospace;font-size:12px}</style></head>
<body><h1>${escapeHtml(title)}</h1>
<p><b>${escapeHtml(violation.guarantee)}</b> on <code>${escapeHtml(violation.key)}</code>: ${
    escapeHtml(violation.message)
  }</p>
<p>Time runs down, in simulated ms from ${t0.toFixed(3)} to ${
    t1.toFixed(3)
  }. Blue arrows: delivered messages; dashed orange: lost; bars: operations (red: offending); red dashed lines: faults. Hover for details.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${top + height + 40}">
<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#36c"/></marker></defs>
${parts.join("\n")}
</svg></body></html>
`;
}

/** Hit ratio per `mode/phase`, as text lines. */
export function hitLines(stats: SimStats): string[] {
  return Object.entries(stats.hits).sort().map(([name, h]) => {
    const total = h.l1 + h.store;
    return `${name.padEnd(32)} ${
      (total === 0 ? 0 : (100 * h.l1) / total).toFixed(1).padStart(5)
    }% of ${total} reads from L1`;
  });
}

/**
 * The validators' figures (V1): checks and what they found, heals, the budget, and the
 * share of checked keys consistent within 1 s, 10 s and 60 s.
 */
export function validatorLines(totals: Readonly<Record<string, number>>): string[] {
  const n = (name: string) => totals[name] ?? 0;
  const checked = n("checked");
  const share = (name: string) => checked === 0 ? "-" : `${(100 * n(name) / checked).toFixed(3)}%`;
  return [
    `checked ${checked} (store reads ${n("storeReads")}, skipped by the budget ${
      n("skippedByRateLimit")
    }, nothing cached ${n("notCached")}, store errors ${n("storeErrors")})`,
    `consistent ${n("consistent")}, older within the bound ${n("olderWithinBound")}, ` +
    `inconsistent ${n("inconsistent")}, deleted in store ${n("deletedInStore")}, ` +
    `newer than the store ${n("newerThanStore")}, heals ${n("healed")}`,
    `consistent within 1 s ${share("consistentWithin1s")}, 10 s ${
      share("consistentWithin10s")
    }, 60 s ${share("consistentWithin60s")} of checked keys (${
      n("following")
    } differences left open by the end of a run or a crash)`,
  ];
}

/** Polaris lines: share of writes for which every node was consistent within X ms. */
export function polarisLines(stats: SimStats): string[] {
  return shareLines(stats.polaris, "distributed");
}

/**
 * EP lines: the bounds checked, the Polaris probes of the eventual writes of the fault-free
 * phase, and how long after the faults stopped entries older than a write completed before
 * them lasted (one value per seed that had any, sampled every 10 ms).
 */
export function propagationLines(stats: SimStats, healLatenciesMs: readonly number[]): string[] {
  const { boundMs, healBoundMs, liveness } = stats.propagation;
  const sorted = [...healLatenciesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return [
    `bounds checked (largest of the run): ${boundMs.toFixed(1)} ms after a write, ` +
    `${healBoundMs.toFixed(1)} ms after the faults stopped`,
    ...shareLines(liveness, "fault-free eventual"),
    sorted.length === 0
      ? "no entry older than a write of the faulty phase was left when the faults stopped"
      : `entries older than a write of the faulty phase, in ${sorted.length} seeds: last seen ` +
        `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms after the faults stopped`,
  ];
}

function shareLines(
  counters: {
    readonly offsetsMs: readonly number[];
    readonly consistent: readonly number[];
    readonly writes: number;
  },
  what: string,
): string[] {
  const { offsetsMs, consistent, writes } = counters;
  if (writes === 0) return [`no ${what} writes`];
  return offsetsMs.map((x, i) => {
    const share = consistent[i]! / writes;
    const nines = share >= 1 ? "all" : (-Math.log10(1 - share)).toFixed(2) + " nines";
    return `within ${String(x).padStart(4)} ms: ${
      (100 * share).toFixed(3).padStart(7)
    }% of ${writes} ${what} writes (${nines})`;
  });
}
