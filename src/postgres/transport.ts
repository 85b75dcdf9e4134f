/**
 * A {@linkcode Transport} over PostgreSQL `LISTEN`/`NOTIFY`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { WarpError } from "../core/errors.ts";
import { type BusOptions, ChannelBus } from "../transport/_channel_bus.ts";
import {
  checkReachable,
  openClient,
  type OpenedClient,
  type PostgresConnectionOptions,
  serverOf,
  withConnectDeadline,
} from "./_client.ts";
import { PostgresListener } from "./_listener.ts";

/**
 * The largest message {@linkcode PostgresTransport} sends, in bytes: 5997. A notification's
 * payload must be shorter than 8000 bytes, and a message travels as base64 (4 characters
 * per 3 bytes), since a payload is text and a message is binary. Warp's invalidations fit
 * with room to spare (a key of 1024 characters is at most 3072 bytes); a heartbeat grows
 * with the cluster (about 26 bytes per member with Warp's default node ids), so the bus
 * suits clusters of up to about 200 nodes.
 */
export const POSTGRES_MESSAGE_BYTES_MAX = 5997;

/** The most messages waiting to be sent; beyond it a publish fails (counted, reported). */
export const POSTGRES_PUBLISH_QUEUE_MAX = 4096;

/** Notifications sent in one statement (one transaction: one commit for all of them). */
const NOTIFY_BATCH_MAX = 64;
/** Subjects used as channel names as they are; others are hashed. */
const PLAIN_CHANNEL = /^[A-Za-z0-9_.-]{1,63}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Options of {@linkcode PostgresTransport.connect}. */
export interface PostgresTransportOptions extends PostgresConnectionOptions, BusOptions {}

/**
 * The channel of a subject: the subject itself when it is a short plain name (so `warp.all`
 * shows as itself in `pg_stat_activity` and `LISTEN`), else `~` and 62 hex digits of its
 * SHA-256. Channel names are at most 63 bytes; `~` never starts a plain one, so the two
 * forms cannot collide.
 */
function channelOf(subject: string): string {
  if (PLAIN_CHANNEL.test(subject)) return subject;
  return `~${createHash("sha256").update(subject).digest("hex").slice(0, 62)}`;
}

/**
 * A {@linkcode Transport} over PostgreSQL `LISTEN`/`NOTIFY`, for clusters whose only shared
 * service is PostgreSQL.
 *
 * - **Channels**: one per subject (the subject itself, or a hash of a long one); a message
 *   travels as the base64 of its bytes. A message over
 *   {@linkcode POSTGRES_MESSAGE_BYTES_MAX} is refused: counted in `stats.oversized` and
 *   reported to `onError` listeners with a `WarpError` of code `VALUE_TOO_LARGE`.
 * - **Publishing** sends every message published in one tick (up to 64) in one
 *   `SELECT pg_notify(…), …` through the client's pool: one commit for all of them. At most
 *   {@linkcode POSTGRES_PUBLISH_QUEUE_MAX} wait; a publish beyond fails (counted).
 * - **Listening** uses a connection of its own, never a pooled one: point the bus at the
 *   server or a session-pooling proxy, **not PgBouncer in transaction mode**, where a
 *   `LISTEN` hears nothing.
 * - **At most once**: notifications sent while the listening connection is down are lost.
 *   The bus reconnects on its own (50 ms to 2 s apart) and reports `"disconnected"` and
 *   `"connected"` to `onStatus` listeners; while it knows it is down it drops what is
 *   published (counted), as Warp prefers a lost message to a late one. Warp's gap rules
 *   and age bounds cover what is lost.
 * - A publisher receives its own broadcasts, as {@linkcode Transport} requires.
 *
 * @example Publish and receive
 * ```ts ignore
 * import { PostgresTransport } from "./transport.ts";
 *
 * const bus = await PostgresTransport.connect({ url: "postgres://postgres@127.0.0.1:5432/test" });
 * const received = new Promise<Uint8Array>((resolve) => bus.subscribe("warp.demo.all", resolve));
 * await bus.ready;
 * bus.publish("warp.demo.all", new Uint8Array([1, 2, 3]));
 * console.log(await received); // Uint8Array(3) [ 1, 2, 3 ]
 * await bus.close();
 * ```
 */
export class PostgresTransport extends ChannelBus {
  readonly #opened: OpenedClient;
  readonly #listener: PostgresListener;
  readonly #subjectOf = new Map<string, string>();
  readonly #queue: { subject: string; channel: string; payload: string }[] = [];
  readonly #listens = new Set<Promise<void>>();
  #flushing = false;

