/**
 * Events and logging of a {@linkcode Warp} node: typed events tagged by `type`, delivered to
 * listeners added with `warp.on(type, listener)`, and an optional pino-compatible logger
 * that gets the events an operator should see at the level each deserves.
 *
 * Design: one observation path. The core records what its protocols did (`core/events.ts`)
 * only while someone observes the node, and the driver drains those records after each
 * input, adds its own (a loader that failed, an I/O call past its deadline, the node
 * failing), and hands each event here, once, to the listeners of its type and to the
 * logger. A node with no listener and no logger has no `Observer` at all: its hit path
 * pays one `undefined` check, and reads record no event unless a `hit` or `miss` listener
 * exists (a `stale` answer is rare, and logged). Listeners run after the core's transition, never inside it: one that
 * throws is counted (`stats.listenerErrors`) and logged, and the node goes on.
 *
 * Rejected: an `EventTarget` (every event would be a `CustomEvent` allocation, and a
 * listener's exception would be reported to the global error handler instead of counted);
 * and a logger called from the protocols themselves (the core is pure, and two paths
 * would drift apart).
 *
 * @module
 */

import type {
  FlushEvent,
  GapEvent,
  NodeEvent,
  ReadEvent,
  RefreshEvent,
  SessionLostEvent,
  ValidatorEvent,
} from "./core/events.ts";
import { describe, describeError } from "./_describe.ts";

export type {
  FlushEvent,
  FlushReason,
  GapEvent,
  ReadEvent,
  RefreshEvent,
  SessionLostEvent,
  ValidatorEvent,
} from "./core/events.ts";

/** An I/O call or a load that ran past its deadline. */
export interface TimeoutEvent {
  /** The event's tag. */
  readonly type: "timeout";
  /** What timed out: a loader (its `hardTimeoutMs`) or a store or coordinator call (`ioTimeoutMs`). */
  readonly operation:
    | "load"
    | "store-read"
    | "store-write"
    | "coordinator-read"
    | "coordinator-write";
  /** The key read, written or loaded (for a coordinator call, its record key). */
  readonly key: string;
  /** The deadline it ran past, ms. */
  readonly timeoutMs: number;
}

/** The application's loader of `key` threw or rejected. */
export interface LoaderErrorEvent {
  /** The event's tag. */
  readonly type: "loader-error";
  /** The key the loader was called for. */
  readonly key: string;
  /** What the loader threw. */
  readonly error: unknown;
}

/** A broken internal invariant stopped the node: every operation now fails with `CLOSED`. */
export interface NodeFailedEvent {
  /** The event's tag. */
  readonly type: "node-failed";
  /** The broken invariant (an `InvariantError`), also in `warp.failure`. */
  readonly error: Error;
}

/** Every event of a {@linkcode Warp} node, tagged by `type`. */
export type WarpEvent =
  | ReadEvent
  | GapEvent
  | FlushEvent
  | SessionLostEvent
  | RefreshEvent
  | TimeoutEvent
  | LoaderErrorEvent
  | NodeFailedEvent
  | ValidatorEvent;

/** The `type` of a {@linkcode WarpEvent}. */
export type WarpEventType = WarpEvent["type"];

/** The event of type `K`. */
export type WarpEventOf<K extends WarpEventType> = K extends ReadEvent["type"]
  ? ReadEvent & { readonly type: K }
  : Extract<WarpEvent, { type: K }>;

/** A listener of events of type `K`. */
export type WarpListener<K extends WarpEventType> = (event: WarpEventOf<K>) => void;

/** Every event type, in the order the docs list them. */
export const WARP_EVENT_TYPES: readonly WarpEventType[] = [
  "hit",
  "miss",
  "stale",
  "loader-error",
  "timeout",
  "refresh",
  "flush",
  "gap",
  "session-lost",
  "node-failed",
  "validator",
];

/**
 * A logger with the usual levels, each taking an object of fields and a message: pino's
 * shape (`pino()` fits as is), and one a few lines adapt any other logger to.
 */
export interface Logger {
  /** Detail for debugging. */
  debug(fields: Record<string, unknown>, message: string): void;
  /** Something an operator may want to know happened. */
  info(fields: Record<string, unknown>, message: string): void;
  /** Something went wrong and Warp coped. */
  warn(fields: Record<string, unknown>, message: string): void;
  /** Something went wrong that needs a person. */
  error(fields: Record<string, unknown>, message: string): void;
}

/** The level each event is logged at; `undefined`: not logged (too many). */
export const EVENT_LOG_LEVELS: Readonly<Record<WarpEventType, keyof Logger | undefined>> = {
  hit: undefined,
  miss: undefined,
  stale: "warn",
  "loader-error": "warn",
  timeout: "warn",
  refresh: "debug",
  flush: "info",
  gap: "info",
  "session-lost": "warn",
  "node-failed": "error",
  validator: "error",
};

