/**
 * A {@linkcode Coordinator} in a PostgreSQL table.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type postgres from "postgres";
import { describe, describeError } from "../_describe.ts";
import { unrefTimer, withTimeout } from "../_wake_timer.ts";
import { assert, WarpError } from "../core/errors.ts";
import { coordinatorKeyProblem } from "../coordinator.ts";
import type { Coordinator, CoordinatorCallOptions, CoordinatorEntry } from "../coordinator.ts";
import {
  checkReachable,
  openClient,
  type OpenedClient,
  type PostgresConnectionOptions,
  withConnectDeadline,
  withDdlLock,
} from "./_client.ts";
import { PostgresListener } from "./_listener.ts";

/** Called by {@linkcode PostgresCoordinator.watch} with the new entry, or `undefined` on a delete. */
export type PostgresWatchListener = (entry: CoordinatorEntry | undefined) => void;

/** Options of {@linkcode PostgresCoordinator.connect}. */
export interface PostgresCoordinatorOptions extends PostgresConnectionOptions {
  /**
   * The table: a lower-case SQL identifier matching `/^[a-z_][a-z0-9_]{0,62}$/`. Also the
   * channel its watches listen on. One table per cluster (or share one with distinct Warp
   * prefixes).
   * @default {"warp_coordinator"}
   */
  readonly table?: string;
  /**
   * Create the table (and its revision counter row) if they do not exist, under a lock, so
   * that nodes starting together do not collide.
   * @default {false}
   */
  readonly createTable?: boolean;
  /**
   * How long one call may take before it rejects with `COORDINATOR_UNAVAILABLE` (the
   * statement may still run, and a write may still happen). Keep it well below Warp's
   * operation deadlines (5 s by default).
   * @default {1000}
   */
  readonly timeoutMs?: number;
  /**
   * The most watch listeners registered at once.
   * @default {10000}
   */
  readonly watchersMax?: number;
  /**
   * The largest value written, in bytes; a larger one is refused with a `RangeError`.
   * @default {1048576}
   */
  readonly valueBytesMax?: number;
  /**
   * How often expired TTL records (which already read as absent) are deleted, 1000 at a
   * time, in milliseconds; 0 never. Safe while nodes run: revisions come from the counter,
   * never from the rows.
   * @default {60000}
   */
  readonly expiredSweepMs?: number;
}

const TABLE_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
const SWEEP_BATCH_MAX = 1000;
/** A value shorter than this travels in its watch notification; a longer one is read. */
const NOTIFY_VALUE_BYTES_MAX = 5000;

interface Watcher {
  readonly key: string;
  /** The hex SHA-256 of the key, as notifications name it. */
  readonly digest: string;
  readonly listener: PostgresWatchListener;
  /** The revision of the last change reported (0: none yet). */
  revision: number;
  /** Whether the last change reported was a write (`false`: a delete; `undefined`: none). */
  present: boolean | undefined;
}

