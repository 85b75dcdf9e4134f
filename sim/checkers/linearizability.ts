/**
 * A linearizability checker in the style of Wing–Gong, Lowe and porcupine: a depth-first
 * search over which pending operation takes effect next, memoised on (the set of
 * operations already linearized, the model's state), run separately on each partition
 * the model splits the history into (by key, for a key-value store).
 *
 * Operations whose outcome is `fail` certainly did not happen and are dropped. Operations
 * whose outcome is `unknown` stay open to the end of the history: each may take effect at
 * any point after its call, or never. A search that runs out of its step budget answers
 * `unknown`, never `pass`.
 *
 * @module
 */

import { IntPairMap } from "./_int_pair_map.ts";

/**
 * A sequential specification: what an operation does to a state, and which outputs are
 * possible. The model must be deterministic: the state after an operation depends only
 * on the state before it and its input (its output is then either possible or not).
 */
export interface Model<State, Input, Output> {
  /** The state before any operation. */
  init(): State;
  /**
   * The state after applying `input` to `state`, if it can answer `output`; `undefined`
   * if that output is impossible from this state. `output` is `undefined` for an
   * operation whose outcome is unknown: return the state the input leads to, whatever it
   * answered. Must not modify `state`.
   */
  step(state: State, input: Input, output: Output | undefined): State | undefined;
  /**
   * A string or a number, equal for two states exactly when they are equal: memoisation
   * uses it (a number is cheaper).
   */
  key(state: State): string | number;
  /**
   * Whether an operation with this output never changes the state, from any state where
   * it is possible (a read; a compare-and-set that answered "not swapped"). The search
   * takes such an operation as soon as it is possible instead of branching on it, which
   * keeps histories with many concurrent reads fast. Default: no operation is.
   */
  readOnly?(input: Input, output: Output | undefined): boolean;
  /**
   * For a read-only operation possible in one state only (a read of a register): that
   * state's {@linkcode Model.key}. The search then passes over it, without a model step,
   * in every other state, where most reads are tried and fail. Default: none is.
   */
  readsState?(input: Input, output: Output | undefined): string | number | undefined;
  /**
   * For an operation with {@linkcode Model.readsState}: whether the operations not yet
   * linearized (`done(id)` is false for them) could lead from `state` to the state it
   * needs. `false` lets the search abandon `state` at once while that operation is
   * pending, since it must take effect and never could (a list that only grows cannot lose
   * an element it wrongly got, unless a write not yet done replaces it). Must never answer
   * `false` for a reachable state. Default: always reachable.
   */
  canReach?(
    state: State,
    input: Input,
    output: Output | undefined,
    done: (id: number) => boolean,
  ): boolean;
  /**
   * Splits the operations into independent parts checked one by one (P-compositionality:
   * a history is linearizable iff each part is). Default: one part.
   */
  partition?(
    ops: readonly Operation<Input, Output>[],
  ): readonly (readonly Operation<Input, Output>[])[];
}

/** One operation of a history, as the linearizability checker reads it. */
export interface Operation<Input, Output> {
  /** Unique among the operations checked together. */
  readonly id: number;
  /** What the operation asked for. */
  readonly input: Input;
  /** The answer, for an `ok` operation; ignored otherwise. */
  readonly output?: Output;
  /** True time of the call. */
  readonly callMs: number;
  /** True time of the answer; `null` (or anything, when the outcome is unknown) = never. */
  readonly returnMs: number | null;
  /**
   * `ok`: it took effect between call and return with this output; `fail`: it certainly
   * did not take effect (dropped); `unknown`: it took effect after its call, or never.
   */
  readonly outcome: "ok" | "fail" | "unknown";
}

/** The outcome of a check: `unknown` when the step budget ran out before an answer. */
export type LinearizabilityStatus = "pass" | "fail" | "unknown";

/** Why a partition is not linearizable, as far as the search got. */
export interface Counterexample {
  /** The longest sequence of operation ids the search could linearize, in order. */
  readonly linearized: readonly number[];
  /**
   * The operation that had to take effect next (its return came) but could not, from the
   * state after `linearized`.
   */
  readonly blocked: number;
}

/**
 * The outcome of one partition: a {@linkcode LinearizabilityStatus}, or `skipped` when its
 * search was stopped before an answer because another partition had failed.
 */
