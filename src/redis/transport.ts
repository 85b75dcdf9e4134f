/**
 * A {@linkcode Transport} over Redis publish/subscribe, with node-redis.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createClient, type RedisClientOptions } from "@redis/client";
import { describe, describeError } from "../_describe.ts";
import { WarpError } from "../core/errors.ts";
import { withTimeout } from "../_wake_timer.ts";
import { type BusOptions, ChannelBus } from "../transport/_channel_bus.ts";

/** The largest message {@linkcode RedisTransport} sends, in bytes (Warp's are at most 24 KiB). */
export const REDIS_MESSAGE_BYTES_MAX = 1024 * 1024;

/** The default {@linkcode RedisTransportOptions.connectTimeoutMs}. */
const CONNECT_TIMEOUT_MS_DEFAULT = 10_000;

/**
 * The part of a node-redis client (`createClient()` of `redis` or `@redis/client`, 5 or
 * later) the transport uses.
 */
export interface RedisClientLike {
  /** Whether the client's socket is open. */
  readonly isOpen: boolean;
  /** Whether the client is connected and ready for commands. */
  readonly isReady: boolean;
  /** Connects the client. */
  connect(): Promise<unknown>;
  /** A new client with the same options (the subscriber connection). */
  duplicate(): RedisClientLike;
  /** Publishes `message` on `channel`. */
  publish(channel: string, message: Buffer): Promise<unknown>;
  /** Subscribes `listener` to `channel`, with messages as buffers. */
  subscribe(
    channel: string,
    listener: (message: Buffer, channel: Buffer) => unknown,
    bufferMode: true,
  ): Promise<void>;
  /** Removes `listener` from `channel`. */
  unsubscribe(
    channel: string,
    listener: (message: Buffer, channel: Buffer) => unknown,
    bufferMode: true,
  ): Promise<void>;
  /** The server's `INFO` for `section`. */
  info(section: string): Promise<unknown>;
  /** Listens to a client event (`error`, `ready`, ...). */
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Closes the connection at once. */
  destroy(): void;
}

/** Options of {@linkcode RedisTransport.connect}. */
export interface RedisTransportOptions extends BusOptions {
  /**
   * `redis[s]://[[user][:password]@]host[:port][/db]`; the transport opens (and `close`
   * ends) its clients. `rediss:` is TLS.
   * @default {undefined} `redis://localhost:6379`, or what `client` says
   */
  readonly url?: string;
  /**
   * node-redis client options, passed through unchanged (with `url` or alone): `username`,
   * `password`, `socket: { tls: true, ca, ... }`, `database`, ...
   * @default {undefined}
   */
  readonly client?: RedisClientOptions;
  /**
   * A node-redis client you made, open or not: the transport publishes on it and subscribes
   * on a duplicate of it (a subscribed connection can do nothing else). `close` leaves it
   * open (and ends the duplicate). Not with `url` or `client`.
   * @default {undefined}
   */
  readonly redis?: RedisClientLike;
  /**
   * How long connecting may take before `connect` rejects with a `WarpError` of code
   * `TIMEOUT` (node-redis itself retries a refused connection forever).
   * @default {10000}
   */
  readonly connectTimeoutMs?: number;
}

/**
 * A {@linkcode Transport} over Redis publish/subscribe (at most once), for clusters that
 * share a Redis and no NATS.
 *
 * - **Connections**: one to publish (yours, if you pass `redis`) and one of its own to
 *   subscribe. Both reconnect on their own (node-redis), and subscriptions are restored
 *   after a reconnect; messages published meanwhile are lost. While either is down the
 *   transport drops what is published (counted in `stats.droppedWhileDisconnected`) rather
 *   than let node-redis send it late, and reports `"disconnected"`/`"connected"` to
 *   `onStatus` listeners.
 * - **Redis Cluster** is refused at `connect` with a `TypeError`: its plain pub/sub fans
 *   every message out to every shard (no scaling), and its sharded pub/sub needs a
 *   cluster-aware client per slot. Point the transport at a standalone Redis (or a
 *   replicated primary).
 * - **Messages** are binary (buffers both ways), at most
 *   {@linkcode REDIS_MESSAGE_BYTES_MAX}; a larger one is refused, counted in
 *   `stats.oversized` and reported to `onError` listeners.
 * - A publisher receives its own broadcasts, as {@linkcode Transport} requires.
 *
 * @example Publish and receive
 * ```ts ignore
 * import { RedisTransport } from "./transport.ts";
 *
 * const bus = await RedisTransport.connect({ url: "redis://127.0.0.1:6379" });
 * const received = new Promise<Uint8Array>((resolve) => bus.subscribe("warp.demo.all", resolve));
 * await bus.ready;
 * bus.publish("warp.demo.all", new Uint8Array([1, 2, 3]));
 * console.log(await received); // Uint8Array(3) [ 1, 2, 3 ]
 * await bus.close();
 * ```
 */
export class RedisTransport extends ChannelBus {
  readonly #publisher: RedisClientLike;
  readonly #subscriber: RedisClientLike;
  readonly #ownsPublisher: boolean;
  readonly #listeners = new Map<string, (message: Buffer) => void>();
  readonly #subscribing = new Set<Promise<void>>();