/**
 * A {@linkcode Coordinator} in one PostgreSQL table: compare-and-set registers, for a
 * cluster whose only shared service is PostgreSQL.
 *
 * ```sql
 * CREATE TABLE warp_coordinator (
 *   ttl_ms     bigint NOT NULL,   -- the key space: 0 without a TTL, -1 the revision counter
 *   digest     bytea  NOT NULL,   -- SHA-256 of the key (a key may be longer than an index entry)
 *   key        text   NOT NULL,
 *   value      bytea  NOT NULL,
 *   revision   bigint NOT NULL,
 *   expires_at timestamptz,       -- NULL without a TTL
 *   PRIMARY KEY (ttl_ms, digest)
 * );
 * -- and one row, the revision counter: (-1, '', '', '', 0, NULL)
 * ```
 *
 * - **Revisions** come from the counter row: every write (a delete too) is one statement
 *   that first increments it, and holds its row lock until it commits. So revisions
 *   increase across all keys **in the order the writes take effect**, which the session
 *   protocol relies on when it compares revisions of different records. (A sequence would
 *   not do: `nextval` is drawn before the commit, so two writes of different keys can
 *   become visible in the other order. The price is that writes are serialised — one
 *   commit at a time; see `docs/deploy-postgres.md` for the figures.)
 * - **Compare-and-set** is one statement: an `UPDATE … WHERE revision = $n` (or an
 *   `INSERT … ON CONFLICT`), correct under `READ COMMITTED` because PostgreSQL re-checks
 *   the row after taking its lock. A lost race rejects with `CONTENDED`.
 * - **TTL records** (`ttlMs`) live in a key space of their own per TTL, and expire by the
 *   **database's clock** (`clock_timestamp()`): a record past its TTL reads as absent, an
 *   update of it is `CONTENDED`, and a create over it succeeds. A step of that clock moves
 *   lease expiries. Expired rows are deleted in the background (`expiredSweepMs`).
 * - **Watches** ride on `LISTEN`/`NOTIFY` (the channel is the table's name), on a
 *   connection of their own: a direct or session-pooled connection, not PgBouncer in
 *   transaction mode. Notifications are sent by the writing statement and delivered at its
 *   commit, in commit order. After a lost connection the coordinator listens again and
 *   reports each watched key's current state once if it may have changed meanwhile.
 * - **Linearizable on one primary**: every call goes to the server the client points at.
 *   Point it at the primary, never a replica. After an asynchronous failover, writes the
 *   old primary acknowledged but did not ship are lost: revisions can be reissued and a
 *   released lock or a renewed session can come back; use synchronous replication
 *   (`synchronous_commit = remote_apply`, or `on` with a synchronous standby) if the
 *   coordinator must survive a failover.
 * - **Errors**: a create of an existing key, or an update/delete whose revision moved,
 *   rejects with `CONTENDED`; anything else (a timeout, a lost connection, a missing
 *   table) with `COORDINATOR_UNAVAILABLE`, the client's error as `cause`. For a write,
 *   `COORDINATOR_UNAVAILABLE` does not prove that it did not happen.
 * - Advisory locks are not used: they die silently with their connection and break under
 *   transaction pooling.
 *
 * @example Compare-and-set
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { PostgresCoordinator } from "./coordinator.ts";
 *
 * const coordinator = await PostgresCoordinator.connect({
 *   url: "postgres://postgres@127.0.0.1:5432/test",
 *   createTable: true,
 * });
 * const revision = await coordinator.create("lock:orders", new Uint8Array([1]));
 * await coordinator.update("lock:orders", new Uint8Array([2]), revision);
 * await assert.rejects(coordinator.update("lock:orders", new Uint8Array([3]), revision), {
 *   name: "WarpError",
 *   code: "CONTENDED",
 * });
 * await coordinator.delete("lock:orders");
 * await coordinator.close();
 * ```
 */