export type PartitionStatus = LinearizabilityStatus | "skipped";

/** The result of one partition. */
export interface PartitionResult {
  /** The partition's verdict. */
  readonly status: PartitionStatus;
  /** The ids of the operations checked in this partition (`fail` ones dropped). */
  readonly ops: readonly number[];
  /** Model steps the search took. */
  readonly steps: number;
  /** For a failing partition. */
  readonly counterexample?: Counterexample;
}

/** The result of {@linkcode checkLinearizability}. */
export interface LinearizabilityResult {
  /**
   * `fail` if a partition fails, else `unknown` if one ran out of budget or was not
   * searched, else `pass`.
   */
  readonly status: LinearizabilityStatus;
  /** The result of each partition. */
  readonly partitions: readonly PartitionResult[];
  /** Model steps taken in all partitions. */
  readonly steps: number;
}

/** Options of {@linkcode checkLinearizability}. */
export interface LinearizabilityOptions {
  /**
   * The most model steps the search may take per partition before it answers `unknown`.
   * @default {100000}
   */
  readonly stepsMax?: number;
  /**
   * The most model steps the search may take over all partitions together; the partitions
   * without an answer when it runs out are `unknown`.
   * @default {Infinity}
   */
  readonly stepsTotalMax?: number;
}

/** The default step budget of a partition. */
export const STEPS_MAX_DEFAULT = 100_000;

/**
 * Checks that a history is linearizable with respect to a model. Partitions are searched
 * in turns of doubling length (1024 steps, then 2048, ...), so that a hard one does not
 * delay finding that another fails; once one fails, the search stops and the others
 * without an answer are `skipped` (the history is not linearizable whatever they hold).
 *
 * @example A stale read after a write completed is not linearizable
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLinearizability } from "./linearizability.ts";
 * import { registerModel, type RegisterInput } from "./models.ts";
 *
 * const result = checkLinearizability(registerModel(), [
 *   { id: 1, input: { kind: "write", value: "a" }, callMs: 0, returnMs: 10, outcome: "ok" },
 *   { id: 2, input: { kind: "read" } as RegisterInput, output: null, callMs: 20, returnMs: 30, outcome: "ok" },
 * ]);
 * assert.equal(result.status, "fail");
 * assert.deepEqual(result.partitions[0]?.counterexample, { linearized: [1], blocked: 2 });
 * ```
 */
export function checkLinearizability<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  options: LinearizabilityOptions = {},
): LinearizabilityResult {
  const stepsMax = options.stepsMax ?? STEPS_MAX_DEFAULT;
  if (!Number.isSafeInteger(stepsMax) || stepsMax < 1) {
    throw new RangeError(`Invalid stepsMax, expected a positive integer: ${stepsMax}`);
  }
  const stepsTotalMax = options.stepsTotalMax ?? Infinity;
  if (!(Number.isSafeInteger(stepsTotalMax) || stepsTotalMax === Infinity) || stepsTotalMax < 1) {
    throw new RangeError(
      `Invalid stepsTotalMax, expected a positive integer or Infinity: ${stepsTotalMax}`,
    );
  }
  validateOperations(ops);
  const happened = ops.filter((op) => op.outcome !== "fail");
  const parts = model.partition ? model.partition(happened) : [happened];
  const searches = parts.map((part) => startSearch(model, part));
  const results: (PartitionResult | undefined)[] = searches.map(() => undefined);
  let steps = 0;
  let failed = false;
  // Turns of doubling length, so that one hard partition does not hold up finding that
  // another fails (as porcupine does with a thread per partition), at most twice the
  // steps of searching each to its end at once.
  for (let turn = SLICE_FIRST; !failed && results.includes(undefined); turn *= 2) {
    for (let i = 0; i < searches.length && !failed; i++) {
      if (results[i] !== undefined) continue;
      const search = searches[i]!;
      const cap = Math.min(stepsMax, search.steps + turn, search.steps + stepsTotalMax - steps);
      const before = search.steps;
      const result = search.advance(cap);
      steps += search.steps - before;
      if (result !== undefined) {
        results[i] = result;
        failed = result.status === "fail";
      } else if (search.steps >= stepsMax || steps >= stepsTotalMax) {
        results[i] = { status: "unknown", ops: search.ops, steps: search.steps };
      }
    }
  }
  const partitions = results.map((result, i): PartitionResult =>
    result ?? { status: "skipped", ops: searches[i]!.ops, steps: searches[i]!.steps }
  );
  const status: LinearizabilityStatus = failed
    ? "fail"
    : partitions.some((p) => p.status !== "pass")
    ? "unknown"
    : "pass";
  return { status, partitions, steps };
}

