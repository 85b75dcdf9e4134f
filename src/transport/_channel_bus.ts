/**
 * Private: what the PostgreSQL and Redis buses share — a {@linkcode Transport} over a
 * server's named channels (`LISTEN`/`NOTIFY`, `SUBSCRIBE`/`PUBLISH`). The subclass moves
 * bytes; this class holds the subscriptions (one server subscription per subject, however
 * many handlers), the size limit, the rule for a disconnected bus (drop and count rather
 * than deliver late), the status and error listeners and the counters, so both buses
 * behave and report alike.
 *
 * Rejected: a base class for the NATS transport too. nats.js does its own subscription
 * bookkeeping and reconnects, and its transport already exists with its own stats; only
 * the listener lists would be shared.
 *
 * @module
 */

import { describe } from "../_describe.ts";
import { WarpError } from "../core/errors.ts";
import type { Transport, TransportStatus, Unsubscribe } from "../transport.ts";

/** The longest subject a channel bus accepts, in UTF-16 code units. */
export const BUS_SUBJECT_LENGTH_MAX = 1024;
/** The most subscriptions, status listeners and error listeners one bus holds, each. */
export const BUS_LISTENERS_MAX = 10_000;

/** What a bus has done since it was created; counters only grow. */
export interface BusStats {
  /** Messages handed to the server. */
  published: number;
  /** Messages delivered to a handler (whether or not it threw). */
  received: number;
  /** Publishes that the client or the server refused (reported to `onError`). */
  publishErrors: number;
  /** Publishes refused because the message is over the bus's size limit (reported to `onError`). */
  oversized: number;
  /** Publishes dropped because the bus knew its connection was down. */
  droppedWhileDisconnected: number;
  /** Received payloads that were not a message of this bus (foreign traffic on a channel). */
  malformed: number;
  /** Handlers, status listeners and error listeners that threw. */
  handlerErrors: number;
}

/** A problem with a publish, reported after `publish` returned (it never throws for one). */
export interface BusErrorEvent {
  /** `oversized`: refused before sending; `publish-failed`: the client or server refused it. */
  readonly type: "oversized" | "publish-failed";
  /** The subject of the publish. */
  readonly subject: string;
  /** A `WarpError` of code `VALUE_TOO_LARGE` for `oversized`; the client's error otherwise. */
  readonly error: Error;
}

/** Options every channel bus takes. */
export interface BusOptions {
  /**
   * Drop (and count) a message published while the bus knows its connection is down,
   * instead of letting the client send it late: Warp prefers a lost message to a late
   * one (freshness comes from the age bound and read-through, not from redelivery).
   * @default {true}
   */
  readonly dropWhileDisconnected?: boolean | undefined;
}

/** A {@linkcode Transport} over named server channels; see the module's doc. */
export abstract class ChannelBus implements Transport {
  /** What this bus has done; counters only grow. */
  readonly stats: BusStats = {
    published: 0,
    received: 0,
    publishErrors: 0,
    oversized: 0,
    droppedWhileDisconnected: 0,
    malformed: 0,
    handlerErrors: 0,
  };
  readonly #handlers = new Map<string, Set<(data: Uint8Array) => void>>();
  readonly #statusListeners = new Set<(status: TransportStatus) => void>();
  readonly #errorListeners = new Set<(event: BusErrorEvent) => void>();
  readonly #dropWhileDisconnected: boolean;
  #handlerCount = 0;
  #connected = true;
  #closed = false;

  /** `name` starts error messages ("PostgreSQL bus"). */
  protected constructor(
    protected readonly name: string,
    protected readonly messageBytesMax: number,
    options: BusOptions,
  ) {
    this.#dropWhileDisconnected = options.dropWhileDisconnected ?? true;
  }

  /** Sends one message; reports with {@linkcode published} or {@linkcode publishFailed}. */
  protected abstract send(subject: string, data: Uint8Array): void;
  /** Starts the server subscription of a subject (its first handler arrived). */
  protected abstract open(subject: string): void;
  /** Ends the server subscription of a subject (its last handler left). */
  protected abstract shut(subject: string): void;
  /** Ends the connections the bus owns. */
  protected abstract end(): Promise<void>;

