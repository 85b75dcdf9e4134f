/**
 * The models `checkModel` searches with: the public ones (`models.ts`) over values
 * interned to small integers, so that a step compares integers and a state's memo key is
 * a number. Each partition holds one key, so a partition's state is that key's register or
 * list alone (P-compositionality), not a map of every key.
 *
 * A list is interned as a node of a trie of appends: the empty list is node 0 and
 * appending token t to node p gives the same node every time. Two lists are equal exactly
 * when their nodes are, so a read compares one integer whatever the list's length, and an
 * append costs one map lookup (the rejected alternative, arrays compared element by
 * element and hashed for the memo on every step, made steps O(length)).
 *
 * @module
 */

import type { Model } from "./linearizability.ts";
import type { KvInput } from "./models.ts";
import { valueKey } from "./_value.ts";
import { byKey, isReadOnly, registerStep } from "./_model_parts.ts";
import { IntPairMap } from "./_int_pair_map.ts";

/** Values interned to small integers, and back. */
export class Tokens {
  readonly #tokens = new Map<string, number>();
  readonly #values: unknown[] = [];

  /** The token of a value (`null`, absent, has none: it stays `null`). */
  of(value: unknown): number | null {
    if (value === null || value === undefined) return null;
    const key = valueKey(value);
    let token = this.#tokens.get(key);
    if (token === undefined) {
      token = this.#values.length;
      this.#tokens.set(key, token);
      this.#values.push(value);
    }
    return token;
  }

  /** How many values have a token. */
  get size(): number {
    return this.#values.length;
  }

  valueOf(token: number | null): unknown {
    return token === null ? null : this.#values[token];
  }
}

/** A compare-and-set register per key over tokens (`kv`; one key: `register`, `cas-register`). */
export function internedKvModel(
  initial: number | null,
): Model<number | null, KvInput<number>, number | null | boolean> {
  return {
    init: () => initial,
    step: registerStep,
    readOnly: isReadOnly,
    readsState: (input, output) =>
      input.kind === "read" && output !== undefined && typeof output !== "boolean"
        ? output ?? -1
        : undefined,
    key: (state) => state ?? -1,
    partition: byKey,
  };
}

/** An operation of `append-kv` over tokens; lists are trie nodes ({@linkcode ListTrie}). */
export type InternedAppendInput =
  | { readonly kind: "read"; readonly key: string }
  | { readonly kind: "append"; readonly key: string; readonly value: number }
  | { readonly kind: "write"; readonly key: string; readonly list: number };

/** Lists of tokens as the nodes of a trie of appends; node 0 is the empty list. */
export class ListTrie {
  /** (node, token) → child. */
  readonly #children = new IntPairMap(10);
  readonly #parents: number[] = [-1];
  readonly #lasts: number[] = [-1];
  readonly #lengths: number[] = [0];

  /** The node of `node`'s list with `token` appended. */
  append(node: number, token: number): number {
    let child = this.#children.get(node, token);
    if (child === -1) {
      child = this.#parents.length;
      this.#children.set(node, token, child);
      this.#parents.push(node);
      this.#lasts.push(token);
      this.#lengths.push(this.#lengths[node]! + 1);
    }
    return child;
  }

  /** The node of a list. */
  of(tokens: readonly number[]): number {
    let node = 0;
    for (const token of tokens) node = this.append(node, token);
    return node;
  }

  /** Whether `node`'s list is a prefix of (or equal to) `of`'s. */
  isPrefix(node: number, of: number): boolean {
    let at = of;
    for (let n = this.#lengths[of]! - this.#lengths[node]!; n > 0; n--) at = this.#parents[at]!;
    return at === node;
  }

  /** The list of a node. */
  tokens(node: number): number[] {
    const out: number[] = [];
    for (let at = node; at > 0; at = this.#parents[at]!) out.push(this.#lasts[at]!);
    return out.reverse();
  }
}

/**
 * `append-kv` over trie nodes: a read answers its list's node. `writes` holds, per key,
 * its writes and deletes (op id, and the list it sets: node 0 for a delete): a read's list
 * is reachable from a state if it extends the state's list or that of a write not done
 * yet (a key's list only grows between two writes).
 */
export function internedAppendKvModel(
  trie: ListTrie,
  writes: ReadonlyMap<string, readonly { readonly id: number; readonly list: number }[]>,
): Model<number, InternedAppendInput, number> {
  return {
    init: () => 0,
    step(state, input, output) {
      switch (input.kind) {
        case "read":
          return output === undefined || output === state ? state : undefined;
        case "append":
          return trie.append(state, input.value);
        case "write":
          return input.list;
      }
    },
    readOnly: (input) => input.kind === "read",
    readsState: (input, output) => input.kind === "read" ? output : undefined,
    canReach(state, input, output, done) {
      if (output === undefined || trie.isPrefix(state, output)) return true;
      return (writes.get(input.key) ?? []).some((write) =>
        !done(write.id) && trie.isPrefix(write.list, output)
      );
    },
    key: (state) => state,
    partition: byKey,
  };
}
