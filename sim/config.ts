/**
 * What the nodes of a simulated cluster run: each node's options and registrations (a
 * {@linkcode WarpConfig}, the object an application passes to `new Warp`), the drift bound
 * they assume, and the concrete keys the workload uses.
 *
 * A shape is either **built in** — the simulator's own keys (`lc:*`, `ev:*`, `st:*`,
 * `lev:*`, `lst:*`) with today's default timings, or drawn per node so that nodes differ
 * wherever they may (a mixed cluster) — or **the user's**: one configuration on every
 * node, with keys generated from each registered pattern. A user's configuration is
 * checked first ({@linkcode configProblems}): invalid or unsafe settings are reported
 * before any seed runs.
 *
 * What may differ between nodes (and what a mixed cluster therefore draws per node):
 * `leaseCheckMs`, `heartbeatIntervalMs`, `gapTimeoutMs`, and per key `ttlMs`,
 * `maxStalenessMs` (each node bounds the reads it serves), `writeTimeoutMs` and
 * `readTimeoutMs`. What may not: a key's mode, and a strong-distributed key's `leaseMs`
 * (a writer waits out a silent holder's lease with its own figure), and the drift bound
 * (every node assumes the clocks' real bound).
 *
 * @module
 */

import { NodeCore } from "../src/core/node.ts";
import type { NodeConfig } from "../src/core/node.ts";
import { Registry } from "../src/core/registry.ts";
import type { ConsistencyMode, KeyOptions, KeyPolicy } from "../src/core/registry.ts";
import { CONFIG_OPTIONS } from "../src/config.ts";
import { registrationProblems } from "../src/core/_options.ts";
import type { WarpConfig } from "../src/config.ts";
import { DEFAULT_SESSION_MS } from "../src/warp.ts";
import type { KeyInfo } from "./history.ts";
import type { Prng } from "./prng.ts";

/** Timing options of the built-in keys (every node, unless the cluster is mixed). */
export interface SimPolicy {
  /** Time-to-live of entries, ms. */
  readonly ttlMs: number;
  /** eventual-distributed staleness bound, ms. */
  readonly maxStalenessMs: number;
  /** strong-distributed lease, ms. */
  readonly leaseMs: number;
  /** Write deadline, ms. */
  readonly writeTimeoutMs: number;
  /** Read deadline, ms. */
  readonly readTimeoutMs: number;
}

/** A concrete key of the workload. */
export interface SimKey {
  /** The key. */
  readonly key: string;
  /** A strong-local key belongs to one node, the only one that uses it. */
  readonly owner?: number;
  /** A strong-local key's slot: a node that draws another node's key uses its own of that slot. */
  readonly slot?: number;
  /** Most writes of the key attach a lease (checked by G1–G3 besides its mode's guarantees). */
  readonly leased?: boolean;
}

/** What a simulated cluster runs. */
export interface ClusterShape {
  /** The drift bound every node assumes, and within which every clock drifts, ppm. */
  readonly maxDriftPpm: number;
  /** Each node's configuration (its `maxDriftPpm` is the one above). */
  readonly nodes: readonly WarpConfig[];
  /** The keys of the workload, in the order it draws them. */
  readonly keys: readonly SimKey[];
  /** Whether the nodes' configurations differ. */
  readonly mixed: boolean;
}

/** The built-in timings: the simulator's short bounds, so every timer runs out within a run. */
export const DEFAULT_POLICY: SimPolicy = {
  ttlMs: 5000,
  maxStalenessMs: 300,
  leaseMs: 300,
  writeTimeoutMs: 1500,
  readTimeoutMs: 1500,
};

/** The built-in nodes' options besides the drift bound. */
const DEFAULT_NODE = {
  heartbeatIntervalMs: 50,
  gapTimeoutMs: 100,
  leaseCheckMs: 100,
  sessionMs: 200,
  entriesMax: 1000,
} as const;

/** The options of a {@linkcode WarpConfig} that {@linkcode NodeCore} takes. */
const CORE_OPTIONS = [
  "maxDriftPpm",
  "heartbeatIntervalMs",
  "gapTimeoutMs",
  "leaseCheckMs",
  "leaseTimeoutMs",
  "sessionMs",
  "coordinatorStalenessMs",
  "entriesMax",
  "bytesMax",
  "waitersMax",
  "opsMax",
  "peersMax",
  "echoesMax",
  "validator",
] as const satisfies readonly (keyof WarpConfig & keyof NodeConfig)[];

