/**
 * A {@linkcode Transport} over core NATS publish/subscribe.
 *
 * @module
 */

import { PermissionViolationError } from "@nats-io/transport-node";
import type { NatsConnection, NodeConnectionOptions, Subscription } from "@nats-io/transport-node";
import { describe } from "../_describe.ts";
import { WarpError } from "../core/errors.ts";
import type { Transport, TransportStatus, Unsubscribe } from "../transport.ts";
import { connectNats } from "./_connect.ts";

/** The longest subject {@linkcode NatsTransport} accepts, in UTF-16 code units. */
export const SUBJECT_LENGTH_MAX = 1024;

/** The most subscriptions and status listeners one {@linkcode NatsTransport} holds. */
export const LISTENERS_MAX = 10_000;

/** Options of {@linkcode NatsTransport.connect}: NATS connection options plus Warp's own. */
export type NatsTransportConnectOptions = NodeConnectionOptions & NatsTransportOptions;

/** Options of {@linkcode NatsTransport.fromConnection}. */
export interface NatsTransportOptions {
  /**
   * Drop (and count) messages published while the connection is down instead of handing
   * them to nats.js. Warp's protocol prefers a lost message to a late one: freshness is
   * kept by read-through, not by redelivery. nats.js 3.4 buffers such messages but
   * clears that buffer at the start of every reconnect attempt, so in practice they are
   * lost either way (except one published while the successful attempt is dialling);
   * dropping them here makes the loss certain and visible in
   * {@linkcode NatsTransportStats.droppedWhileDisconnected}.
   * @default {true}
   */
  readonly dropWhileDisconnected?: boolean;
  /**
   * Close the NATS connection in {@linkcode NatsTransport.close}. `connect` sets it.
   * @default {false} for `fromConnection`
   */
  readonly closeConnection?: boolean;
}

/** What a {@linkcode NatsTransport} has done since it was created. */
export interface NatsTransportStats {
  /** Messages handed to the NATS client. */
  published: number;
  /** Messages delivered to a handler (whether or not it threw). */
  received: number;
  /**
   * Publishes refused: by the NATS client (closed connection, payload too large), or by
   * the server for lack of permission (reported later; such a message was also counted
   * in `published`, having been handed to the client).
   */
  publishErrors: number;
  /**
   * Permission violations the server reported, for publishes and subscriptions alike:
   * the connection's user may not use a subject. Each one also reaches the
   * {@linkcode NatsTransport.onError} listeners.
   */
  permissionViolations: number;
  /** Handlers, status listeners and error listeners that threw. */
  handlerErrors: number;
  /** Errors the NATS client reported on a subscription (e.g. a permission violation). */
  subscriptionErrors: number;
  /** Publishes dropped because the connection was down. */
  droppedWhileDisconnected: number;
}

/**
 * A problem the server reported after the call that caused it had returned, so no call
 * could throw it: a publish or subscription the connection's user has no permission for.
 */
export interface NatsTransportErrorEvent {
  /** The kind of problem. */
  readonly type: "permission-violation";
  /** What was refused. */
  readonly operation: "publish" | "subscription";
  /** The subject refused. */
  readonly subject: string;
  /** The client's error. */
  readonly error: Error;
}

/**
 * A {@linkcode Transport} over core NATS (at-most-once), for Warp nodes in many processes.
 *
 * - `publish` never throws for a lost message: refused publishes are counted in
 *   {@linkcode NatsTransport.stats}. By default a publish while the connection is down is
 *   dropped (and counted) rather than buffered for after the reconnect. The transport
 *   learns of a disconnect from the client's status events, so a message published in
 *   the short window before that event is handed to nats.js, which loses it when it
 *   reconnects (it clears its outbound buffer then).
 * - A handler that throws does not end its subscription; the error is counted.
 * - Echo is on: a node receives its own broadcasts, as {@linkcode Transport} requires.
 * - Subscriptions survive reconnects (the client re-subscribes); messages sent while
 *   disconnected are lost.
 *
 * @example Publish and receive on one connection
 * ```ts ignore
 * import { NatsTransport } from "./transport.ts";
 *
 * const transport = await NatsTransport.connect({ servers: "127.0.0.1:4222" });
 * const unsubscribe = transport.subscribe("warp.demo.all", (data) => console.log(data));
 * transport.publish("warp.demo.all", new Uint8Array([1, 2, 3]));
 * await transport.flush();
 * unsubscribe();
 * await transport.close();
 * ```
 */
