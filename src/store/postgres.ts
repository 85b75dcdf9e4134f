/**
 * A {@linkcode Store} in a PostgreSQL table.
 *
 * It uses [postgres.js](https://github.com/porsager/postgres) (`npm:postgres`): a small
 * client with no native dependencies that runs unchanged in Deno (through `npm:`) and
 * Node, and whose tagged templates always send values as parameters, so no key or value
 * is ever spliced into SQL.
 *
 * @module
 */

import { describe } from "../_describe.ts";
import { unrefTimer } from "../_wake_timer.ts";
import { assert, WarpError } from "../core/errors.ts";
import { keyProblem } from "../core/messages.ts";
import { checkTransactionSteps } from "./_transaction.ts";
import type {
  Store,
  StoreKeyPage,
  StoreListOptions,
  StoreRecord,
  StoreTransactionStep,
  StoreWriteOptions,
} from "../store.ts";
import { STORE_GET_MANY_MAX } from "../store.ts";
import {
  checkReachable,
  openClient,
  type OpenedClient,
  type PostgresConnectionOptions,
  type PostgresSql,
  withConnectDeadline,
  withDdlLock,
} from "../postgres/_client.ts";

export type { PostgresSql };

/** Options of {@linkcode PostgresStore.connect}. */
export interface PostgresStoreOptions extends PostgresConnectionOptions {
  /**
   * The table: a lower-case SQL identifier matching `/^[a-z_][a-z0-9_]{0,51}$/` (its
   * sequence and index are named after it).
   * @default {"warp_store"}
   */
  readonly table?: string;
  /**
   * Create the table, its version sequence and its tombstone index if they do not exist
   * (see {@linkcode PostgresStore} for the schema), under a lock, so that nodes starting
   * together do not collide. On a table made by an earlier version of Warp it adds the
   * sequence, started above every version in the table.
   * @default {false}
   */
  readonly createTable?: boolean;
  /**
   * Delete old tombstones in the background: every `intervalMs` (default 60 000), at most
   * `batchMax` (default 1000) of those older than `olderThanMs` (default 3 600 000, at least
   * 1000), by {@linkcode PostgresStore.sweepTombstones}. Off unless given: it needs the
   * `DELETE` privilege, and one node sweeping is enough.
   * @default {undefined}
   */
  readonly tombstoneSweep?: TombstoneSweepOptions;
}

/** Options of the background tombstone sweep ({@linkcode PostgresStoreOptions.tombstoneSweep}). */
export interface TombstoneSweepOptions {
  /** Sweep tombstones older than this, by the database's clock. @default {3600000} */
  readonly olderThanMs?: number;
  /** Time between sweeps. @default {60000} */
  readonly intervalMs?: number;
  /** The most tombstones one sweep deletes. @default {1000} */
  readonly batchMax?: number;
}

/** Options of {@linkcode PostgresStore.sweepTombstones}. */
export interface SweepTombstonesOptions {
  /**
   * Delete tombstones whose delete is older than this, in milliseconds of the database's
   * clock; at least 1000 (a write statement must never run longer than this; see
   * {@linkcode PostgresStore.sweepTombstones}).
   */
  readonly olderThanMs: number;
  /** The most tombstones deleted, 1 to 10 000. @default {1000} */
  readonly limit?: number;
}

const TABLE_PATTERN = /^[a-z_][a-z0-9_]{0,51}$/;
const SWEEP_AGE_MIN_MS = 1000;
/** The key of the row that holds the sweep floor: no Warp key is empty. */
const FLOOR_KEY = "";
const LIST_LIMIT_DEFAULT = 1000;
const LIST_LIMIT_MAX = 10_000;
const CODE_POINT_MAX = 0x10ffff;

/**
 * The largest value {@linkcode PostgresStore.set} writes, in bytes: 64 MiB. postgres.js
 * sends a `bytea` as hex text, two characters per byte in one string, so a value near
 * 256 MiB passes the longest string V8 can build and fails deep inside the client, after
 * using about 14 times its size in memory. A larger value rejects up front with a
 * `WarpError` of code `VALUE_TOO_LARGE`. (Warp's own `valueBytesMax` defaults to 8 MiB.)
 */