/**
 * The {@linkcode NodeCore} options of a configuration (what `new Warp` passes on).
 *
 * @example
 * ```ts
 * import { coreOptions } from "./config.ts";
 * console.log(coreOptions({ leaseCheckMs: 200, ioTimeoutMs: 3000, keys: {} })); // { leaseCheckMs: 200 }
 * ```
 */
export function coreOptions(config: WarpConfig): Partial<NodeConfig> {
  const options: Record<string, unknown> = {};
  for (const name of CORE_OPTIONS) {
    if (config[name] !== undefined) options[name] = config[name];
  }
  return options as Partial<NodeConfig>;
}

/** Options of {@linkcode builtInShape}. */
export interface BuiltInShapeOptions {
  readonly nodes: number;
  readonly modes: readonly ConsistencyMode[];
  readonly keysPerMode: number;
  readonly leasing: boolean;
  readonly maxDriftPpm: number;
  /** Draw each node's options and key timings (a mixed cluster), or use the defaults. */
  readonly mixed: boolean;
  /** Timings that override the defaults or the draws, on every node. */
  readonly policy?: Partial<SimPolicy>;
  readonly heartbeatIntervalMs?: number;
  readonly gapTimeoutMs?: number;
  /** Every node's echo budget (`echoesMax`), instead of the library's default. */
  readonly echoesMax?: number;
  /** Every node's `sessionMs` (0: no sessions), instead of the default or the draws. */
  readonly sessionMs?: number;
}

/**
 * The simulator's own keys and nodes. With `mixed`, each node draws its timers,
 * `leaseCheckMs` and key timings from `prng`; strong keys share one `leaseMs` (drawn too).
 *
 * @example
 * ```ts
 * import { builtInShape } from "./config.ts";
 * import { Prng } from "./prng.ts";
 * const shape = builtInShape(new Prng(1), {
 *   nodes: 3, modes: ["eventual-distributed"], keysPerMode: 2, leasing: false,
 *   maxDriftPpm: 500, mixed: true,
 * });
 * console.log(shape.keys.map((k) => k.key)); // ["ev:0", "ev:1"]
 * ```
 */
export function builtInShape(prng: Prng, options: BuiltInShapeOptions): ClusterShape {
  const { maxDriftPpm, policy = {} } = options;
  const drift = maxDriftPpm / 1e6;
  const strongLeaseMs = policy.leaseMs ??
    (options.mixed ? Math.round(prng.range(100, 500)) : DEFAULT_POLICY.leaseMs);
  const nodes: WarpConfig[] = [];
  for (let i = 0; i < options.nodes; i++) {
    const timing = (mode: ConsistencyMode): KeyOptions => {
      const p = options.mixed ? drawPolicy(prng, mode, strongLeaseMs, drift) : DEFAULT_POLICY;
      const t = { ...p, leaseMs: strongLeaseMs, ...policy };
      const common = {
        ttlMs: t.ttlMs,
        writeTimeoutMs: t.writeTimeoutMs,
        readTimeoutMs: t.readTimeoutMs,
      };
      if (mode === "eventual-distributed") {
        return { mode, maxStalenessMs: t.maxStalenessMs, ...common };
      }
      if (mode === "strong-distributed") return { mode, leaseMs: t.leaseMs, ...common };
      return { mode, ...common };
    };
    const node = options.mixed
      ? {
        heartbeatIntervalMs: Math.round(prng.range(20, 150)),
        gapTimeoutMs: Math.round(prng.range(50, 300)),
        leaseCheckMs: Math.round(prng.range(50, 400)),
        sessionMs: Math.round(prng.range(100, 500)),
      }
      : DEFAULT_NODE;
    nodes.push({
      maxDriftPpm,
      entriesMax: DEFAULT_NODE.entriesMax,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? node.heartbeatIntervalMs,
      gapTimeoutMs: options.gapTimeoutMs ?? node.gapTimeoutMs,
      ...(options.echoesMax !== undefined && { echoesMax: options.echoesMax }),
      leaseCheckMs: node.leaseCheckMs,
      sessionMs: options.sessionMs ?? node.sessionMs,
      leaseTimeoutMs: policy.writeTimeoutMs ?? DEFAULT_POLICY.writeTimeoutMs,
      keys: {
        "lc:*": timing("strong-local"),
        "ev:*": timing("eventual-distributed"),
        "st:*": timing("strong-distributed"),
        "lev:*": timing("eventual-distributed"),
        "lst:*": timing("strong-distributed"),
      },
    });
  }
  const keys: SimKey[] = [];
  if (options.leasing) {
    for (let k = 0; k < 2; k++) {
      keys.push({ key: `lev:${k}`, leased: true }, { key: `lst:${k}`, leased: true });
    }
  }
  for (const mode of options.modes) {
    for (let k = 0; k < options.keysPerMode; k++) {
      if (mode === "strong-local") {
        for (let i = 0; i < options.nodes; i++) {
          keys.push({ key: `lc:n${i}:${k}`, owner: i, slot: k });
        }
      } else {
        keys.push({ key: `${mode === "eventual-distributed" ? "ev" : "st"}:${k}` });
      }
    }
  }
  return { maxDriftPpm, nodes, keys, mixed: options.mixed };
}