export class NatsTransport implements Transport {
  /** What this transport has done; counters only grow. */
  readonly stats: NatsTransportStats = {
    published: 0,
    received: 0,
    publishErrors: 0,
    permissionViolations: 0,
    handlerErrors: 0,
    subscriptionErrors: 0,
    droppedWhileDisconnected: 0,
  };
  readonly #nc: NatsConnection;
  readonly #dropWhileDisconnected: boolean;
  readonly #closeConnection: boolean;
  readonly #subscriptions = new Set<Subscription>();
  readonly #listeners = new Set<(status: TransportStatus) => void>();
  readonly #errorListeners = new Set<(event: NatsTransportErrorEvent) => void>();
  readonly #statusLoop: Promise<void>;
  #connected = true;
  #closed = false;

  /**
   * Connects to NATS and returns a transport that owns the connection. The options are
   * nats.js connection options (`servers`, `user`/`pass`, `token`, `authenticator`, `tls`,
   * `name`, reconnect settings) plus {@linkcode NatsTransportOptions}. Unlike nats.js,
   * the defaults reconnect forever (`maxReconnectAttempts: -1`) with a short wait
   * (`reconnectTimeWait: 250`, `reconnectJitter: 100`), and `name` is `"warp"`.
   * Rejects with the client's error when no server can be reached.
   *
   * @example
   * ```ts ignore
   * import { NatsTransport } from "./transport.ts";
   * const transport = await NatsTransport.connect({ servers: ["127.0.0.1:4222"], name: "node-1" });
   * await transport.close();
   * ```
   */
  static async connect(options: NatsTransportConnectOptions = {}): Promise<NatsTransport> {
    const { dropWhileDisconnected = true, closeConnection = true, ...natsOptions } = options;
    const nc = await connectNats(natsOptions);
    return new NatsTransport(nc, { dropWhileDisconnected, closeConnection });
  }

  /**
   * Wraps an open connection. {@linkcode NatsTransport.close} leaves the connection open
   * unless `closeConnection` is set. The connection should not have `noEcho` set.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsTransport } from "./transport.ts";
   * const nc = await connect({ servers: "127.0.0.1:4222" });
   * const transport = NatsTransport.fromConnection(nc);
   * await transport.close(); // nc stays open
   * await nc.close();
   * ```
   */
  static fromConnection(nc: NatsConnection, options: NatsTransportOptions = {}): NatsTransport {
    if (nc === null || typeof nc !== "object" || typeof nc.publish !== "function") {
      throw new TypeError(`Invalid connection: ${describe(nc)}`);
    }
    if (nc.isClosed()) throw new TypeError("Invalid connection: it is closed");
    return new NatsTransport(nc, options);
  }

  private constructor(nc: NatsConnection, options: NatsTransportOptions) {
    this.#nc = nc;
    this.#dropWhileDisconnected = options.dropWhileDisconnected ?? true;
    this.#closeConnection = options.closeConnection ?? false;
    this.#statusLoop = this.#watchStatus();
  }

  /** The wrapped NATS connection. */
  get connection(): NatsConnection {
    return this.#nc;
  }

