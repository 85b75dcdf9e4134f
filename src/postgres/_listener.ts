/**
 * Private: one dedicated PostgreSQL connection holding `LISTEN`s, for the bus
 * ({@linkcode PostgresTransport}) and the coordinator's watches. postgres.js's own
 * `sql.listen` re-listens after a lost connection but swallows a failed attempt, and then
 * never tries again; this one retries with a capped backoff until it is back, says when it
 * is down and up (`onStatus`), and tells its owner after every reconnect (`onRelisten`) so
 * that it can catch up on what it missed: notifications are at most once, and those sent
 * while a listener is away are gone.
 *
 * A `LISTEN` must stay on one session: a direct connection or a session-pooled one, never
 * PgBouncer in transaction mode (the listener would silently hear nothing).
 *
 * @module
 */

import type postgres from "postgres";
import { unrefTimer } from "../_wake_timer.ts";
import { dedicatedClient, type PostgresSql } from "./_client.ts";

/** The most channels one listener holds. */
export const CHANNELS_MAX = 10_000;
/** The first and the longest wait between reconnect attempts. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 2000;

/** What a {@linkcode PostgresListener} calls. */
export interface ListenerHandlers {
  /** A notification on a channel this listener holds. */
  readonly onNotify: (channel: string, payload: string) => void;
  /** The connection was lost (`false`), or is back with every channel listened again (`true`). */
  readonly onStatus: (connected: boolean) => void;
}

/** Quotes a channel name as an SQL identifier (it may hold any character but NUL). */
function quoteChannel(channel: string): string {
  return `"${channel.replaceAll('"', '""')}"`;
}

/** A dedicated `LISTEN` connection that reconnects on its own. See the module's doc. */
export class PostgresListener {
  readonly #client: postgres.Sql;
  readonly #handlers: ListenerHandlers;
  readonly #channels = new Set<string>();
  #connected = false;
  #closed = false;
  #retryMs = RETRY_FIRST_MS;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnecting = false;

  /** Opens the connection on the server of `sql` and listens to nothing yet. */
  static async open(sql: PostgresSql, handlers: ListenerHandlers): Promise<PostgresListener> {
    const listener = new PostgresListener(sql, handlers);
    try {
      await listener.#client`SELECT 1`;
    } catch (error) {
      await listener.close();
      throw error;
    }
    listener.#connected = true;
    return listener;
  }

  private constructor(sql: PostgresSql, handlers: ListenerHandlers) {
    this.#handlers = handlers;
    this.#client = dedicatedClient(sql, {
      onnotify: (channel, payload) => {
        if (this.#channels.has(channel)) this.#handlers.onNotify(channel, payload);
      },
      onclose: () => this.#lost(),
    });
  }

  /** Whether the connection is up with every channel listened. */
  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /**
   * Adds a channel; resolves once the server listens to it (at once while disconnected: the
   * reconnect will). Throws a `RangeError` beyond {@linkcode CHANNELS_MAX} channels.
   */
  async listen(channel: string): Promise<void> {
    if (this.#channels.has(channel) || this.#closed) return;
    if (this.#channels.size >= CHANNELS_MAX) {
      throw new RangeError(`Too many channels: ${CHANNELS_MAX}`);
    }
    this.#channels.add(channel);
    if (!this.#connected) return;
    try {
      await this.#client.unsafe(`LISTEN ${quoteChannel(channel)}`);
    } catch {
      this.#lost(); // the reconnect listens to every channel again
    }
  }

  /** Removes a channel (nothing more is heard on it). */
  unlisten(channel: string): void {
    if (!this.#channels.delete(channel) || !this.#connected) return;
    this.#client.unsafe(`UNLISTEN ${quoteChannel(channel)}`).catch(() => this.#lost());
  }

  /** Ends the connection; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#channels.clear();
    await this.#client.end({ timeout: 1 }).catch(() => {});
  }

  #lost(): void {
    if (this.#closed) return;
    if (this.#connected) {
      this.#connected = false;
      this.#handlers.onStatus(false);
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnecting || this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#reconnect();
    }, this.#retryMs);
    unrefTimer(this.#retryTimer);
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
  }

  /** Listens to every channel again, in one statement, on a new connection. */
  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    this.#reconnecting = true;
    const statement = [...this.#channels].map((c) => `LISTEN ${quoteChannel(c)};`).join(" ");
    try {
      await this.#client.unsafe(statement.length === 0 ? "SELECT 1" : statement);
      this.#reconnecting = false;
      if (this.#closed) return;
      this.#retryMs = RETRY_FIRST_MS;
      this.#connected = true;
      this.#handlers.onStatus(true);
    } catch {
      this.#reconnecting = false;
      this.#scheduleReconnect();
    }
  }
}