const LOG_MESSAGES: Readonly<Record<WarpEventType, string>> = {
  hit: "L1 hit",
  miss: "L1 miss",
  stale: "Served a stale value (fail-safe)",
  "loader-error": "Loader failed",
  timeout: "Deadline passed",
  refresh: "Refresh-ahead started",
  flush: "Flushed eventual-distributed entries",
  gap: "Gap in a peer's invalidations",
  "session-lost": "Session lost, distributed entries dropped",
  "node-failed": "Node failed, it serves nothing more",
  validator: "Validator found L1 inconsistent with the store",
};

const TYPES = new Set<string>(WARP_EVENT_TYPES);
/** The events of every read: recorded only while one of them has a listener. */
const READ_TYPES = new Set<string>(["hit", "miss"]);

/**
 * The listeners and logger of one node, and the dispatch of its events. Private to the
 * runtime: applications use `warp.on`, `warp.off` and the `logger` option.
 *
 * @example
 * ```ts
 * import { Observer } from "./observe.ts";
 * const observer = new Observer(undefined);
 * const keys: string[] = [];
 * observer.on("miss", (event) => keys.push(event.key));
 * observer.emit({ type: "miss", key: "user:1" });
 * console.log(keys, observer.level); // [ "user:1" ] all
 * ```
 */
export class Observer {
  readonly #listeners = new Map<WarpEventType, Set<(event: WarpEvent) => void>>();
  readonly #logger: Logger | undefined;
  #readListeners = 0;
  /** Listener or logger calls that threw. */
  errors = 0;

  /** An observer that logs to `logger`, if any. */
  constructor(logger: Logger | undefined) {
    this.#logger = logger;
  }

  /** What the core must record: read events only while a read event has a listener. */
  get level(): "all" | "protocol" {
    return this.#readListeners > 0 ? "all" : "protocol";
  }

  /** Adds `listener` for events of `type` (a TypeError for an unknown type or a non-function). */
  on<K extends WarpEventType>(type: K, listener: WarpListener<K>): void {
    checkListener(type, listener);
    let listeners = this.#listeners.get(type);
    if (listeners === undefined) this.#listeners.set(type, listeners = new Set());
    const before = listeners.size;
    listeners.add(listener as (event: WarpEvent) => void);
    if (READ_TYPES.has(type)) this.#readListeners += listeners.size - before;
  }

  /** Removes `listener` from events of `type`; one never added is ignored. */
  off<K extends WarpEventType>(type: K, listener: WarpListener<K>): void {
    checkListener(type, listener);
    const listeners = this.#listeners.get(type);
    if (listeners?.delete(listener as (event: WarpEvent) => void) && READ_TYPES.has(type)) {
      this.#readListeners--;
    }
  }

  /** Hands `event` to its listeners, then to the logger; a throw is counted, never passed on. */
  emit(event: WarpEvent): void {
    const listeners = this.#listeners.get(event.type);
    if (listeners !== undefined) {
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          this.errors++;
          this.#log("error", { event: event.type, err: error }, "Warp event listener threw");
        }
      }
    }
    const level = this.#logger === undefined ? undefined : EVENT_LOG_LEVELS[event.type];
    if (level !== undefined) this.#log(level, logFields(event), LOG_MESSAGES[event.type]);
  }

  /** Hands on the core's events, in order, as {@linkcode WarpEvent}s. */
  emitCore(events: readonly NodeEvent[]): void {
    for (const event of events) {
      if (event.type === "load-timeout") {
        this.emit({
          type: "timeout",
          operation: "load",
          key: event.key,
          timeoutMs: event.hardTimeoutMs,
        });
      } else {
        this.emit(event);
      }
    }
  }

  #log(level: keyof Logger, fields: Record<string, unknown>, message: string): void {
    const logger = this.#logger;
    if (logger === undefined) return;
    try {
      logger[level](fields, message);
    } catch {
      this.errors++; // a logger that throws must not break the node either
    }
  }
}

function checkListener(type: unknown, listener: unknown): void {
  if (typeof type !== "string" || !TYPES.has(type)) {
    throw new TypeError(
      `Invalid event type, expected one of ${WARP_EVENT_TYPES.join(", ")}: ${describe(type)}`,
    );
  }
  if (typeof listener !== "function") {
    throw new TypeError(`Invalid listener, expected a function: ${describe(listener)}`);
  }
}

/** The fields a logged event carries: its own, with `type` as `event` and errors as `err`. */
function logFields(event: WarpEvent): Record<string, unknown> {
  const { type, ...rest } = event;
  const fields: Record<string, unknown> = { event: type, ...rest };
  if ("error" in rest) {
    delete fields.error;
    fields.err = rest.error;
    fields.reason = describeError(rest.error);
  }
  return fields;
}