  /** Whether the connection is up, as far as the client's status events tell. */
  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /**
   * Sends `data` to every subscriber of `subject`. Never throws for a lost message;
   * throws a `TypeError` for an invalid subject (no spaces, no empty tokens, no wildcards).
   *
   * @example
   * ```ts ignore
   * import { NatsTransport } from "./transport.ts";
   * const transport = await NatsTransport.connect();
   * transport.publish("warp.demo.all", new TextEncoder().encode("hello"));
   * await transport.close();
   * ```
   */
  publish(subject: string, data: Uint8Array): void {
    validateSubject(subject, false);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`Invalid data: expected a Uint8Array, got ${describe(data)}`);
    }
    if (this.#dropWhileDisconnected && !this.connected) {
      this.stats.droppedWhileDisconnected++;
      return;
    }
    try {
      this.#nc.publish(subject, data);
      this.stats.published++;
    } catch {
      this.stats.publishErrors++;
    }
  }

  /**
   * Calls `handler` with the payload of each message on `subject` (`*` and a final `>`
   * wildcard allowed) until the returned function is called. The payload is the
   * client's own array; a handler may keep it.
   *
   * @example
   * ```ts ignore
   * import { NatsTransport } from "./transport.ts";
   * const transport = await NatsTransport.connect();
   * const unsubscribe = transport.subscribe("warp.demo.node.*", (data) => console.log(data));
   * unsubscribe();
   * await transport.close();
   * ```
   */
  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    validateSubject(subject, true);
    if (typeof handler !== "function") {
      throw new TypeError(`Invalid handler: ${describe(handler)}`);
    }
    if (this.#closed) throw new WarpError("CLOSED", `Transport is closed: ${describe(subject)}`);
    if (this.#subscriptions.size >= LISTENERS_MAX) {
      throw new WarpError("LIMIT_EXCEEDED", `Too many subscriptions: ${LISTENERS_MAX}`);
    }
    const subscription = this.#nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error !== null) {
          this.stats.subscriptionErrors++;
          return;
        }
        this.stats.received++;
        try {
          handler(msg.data);
        } catch {
          this.stats.handlerErrors++;
        }
      },
    });
    this.#subscriptions.add(subscription);
    return () => {
      if (!this.#subscriptions.delete(subscription)) return;
      try {
        subscription.unsubscribe();
      } catch {
        // The connection is closed: the subscription ended with it.
      }
    };
  }

  /**
   * Registers a listener for connection changes: `"disconnected"` when the client loses
   * its server, `"connected"` when it has reconnected. Listeners are not called for
   * {@linkcode NatsTransport.close}.
   *
   * @example
   * ```ts ignore
   * import { NatsTransport } from "./transport.ts";
   * const transport = await NatsTransport.connect();
   * transport.onStatus((status) => console.log("bus", status));
   * await transport.close();
   * ```
   */
  onStatus(listener: (status: TransportStatus) => void): void {
    if (typeof listener !== "function") {
      throw new TypeError(`Invalid listener: ${describe(listener)}`);
    }
    if (this.#listeners.size >= LISTENERS_MAX) {
      throw new WarpError("LIMIT_EXCEEDED", `Too many status listeners: ${LISTENERS_MAX}`);
    }
    this.#listeners.add(listener);
  }

  /**
   * Registers a listener for problems the server reports after the fact: a publish or a
   * subscription refused for lack of permission (a NATS user without the rights listed in
   * `docs/operations.md`). Counted in {@linkcode NatsTransportStats.permissionViolations}
   * too. A listener that throws is counted in `handlerErrors`. At most
   * {@linkcode LISTENERS_MAX} listeners.
   *
   * @example
   * ```ts ignore
   * import { NatsTransport } from "./transport.ts";
   * const transport = await NatsTransport.connect();
   * transport.onError((event) => console.error("bus", event.type, event.subject));
   * await transport.close();
   * ```
   */
  onError(listener: (event: NatsTransportErrorEvent) => void): void {
    if (typeof listener !== "function") {
      throw new TypeError(`Invalid listener: ${describe(listener)}`);
    }
    if (this.#errorListeners.size >= LISTENERS_MAX) {
      throw new WarpError("LIMIT_EXCEEDED", `Too many error listeners: ${LISTENERS_MAX}`);
    }
    this.#errorListeners.add(listener);
  }

  /**
   * Resolves when the server has processed everything published so far (a round trip).
   *
   * @example
   * ```ts ignore
   * import { NatsTransport } from "./transport.ts";
   * const transport = await NatsTransport.connect();
   * transport.publish("warp.demo.all", new Uint8Array());
   * await transport.flush();
   * await transport.close();
   * ```
   */
  async flush(): Promise<void> {
    await this.#nc.flush();
  }

  /**
   * Ends every subscription and, if the transport owns it, closes the connection.
   * Idempotent.
   *
   * @example
   * ```ts ignore
   * import { NatsTransport } from "./transport.ts";
   * const transport = await NatsTransport.connect();
   * await transport.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#errorListeners.clear();
    for (const subscription of this.#subscriptions) {
      try {
        subscription.unsubscribe();
      } catch {
        // Already gone with the connection.
      }
    }
    this.#subscriptions.clear();
    if (this.#closeConnection) {
      await this.#nc.close();
      await this.#statusLoop;
    }
  }

  async #watchStatus(): Promise<void> {
    try {
      for await (const status of this.#nc.status()) {
        if (this.#closed) break;
        if (status.type === "disconnect" && this.#connected) {
          this.#connected = false;
          this.#emit("disconnected");
        } else if (status.type === "reconnect" && !this.#connected) {
          this.#connected = true;
          this.#emit("connected");
        } else if (status.type === "close" && this.#connected) {
          // The client gave up (or its owner closed it): report it as lost.
          this.#connected = false;
          this.#emit("disconnected");
        } else if (status.type === "error" && status.error instanceof PermissionViolationError) {
          this.#onPermissionViolation(status.error);
        }
      }
    } catch {
      // The status iterator ends with the connection; nothing more to report.
    }
  }

  /** The server refused a publish (it says so only now) or a subscription. */
  #onPermissionViolation(error: PermissionViolationError): void {
    this.stats.permissionViolations++;
    const operation = error.operation === "subscription" ? "subscription" : "publish";
    if (operation === "publish") this.stats.publishErrors++;
    const event: NatsTransportErrorEvent = {
      type: "permission-violation",
      operation,
      subject: error.subject,
      error,
    };
    for (const listener of this.#errorListeners) {
      try {
        listener(event);
      } catch {
        this.stats.handlerErrors++;
      }
    }
  }

  #emit(status: TransportStatus): void {
    for (const listener of this.#listeners) {
      try {
        listener(status);
      } catch {
        this.stats.handlerErrors++;
      }
    }
  }
}