export const POSTGRES_VALUE_BYTES_MAX = 64 * 1024 * 1024;

/**
 * A {@linkcode Store} in one PostgreSQL table, one row per key:
 *
 * ```sql
 * CREATE TABLE warp_store (
 *   key        text COLLATE "C" PRIMARY KEY,
 *   value      bytea,                              -- NULL when deleted
 *   version    bigint NOT NULL CHECK (version > 0),
 *   deleted    boolean NOT NULL DEFAULT false,
 *   updated_at timestamptz NOT NULL DEFAULT now(),
 *   CHECK (deleted = (value IS NULL))
 * );
 * CREATE SEQUENCE warp_store_version;               -- every write's version
 * CREATE INDEX warp_store_tombstones ON warp_store (updated_at) WHERE deleted;
 * ```
 *
 * - **Versions** come from the table's sequence: every write (a delete included) takes
 *   the next value, and never less than the key's version plus one. So versions increase
 *   per key and are never reused, and a row removed by a tombstone sweep cannot let a
 *   version go back: the next write of that key still gets a larger one. A delete keeps
 *   the row as a tombstone (`value` NULL, `deleted` true). `get` of a tombstone returns
 *   `{ value: undefined, version }`; of a key without a row, `{ value: undefined, version:
 *   F }`, where F is the **sweep floor**: 0 until tombstones are swept, then the largest
 *   version swept (kept in a row of key `''`, which no Warp key can be). So a key whose
 *   tombstone was swept reads at a version at least as new as before, and a node that had
 *   seen the tombstone never sees its key go back in time.
 * - **Conditional writes** (`expectedVersion`) succeed only if the key is at exactly that
 *   version when the statement runs (for a key without a row: only if `expectedVersion` is
 *   the sweep floor, 0 before any sweep), and otherwise reject with a `WarpError` of code
 *   `STORE_CONFLICT`. Every write is one statement, so concurrent conditional writers of
 *   one version cannot both win: PostgreSQL re-checks the `WHERE` against the row a
 *   concurrent writer left behind.
 * - **Tombstones** stay until {@linkcode PostgresStore.sweepTombstones} (or the
 *   `tombstoneSweep` option) deletes those older than a bound, safely while nodes run.
 * - **Keys** must be non-empty, at most 1024 code units, well-formed Unicode and free of
 *   NUL (PostgreSQL text cannot hold it): exactly what Warp accepts (`isKey`).
 * - **Values** are at most {@linkcode POSTGRES_VALUE_BYTES_MAX} (64 MiB); a larger one
 *   rejects with `VALUE_TOO_LARGE` before any I/O. `list` orders keys by code point (the `C`
 *   collation), which differs from JavaScript's `<` only between characters above U+FFFF
 *   and U+E000–U+FFFF.
 * - Versions are `bigint` in the table and JavaScript numbers here; a version above
 *   `Number.MAX_SAFE_INTEGER` throws an `InvariantError`.
 * - Any failure other than a conflict rejects with the postgres.js error.
 *
 * @example
 * ```ts ignore
 * import { PostgresStore } from "./postgres.ts";
 *
 * const store = await PostgresStore.connect({
 *   url: "postgres://postgres@127.0.0.1:5432/test",
 *   createTable: true,
 * });
 * const version = await store.set("user:1", new TextEncoder().encode("Ada"));
 * await store.set("user:1", new TextEncoder().encode("Grace"), { expectedVersion: version });
 * console.log((await store.get("user:1")).version > version); // true
 * await store.close();
 * ```
 */