export class PostgresCoordinator implements Coordinator {
  readonly #opened: OpenedClient;
  readonly #table: string;
  readonly #timeoutMs: number;
  readonly #watchersMax: number;
  readonly #valueBytesMax: number;
  readonly #watchers = new Map<string, Set<Watcher>>();
  #watcherCount = 0;
  #listener: Promise<PostgresListener> | undefined;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /**
   * Connects (with `sql` it uses your client, and `close` leaves it open; else it opens
   * one from `url` and `client`, passed through to postgres.js), creates the table if
   * asked, and checks it. Rejects with a `WarpError` of code `TIMEOUT` after
   * `connectTimeoutMs`, with `COORDINATOR_UNAVAILABLE` if the table is missing or is not a
   * coordinator's, or with the client's error.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({
   *   url: "postgres://warp:secret@db.internal:5432/app",
   *   client: { ssl: "require" },
   *   table: "warp_coordinator",
   *   createTable: true,
   * });
   * await coordinator.close();
   * ```
   */
  static async connect(options: PostgresCoordinatorOptions = {}): Promise<PostgresCoordinator> {
    const {
      table = "warp_coordinator",
      createTable = false,
      timeoutMs = 1000,
      watchersMax = 10_000,
      valueBytesMax = 1024 * 1024,
      expiredSweepMs = 60_000,
      ...connection
    } = options ?? {};
    if (typeof table !== "string" || !TABLE_PATTERN.test(table)) {
      throw new TypeError(`Invalid table: ${describe(table)}`);
    }
    for (
      const [name, value, min] of [
        ["timeoutMs", timeoutMs, 1],
        ["watchersMax", watchersMax, 1],
        ["valueBytesMax", valueBytesMax, 1],
        ["expiredSweepMs", expiredSweepMs, 0],
      ] as const
    ) {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new RangeError(`Invalid ${name}: ${describe(value)}`);
      }
    }
    const opened = openClient(connection);
    await checkReachable(opened);
    const coordinator = new PostgresCoordinator(
      opened,
      table,
      timeoutMs,
      watchersMax,
      valueBytesMax,
    );
    try {
      await withConnectDeadline(opened, () => coordinator.#prepare(createTable));
    } catch (error) {
      await coordinator.close();
      if (error instanceof WarpError) throw error;
      throw new WarpError(
        "COORDINATOR_UNAVAILABLE",
        `Coordinator table cannot be used (${describeError(error)}): ${table}`,
        { cause: error },
      );
    }
    if (expiredSweepMs > 0) {
      coordinator.#sweepTimer = setInterval(
        () => void coordinator.sweepExpired().catch(() => {}),
        expiredSweepMs,
      );
      unrefTimer(coordinator.#sweepTimer);
    }
    return coordinator;
  }

  private constructor(
    opened: OpenedClient,
    table: string,
    timeoutMs: number,
    watchersMax: number,
    valueBytesMax: number,
  ) {
    this.#opened = opened;
    this.#table = table;
    this.#timeoutMs = timeoutMs;
    this.#watchersMax = watchersMax;
    this.#valueBytesMax = valueBytesMax;
  }

  /** The table's name. */
  get table(): string {
    return this.#table;
  }

  /**
   * Reads a key: its value and revision, or `undefined` if it is absent or expired.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({ createTable: true });
   * console.log(await coordinator.get("missing")); // undefined
   * await coordinator.close();
   * ```
   */
  async get(key: string, options?: CoordinatorCallOptions): Promise<CoordinatorEntry | undefined> {
    const digest = digestOf(key);
    const ttlMs = ttlOf(options);
    const rows = await this.#call("get", key, (sql, t) =>
      sql`
        SELECT value, revision FROM ${t}
        WHERE ttl_ms = ${ttlMs}::bigint AND digest = ${digest}::bytea
          AND (expires_at IS NULL OR expires_at > clock_timestamp())`);
    const row = rows[0];
    if (row === undefined) return undefined;
    return { value: copyOf(row.value), revision: toRevision(row.revision) };
  }

  /**
   * Creates a key that must be absent (never written, deleted, or expired) and returns its
   * revision; rejects with `CONTENDED` if the key exists.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({ createTable: true });
   * const revision = await coordinator.create("lease/1", new Uint8Array([1]), { ttlMs: 5000 });
   * console.log(revision > 0); // true
   * await coordinator.close();
   * ```
   */
  async create(key: string, value: Uint8Array, options?: CoordinatorCallOptions): Promise<number> {
    const digest = digestOf(key);
    this.#checkValue(value);
    const ttlMs = ttlOf(options);
    const rows = await this.#call("create", key, (sql, t) =>
      sql`
        WITH tick AS (${this.#tick(sql, t)}), w AS (
          INSERT INTO ${t} AS c (ttl_ms, digest, key, value, revision, expires_at)
          SELECT ${ttlMs}::bigint, ${digest}::bytea, ${key}::text, ${value}::bytea, tick.revision,
                 ${expiry(sql, ttlMs)}
          FROM tick
          ON CONFLICT (ttl_ms, digest) DO UPDATE
            SET key = excluded.key, value = excluded.value, revision = excluded.revision,
                expires_at = excluded.expires_at
            WHERE c.expires_at IS NOT NULL AND c.expires_at <= clock_timestamp()
          RETURNING c.revision
        )
        SELECT w.revision ${this.#notify(sql, ttlMs, digest, value)} FROM w`);
    if (rows[0] === undefined) {
      throw new WarpError("CONTENDED", `Key already exists: ${describe(key)}`);
    }
    return toRevision(rows[0].revision);
  }

  /**
   * Replaces a key whose revision is `revision` and returns the new revision; rejects with
   * `CONTENDED` if the key is absent (or expired) or its revision moved.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({ createTable: true });
   * const first = await coordinator.create("k", new Uint8Array([1]));
   * console.log(await coordinator.update("k", new Uint8Array([2]), first) > first); // true
   * await coordinator.delete("k");
   * await coordinator.close();
   * ```
   */
  async update(
    key: string,
    value: Uint8Array,
    revision: number,
    options?: CoordinatorCallOptions,
  ): Promise<number> {
    const digest = digestOf(key);
    this.#checkValue(value);
    checkRevision(revision);
    const ttlMs = ttlOf(options);
    // The one-time filter on the counter makes the statement take the counter's lock
    // before the row's, as creates do: one order for every writer, so no deadlock.
    const rows = await this.#call("update", key, (sql, t) =>
      sql`
        WITH tick AS (${this.#tick(sql, t)}), w AS (
          UPDATE ${t} AS c
          SET value = ${value}::bytea, revision = (SELECT revision FROM tick),
              expires_at = ${expiry(sql, ttlMs)}
          WHERE (SELECT revision FROM tick) IS NOT NULL
            AND c.ttl_ms = ${ttlMs}::bigint AND c.digest = ${digest}::bytea
            AND c.revision = ${revision}::bigint
            AND (c.expires_at IS NULL OR c.expires_at > clock_timestamp())
          RETURNING c.revision
        )
        SELECT w.revision ${this.#notify(sql, ttlMs, digest, value)} FROM w`);
    if (rows[0] === undefined) {
      throw new WarpError(
        "CONTENDED",
        `Revision moved on key ${describe(key)}: expected ${revision}`,
      );
    }
    return toRevision(rows[0].revision);
  }

  /**
   * Deletes a key. Without `revision` it always succeeds (also for an absent key); with
   * one, it rejects with `CONTENDED` if the key is absent or its revision moved.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({ createTable: true });
   * await coordinator.delete("never-written");
   * await coordinator.close();
   * ```
   */
  async delete(key: string, revision?: number): Promise<void> {
    const digest = digestOf(key);
    if (revision !== undefined) checkRevision(revision);
    const head = `${digest.toString("hex")} `;
    const rows = await this.#call("delete", key, (sql, t) =>
      sql`
        WITH tick AS (${this.#tick(sql, t)}), w AS (
          DELETE FROM ${t} AS c
          WHERE (SELECT revision FROM tick) IS NOT NULL AND c.ttl_ms = 0 AND c.digest = ${digest}::bytea
            ${revision === undefined ? sql`` : sql`AND c.revision = ${revision}::bigint`}
          RETURNING c.key
        )
        SELECT pg_notify(${this.#table}::text, ${head}::text || (SELECT revision FROM tick) || ' -')
        FROM w`);
    if (revision !== undefined && rows.length === 0) {
      throw new WarpError(
        "CONTENDED",
        `Revision moved on key ${describe(key)}: expected ${revision}`,
      );
    }
  }

  /**
   * Calls `listener` after every later write of `key` (records without a TTL): with the new
   * entry, or `undefined` when it is deleted, in revision order. Resolves once the watch is
   * in place (to watch without missing a change: watch first, then `get`) to a function
   * that stops the calls. A listener that throws is not stopped. Changes made while the
   * listening connection is down are not reported one by one: once it is back, the key's
   * current state is reported if it may have changed.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({ createTable: true });
   * const stop = await coordinator.watch("lock:orders", (entry) => {
   *   if (entry === undefined) console.log("released");
   * });
   * stop();
   * await coordinator.close();
   * ```
   */
  async watch(key: string, listener: PostgresWatchListener): Promise<() => void> {
    const digest = digestOf(key).toString("hex");
    if (typeof listener !== "function") {
      throw new TypeError(`Invalid listener: ${describe(listener)}`);
    }
    if (this.#watcherCount >= this.#watchersMax) {
      throw new RangeError(`Too many watchers: ${this.#watchersMax}`);
    }
    if (this.#closed) throw new WarpError("CLOSED", `Coordinator is closed: ${describe(key)}`);
    try {
      const connection = await this.#listening();
      await connection.listen(this.#table);
    } catch (error) {
      throw this.#unavailable("watch", key, error);
    }
    const watcher: Watcher = { key, digest, listener, revision: 0, present: undefined };
    let watchers = this.#watchers.get(digest);
    if (watchers === undefined) this.#watchers.set(digest, watchers = new Set());
    watchers.add(watcher);
    this.#watcherCount++;
    return () => {
      const current = this.#watchers.get(digest);
      if (current === undefined || !current.delete(watcher)) return;
      this.#watcherCount--;
      if (current.size === 0) this.#watchers.delete(digest);
    };
  }

  /**
   * Deletes expired TTL records, at most 1000, and resolves to how many. The coordinator
   * does it every `expiredSweepMs`; nodes sweeping at once skip each other's rows.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({ createTable: true });
   * console.log(await coordinator.sweepExpired()); // 0
   * await coordinator.close();
   * ```
   */
  async sweepExpired(): Promise<number> {
    const rows = await this.#call("sweep", this.#table, (sql, t) =>
      sql`
        DELETE FROM ${t}
        WHERE (ttl_ms, digest) IN (
          SELECT ttl_ms, digest FROM ${t}
          WHERE ttl_ms > 0 AND expires_at <= clock_timestamp()
          LIMIT ${SWEEP_BATCH_MAX}::int FOR UPDATE SKIP LOCKED
        ) AND expires_at <= clock_timestamp()
        RETURNING ttl_ms`);
    return rows.length;
  }

  /**
   * Stops every watch, the sweep and the listening connection, and ends the client if the
   * coordinator opened it. Idempotent.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect();
   * await coordinator.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    this.#watchers.clear();
    this.#watcherCount = 0;
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.then((l) => l.close(), () => {});
    if (this.#opened.owned) await this.#opened.sql.end({ timeout: 1 });
  }

  /**
   * Drops the table and everything in it, then closes: for tests and teardown.
   *
   * @example
   * ```ts ignore
   * import { PostgresCoordinator } from "./coordinator.ts";
   * const coordinator = await PostgresCoordinator.connect({ table: "warp_scratch", createTable: true });
   * await coordinator.destroy();
   * ```
   */
  async destroy(): Promise<void> {
    const sql = this.#opened.sql;
    try {
      await sql`DROP TABLE IF EXISTS ${sql(this.#table)}`;
    } finally {
      await this.close();
    }
  }

  /** Creates the table if asked (under the DDL lock), then checks it has its counter. */
  async #prepare(createTable: boolean): Promise<void> {
    const sql = this.#opened.sql;
    const t = sql(this.#table);
    if (createTable) {
      await withDdlLock(sql, this.#table, async (tx) => {
        await tx`
          CREATE TABLE IF NOT EXISTS ${t} (
            ttl_ms bigint NOT NULL CHECK (ttl_ms >= -1),
            digest bytea NOT NULL,
            key text NOT NULL,
            value bytea NOT NULL,
            revision bigint NOT NULL,
            expires_at timestamptz,
            PRIMARY KEY (ttl_ms, digest)
          )`;
        await tx`
          INSERT INTO ${t} (ttl_ms, digest, key, value, revision)
          VALUES (-1, ''::bytea, '', ''::bytea, 0)
          ON CONFLICT DO NOTHING`;
      });
    }
    const rows = await sql`SELECT revision FROM ${t} WHERE ttl_ms = -1 AND digest = ''::bytea`;
    if (rows.length !== 1) {
      throw new WarpError(
        "COORDINATOR_UNAVAILABLE",
        `Coordinator table has no revision counter row (create it with createTable): ${this.#table}`,
      );
    }
  }

  /** The statement that draws the next revision and locks the counter until commit. */
  #tick(sql: postgres.Sql, t: postgres.Helper<string>) {
    return sql`
      UPDATE ${t} SET revision = revision + 1
      WHERE ttl_ms = -1 AND digest = ''::bytea
      RETURNING revision`;
  }

  /** The watch notification of a write without a TTL: `<digest> <revision> <base64|?>`. */
  #notify(sql: postgres.Sql, ttlMs: number, digest: Buffer, value: Uint8Array) {
    if (ttlMs !== 0) return sql``;
    const head = `${digest.toString("hex")} `;
    const tail = value.byteLength > NOTIFY_VALUE_BYTES_MAX
      ? " ?"
      : ` ${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64")}`;
    return sql`, pg_notify(${this.#table}::text, ${head}::text || w.revision || ${tail}::text)`;
  }

  /** Runs one statement under the call deadline; maps every failure to a `WarpError`. */
  async #call(
    action: string,
    key: string,
    statement: (sql: postgres.Sql, table: postgres.Helper<string>) => postgres.PendingQuery<
      postgres.Row[]
    >,
  ): Promise<postgres.RowList<postgres.Row[]>> {
    if (this.#closed) throw new WarpError("CLOSED", `Coordinator is closed: ${describe(key)}`);
    const sql = this.#opened.sql;
    const query = statement(sql, sql(this.#table));
    try {
      // The statement is left to finish or fail on its own, not cancelled: postgres.js's
      // `cancel()` opens a connection to send the cancel request and drops the promise of
      // it, so with the server down it rejects unhandled and ends the process (seen in the
      // fault test with a crashed server).
      return await withTimeout(
        () => query.execute(),
        this.#timeoutMs,
        () => new Error(`took longer than ${this.#timeoutMs} ms`),
      );
    } catch (error) {
      throw this.#unavailable(action, key, error);
    }
  }

  #unavailable(action: string, key: string, error: unknown): WarpError {
    return new WarpError(
      "COORDINATOR_UNAVAILABLE",
      `Coordinator failed to ${action} (${describeError(error)}): ${describe(key)}`,
      { cause: error },
    );
  }

  #checkValue(value: unknown): asserts value is Uint8Array {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`Invalid value: expected a Uint8Array, got ${describe(value)}`);
    }
    if (value.byteLength > this.#valueBytesMax) {
      throw new RangeError(
        `Value too large (max ${this.#valueBytesMax} bytes): ${value.byteLength}`,
      );
    }
  }

  /** The listening connection of the watches, opened on the first watch. */
  #listening(): Promise<PostgresListener> {
    if (this.#listener === undefined) {
      const opening = withConnectDeadline(
        this.#opened,
        () =>
          PostgresListener.open(this.#opened.sql, {
            onNotify: (_, payload) => this.#onNotify(payload),
            onStatus: (connected) => {
              if (connected) this.#catchUp();
            },
          }),
      );
      this.#listener = opening;
      opening.catch(() => {
        if (this.#listener === opening) this.#listener = undefined; // try again next time
      });
    }
    return this.#listener;
  }

  #onNotify(payload: string): void {
    const [digest, revisionText, data] = payload.split(" ");
    const watchers = this.#watchers.get(digest ?? "");
    if (watchers === undefined || data === undefined) return;
    const revision = Number(revisionText);
    if (!Number.isSafeInteger(revision)) return;
    for (const watcher of watchers) {
      if (revision <= watcher.revision) continue;
      if (data === "-") this.#report(watcher, undefined, revision);
      else if (data === "?") this.#refresh(watcher);
      else {this.#report(
          watcher,
          { value: copyOf(Buffer.from(data, "base64")), revision },
          revision,
        );}
    }
  }

  /** After a reconnect: reports each watched key whose state may have changed. */
  #catchUp(): void {
    for (const watchers of this.#watchers.values()) {
      for (const watcher of watchers) this.#refresh(watcher);
    }
  }

  /** Reads a watched key and reports it if it differs from what was last reported. */
  #refresh(watcher: Watcher): void {
    this.get(watcher.key).then((entry) => {
      if (entry === undefined) {
        if (watcher.present !== false) this.#report(watcher, undefined, watcher.revision);
      } else if (entry.revision > watcher.revision) {
        this.#report(watcher, entry, entry.revision);
      }
    }, () => {});
  }

  #report(watcher: Watcher, entry: CoordinatorEntry | undefined, revision: number): void {
    const live = this.#watchers.get(watcher.digest)?.has(watcher);
    if (!live) return;
    watcher.revision = revision;
    watcher.present = entry !== undefined;
    try {
      watcher.listener(entry);
    } catch {
      // A listener's bug must not end the watch.
    }
  }
}