  /**
   * Connects: with `sql` it uses your client (and `close` leaves it open), else it opens one
   * from `url` and `client` options (credentials, `ssl`), passed through to postgres.js.
   * Then it opens its listening connection. Rejects with a `WarpError` of code `TIMEOUT`
   * after `connectTimeoutMs` (default 10 s), or with the client's error.
   *
   * @example
   * ```ts ignore
   * import { PostgresTransport } from "./transport.ts";
   * const bus = await PostgresTransport.connect({
   *   url: "postgres://warp:secret@db.internal:5432/app",
   *   client: { ssl: { ca: "-----BEGIN CERTIFICATE-----..." } },
   *   connectTimeoutMs: 5000,
   * });
   * await bus.close();
   * ```
   */
  static async connect(options: PostgresTransportOptions = {}): Promise<PostgresTransport> {
    const { dropWhileDisconnected, ...connection } = options ?? {};
    const opened = openClient(connection);
    await checkReachable(opened);
    let bus: PostgresTransport | undefined;
    try {
      const listener = await withConnectDeadline(
        opened,
        () =>
          PostgresListener.open(opened.sql, {
            onNotify: (channel, payload) => {
              if (bus !== undefined) bus.#onNotify(channel, payload);
            },
            onStatus: (connected) => bus?.setConnected(connected),
          }),
      );
      bus = new PostgresTransport(opened, listener, { dropWhileDisconnected });
      return bus;
    } catch (error) {
      if (opened.owned) await opened.sql.end({ timeout: 0 }).catch(() => {});
      throw error;
    }
  }

  private constructor(opened: OpenedClient, listener: PostgresListener, options: BusOptions) {
    super("PostgreSQL bus", POSTGRES_MESSAGE_BYTES_MAX, options);
    this.#opened = opened;
    this.#listener = listener;
  }

  /**
   * Resolves once every subscription made so far is listened to by the server: a message
   * published after it reaches them (while the connection holds).
   *
   * @example
   * ```ts ignore
   * import { PostgresTransport } from "./transport.ts";
   * const bus = await PostgresTransport.connect();
   * bus.subscribe("warp.demo.all", () => {});
   * await bus.ready;
   * await bus.close();
   * ```
   */
  get ready(): Promise<void> {
    return Promise.all(this.#listens).then(() => {});
  }

  /** The server, as `host:port/database`, for logs. */
  get server(): string {
    return serverOf(this.#opened.sql);
  }

  /** Sends `data` on `subject`'s channel (`NOTIFY`). */
  protected send(subject: string, data: Uint8Array): void {
    if (this.#queue.length >= POSTGRES_PUBLISH_QUEUE_MAX) {
      this.publishFailed(
        subject,
        new WarpError("LIMIT_EXCEEDED", `Too many messages waiting: ${POSTGRES_PUBLISH_QUEUE_MAX}`),
      );
      return;
    }
    const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
    this.#queue.push({ subject, channel: channelOf(subject), payload });
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  /** Starts listening to `subject`'s channel (`LISTEN`). */
  protected open(subject: string): void {
    const channel = channelOf(subject);
    this.#subjectOf.set(channel, subject);
    const listening = this.#listener.listen(channel).catch(() => {});
    this.#listens.add(listening);
    listening.finally(() => this.#listens.delete(listening));
  }

  /** Stops listening to `subject`'s channel (`UNLISTEN`). */
  protected shut(subject: string): void {
    const channel = channelOf(subject);
    this.#subjectOf.delete(channel);
    this.#listener.unlisten(channel);
  }

  /** Ends the listener connection and, if the transport opened it, the client. */
  protected async end(): Promise<void> {
    await this.#listener.close();
    if (this.#opened.owned) await this.#opened.sql.end({ timeout: 1 });
  }

  /** Sends what is queued, a batch per statement, until the queue is empty. */
  async #flush(): Promise<void> {
    const sql = this.#opened.sql;
    while (this.#queue.length > 0 && !this.closed) {
      const batch = this.#queue.splice(0, NOTIFY_BATCH_MAX);
      const calls = batch.map((_, i) => `pg_notify($${2 * i + 1}, $${2 * i + 2})`);
      const parameters = batch.flatMap((m) => [m.channel, m.payload]);
      try {
        await sql.unsafe(`SELECT ${calls.join(", ")}`, parameters);
        for (const _ of batch) this.published();
      } catch (error) {
        for (const message of batch) this.publishFailed(message.subject, error);
      }
    }
    this.#flushing = false;
  }

  #onNotify(channel: string, payload: string): void {
    const subject = this.#subjectOf.get(channel);
    if (subject === undefined) return;
    if (!BASE64.test(payload)) {
      this.stats.malformed++;
      return;
    }
    const bytes = Buffer.from(payload, "base64");
    this.deliver(subject, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
}