export class PostgresStore implements Store {
  readonly #opened: OpenedClient;
  readonly #sql: PostgresSql;
  readonly #table: string;
  readonly #sequence: string;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /**
   * Opens the store: with `sql` it uses your client (and `close` leaves it open), else it
   * opens one from `url` and `client` options (credentials, `ssl`), passed through to
   * postgres.js. Creates the table if asked, and checks that it can be used. Rejects with a
   * `WarpError` of code `TIMEOUT` after `connectTimeoutMs` (default 10 s), with
   * `STORE_ERROR` for a table without its version sequence, or with the postgres.js error.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({
   *   url: "postgres://postgres@127.0.0.1:5432/test",
   *   table: "warp_store",
   *   createTable: true,
   *   connectTimeoutMs: 5000,
   * });
   * await store.close();
   * ```
   */
  static async connect(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const { table = "warp_store", createTable = false, tombstoneSweep, ...connection } = options ??
      {};
    if (typeof table !== "string" || !TABLE_PATTERN.test(table)) {
      throw new TypeError(`Invalid table: ${describe(table)}`);
    }
    const sweep = tombstoneSweep === undefined ? undefined : checkSweepOptions(tombstoneSweep);
    const opened = openClient(connection);
    await checkReachable(opened);
    const store = new PostgresStore(opened, table);
    try {
      await withConnectDeadline(opened, () => store.#prepare(createTable));
    } catch (error) {
      await store.close();
      throw error;
    }
    if (sweep !== undefined) {
      store.#sweepTimer = setInterval(
        () =>
          void store.sweepTombstones({ olderThanMs: sweep.olderThanMs, limit: sweep.batchMax })
            .catch(() => {}),
        sweep.intervalMs,
      );
      unrefTimer(store.#sweepTimer);
    }
    return store;
  }

  private constructor(opened: OpenedClient, table: string) {
    this.#opened = opened;
    this.#sql = opened.sql;
    this.#table = table;
    this.#sequence = `${table}_version`;
  }

  /** The table's name. */
  get table(): string {
    return this.#table;
  }

  /**
   * Reads a key: its value and version; `{ value: undefined, version }` for a deleted
   * key, and for a key without a row `{ value: undefined, version }` at the sweep floor
   * (0 until tombstones are swept).
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1/test" });
   * console.log(await store.get("missing")); // { value: undefined, version: 0 }
   * await store.close();
   * ```
   */
  async get(key: string): Promise<StoreRecord> {
    validateKey(key);
    const sql = this.#sql;
    // The key's row, else the floor row (key '' sorts first in the C collation).
    const rows = await sql`
      SELECT value, version FROM ${sql(this.#table)}
      WHERE key IN (${key}, ${FLOOR_KEY})
      ORDER BY key DESC LIMIT 1`;
    const row = rows[0];
    if (row === undefined) return { value: undefined, version: 0 };
    const value = row.value === null ? undefined : new Uint8Array(row.value as Uint8Array);
    return { value, version: toVersion(row.version) };
  }

  /**
   * Reads several keys in one statement (`WHERE key = ANY($1)`), each as `get` would: the
   * records in the order of `keys`; a key without a row is at the sweep floor.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1/test" });
   * const [a, b] = await store.getMany(["a", "b"]);
   * console.log(a?.version, b?.version);
   * await store.close();
   * ```
   */
  async getMany(keys: readonly string[]): Promise<StoreRecord[]> {
    if (!Array.isArray(keys)) {
      throw new TypeError(`Invalid keys, expected an array: ${describe(keys)}`);
    }
    if (keys.length > STORE_GET_MANY_MAX) {
      throw new RangeError(
        `Too many keys for one getMany, at most ${STORE_GET_MANY_MAX}: ${keys.length}`,
      );
    }
    for (const key of keys) validateKey(key);
    if (keys.length === 0) return [];
    const sql = this.#sql;
    const rows = await sql`
      SELECT key, value, version FROM ${sql(this.#table)}
      WHERE key = ANY(${[...new Set(keys), FLOOR_KEY]}::text[])`;
    let floor: StoreRecord = { value: undefined, version: 0 };
    const byKey = new Map<string, StoreRecord>();
    for (const row of rows) {
      const value = row.value === null ? undefined : new Uint8Array(row.value as Uint8Array);
      const record = { value, version: toVersion(row.version) };
      if (row.key === FLOOR_KEY) floor = { value: undefined, version: record.version };
      else byKey.set(row.key as string, record);
    }
    return keys.map((key) => byKey.get(key) ?? floor);
  }