/** One node's timings of one built-in pattern, drawn. */
function drawPolicy(
  prng: Prng,
  mode: ConsistencyMode,
  leaseMs: number,
  drift: number,
): SimPolicy {
  const maxStalenessMs = Math.round(prng.range(100, 500));
  const floor = mode === "eventual-distributed"
    ? maxStalenessMs
    : mode === "strong-distributed"
    ? leaseMs
    : 100;
  // A strong write must be able to wait out a silent holder: above leaseMs × (1 + drift).
  const writeFloor = mode === "strong-distributed" ? 1.5 * leaseMs * (1 + drift) + 10 : 300;
  return {
    ttlMs: Math.round(floor * Math.pow(5000 / floor, prng.float())),
    maxStalenessMs,
    leaseMs,
    writeTimeoutMs: Math.round(prng.range(writeFloor, Math.max(writeFloor, 2000) + 1)),
    readTimeoutMs: Math.round(prng.range(300, 2000)),
  };
}

/** How many keys the workload draws from each wildcard pattern of a user's configuration. */
const KEYS_PER_PATTERN = 2;
/** Strong-local keys per node drawn from each wildcard pattern. */
const LOCAL_KEYS_PER_PATTERN = 2;
/** Tokens tried in turn for a pattern's `*` until the key resolves to that pattern. */
const TOKENS = ["w", "q7", "zz", "k-9", "x_x", "0"];

/**
 * The user's configuration on every node, with keys generated from its registrations: an
 * exact key as it is, and for a glob pattern a few keys that it, and no more specific
 * registration, matches (strong-local keys: a few per node, each used by its node only).
 * With `leasing`, one more key of each distributed pattern attaches leases to its values.
 * Call {@linkcode configProblems} first.
 *
 * @example
 * ```ts
 * import { userShape } from "./config.ts";
 * const shape = userShape(
 *   { keys: { "user:*": { mode: "strong-distributed" }, "user:admin": { mode: "strong-local" } } },
 *   { nodes: 2, leasing: false },
 * );
 * console.log(shape.keys.map((k) => k.key)); // ["user:w0", "user:w1", "user:admin"]
 * ```
 */
export function userShape(
  config: WarpConfig,
  options: {
    readonly nodes: number;
    readonly leasing: boolean;
    readonly modes?: readonly ConsistencyMode[];
    readonly maxDriftPpm?: number;
  },
): ClusterShape {
  const maxDriftPpm = options.maxDriftPpm ?? config.maxDriftPpm ?? 500;
  const registry = new Registry();
  const entries = Object.entries(config.keys ?? {});
  for (const [pattern, keyOptions] of entries) registry.register(pattern, keyOptions);
  const keys: SimKey[] = [];
  const owned = (pattern: string, name: string) => registry.find(name)?.pattern === pattern;
  for (const [pattern, keyOptions] of entries) {
    if (options.modes !== undefined && !options.modes.includes(keyOptions.mode)) continue;
    const local = keyOptions.mode === "strong-local";
    if (!pattern.includes("*")) {
      keys.push(local ? { key: pattern, owner: 0, slot: keys.length } : { key: pattern });
      continue;
    }
    const make = (suffix: string) => {
      for (const token of TOKENS) {
        const name = pattern.replaceAll("*", `${token}${suffix}`);
        if (owned(pattern, name)) return name;
      }
      return undefined; // shadowed by more specific registrations: they bring their own keys
    };
    if (local) {
      for (let k = 0; k < LOCAL_KEYS_PER_PATTERN; k++) {
        const slot = keys.length;
        for (let i = 0; i < options.nodes; i++) {
          const name = make(`n${i}s${k}`);
          if (name !== undefined) keys.push({ key: name, owner: i, slot });
        }
      }
      continue;
    }
    const count = KEYS_PER_PATTERN + (options.leasing ? 1 : 0);
    for (let k = 0; k < count; k++) {
      const name = make(String(k));
      if (name !== undefined) {
        keys.push({ key: name, ...(k >= KEYS_PER_PATTERN && { leased: true }) });
      }
    }
  }
  // What `new Warp` does with a coordinator: sessions on unless the configuration says.
  const node: WarpConfig = {
    ...config,
    maxDriftPpm,
    sessionMs: config.sessionMs ?? DEFAULT_SESSION_MS,
  };
  return {
    maxDriftPpm,
    nodes: Array.from({ length: options.nodes }, () => node),
    keys,
    mixed: false,
  };
}