/**
 * Throws a `TypeError` unless `subject` is a valid NATS subject: dot-separated non-empty
 * tokens without whitespace or control characters; when subscribing, a token may be `*`
 * and the last token may be `>`; when publishing, no wildcards.
 */
function validateSubject(subject: unknown, wildcards: boolean): asserts subject is string {
  if (typeof subject !== "string" || subject.length === 0) {
    throw new TypeError(`Invalid subject: ${describe(subject)}`);
  }
  if (subject.length > SUBJECT_LENGTH_MAX) {
    throw new RangeError(`Subject too long (max ${SUBJECT_LENGTH_MAX}): ${describe(subject)}`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f]/.test(subject)) {
    throw new TypeError(
      `Invalid subject, it has whitespace or control characters: ${describe(subject)}`,
    );
  }
  const tokens = subject.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.length === 0) {
      throw new TypeError(`Invalid subject, it has an empty token: ${describe(subject)}`);
    }
    const isWildcard = token === "*" || (token === ">" && i === tokens.length - 1);
    if (isWildcard && !wildcards) {
      throw new TypeError(`Invalid subject to publish to, it has a wildcard: ${describe(subject)}`);
    }
    if (!isWildcard && (token.includes("*") || token.includes(">"))) {
      throw new TypeError(`Invalid subject, it misplaces a wildcard: ${describe(subject)}`);
    }
  }
}