  /** Whether the connection is up, as far as the bus knows, and the bus open. */
  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /**
   * Sends `data` to every subscriber of `subject`, at most once. Never throws for a lost
   * message: a message over the size limit, one published while the connection is known to
   * be down, and one the server refuses are counted in {@linkcode stats} (and the first and
   * last reported to {@linkcode onError} listeners). Throws a `TypeError` for an invalid
   * subject or data.
   */
  publish(subject: string, data: Uint8Array): void {
    checkSubject(subject);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`Invalid data: expected a Uint8Array, got ${describe(data)}`);
    }
    if (this.#closed) return;
    if (data.byteLength > this.messageBytesMax) {
      this.stats.oversized++;
      this.#report({
        type: "oversized",
        subject,
        error: new WarpError(
          "VALUE_TOO_LARGE",
          `Message too large for the ${this.name} (at most ${this.messageBytesMax} bytes): ${data.byteLength}`,
        ),
      });
      return;
    }
    if (this.#dropWhileDisconnected && !this.#connected) {
      this.stats.droppedWhileDisconnected++;
      return;
    }
    this.send(subject, data);
  }

  /**
   * Calls `handler` with each message on `subject` (an exact name: no wildcards) until the
   * returned function is called. A handler that throws is counted, not removed.
   */
  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    checkSubject(subject);
    if (typeof handler !== "function") {
      throw new TypeError(`Invalid handler: ${describe(handler)}`);
    }
    if (this.#closed) throw new WarpError("CLOSED", `Transport is closed: ${describe(subject)}`);
    if (this.#handlerCount >= BUS_LISTENERS_MAX) {
      throw new WarpError("LIMIT_EXCEEDED", `Too many subscriptions: ${BUS_LISTENERS_MAX}`);
    }
    // Wrapped, so that one function subscribed twice is two subscriptions.
    const registered = (data: Uint8Array) => handler(data);
    let handlers = this.#handlers.get(subject);
    if (handlers === undefined) {
      this.#handlers.set(subject, handlers = new Set());
      this.open(subject);
    }
    handlers.add(registered);
    this.#handlerCount++;
    return () => {
      const current = this.#handlers.get(subject);
      if (current === undefined || !current.delete(registered)) return;
      this.#handlerCount--;
      if (current.size > 0) return;
      this.#handlers.delete(subject);
      if (!this.#closed) this.shut(subject);
    };
  }

  /**
   * Registers a listener for connection changes: `"disconnected"` when the bus loses its
   * server, `"connected"` when it is back and subscribed again. Messages sent meanwhile are
   * lost. Not called for {@linkcode close}.
   */
  onStatus(listener: (status: TransportStatus) => void): void {
    this.#addListener(this.#statusListeners, listener, "status");
  }

  /** Registers a listener for publishes refused after `publish` returned. */
  onError(listener: (event: BusErrorEvent) => void): void {
    this.#addListener(this.#errorListeners, listener, "error");
  }

  /** Ends every subscription and the connections the bus owns; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#statusListeners.clear();
    this.#errorListeners.clear();
    this.#handlers.clear();
    this.#handlerCount = 0;
    await this.end();
  }

  /** The subjects with at least one handler. */
  protected subjects(): IterableIterator<string> {
    return this.#handlers.keys();
  }

  /** Whether the bus was closed. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /** Hands a received message to the handlers of its subject. */
  protected deliver(subject: string, data: Uint8Array): void {
    const handlers = this.#handlers.get(subject);
    if (handlers === undefined || this.#closed) return;
    for (const handler of handlers) {
      this.stats.received++;
      try {
        handler(data);
      } catch {
        this.stats.handlerErrors++;
      }
    }
  }

  /** Counts a message the server accepted. */
  protected published(): void {
    this.stats.published++;
  }

  /** Counts and reports a publish the client or the server refused. */
  protected publishFailed(subject: string, error: unknown): void {
    this.stats.publishErrors++;
    const cause = error instanceof Error ? error : new Error(String(error));
    this.#report({ type: "publish-failed", subject, error: cause });
  }

  /** Records a connection change, telling the status listeners if it is one. */
  protected setConnected(connected: boolean): void {
    if (connected === this.#connected || this.#closed) return;
    this.#connected = connected;
    for (const listener of this.#statusListeners) {
      try {
        listener(connected ? "connected" : "disconnected");
      } catch {
        this.stats.handlerErrors++;
      }
    }
  }

  #report(event: BusErrorEvent): void {
    for (const listener of this.#errorListeners) {
      try {
        listener(event);
      } catch {
        this.stats.handlerErrors++;
      }
    }
  }

  #addListener<L>(listeners: Set<L>, listener: L, what: string): void {
    if (typeof listener !== "function") {
      throw new TypeError(`Invalid listener: ${describe(listener)}`);
    }
    if (listeners.size >= BUS_LISTENERS_MAX) {
      throw new WarpError("LIMIT_EXCEEDED", `Too many ${what} listeners: ${BUS_LISTENERS_MAX}`);
    }
    listeners.add(listener);
  }
}

/** Throws a `TypeError` unless `subject` is 1 to 1024 code units of well-formed text. */
function checkSubject(subject: unknown): asserts subject is string {
  if (
    typeof subject !== "string" || subject.length === 0 ||
    subject.length > BUS_SUBJECT_LENGTH_MAX || !subject.isWellFormed()
  ) {
    throw new TypeError(`Invalid subject: ${describe(subject)}`);
  }
}
