/**
 * A {@linkcode Transport} for Warp nodes in one process: a hub and one endpoint per node,
 * with switches to lose messages and cut endpoints off in tests.
 *
 * @module
 */

import { describe } from "../_describe.ts";
import { WarpError } from "../core/errors.ts";
import type { Transport, TransportStatus, Unsubscribe } from "../transport.ts";

/** Options of {@linkcode InProcessBus}. */
export interface InProcessBusOptions {
  /**
   * The most subscriptions one endpoint holds at once; one more throws a `RangeError`.
   * @default {1024}
   */
  readonly subscriptionsMax?: number;
  /**
   * The largest message, in bytes; publishing a larger one throws a `RangeError`
   * (NATS' default maximum payload).
   * @default {1048576}
   */
  readonly payloadBytesMax?: number;
}

/** Options of {@linkcode InProcessBus.connect}. */
export interface InProcessConnectOptions {
  /** A name for the endpoint in tests and filters. @default {"endpoint-<n>"} */
  readonly label?: string;
}

/**
 * Decides whether one message reaches one endpoint: `true` delivers it, `false` loses it.
 * `data` is the publisher's bytes: read it, do not change it.
 */
export type InProcessFilter = (
  subject: string,
  data: Uint8Array,
  from: InProcessTransport,
  to: InProcessTransport,
) => boolean;

/** Message counts of an {@linkcode InProcessBus}. */
export interface InProcessBusCounts {
  /** Accepted `publish` calls. */
  readonly published: number;
  /** Handler calls made. */
  readonly delivered: number;
  /**
   * Messages lost, one per receiving subscription: to or from a disconnected or closed
   * endpoint, rejected by the filter, or unsubscribed before delivery.
   */
  readonly dropped: number;
}

/** What an endpoint needs from its bus. */
interface Hub {
  readonly subscriptionsMax: number;
  readonly payloadBytesMax: number;
  route(from: InProcessTransport, subject: string, data: Uint8Array): void;
  detach(endpoint: InProcessTransport): void;
}

type Handler = (data: Uint8Array) => void;

/** What the bus reads of an endpoint's state. */
interface EndpointState {
  readonly subscriptions: Map<string, Set<Handler>>;
  /** Disconnections so far: a message sent before the last one is lost, even after reconnect. */
  outages: number;
}

/** Each endpoint's state, readable by its bus and by nobody else. */
const stateOf = new WeakMap<InProcessTransport, EndpointState>();

const STATUS_LISTENERS_MAX = 64;
const SUBJECT_LENGTH_MAX = 256;
/** Dot-separated tokens without whitespace or NATS wildcards, so both transports agree. */
const SUBJECT_PATTERN = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

/**
 * The hub connecting in-process endpoints. Each {@linkcode InProcessBus.connect} returns
 * the {@linkcode Transport} of one node.
 *
 * A published message goes to every subscription of that exact subject on every
 * connected endpoint, the publisher's own included, each getting its own copy of the
 * bytes. Delivery is on a microtask: never inside `publish`, in publish order, and
 * without timers, so tests stay deterministic and Deno's timer sanitizer stays quiet.
 * (A macrotask would add the 4 ms clamping of nested timers to every hop.) A handler
 * that throws is not caught: the error surfaces as an uncaught exception, as bugs should.
 *
 * @example Two nodes
 * ```ts
 * import assert from "node:assert/strict";
 * import { InProcessBus } from "./in_process.ts";
 *
 * const bus = new InProcessBus();
 * const a = bus.connect({ label: "a" });
 * const b = bus.connect({ label: "b" });
 * const received: number[][] = [];
 * b.subscribe("warp.all", (data) => received.push([...data]));
 * a.publish("warp.all", new Uint8Array([1, 2]));
 * assert.deepEqual(received, []); // not yet: delivery is asynchronous
 * await Promise.resolve();
 * assert.deepEqual(received, [[1, 2]]);
 * await a.close();
 * await b.close();
 * ```
 */
export class InProcessBus {
  /**
   * Decides per message and receiving endpoint whether it is delivered; `undefined`
   * delivers everything. Set it in tests to lose chosen messages.
   * @default {undefined}
   */
  filter: InProcessFilter | undefined = undefined;

  readonly #endpoints = new Set<InProcessTransport>();
  readonly #hub: Hub;
  #published = 0;
  #delivered = 0;
  #dropped = 0;
  #labelCounter = 0;