/** The SHA-256 of a valid key's UTF-8; throws a `TypeError` for an invalid key. */
function digestOf(key: string): Buffer {
  const problem = coordinatorKeyProblem(key);
  if (problem !== undefined) throw new TypeError(`Invalid key, ${problem}: ${describe(key)}`);
  return createHash("sha256").update(key, "utf8").digest();
}

/** The key space of a call: 0 without a TTL. */
function ttlOf(options: CoordinatorCallOptions | undefined): number {
  const ttlMs = options?.ttlMs;
  if (ttlMs === undefined) return 0;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(
      `Invalid ttlMs, expected a whole number of milliseconds: ${describe(ttlMs)}`,
    );
  }
  return ttlMs;
}

/** `expires_at` of a write: the database's clock plus the TTL, or none. */
function expiry(sql: postgres.Sql, ttlMs: number) {
  return ttlMs === 0
    ? sql`NULL::timestamptz`
    : sql`clock_timestamp() + ${ttlMs}::float8 * interval '1 millisecond'`;
}

function checkRevision(revision: unknown): asserts revision is number {
  if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 1) {
    throw new RangeError(`Invalid revision: ${describe(revision)}`);
  }
}

/** A `bigint` revision (a string from postgres.js) as a safe positive number. */
function toRevision(raw: unknown): number {
  const revision = typeof raw === "string" || typeof raw === "bigint" ? Number(raw) : NaN;
  assert(
    Number.isSafeInteger(revision) && revision >= 1,
    `Coordinator returned an invalid revision: ${describe(raw)}`,
  );
  return revision;
}

/** A plain `Uint8Array` copy (postgres.js returns Node `Buffer`s). */
function copyOf(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