/** The steps of a partition's first turn; each turn doubles it. */
const SLICE_FIRST = 1024;

function validateOperations(ops: readonly Operation<unknown, unknown>[]): void {
  if (!Array.isArray(ops)) throw new TypeError(`Invalid operations, expected an array: ${ops}`);
  const ids = new Set<number>();
  for (const op of ops) {
    if (ids.has(op.id)) throw new TypeError(`Duplicate operation id: ${op.id}`);
    ids.add(op.id);
    if (!Number.isFinite(op.callMs)) {
      throw new TypeError(`Invalid callMs of operation ${op.id}: ${op.callMs}`);
    }
    if (op.outcome === "ok") {
      if (typeof op.returnMs !== "number" || !(op.returnMs >= op.callMs)) {
        throw new RangeError(
          `Operation ${op.id} is ok but returns before its call or never: ${op.returnMs}`,
        );
      }
    } else if (op.outcome !== "unknown" && op.outcome !== "fail") {
      throw new TypeError(`Invalid outcome of operation ${op.id}: ${op.outcome}`);
    }
  }
}

/** A call or a return of operation `op`, placed at `timeMs`. */
interface Event {
  readonly op: number;
  readonly isReturn: boolean;
  readonly timeMs: number;
}

/**
 * The search of one partition, resumable: `advance(limit)` runs it until an answer, or
 * until it has taken `limit` steps in all (then `undefined`, and it goes on from there at
 * the next call), so that partitions can be searched in turns.
 */
interface PartitionSearch {
  advance(limit: number): PartitionResult | undefined;
  readonly ops: readonly number[];
  readonly steps: number;
}

/**
 * The search over one partition. Entries `0..n-1` are the calls of the operations,
 * `n..2n-1` their returns, `2n` the list head; `next`/`prev` make a doubly linked list in
 * time order from which a linearized operation's call and return are lifted out, and put
 * back in reverse order when the search backtracks.
 */