  /** Creates a bus with no endpoints. */
  constructor(options: InProcessBusOptions = {}) {
    const { subscriptionsMax = 1024, payloadBytesMax = 1024 * 1024 } = options;
    if (!Number.isSafeInteger(subscriptionsMax) || subscriptionsMax < 1) {
      throw new RangeError(`Invalid subscriptionsMax: ${describe(subscriptionsMax)}`);
    }
    if (!Number.isSafeInteger(payloadBytesMax) || payloadBytesMax < 1) {
      throw new RangeError(`Invalid payloadBytesMax: ${describe(payloadBytesMax)}`);
    }
    this.#hub = {
      subscriptionsMax,
      payloadBytesMax,
      route: (from, subject, data) => this.#route(from, subject, data),
      detach: (endpoint) => this.#endpoints.delete(endpoint),
    };
  }

  /**
   * Connects a new endpoint: the transport of one node.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const bus = new InProcessBus();
   * const transport = bus.connect({ label: "node-1" });
   * console.log(transport.label, transport.connected); // node-1 true
   * await transport.close();
   * ```
   */
  connect(options: InProcessConnectOptions = {}): InProcessTransport {
    const { label = `endpoint-${++this.#labelCounter}` } = options;
    if (typeof label !== "string" || label.length === 0) {
      throw new TypeError(`Invalid label: ${describe(label)}`);
    }
    const endpoint = new InProcessTransport(this.#hub, label);
    this.#endpoints.add(endpoint);
    return endpoint;
  }

  /**
   * How many messages were published, delivered and dropped so far.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const bus = new InProcessBus();
   * const a = bus.connect();
   * a.subscribe("s", () => {});
   * a.disconnect();
   * a.publish("s", new Uint8Array());
   * console.log(bus.counts); // { published: 1, delivered: 0, dropped: 1 }
   * await a.close();
   * ```
   */
  get counts(): InProcessBusCounts {
    return { published: this.#published, delivered: this.#delivered, dropped: this.#dropped };
  }

  #route(from: InProcessTransport, subject: string, data: Uint8Array): void {
    this.#published++;
    for (const to of this.#endpoints) {
      const state = stateOf.get(to)!;
      const subscribed = state.subscriptions.get(subject);
      if (subscribed === undefined) continue;
      const outages = state.outages;
      const handlers = [...subscribed];
      const lost = !from.connected || !to.connected ||
        (this.filter !== undefined && !this.filter(subject, data, from, to));
      if (lost) {
        this.#dropped += handlers.length;
        continue;
      }
      for (const handler of handlers) {
        const copy = data.slice();
        queueMicrotask(() => {
          // Whatever happened in between (a disconnect, an unsubscribe) loses the message.
          if (!to.connected || state.outages !== outages || !subscribed.has(handler)) {
            this.#dropped++;
            return;
          }
          this.#delivered++;
          handler(copy);
        });
      }
    }
  }
}

/**
 * One node's endpoint on an {@linkcode InProcessBus}; create it with
 * {@linkcode InProcessBus.connect}. Besides the {@linkcode Transport} methods it has
 * {@linkcode InProcessTransport.disconnect} and {@linkcode InProcessTransport.reconnect}
 * to simulate losing the bus: while disconnected, every message to or from it is dropped.
 *
 * @example A bus outage
 * ```ts
 * import assert from "node:assert/strict";
 * import { InProcessBus } from "./in_process.ts";
 *
 * const bus = new InProcessBus();
 * const node = bus.connect();
 * const statuses: string[] = [];
 * node.onStatus((status) => statuses.push(status));
 * node.disconnect();
 * node.reconnect();
 * await Promise.resolve();
 * assert.deepEqual(statuses, ["disconnected", "connected"]);
 * await node.close();
 * ```
 */
export class InProcessTransport implements Transport {
  /** The endpoint's name, from {@linkcode InProcessConnectOptions.label}. */
  readonly label: string;

  readonly #hub: Hub;
  readonly #state: EndpointState = { subscriptions: new Map(), outages: 0 };
  readonly #subscriptions = this.#state.subscriptions;
  readonly #statusListeners: ((status: TransportStatus) => void)[] = [];
  #subscriptionCount = 0;
  #connected = true;
  #closed = false;

