/**
 * Private: how the PostgreSQL adapters (store, coordinator, bus) get their postgres.js
 * client. One place for the three ways a user can hand one over (a URL, a client already
 * made, or postgres.js options passed through unchanged), for the connect deadline every
 * one of them honours, for the dedicated connection a `LISTEN` needs, and for the lock
 * that keeps concurrent `CREATE TABLE IF NOT EXISTS` from colliding.
 *
 * @module
 */

import postgres from "postgres";
import { describe } from "../_describe.ts";
import { WarpError } from "../core/errors.ts";
import { withTimeout } from "../_wake_timer.ts";

/** A postgres.js client, as `postgres(url)` returns it. */
export type PostgresSql = postgres.Sql;

/** postgres.js client options (`ssl`, `user`, `password`, `host`, `max`, ...). */
// deno-lint-ignore ban-types
export type PostgresClientOptions = postgres.Options<{}>;

/** How a PostgreSQL adapter reaches the server. Give `sql`, or `url` and/or `client`. */
export interface PostgresConnectionOptions {
  /**
   * A connection URL, e.g. `postgres://user:secret@db.internal:5432/app?sslmode=require`; the
   * adapter opens (and its `close` ends) its own client.
   * @default {undefined} postgres.js reads the `PG*` environment variables
   */
  readonly url?: string;
  /**
   * postgres.js options for the client the adapter opens, passed through unchanged (with
   * `url` or alone): credentials, `ssl` (TLS options or `"require"`), `max`, ... The
   * adapter's defaults differ from postgres.js's in `connect_timeout` (from
   * `connectTimeoutMs`) and `backoff` (50 ms doubling to 1 s between reconnects, where
   * postgres.js's grows to 20 s).
   * @default {undefined}
   */
  readonly client?: PostgresClientOptions;
  /**
   * A client you made; the adapter's `close` leaves it open. Not with `url` or `client`.
   * Give it a short `backoff` (postgres.js's default waits up to 20 s between reconnects
   * after an outage; see `reconnectBackoff`).
   * @default {undefined}
   */
  readonly sql?: PostgresSql;
  /**
   * How long opening may take, the first answer of the server included, before it rejects
   * with a `WarpError` of code `TIMEOUT` (an unroutable host otherwise hangs for
   * postgres.js's 30 s `connect_timeout`, or forever on a server that accepts and never
   * answers). Also the `connect_timeout` of a client the adapter opens, unless `client`
   * sets one.
   * @default {10000}
   */
  readonly connectTimeoutMs?: number;
}

/** The default {@linkcode PostgresConnectionOptions.connectTimeoutMs}. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 10_000;

/** A client and whether the adapter opened it (and so must end it). */
export interface OpenedClient {
  readonly sql: PostgresSql;
  readonly owned: boolean;
  readonly connectTimeoutMs: number;
}

/** Client options of every client an adapter opens: no notices on stdout. */
const QUIET = { onnotice: () => {} };

/**
 * The wait before a client reconnects after its `n`-th failed connection in a row, in
 * seconds (postgres.js's unit): 50 ms doubling up to 1 s. postgres.js's own grows to 20 s,
 * so after a restart of a few seconds a node would wait many more for its next connection
 * while every call timed out; Warp's calls have their own deadlines and would rather try
 * again soon.
 */
export function reconnectBackoff(n: number): number {
  return Math.min(0.05 * 2 ** Math.max(0, n - 1), 1);
}