function startSearch<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
): PartitionSearch {
  let stepsMax = 0;
  const n = ops.length;
  const ids = ops.map((op) => op.id);
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  buildList(ops, next, prev);

  const lift = (i: number): void => {
    next[prev[i]!] = next[i]!;
    if (next[i] !== -1) prev[next[i]!] = prev[i]!;
    const r = n + i;
    next[prev[r]!] = next[r]!;
    if (next[r] !== -1) prev[next[r]!] = prev[r]!;
  };
  const unlift = (i: number): void => {
    const r = n + i;
    next[prev[r]!] = r;
    if (next[r] !== -1) prev[next[r]!] = r;
    next[prev[i]!] = i;
    if (next[i] !== -1) prev[next[i]!] = i;
  };

  const linearized = new Uint32Array(Math.ceil(n / 32));
  const zobrist = zobristTable(n);
  // The set's Zobrist hash, two words. In a typed array, not two `let`s: a closure's
  // variable holding a 32-bit value past the small-integer range is boxed on every write.
  const hash = new Int32Array(2);
  const flip = (i: number): void => {
    linearized[i >>> 5]! ^= 1 << (i & 31);
    hash[0]! ^= zobrist[2 * i]!;
    hash[1]! ^= zobrist[2 * i + 1]!;
  };
  const memo = new Memo(linearized.length);
  const visit = (stateKey: string | number): boolean => {
    const h = typeof stateKey === "number" ? mixNumber(stateKey) : hashString(stateKey);
    return memo.add(hash[0]! ^ h, hash[1]! ^ Math.imul(h, 0x9e3779b1), linearized, stateKey);
  };

  const stackOps = new Int32Array(n);
  const stackForced = new Uint8Array(n);
  const stackStates: State[] = [];
  const stackKeys: (string | number)[] = [];
  let depth = 0;
  let state = model.init();
  let stateKey = model.key(state);
  let steps = 0;
  let best: Counterexample | undefined;
  const apply = (i: number): State | undefined => {
    steps++;
    const op = ops[i]!;
    return model.step(state, op.input, op.outcome === "ok" ? op.output : undefined);
  };
  const push = (i: number, after: State, afterKey: string | number, forced: boolean): void => {
    stackOps[depth] = i;
    stackForced[depth] = forced ? 1 : 0;
    stackStates[depth] = state;
    stackKeys[depth] = stateKey;
    depth++;
    state = after;
    stateKey = afterKey;
    lift(i);
  };
  /**
   * Undoes the last choice and returns the entry to try next at that node, or -1 when no
   * choice is left. A node whose choice was forced has no other: undo further.
   */
  const backtrack = (): number => {
    while (depth > 0) {
      depth--;
      const undone = stackOps[depth]!;
      state = stackStates[depth]!;
      stateKey = stackKeys[depth]!;
      flip(undone);
      unlift(undone);
      if (stackForced[depth] === 0) return next[undone]!;
    }
    return -1;
  };
  /** Keeps the longest prefix found, and the op that could not follow it, to explain a failure. */
  const noteBlocked = (op: number): void => {
    if (best === undefined || depth > best.linearized.length) {
      best = {
        linearized: Array.from(stackOps.subarray(0, depth), (i) => ids[i]!),
        blocked: ids[op]!,
      };
    }
  };
  const failed = (): PartitionResult => ({
    status: "fail",
    ops: ids,
    steps,
    counterexample: best ?? { linearized: [], blocked: ids[0]! },
  });

  const readOnly = Uint8Array.from(
    ops,
    (op) => model.readOnly?.(op.input, op.outcome === "ok" ? op.output : undefined) ? 1 : 0,
  );
  /**
   * A read-only operation that is possible now may take effect at once: any linearization
   * from here can be reordered to start with it, since it changes no state anywhere. So
   * the search commits to one, when there is one, and branches only on the others. One
   * pending that can never become possible from here (`canReach`) makes the state dead.
   */
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  const done = (id: number): boolean => {
    const i = indexOf.get(id);
    return i !== undefined && (linearized[i >>> 5]! & (1 << (i & 31))) !== 0;
  };
  const reads = ops.map((op, i) =>
    readOnly[i] === 1
      ? model.readsState?.(op.input, op.outcome === "ok" ? op.output : undefined)
      : undefined
  );
  const commitReadOnly = (): "none" | "committed" | "dead" | "budget" => {
    for (let i = next[head]!; i !== -1 && i < n; i = next[i]!) {
      if (readOnly[i] === 0) continue;
      const needs = reads[i];
      if (needs !== undefined && needs !== stateKey) {
        if (model.canReach?.(state, ops[i]!.input, ops[i]!.output, done) === false) {
          noteBlocked(i);
          return "dead";
        }
        continue;
      }
      if (steps === stepsMax) return "budget";
      let after: State | undefined = state;
      if (needs === undefined) after = apply(i);
      else steps++;
      if (after === undefined) continue;
      flip(i);
      const afterKey = needs ?? model.key(after);
      if (!visit(afterKey)) {
        flip(i);
        return "dead";
      }
      push(i, after, afterKey, true);
      return "committed";
    }
    return "none";
  };

  let entry = next[head]!;
  let fresh = true;
  /** Runs until an answer, or `undefined` at `stepsMax`; resumes where it stopped. */
  const run = (): PartitionResult | undefined => {
    while (entry !== -1) {
      if (fresh) {
        const still = commitReadOnly();
        // Nothing was changed: the next run scans again from the same node.
        if (still === "budget") return undefined;
        if (still === "committed") {
          entry = next[head]!;
          continue;
        }
        fresh = false;
        if (still === "dead") {
          entry = backtrack();
          if (entry === -1) return failed();
          continue;
        }
      }
      if (entry < n) {
        if (readOnly[entry] === 1) {
          // Not possible here, or it would have been committed to.
          entry = next[entry]!;
          continue;
        }
        if (steps === stepsMax) return undefined;
        const after = apply(entry);
        if (after !== undefined) {
          flip(entry);
          const afterKey = model.key(after);
          if (visit(afterKey)) {
            push(entry, after, afterKey, false);
            entry = next[head]!;
            fresh = true;
            continue;
          }
          flip(entry);
        }
        entry = next[entry]!;
        continue;
      }
      const op = entry - n;
      // Returns at +∞ sort last: reaching one means every ok operation is linearized, and
      // the unknown ones still pending may simply never have happened.
      if (ops[op]!.outcome !== "ok") break;
      noteBlocked(op);
      entry = backtrack();
      if (entry === -1) return failed();
    }
    return { status: "pass", ops: ids, steps };
  };
  return {
    ops: ids,
    get steps() {
      return steps;
    },
    advance(limit: number) {
      stepsMax = limit;
      return run();
    },
  };
}