  /** Used by {@linkcode InProcessBus.connect}; not for direct use. */
  constructor(hub: Hub, label: string) {
    this.#hub = hub;
    this.label = label;
    stateOf.set(this, this.#state);
  }

  /**
   * Whether messages reach and leave this endpoint: not disconnected and not closed.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const node = new InProcessBus().connect();
   * await node.close();
   * console.log(node.connected); // false
   * ```
   */
  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /**
   * Sends a copy of `data` to every subscription of `subject` on every connected endpoint,
   * on a microtask. A message that is lost (a disconnected or closed endpoint, the bus
   * filter) is counted, not thrown. Throws a `TypeError` for an invalid subject or data
   * and a `RangeError` for data over the bus's `payloadBytesMax`.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const node = new InProcessBus().connect();
   * node.subscribe("warp.all", (data) => console.log(data)); // Uint8Array(1) [ 7 ]
   * node.publish("warp.all", new Uint8Array([7]));
   * await Promise.resolve();
   * await node.close();
   * ```
   */
  publish(subject: string, data: Uint8Array): void {
    validateSubject(subject);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`Invalid data: expected a Uint8Array, got ${describe(data)}`);
    }
    if (data.byteLength > this.#hub.payloadBytesMax) {
      throw new RangeError(`Message too large: ${data.byteLength} bytes`);
    }
    this.#hub.route(this, subject, data);
  }

  /**
   * Calls `handler` with each message on exactly `subject` until the returned function is
   * called. Throws a `RangeError` beyond the bus's `subscriptionsMax`, and a `WarpError`
   * of code `CLOSED` after {@linkcode InProcessTransport.close}.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const node = new InProcessBus().connect();
   * const unsubscribe = node.subscribe("warp.node.a", () => {});
   * unsubscribe();
   * await node.close();
   * ```
   */
  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    validateSubject(subject);
    if (typeof handler !== "function") {
      throw new TypeError(`Invalid handler: ${describe(handler)}`);
    }
    if (this.#closed) throw new WarpError("CLOSED", `Transport is closed: ${describe(this.label)}`);
    if (this.#subscriptionCount >= this.#hub.subscriptionsMax) {
      throw new RangeError(`Too many subscriptions: ${this.#hub.subscriptionsMax}`);
    }
    // Wrapped so that subscribing one function twice gives two independent subscriptions.
    const registered: Handler = (data) => handler(data);
    let handlers = this.#subscriptions.get(subject);
    if (handlers === undefined) this.#subscriptions.set(subject, handlers = new Set());
    handlers.add(registered);
    this.#subscriptionCount++;
    return () => {
      const current = this.#subscriptions.get(subject);
      if (current === undefined || !current.delete(registered)) return;
      this.#subscriptionCount--;
      if (current.size === 0) this.#subscriptions.delete(subject);
    };
  }

  /**
   * Registers a listener for `"disconnected"` and `"connected"`, called on a microtask
   * after {@linkcode InProcessTransport.disconnect} and
   * {@linkcode InProcessTransport.reconnect}. At most 64 listeners.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const node = new InProcessBus().connect();
   * node.onStatus((status) => console.log(status)); // disconnected
   * node.disconnect();
   * await Promise.resolve();
   * await node.close();
   * ```
   */
  onStatus(listener: (status: TransportStatus) => void): void {
    if (typeof listener !== "function") {
      throw new TypeError(`Invalid listener: ${describe(listener)}`);
    }
    if (this.#statusListeners.length >= STATUS_LISTENERS_MAX) {
      throw new RangeError(`Too many status listeners: ${STATUS_LISTENERS_MAX}`);
    }
    this.#statusListeners.push(listener);
  }

  /**
   * Cuts the endpoint off the bus: until {@linkcode InProcessTransport.reconnect}, every
   * message to or from it is dropped, also ones already on their way. Subscriptions stay.
   * Does nothing if already disconnected.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const node = new InProcessBus().connect();
   * node.disconnect();
   * console.log(node.connected); // false
   * await node.close();
   * ```
   */
  disconnect(): void {
    if (!this.#connected || this.#closed) return;
    this.#connected = false;
    this.#state.outages++;
    this.#emit("disconnected");
  }

  /**
   * Puts a disconnected endpoint back on the bus; messages sent meanwhile stay lost.
   * Does nothing if connected or closed.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const node = new InProcessBus().connect();
   * node.disconnect();
   * node.reconnect();
   * console.log(node.connected); // true
   * await node.close();
   * ```
   */
  reconnect(): void {
    if (this.#connected || this.#closed) return;
    this.#connected = true;
    this.#emit("connected");
  }

  /**
   * Removes every subscription and leaves the bus; later publishes are dropped and
   * counted. Calling it again does nothing.
   *
   * @example
   * ```ts
   * import { InProcessBus } from "./in_process.ts";
   * const node = new InProcessBus().connect();
   * await node.close();
   * ```
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#subscriptions.clear();
      this.#subscriptionCount = 0;
      this.#statusListeners.length = 0;
      this.#hub.detach(this);
    }
    return Promise.resolve();
  }

  #emit(status: TransportStatus): void {
    for (const listener of this.#statusListeners) queueMicrotask(() => listener(status));
  }
}

function validateSubject(subject: unknown): asserts subject is string {
  if (
    typeof subject !== "string" || subject.length > SUBJECT_LENGTH_MAX ||
    !SUBJECT_PATTERN.test(subject)
  ) {
    throw new TypeError(`Invalid subject: ${describe(subject)}`);
  }
}