  /**
   * Connects both clients and checks that the server is not a Redis Cluster. Rejects with a
   * `WarpError` of code `TIMEOUT` after `connectTimeoutMs`, with a `TypeError` for a
   * cluster, or with the client's error.
   *
   * @example
   * ```ts ignore
   * import { RedisTransport } from "./transport.ts";
   * const bus = await RedisTransport.connect({
   *   url: "rediss://warp:secret@redis.internal:6380",
   *   client: { socket: { tls: true, ca: "-----BEGIN CERTIFICATE-----..." } },
   * });
   * await bus.close();
   * ```
   */
  static async connect(options: RedisTransportOptions = {}): Promise<RedisTransport> {
    const {
      url,
      client,
      redis,
      connectTimeoutMs = CONNECT_TIMEOUT_MS_DEFAULT,
      dropWhileDisconnected,
    } = options ?? {};
    if (redis !== undefined && (url !== undefined || client !== undefined)) {
      throw new TypeError(`Invalid options, give redis alone or url and client: ${describe(url)}`);
    }
    if (url !== undefined && typeof url !== "string") {
      throw new TypeError(`Invalid url: ${describe(url)}`);
    }
    if (redis !== undefined && typeof redis?.duplicate !== "function") {
      throw new TypeError(`Invalid redis client: ${describe(redis)}`);
    }
    if (!Number.isSafeInteger(connectTimeoutMs) || connectTimeoutMs < 1) {
      throw new RangeError(`Invalid connectTimeoutMs: ${describe(connectTimeoutMs)}`);
    }
    const publisher = redis ??
      (createClient({
        ...client,
        ...(url !== undefined && { url }),
      }) as unknown as RedisClientLike);
    const subscriber = publisher.duplicate();
    const owned = redis === undefined ? [publisher, subscriber] : [subscriber];
    const lastError: { error?: unknown } = {};
    for (const c of owned) c.on("error", (error) => lastError.error = error);
    try {
      await withTimeout(
        async () => {
          for (const c of [publisher, subscriber]) if (!c.isOpen) await c.connect();
          const info = String(await publisher.info("cluster"));
          if (/^cluster_enabled:1\b/m.test(info)) {
            throw new TypeError(
              "Redis runs in cluster mode, which RedisTransport does not support: point it at a standalone Redis or a primary",
            );
          }
        },
        connectTimeoutMs,
        () => {
          const reason = lastError.error === undefined
            ? "no answer"
            : describeError(lastError.error);
          return new WarpError(
            "TIMEOUT",
            `Redis did not connect within ${connectTimeoutMs} ms: ${reason}`,
            {
              cause: lastError.error,
            },
          );
        },
      );
    } catch (error) {
      for (const c of owned) c.destroy();
      throw error;
    }
    return new RedisTransport(publisher, subscriber, redis === undefined, {
      dropWhileDisconnected,
    });
  }

  private constructor(
    publisher: RedisClientLike,
    subscriber: RedisClientLike,
    ownsPublisher: boolean,
    options: BusOptions,
  ) {
    super("Redis bus", REDIS_MESSAGE_BYTES_MAX, options);
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#ownsPublisher = ownsPublisher;
    const update = () => this.setConnected(publisher.isReady && subscriber.isReady);
    for (const c of [publisher, subscriber]) {
      for (const event of ["ready", "end", "reconnecting"]) c.on(event, update);
      // Without a listener node-redis would throw the error out of an event emitter.
      c.on("error", update);
    }
  }

  /**
   * Resolves once every subscription made so far is in place on the server.
   *
   * @example
   * ```ts ignore
   * import { RedisTransport } from "./transport.ts";
   * const bus = await RedisTransport.connect();
   * bus.subscribe("warp.demo.all", () => {});
   * await bus.ready;
   * await bus.close();
   * ```
   */
  get ready(): Promise<void> {
    return Promise.all(this.#subscribing).then(() => {});
  }

  /** Publishes `data` on `subject`'s channel. */
  protected send(subject: string, data: Uint8Array): void {
    // node-redis takes strings or Buffers only (anything else throws later, out of reach).
    const message = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#publisher.publish(subject, message).then(
      () => this.published(),
      (error) => this.publishFailed(subject, error),
    );
  }

  /** Subscribes to `subject`'s channel. */
  protected open(subject: string): void {
    const listener = (message: Buffer) =>
      this.deliver(subject, new Uint8Array(message.buffer, message.byteOffset, message.length));
    this.#listeners.set(subject, listener);
    const subscribing = this.#subscriber.subscribe(subject, listener, true).catch(() => {
      // Not subscribed now: node-redis subscribes again when it reconnects.
    });
    this.#subscribing.add(subscribing);
    subscribing.finally(() => this.#subscribing.delete(subscribing));
  }

  /** Unsubscribes from `subject`'s channel. */
  protected shut(subject: string): void {
    const listener = this.#listeners.get(subject);
    this.#listeners.delete(subject);
    if (listener !== undefined) {
      this.#subscriber.unsubscribe(subject, listener, true).catch(() => {});
    }
  }

  /** Closes the subscriber and, if the transport opened it, the publisher. */
  protected end(): Promise<void> {
    this.#subscriber.destroy();
    if (this.#ownsPublisher) this.#publisher.destroy();
    return Promise.resolve();
  }
}
