/**
 * Namespaces: views of one {@linkcode Warp} node in which every key, and every registered
 * pattern, is prefixed with `name:`. Views share the node — its L1, its bus, its store and
 * its limits — so they cost nothing beyond the prefix; and one {@linkcode
 * WarpNamespace.clear} drops every key of the namespace from every node's L1 (see
 * `src/core/_namespaces.ts` for how, and `docs/guarantees.md` for what it promises).
 *
 * Rejected: a separate node (or L1) per namespace — each would have its own heartbeat,
 * session and bus subscription, multiplying the cluster's traffic by the namespaces.
 *
 * @module
 */

import type { LoadMany, ManyResult } from "./_batch.ts";
import type { KeyPolicy, ReadOptions } from "./core/registry.ts";
import { NAMESPACE_SEPARATOR, namespaceProblem } from "./core/_namespaces.ts";
import { describe } from "./_describe.ts";
import type {
  Loader,
  ReadResult,
  SetOptions,
  Warp,
  WarpKeyOptions,
  WarpReadOptions,
} from "./warp.ts";

/**
 * Throws a `TypeError` unless `name` is a namespace name: 1 to 256 characters, no NUL,
 * no `*`, not ending in `:`.
 *
 * @example
 * ```ts
 * import { checkNamespace } from "./_namespace.ts";
 * checkNamespace("users");
 * ```
 */
export function checkNamespace(name: unknown): asserts name is string {
  const problem = namespaceProblem(name);
  if (problem !== undefined) {
    throw new TypeError(`Invalid namespace, ${problem}: ${describe(name)}`);
  }
}

/**
 * A namespace of a {@linkcode Warp} node (`warp.namespace("users")`): the node's API with
 * every key and pattern under `users:`. Nested namespaces (`ns.namespace("eu")`) are
 * `users:eu:`; clearing `users` clears them too.
 *
 * @example
 * ```ts
 * import { MemoryStore, Warp } from "../mod.ts";
 * const warp = new Warp<string>({ store: new MemoryStore() });
 * const users = warp.namespace("users");
 * users.register("*", { mode: "eventual-distributed" });
 * await users.set("1", "Ada"); // the key "users:1"
 * console.log(await warp.get("users:1"), await users.get("1")); // "Ada" "Ada"
 * await users.clear(); // every node drops users:* from L1
 * console.log(users.peek("1")); // undefined
 * await warp.close();
 * ```
 */
export class WarpNamespace<T = unknown> {
  /** The namespace's full name (`users`, `users:eu`). */
  readonly name: string;
  /** What every key of it starts with: its name and `:`. */
  readonly prefix: string;
  readonly #warp: Warp<T>;

  /** Makes a view of `warp` under `name` (checked: a TypeError if it is no namespace). */
  constructor(warp: Warp<T>, name: string) {
    checkNamespace(name);
    this.#warp = warp;
    this.name = name;
    this.prefix = name + NAMESPACE_SEPARATOR;
  }

  /** A namespace nested in this one: `name:sub`. */
  namespace(sub: string): WarpNamespace<T> {
    checkNamespace(sub);
    return new WarpNamespace(this.#warp, this.prefix + sub);
  }

  /** Registers a key or pattern of this namespace, as {@linkcode Warp.register}. */
  register(pattern: string, options: WarpKeyOptions<T>): KeyPolicy {
    return this.#warp.register(this.#key(pattern), options);
  }

  /** {@linkcode Warp.get} of a key of this namespace. */
  get(key: string, options?: WarpReadOptions<T>): Promise<T | undefined> {
    return this.#warp.get(this.#key(key), options);
  }

  /** {@linkcode Warp.read} of a key of this namespace. */
  read(key: string, options?: WarpReadOptions<T>): Promise<ReadResult<T>> {
    return this.#warp.read(this.#key(key), options);
  }

  /** {@linkcode Warp.getMany} of keys of this namespace (results name them unprefixed). */
  async getMany(keys: readonly string[], options?: ReadOptions): Promise<ManyResult<T>[]> {
    return this.#unprefixed(await this.#warp.getMany(this.#keys(keys), options));
  }

  /** {@linkcode Warp.getOrSetMany} of keys of this namespace; `loadMany` sees full keys. */
  async getOrSetMany(
    keys: readonly string[],
    loadMany: LoadMany<T>,
    options?: ReadOptions,
  ): Promise<ManyResult<T>[]> {
    return this.#unprefixed(await this.#warp.getOrSetMany(this.#keys(keys), loadMany, options));
  }

  /** {@linkcode Warp.getOrSet} of a key of this namespace; the loader sees the full key. */
  getOrSet(key: string, loader: Loader<T>, options?: ReadOptions): Promise<T | undefined> {
    return this.#warp.getOrSet(this.#key(key), loader, options);
  }

  /** {@linkcode Warp.peek} of a key of this namespace. */
  peek(key: string): T | undefined {
    return this.#warp.peek(this.#key(key));
  }

  /** {@linkcode Warp.set} of a key of this namespace. */
  set(key: string, value: T, options?: SetOptions): Promise<number> {
    return this.#warp.set(this.#key(key), value, options);
  }

  /** {@linkcode Warp.delete} of a key of this namespace. */
  delete(key: string): Promise<number> {
    return this.#warp.delete(this.#key(key));
  }

  /** {@linkcode Warp.invalidate} of a key of this namespace. */
  invalidate(key: string): Promise<void> {
    return this.#warp.invalidate(this.#key(key));
  }

  /**
   * Drops every key of this namespace (nested ones included) from L1 on every node, as an
   * invalidation of each: here when it resolves; on the other nodes, for eventual keys,
   * within their `maxStalenessMs`. The store is untouched: the next read of a key reads
   * it. Resolves to the namespace's epoch on this node (how many clears of it this node
   * has applied). Rejects with `NOT_SUPPORTED` if a strong-distributed registration may
   * hold a key of the namespace (nothing is cleared then).
   */
  clear(): Promise<number> {
    return this.#warp.clearNamespace(this.name);
  }

  #key(key: string): string {
    if (typeof key !== "string") {
      throw new TypeError(`Invalid key, expected a string: ${describe(key)}`);
    }
    return this.prefix + key;
  }

  #keys(keys: readonly string[]): string[] {
    if (!Array.isArray(keys)) {
      throw new TypeError(`Invalid keys, expected an array of keys: ${describe(keys)}`);
    }
    return keys.map((key) => this.#key(key));
  }

  #unprefixed(results: ManyResult<T>[]): ManyResult<T>[] {
    return results.map((r) => ({ ...r, key: r.key.slice(this.prefix.length) }));
  }
}