/**
 * Links calls and returns in time order; at equal times calls come first, so operations
 * that touch at an instant count as concurrent (the checker never reports a violation
 * that depends on how a tie is broken).
 */
function buildList(
  ops: readonly Operation<unknown, unknown>[],
  next: Int32Array,
  prev: Int32Array,
): void {
  const n = ops.length;
  const events: Event[] = [];
  ops.forEach((op, i) => {
    events.push({ op: i, isReturn: false, timeMs: op.callMs });
    const returnMs = op.outcome === "ok" ? op.returnMs! : Infinity;
    events.push({ op: i, isReturn: true, timeMs: returnMs });
  });
  events.sort((a, b) =>
    // Infinity - Infinity is NaN, which falls through like 0.
    (a.timeMs - b.timeMs) || Number(a.isReturn) - Number(b.isReturn) || a.op - b.op
  );
  let last = 2 * n;
  prev[last] = -1;
  for (const event of events) {
    const e = event.isReturn ? n + event.op : event.op;
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = -1;
}

/**
 * The memo of a search: the (linearized set, state key) pairs already explored. Chains of
 * entries hang off a map from a 64-bit hash (two 32-bit words); an entry's set is a slice
 * of one growing arena, and a hit is confirmed by comparing the set and the state key
 * exactly, so a hash collision costs a comparison, never a wrong answer. Rejected: a
 * string key (hash, set, state) per visit, a typed array per entry and a `Map`: their
 * allocations and hashing dominated the search. Bounded by the step budget (an entry per
 * step at most).
 */
class Memo {
  readonly #words: number;
  readonly #heads = new IntPairMap(12);
  #next = new Int32Array(1024);
  #sets: Uint32Array;
  readonly #stateKeys: (string | number)[] = [];

  constructor(words: number) {
    this.#words = words;
    this.#sets = new Uint32Array(words * 1024);
  }

  /** Adds the pair; false if it was already there. */
  add(hashLow: number, hashHigh: number, set: Uint32Array, stateKey: string | number): boolean {
    const head = this.#heads.get(hashLow, hashHigh);
    const words = this.#words;
    for (let entry = head; entry !== -1; entry = this.#next[entry]!) {
      if (this.#stateKeys[entry] !== stateKey) continue;
      const at = entry * words;
      let same = true;
      for (let w = 0; w < words && same; w++) same = this.#sets[at + w] === set[w];
      if (same) return false;
    }
    const entry = this.#stateKeys.length;
    if (entry === this.#next.length) {
      const next = new Int32Array(entry * 2);
      next.set(this.#next);
      this.#next = next;
      const sets = new Uint32Array(entry * 2 * words);
      sets.set(this.#sets);
      this.#sets = sets;
    }
    const at = entry * words;
    for (let w = 0; w < words; w++) this.#sets[at + w] = set[w]!; // .set() costs a call
    this.#next[entry] = head;
    this.#stateKeys.push(stateKey);
    this.#heads.set(hashLow, hashHigh, entry);
    return true;
  }
}

/** A 32-bit hash of a number (an integer state key, typically). */
function mixNumber(x: number): number {
  let h = Number.isInteger(x) ? x | 0 : hashString(String(x));
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return h ^ (h >>> 16);
}

/** FNV-1a over a string's UTF-16 code units. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}

/** Two pseudo-random 32-bit words per operation, the same on every run (deterministic). */
function zobristTable(n: number): Int32Array {
  const table = new Int32Array(2 * n);
  let seed = 0x9e3779b9;
  for (let i = 0; i < table.length; i++) {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    table[i] = t ^ (t >>> 14);
  }
  return table;
}