/**
 * A key's policy on each node: `undefined` where the node does not use it (strong-local).
 *
 * @example
 * ```ts
 * import { keyPolicies } from "./config.ts";
 * import { Registry } from "../src/core/registry.ts";
 * const registries = [new Registry(), new Registry()];
 * for (const r of registries) r.register("lc:*", { mode: "strong-local" });
 * console.log(keyPolicies(registries, { key: "lc:n1:0", owner: 1 })[0]); // undefined
 * ```
 */
export function keyPolicies(
  registries: readonly Registry[],
  key: SimKey,
): (KeyPolicy | undefined)[] {
  return registries.map((r, i) => (key.owner ?? i) === i ? r.find(key.key) : undefined);
}

/**
 * What the history says of a key: its mode and bounds, with the per-node figures where
 * nodes differ (E3 judges a read by its own node's staleness bound, SL2 by its TTL).
 *
 * @example
 * ```ts
 * import { keyInfo } from "./config.ts";
 * import { resolvePolicy } from "../src/core/registry.ts";
 * const info = keyInfo({ key: "ev:0" }, [
 *   resolvePolicy("ev:*", { mode: "eventual-distributed", maxStalenessMs: 100 }),
 *   resolvePolicy("ev:*", { mode: "eventual-distributed", maxStalenessMs: 300 }),
 * ], ["n0", "n1"]);
 * console.log(info.maxStalenessMs, info.byProcess?.n0?.maxStalenessMs); // 300 100
 * ```
 */
export function keyInfo(
  key: SimKey,
  policies: readonly (KeyPolicy | undefined)[],
  nodeIds: readonly string[],
): KeyInfo {
  const present = policies.flatMap((p, i) => (p === undefined ? [] : [{ p, id: nodeIds[i]! }]));
  const first = present[0]!.p;
  const eventual = first.mode === "eventual-distributed";
  const info: { -readonly [K in keyof KeyInfo]: KeyInfo[K] } = {
    mode: first.mode,
    ttlMs: Math.max(...present.map((x) => x.p.ttlMs)),
  };
  if (eventual) info.maxStalenessMs = Math.max(...present.map((x) => x.p.maxStalenessMs));
  if (key.leased) info.leased = true;
  const differ = present.some((x) =>
    x.p.ttlMs !== first.ttlMs || (eventual && x.p.maxStalenessMs !== first.maxStalenessMs)
  );
  if (differ) {
    info.byProcess = Object.fromEntries(present.map((x) => [x.id, {
      ttlMs: x.p.ttlMs,
      ...(eventual && { maxStalenessMs: x.p.maxStalenessMs }),
    }]));
  }
  return info;
}

/**
 * How long the phases of a run must be for a configuration's timers to run out within
 * them: the defaults, or a few times the longest lease, staleness bound and check.
 *
 * @example
 * ```ts
 * import { phaseLengthsMs, userShape } from "./config.ts";
 * const shape = userShape({ keys: { "s:*": { mode: "strong-distributed", leaseMs: 1500 } } }, {
 *   nodes: 3, leasing: false,
 * });
 * console.log(phaseLengthsMs(shape)); // { safetyMs: 12000, livenessMs: 6000 }
 * ```
 */
export function phaseLengthsMs(shape: ClusterShape): { safetyMs: number; livenessMs: number } {
  const longest = longestTimerMs(shape, false);
  return {
    safetyMs: Math.max(2000, Math.ceil(4 * longest)),
    livenessMs: Math.max(1000, Math.ceil(2 * longest)),
  };
}

/**
 * The longest protocol timer of the shape on any node, ms of its clock: staleness
 * bounds, leases (twice: a wait, then a registration's term), lease checks, gap timeouts
 * after a heartbeat, and with `deadlines` the write and read deadlines.
 *
 * @example
 * ```ts
 * import { longestTimerMs, userShape } from "./config.ts";
 * const shape = userShape({ keys: { "e:*": { mode: "eventual-distributed" } } }, {
 *   nodes: 1, leasing: false,
 * });
 * console.log(longestTimerMs(shape, false), longestTimerMs(shape, true)); // 1000 5000
 * ```
 */
