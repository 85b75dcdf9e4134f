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

import postgres from "postgres";
import { describe } from "../_describe.ts";
import { assert, WarpError } from "../core/errors.ts";
import { keyProblem } from "../core/messages.ts";
import type {
  Store,
  StoreKeyPage,
  StoreListOptions,
  StoreRecord,
  StoreWriteOptions,
} from "../store.ts";

/** A postgres.js client, as `postgres(url)` returns it. */
export type PostgresSql = postgres.Sql;

/** Options of {@linkcode PostgresStore.connect}. */
export interface PostgresStoreOptions {
  /**
   * A connection URL, e.g. `postgres://user@127.0.0.1:5432/db`; the store opens (and
   * {@linkcode PostgresStore.close} ends) its own client. Give `url` or `sql`, not both.
   * @default {undefined} postgres.js reads the `PG*` environment variables
   */
  readonly url?: string;
  /**
   * An existing postgres.js client; {@linkcode PostgresStore.close} leaves it open.
   * @default {undefined}
   */
  readonly sql?: PostgresSql;
  /**
   * The table: a lower-case SQL identifier matching `/^[a-z_][a-z0-9_]{0,62}$/`.
   * @default {"warp_store"}
   */
  readonly table?: string;
  /**
   * Create the table if it does not exist (see {@linkcode PostgresStore} for the schema).
   * @default {false}
   */
  readonly createTable?: boolean;
}

const TABLE_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
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
 * ```
 *
 * - **Versions** start at 1 and grow by 1 with every write of the key, a delete included:
 *   a delete keeps the row as a tombstone (`value` NULL, `deleted` true), so a version is
 *   never reused. `get` of a tombstone returns `{ value: undefined, version }`; of a
 *   never-written key, `{ value: undefined, version: 0 }`. Deleting a never-written key
 *   writes a tombstone at version 1.
 * - **Conditional writes** (`expectedVersion`) succeed only if the key's version is
 *   exactly `expectedVersion` when the statement runs, and otherwise reject with a
 *   `WarpError` of code `STORE_CONFLICT`. `expectedVersion: 0` means "never written": no
 *   row at all. A deleted key is not at version 0; to write it again conditionally, pass
 *   its tombstone's version. Every write is one statement (an upsert, an `INSERT … ON
 *   CONFLICT DO NOTHING` for 0, an `UPDATE … WHERE version = $expected` otherwise), so
 *   concurrent conditional writers of one version cannot both win: PostgreSQL re-checks
 *   the `WHERE` against the row a concurrent writer left behind.
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
 * console.log(await store.get("user:1")); // { value: Uint8Array(5) [...], version: 2 }
 * await store.close();
 * ```
 */
export class PostgresStore implements Store {
  readonly #sql: PostgresSql;
  readonly #table: string;
  readonly #ownsSql: boolean;
  #closed = false;

  /**
   * Opens the store: connects (with `url`) or uses `sql`, creates the table if asked, and
   * checks that the table can be read. Rejects with the postgres.js error otherwise.
   *
   * @example
   * ```ts ignore
   * import { PostgresStore } from "./postgres.ts";
   * const store = await PostgresStore.connect({
   *   url: "postgres://postgres@127.0.0.1:5432/test",
   *   table: "warp_store",
   *   createTable: true,
   * });
   * await store.close();
   * ```
   */
  static async connect(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const { url, sql, table = "warp_store", createTable = false } = options;
    if (typeof table !== "string" || !TABLE_PATTERN.test(table)) {
      throw new TypeError(`Invalid table: ${describe(table)}`);
    }
    if (url !== undefined && sql !== undefined) {
      throw new TypeError(`Invalid options, give url or sql, not both: ${describe(url)}`);
    }
    if (url !== undefined && typeof url !== "string") {
      throw new TypeError(`Invalid url: ${describe(url)}`);
    }
    if (sql !== undefined && typeof sql !== "function") {
      throw new TypeError(`Invalid sql: ${describe(sql)}`);
    }
    const client = sql ?? (url === undefined ? postgres(QUIET) : postgres(url, QUIET));
    const store = new PostgresStore(client, table, sql === undefined);
    try {
      if (createTable) await store.#createTable();
      await client`SELECT key FROM ${client(table)} LIMIT 0`;
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  private constructor(sql: PostgresSql, table: string, ownsSql: boolean) {
    this.#sql = sql;
    this.#table = table;
    this.#ownsSql = ownsSql;
  }

  /** The table's name. */
  get table(): string {
    return this.#table;
  }

  /**
   * Reads a key: its value and version; `{ value: undefined, version }` for a deleted
   * key and `{ value: undefined, version: 0 }` for a never-written one.
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
    const rows = await sql`
      SELECT value, version FROM ${sql(this.#table)} WHERE key = ${key}`;
    const row = rows[0];
    if (row === undefined) return { value: undefined, version: 0 };
    const value = row.value === null ? undefined : new Uint8Array(row.value as Uint8Array);
    return { value, version: toVersion(row.version) };
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
   * Ends the client if the store opened it (with `url`); idempotent.
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
    if (this.#ownsSql) await this.#sql.end({ timeout: 5 });
  }

  /** One statement per write: `value` null is a delete (a tombstone). */
  async #write(
    key: string,
    value: Uint8Array | null,
    expectedVersion: number | undefined,
  ): Promise<number> {
    const sql = this.#sql;
    const table = sql(this.#table);
    const deleted = value === null;
    let rows;
    if (expectedVersion === undefined) {
      rows = await sql`
        INSERT INTO ${table} AS stored (key, value, version, deleted)
        VALUES (${key}, ${value}, 1, ${deleted})
        ON CONFLICT (key) DO UPDATE
          SET value = excluded.value, version = stored.version + 1,
              deleted = excluded.deleted, updated_at = now()
        RETURNING version`;
    } else if (expectedVersion === 0) {
      rows = await sql`
        INSERT INTO ${table} (key, value, version, deleted)
        VALUES (${key}, ${value}, 1, ${deleted})
        ON CONFLICT (key) DO NOTHING
        RETURNING version`;
    } else {
      rows = await sql`
        UPDATE ${table}
        SET value = ${value}, version = version + 1, deleted = ${deleted}, updated_at = now()
        WHERE key = ${key} AND version = ${expectedVersion}
        RETURNING version`;
    }
    const row = rows[0];
    if (row === undefined) {
      assert(expectedVersion !== undefined, `Unconditional write returned no row: ${key}`);
      throw new WarpError(
        "STORE_CONFLICT",
        `Version conflict on key ${describe(key)}: expected ${expectedVersion}`,
      );
    }
    const version = toVersion(row.version);
    assert(
      expectedVersion === undefined || version === expectedVersion + 1,
      `Conditional write skipped a version on key ${describe(key)}: ${version}`,
    );
    return version;
  }

  async #createTable(): Promise<void> {
    const sql = this.#sql;
    await sql`
      CREATE TABLE IF NOT EXISTS ${sql(this.#table)} (
        key text COLLATE "C" PRIMARY KEY,
        value bytea,
        version bigint NOT NULL CHECK (version > 0),
        deleted boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK (deleted = (value IS NULL))
      )`;
  }
}

/** Client options for a client the store opens: no notices on stdout. */
const QUIET = { onnotice: () => {} };

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