/** Validates the options and makes (without connecting) the client they describe. */
export function openClient(options: PostgresConnectionOptions): OpenedClient {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Invalid options: ${describe(options)}`);
  }
  const { url, sql, client, connectTimeoutMs = CONNECT_TIMEOUT_MS_DEFAULT } = options;
  if (sql !== undefined && (url !== undefined || client !== undefined)) {
    throw new TypeError(`Invalid options, give sql alone or url and client: ${describe(url)}`);
  }
  if (url !== undefined && typeof url !== "string") {
    throw new TypeError(`Invalid url: ${describe(url)}`);
  }
  if (sql !== undefined && typeof sql !== "function") {
    throw new TypeError(`Invalid sql: ${describe(sql)}`);
  }
  if (client !== undefined && (client === null || typeof client !== "object")) {
    throw new TypeError(`Invalid client options: ${describe(client)}`);
  }
  if (!Number.isSafeInteger(connectTimeoutMs) || connectTimeoutMs < 1) {
    throw new RangeError(`Invalid connectTimeoutMs: ${describe(connectTimeoutMs)}`);
  }
  if (sql !== undefined) return { sql, owned: false, connectTimeoutMs };
  const clientOptions = {
    ...QUIET,
    connect_timeout: Math.ceil(connectTimeoutMs / 1000),
    backoff: reconnectBackoff,
    ...client,
  };
  const made = url === undefined ? postgres(clientOptions) : postgres(url, clientOptions);
  return { sql: made, owned: true, connectTimeoutMs };
}

/**
 * Resolves once the server has answered `SELECT 1`; rejects with a `WarpError` of code
 * `TIMEOUT` if that takes longer than `connectTimeoutMs`, or with the client's error.
 * An owned client is ended on failure.
 */
export async function checkReachable(opened: OpenedClient): Promise<void> {
  try {
    await withConnectDeadline(opened, () => opened.sql`SELECT 1`.execute());
  } catch (error) {
    if (opened.owned) await opened.sql.end({ timeout: 0 }).catch(() => {});
    throw error;
  }
}

/**
 * Runs one step of opening an adapter (a first query, a `LISTEN` connection) under the
 * connect deadline: rejects with a `WarpError` of code `TIMEOUT` once `connectTimeoutMs`
 * has passed, leaving the step to settle (or fail) on its own.
 */
export function withConnectDeadline<R>(opened: OpenedClient, step: () => Promise<R>): Promise<R> {
  const { sql, connectTimeoutMs } = opened;
  return withTimeout(
    step,
    connectTimeoutMs,
    () =>
      new WarpError(
        "TIMEOUT",
        `PostgreSQL did not answer within ${connectTimeoutMs} ms: ${serverOf(sql)}`,
      ),
  );
}

/** `host:port/database` of a client, for messages; never the password. */
export function serverOf(sql: PostgresSql): string {
  const { host, port, database } = sql.options as {
    host?: unknown;
    port?: unknown;
    database?: unknown;
  };
  const hosts = Array.isArray(host) ? host : [host];
  const ports = Array.isArray(port) ? port : [port];
  return `${hosts.map((h, i) => `${h}:${ports[i] ?? ports[0]}`).join(",")}/${database}`;
}

/**
 * A client of one connection to the same server with the same credentials and TLS, for a
 * `LISTEN` (which must stay on one session) — never a pooled connection. Reads the options
 * postgres.js parsed, as its own `listen` does.
 */
export function dedicatedClient(
  sql: PostgresSql,
  handlers: { onnotify: (channel: string, payload: string) => void; onclose: () => void },
): PostgresSql {
  return postgres({
    ...(sql.options as unknown as PostgresClientOptions),
    ...QUIET,
    max: 1,
    idle_timeout: null,
    max_lifetime: null,
    fetch_types: false,
    backoff: reconnectBackoff,
    onnotify: handlers.onnotify,
    onclose: handlers.onclose,
  } as unknown as PostgresClientOptions);
}

/**
 * Runs `ddl` in a transaction that first takes a transaction-level advisory lock named
 * after `name`, so that nodes starting together create their objects one after the
 * other: concurrent `CREATE TABLE IF NOT EXISTS` of one table otherwise fails with
 * `23505 duplicate key value violates unique constraint "pg_type_typname_nsp_index"`
 * (both see the table absent, both insert its row type). The lock ends with the
 * transaction, so it survives neither a lost connection nor a pooler's reassignment.
 */
export async function withDdlLock(
  sql: PostgresSql,
  name: string,
  ddl: (tx: postgres.TransactionSql) => Promise<void>,
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`warp-ddl:${name}`}, 0))`;
    await ddl(tx);
  });
}