  /**
   * Writes a key and returns its new version. With `expectedVersion`, writes only if the
   * key is at exactly that version (0: never written), else rejects with `STORE_CONFLICT`.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1/test" });
   * const version = await store.set("k", new Uint8Array([1]), { expectedVersion: 0 });
   * await store.set("k", new Uint8Array([2]), { expectedVersion: version });
   * await store.close();
   * ```
   */
  async set(key: string, value: Uint8Array, options: StoreWriteOptions = {}): Promise<number> {
    validateKey(key);
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`Invalid value: expected a Uint8Array, got ${describe(value)}`);
    }
    if (value.byteLength > POSTGRES_VALUE_BYTES_MAX) {
      throw new WarpError(
        "VALUE_TOO_LARGE",
        `Value of ${describe(key)} is ${value.byteLength} bytes, over ${POSTGRES_VALUE_BYTES_MAX}`,
      );
    }
    const { expectedVersion } = options;
    validateExpectedVersion(expectedVersion);
    return await this.#write(key, value, expectedVersion);
  }

  /**
   * Deletes a key, keeping a tombstone, and returns the tombstone's version (the next
   * version of the key; 1 if it was never written). With `expectedVersion`, deletes only
   * if the key is at exactly that version, else rejects with `STORE_CONFLICT`.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1/test" });
   * const version = await store.set("k", new Uint8Array([1]));
   * console.log(await store.delete("k", { expectedVersion: version })); // version + 1
   * await store.close();
   * ```
   */
  async delete(key: string, options: StoreWriteOptions = {}): Promise<number> {
    validateKey(key);
    const { expectedVersion } = options;
    validateExpectedVersion(expectedVersion);
    return await this.#write(key, null, expectedVersion);
  }

  /**
   * Lists keys with a value (tombstones excluded) in code point order, a page at a time;
   * the cursor is the page's last key. `limit` is 1 to 10 000.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1/test" });
   * let page = await store.list({ prefix: "user:", limit: 100 });
   * while (page.cursor !== undefined) {
   *   page = await store.list({ prefix: "user:", limit: 100, cursor: page.cursor });
   * }
   * await store.close();
   * ```
   */
  async list(options: StoreListOptions = {}): Promise<StoreKeyPage> {
    const { prefix = "", cursor, limit = LIST_LIMIT_DEFAULT } = options;
    if (typeof prefix !== "string" || !isStorableText(prefix)) {
      throw new TypeError(`Invalid prefix: ${describe(prefix)}`);
    }
    if (cursor !== undefined && (typeof cursor !== "string" || !isStorableText(cursor))) {
      throw new TypeError(`Invalid cursor: ${describe(cursor)}`);
    }
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) {
      throw new RangeError(`Invalid limit: ${describe(limit)}`);
    }
    const sql = this.#sql;
    const upper = prefixUpperBound(prefix);
    // Every key starting with `prefix` lies in [prefix, upper) in code point order, so
    // the range lets the primary key index bound the scan; starts_with keeps it exact.
    const rows = await sql`
      SELECT key FROM ${sql(this.#table)}
      WHERE NOT deleted
        AND key COLLATE "C" >= ${prefix}
        ${upper === undefined ? sql`` : sql`AND key COLLATE "C" < ${upper}`}
        ${cursor === undefined ? sql`` : sql`AND key COLLATE "C" > ${cursor}`}
        AND starts_with(key, ${prefix})
      ORDER BY key COLLATE "C"
      LIMIT ${limit + 1}`;
    const keys = rows.slice(0, limit).map((row) => row.key as string);
    assert(rows.length <= limit + 1, `List returned too many rows: ${rows.length}`);
    return rows.length > limit ? { keys, cursor: keys[keys.length - 1]! } : { keys };
  }

  /**
   * Deletes tombstones (rows of deleted keys) whose delete is older than `olderThanMs`, at
   * most `limit`, and resolves to how many. Safe while nodes run: in the same transaction
   * it raises the sweep floor to the largest version deleted, so a swept key reads at a
   * version at least as new as its tombstone's, and the next write of it gets a larger one
   * still (versions come from the sequence). A writer that read the tombstone and writes at
   * its version gets `STORE_CONFLICT`, and Warp reads again. What it assumes: no write
   * statement runs longer than `olderThanMs` (a write draws its version when its statement
   * starts). Nodes sweeping at once skip each other's rows. Needs the `DELETE` privilege.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1/test" });
   * console.log(await store.sweepTombstones({ olderThanMs: 3_600_000 })); // 0
   * await store.close();
   * ```
   */
  async sweepTombstones(options: SweepTombstonesOptions): Promise<number> {
    const { olderThanMs, limit = 1000 } = options ?? {};
    if (!Number.isSafeInteger(olderThanMs) || olderThanMs < SWEEP_AGE_MIN_MS) {
      throw new RangeError(
        `Invalid olderThanMs, at least ${SWEEP_AGE_MIN_MS}: ${describe(olderThanMs)}`,
      );
    }
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) {
      throw new RangeError(`Invalid limit: ${describe(limit)}`);
    }
    const sql = this.#sql;
    const table = sql(this.#table);
    // Locked rows (a write in progress) are skipped; the DELETE re-checks `deleted` anyway.
    const rows = await sql`
      WITH doomed AS (
        SELECT key FROM ${table}
        WHERE deleted AND key <> ${FLOOR_KEY}
          AND updated_at < now() - ${olderThanMs}::float8 * interval '1 millisecond'
        ORDER BY updated_at
        LIMIT ${limit}::int
        FOR UPDATE SKIP LOCKED
      ), swept AS (
        DELETE FROM ${table}
        WHERE key IN (SELECT key FROM doomed) AND deleted
        RETURNING version
      ), floor AS (
        INSERT INTO ${table} AS f (key, value, version, deleted)
        SELECT ${FLOOR_KEY}, NULL, max(version), true FROM swept HAVING count(*) > 0
        ON CONFLICT (key) DO UPDATE
          SET version = GREATEST(f.version, excluded.version), updated_at = now()
        RETURNING version
      )
      SELECT (SELECT count(*) FROM swept)::int AS swept, (SELECT version FROM floor) AS floor`;
    return rows[0]!.swept as number;
  }

  /**
   * Stops the background sweep and ends the client if the store opened it; idempotent.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1/test" });
   * await store.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    if (this.#opened.owned) await this.#sql.end({ timeout: 5 });
  }

  /**
   * Applies every step or none, in one SQL transaction (READ COMMITTED, the steps in key
   * order so that two transactions lock rows in the same order): each write is the same
   * conditional statement as `set`'s, each check reads the key's row `FOR SHARE`, which
   * holds off every other writer of it until the commit. Resolves to each step's version;
   * a moved version rejects with `STORE_CONFLICT` and the transaction is rolled back.
   * A check of a key without a row (its version is the sweep floor) locks nothing: a
   * concurrent first write of that key is not held off.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({ url: "postgres://postgres@127.0.0.1:5432/test" });
   * const [a, b] = await store.transact([
   *   { kind: "write", key: "a", value: new Uint8Array([1]) },
   *   { kind: "write", key: "b", value: new Uint8Array([2]), expectedVersion: 0 },
   * ]);
   * await store.close();
   * ```
   */
  async transact(steps: readonly StoreTransactionStep[]): Promise<number[]> {
    checkTransactionSteps(steps);
    for (const step of steps) {
      if ((step.value?.byteLength ?? 0) > POSTGRES_VALUE_BYTES_MAX) {
        throw new WarpError(
          "VALUE_TOO_LARGE",
          `Value of ${describe(step.key)} is ${
            step.value!.byteLength
          } bytes, over ${POSTGRES_VALUE_BYTES_MAX}`,
        );
      }
    }
    const order = steps.map((_, i) => i).sort((a, b) =>
      steps[a]!.key < steps[b]!.key ? -1 : steps[a]!.key > steps[b]!.key ? 1 : 0
    );
    const versions: number[] = new Array(steps.length);
    await this.#sql.begin(async (tx) => {
      const sql = tx as unknown as PostgresSql;
      const table = sql(this.#table);
      for (const i of order) {
        const step = steps[i]!;
        if (step.kind === "write") {
          versions[i] = await this.#write(step.key, step.value ?? null, step.expectedVersion, sql);
          continue;
        }
        const rows = await sql<{ version: string }[]>`
          SELECT version FROM ${table} WHERE key = ${step.key} FOR SHARE`;
        const [floor] = rows.length > 0 ? [] : await sql<{ version: string }[]>`
          SELECT version FROM ${table} WHERE key = ${FLOOR_KEY}`;
        const found = rows[0]?.version ?? floor?.version;
        const actual = found === undefined ? 0 : toVersion(found);
        if (actual !== step.expectedVersion) {
          throw new WarpError(
            "STORE_CONFLICT",
            `Version conflict on key ${
              describe(step.key)
            }: expected ${step.expectedVersion}, actual ${actual}`,
          );
        }
        versions[i] = actual;
      }
    });
    return versions;
  }

  /**
   * One statement per write: `value` null is a delete (a tombstone). A conditional write
   * updates the key's row at `expectedVersion`, or inserts one if the key has no row and
   * `expectedVersion` is the sweep floor; both branches run, at most one can match.
   */
  async #write(
    key: string,
    value: Uint8Array | null,
    expectedVersion: number | undefined,
    sql: PostgresSql = this.#sql,
  ): Promise<number> {
    const table = sql(this.#table);
    const deleted = value === null;
    const next = sql`nextval(${this.#sequence}::regclass)`;
    // Above the floor too, should a version outside the sequence (an earlier Warp's) be swept.
    const floor = sql`COALESCE((SELECT version FROM ${table} WHERE key = ${FLOOR_KEY}), 0)`;
    let rows;
    if (expectedVersion === undefined) {
      rows = await sql`
        INSERT INTO ${table} AS stored (key, value, version, deleted)
        VALUES (${key}, ${value}, GREATEST(${next}, ${floor} + 1), ${deleted})
        ON CONFLICT (key) DO UPDATE
          SET value = excluded.value, version = GREATEST(excluded.version, stored.version + 1),
              deleted = excluded.deleted, updated_at = now()
        RETURNING version`;
    } else {
      // The value is sent once, in `input`, and read by whichever branch writes.
      rows = await sql`
        WITH input AS (
          SELECT ${value}::bytea AS value, ${floor} AS floor
        ), updated AS (
          UPDATE ${table}
          SET value = (SELECT value FROM input), version = GREATEST(${next}, version + 1),
              deleted = ${deleted}, updated_at = now()
          WHERE key = ${key} AND version = ${expectedVersion}
          RETURNING version
        ), inserted AS (
          INSERT INTO ${table} (key, value, version, deleted)
          SELECT ${key}, input.value, GREATEST(${next}, input.floor + 1), ${deleted} FROM input
          WHERE input.floor = ${expectedVersion}
            AND NOT EXISTS (SELECT 1 FROM ${table} WHERE key = ${key})
          ON CONFLICT (key) DO NOTHING
          RETURNING version
        )
        SELECT version FROM updated UNION ALL SELECT version FROM inserted`;
    }
    const row = rows[0];
    if (row === undefined) {
      assert(expectedVersion !== undefined, `Unconditional write returned no row: ${key}`);
      throw new WarpError(
        "STORE_CONFLICT",
        `Version conflict on key ${describe(key)}: expected ${expectedVersion}`,
      );
    }
    assert(rows.length === 1, `Conditional write wrote twice: ${describe(key)}`);
    const version = toVersion(row.version);
    assert(
      expectedVersion === undefined || version > expectedVersion,
      `Conditional write did not move the version of ${describe(key)}: ${version}`,
    );
    return version;
  }

  /**
   * Creates what is missing (if asked, under the DDL lock), then checks that the table can
   * be read and has its sequence.
   */
  async #prepare(createTable: boolean): Promise<void> {
    const sql = this.#sql;
    const table = sql(this.#table);
    if (createTable) {
      await withDdlLock(sql, this.#table, async (tx) => {
        await tx`
          CREATE TABLE IF NOT EXISTS ${table} (
            key text COLLATE "C" PRIMARY KEY,
            value bytea,
            version bigint NOT NULL CHECK (version > 0),
            deleted boolean NOT NULL DEFAULT false,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK (deleted = (value IS NULL))
          )`;
        const [found] = await tx`SELECT to_regclass(${this.#sequence}) AS sequence`;
        if (found?.sequence === null) {
          // A table of an earlier Warp: start the sequence above every version it holds.
          await tx`CREATE SEQUENCE ${sql(this.#sequence)}`;
          await tx`
            SELECT setval(${this.#sequence}::regclass,
              COALESCE((SELECT max(version) FROM ${table}), 0) + 1, false)`;
        }
        await tx`
          CREATE INDEX IF NOT EXISTS ${sql(`${this.#table}_tombstones`)}
          ON ${table} (updated_at) WHERE deleted`;
      });
    }
    await sql`SELECT key FROM ${table} LIMIT 0`;
    const [found] = await sql`SELECT to_regclass(${this.#sequence}) AS sequence`;
    if (found?.sequence === null) {
      throw new WarpError(
        "STORE_ERROR",
        `Store table has no version sequence (connect once with createTable: true to add it): ${this.#sequence}`,
      );
    }
  }
}

function validateKey(key: unknown): asserts key is string {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new TypeError(`Invalid key, ${problem}: ${describe(key)}`);
}

/** Whether PostgreSQL text can hold `text` unchanged: well-formed UTF-16, no NUL. */
function isStorableText(text: string): boolean {
  return text.isWellFormed() && !text.includes("\u0000");
}

function validateExpectedVersion(version: unknown): void {
  if (version === undefined) return;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`Invalid expectedVersion: ${describe(version)}`);
  }
}

/** Converts a `bigint` column (a string from postgres.js) to a safe positive number. */
function toVersion(raw: unknown): number {
  const version = typeof raw === "string" || typeof raw === "bigint" ? Number(raw) : NaN;
  assert(
    Number.isSafeInteger(version) && version >= 1,
    `Store returned an invalid version: ${describe(raw)}`,
  );
  return version;
}

/**
 * The least string above every string that starts with `prefix`, in code point order;
 * `undefined` if there is none (empty prefix, or only U+10FFFF).
 */
function prefixUpperBound(prefix: string): string | undefined {
  const codePoints = Array.from(prefix, (char) => char.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last < CODE_POINT_MAX) {
      // Skip the surrogate range, which text cannot hold.
      codePoints.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return undefined;
}

/** The background sweep's options with their defaults; throws a `RangeError` for a bad one. */
function checkSweepOptions(options: TombstoneSweepOptions): Required<TombstoneSweepOptions> {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Invalid tombstoneSweep: ${describe(options)}`);
  }
  const { olderThanMs = 3_600_000, intervalMs = 60_000, batchMax = 1000 } = options;
  if (!Number.isSafeInteger(olderThanMs) || olderThanMs < SWEEP_AGE_MIN_MS) {
    throw new RangeError(
      `Invalid olderThanMs, at least ${SWEEP_AGE_MIN_MS}: ${describe(olderThanMs)}`,
    );
  }
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
    throw new RangeError(`Invalid intervalMs: ${describe(intervalMs)}`);
  }
  if (!Number.isSafeInteger(batchMax) || batchMax < 1 || batchMax > LIST_LIMIT_MAX) {
    throw new RangeError(`Invalid batchMax: ${describe(batchMax)}`);
  }
  return { olderThanMs, intervalMs, batchMax };
}