export function longestTimerMs(shape: ClusterShape, deadlines: boolean): number {
  let longest = 0;
  for (const node of shape.nodes) {
    longest = Math.max(
      longest,
      node.leaseCheckMs ?? 1000,
      (node.gapTimeoutMs ?? 500) + (node.heartbeatIntervalMs ?? 250),
    );
    for (const options of Object.values(node.keys ?? {})) {
      if (options.mode === "eventual-distributed") {
        longest = Math.max(longest, options.maxStalenessMs ?? 1000);
      }
      if (options.mode === "strong-distributed") {
        longest = Math.max(longest, 2 * (options.leaseMs ?? 2000));
      }
      if (deadlines) {
        longest = Math.max(longest, options.writeTimeoutMs ?? 5000, options.readTimeoutMs ?? 5000);
      }
    }
  }
  return longest;
}

/**
 * What is wrong with a user's configuration, one sentence per problem naming the option
 * and its value; empty when the simulator can run it. Checked: unknown options; node
 * options and registrations as `new Warp` and `register` validate them (the drift bound's
 * range among them); options that do not apply to a key's mode; a strong-distributed
 * `writeTimeoutMs` not above `leaseMs × (1 + drift) + 1 ms` (a silent holder would fail
 * every write); a `maxStalenessMs` or `leaseMs` above the key's `ttlMs` (a bound that
 * bounds nothing). `maxDriftPpm` overrides the configuration's drift bound.
 *
 * @example
 * ```ts
 * import { configProblems } from "./config.ts";
 * const problems = configProblems({
 *   maxDriftPpm: 500,
 *   keys: { "cart:*": { mode: "strong-distributed", leaseMs: 2000, writeTimeoutMs: 1500 } },
 * });
 * console.log(problems.length); // 1
 * ```
 */
export function configProblems(config: unknown, maxDriftPpm?: number): string[] {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    return [`Invalid configuration, expected an object of Warp options: ${String(config)}`];
  }
  const c = config as Record<string, unknown>;
  const problems: string[] = [];
  const known: readonly string[] = CONFIG_OPTIONS;
  for (const name of Object.keys(c)) {
    if (!known.includes(name)) {
      problems.push(`Unknown option, expected one of ${CONFIG_OPTIONS.join(", ")}: ${name}`);
    }
  }
  const checks: Record<string, unknown> = { ...c };
  if (maxDriftPpm !== undefined) checks.maxDriftPpm = maxDriftPpm;
  for (const name of CORE_OPTIONS) {
    if (checks[name] === undefined) continue;
    try {
      new NodeCore({ nodeId: "config", incarnation: 1, [name]: checks[name] });
    } catch (error) {
      problems.push(`Option ${(error as Error).message}`);
    }
  }
  const io = c.ioTimeoutMs;
  if (io !== undefined && !(typeof io === "number" && io > 0)) {
    problems.push(`Option ioTimeoutMs must be positive: ${String(io)}`);
  }
  const drift = typeof checks.maxDriftPpm === "number" ? checks.maxDriftPpm / 1e6 : 500e-6;
  const sessionMs = typeof c.sessionMs === "number" ? c.sessionMs : DEFAULT_SESSION_MS;
  const heartbeatMs = typeof c.heartbeatIntervalMs === "number" ? c.heartbeatIntervalMs : 250;
  // A silent holder is waited out after two heartbeats and its session (see _strong.ts).
  const sessions = sessionMs > 0 ? { sessionMs, ackWaitMs: 2 * heartbeatMs } : undefined;
  const keys = c.keys ?? {};
  if (typeof keys !== "object" || keys === null || Array.isArray(keys)) {
    problems.push(`Option keys must be an object of registrations: ${String(keys)}`);
    return problems;
  }
  if (Object.keys(keys).length === 0) {
    problems.push("Option keys registers no key, so the simulator has nothing to run: {}");
  }
  const registry = new Registry();
  for (const [pattern, options] of Object.entries(keys)) {
    try {
      const policy = registry.register(pattern, options as KeyOptions);
      problems.push(...registrationProblems(policy, options as KeyOptions, drift, sessions));
    } catch (error) {
      problems.push(`Registration ${JSON.stringify(pattern)}: ${(error as Error).message}`);
    }
  }
  return problems;
}
