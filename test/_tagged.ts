/**
 * fast-check arbitraries of values tagged with whether a validator must accept them, for
 * checking that a validator accepts exactly the well-formed inputs: a value is built from
 * parts, each valid or not, and it is valid if and only if every part is. The tag comes
 * from how the value was built, never from a second copy of the validator's rules.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";

/** A value paired with whether it is well formed. */
export type Tagged = readonly [value: unknown, valid: boolean];

/**
 * Relative weight of the valid choice wherever a part may be valid or not: a record has tens
 * of parts, and a rule is only tested by values where its part is the one defect.
 */
export const VALID_WEIGHT = 24;

/**
 * Mostly values of `valid` (tagged true), sometimes of `invalid` (tagged false): one in
 * {@linkcode VALID_WEIGHT} + 1.
 *
 * @example
 * ```ts
 * import fc from "fast-check";
 * import { tagged } from "./_tagged.ts";
 * const [value, valid] = fc.sample(tagged(fc.constant(1), fc.constant(-1)), 1)[0]!;
 * console.log(valid === (value === 1)); // true
 * ```
 */
export function tagged(
  valid: fc.Arbitrary<unknown>,
  invalid: fc.Arbitrary<unknown>,
): fc.Arbitrary<Tagged> {
  return fc.oneof(
    { arbitrary: valid.map((v): Tagged => [v, true]), weight: VALID_WEIGHT },
    { arbitrary: invalid.map((v): Tagged => [v, false]), weight: 1 },
  );
}

/**
 * Values tagged invalid: things that are no `T` at all (null, a number, a string, ...).
 *
 * @example
 * ```ts
 * import fc from "fast-check";
 * import { invalid } from "./_tagged.ts";
 * console.log(fc.sample(invalid(null, 3), 1)[0]?.[1]); // false
 * ```
 */
export function invalid(...values: unknown[]): fc.Arbitrary<Tagged> {
  return fc.constantFrom(...values).map((v): Tagged => [v, false]);
}

/**
 * An object of tagged fields: valid if every field is.
 *
 * @example
 * ```ts
 * import { tagObject } from "./_tagged.ts";
 * console.log(tagObject({ a: [1, true], b: [-1, false] })); // [ { a: 1, b: -1 }, false ]
 * ```
 */
export function tagObject(fields: Readonly<Record<string, Tagged>>): Tagged {
  const entries = Object.entries(fields);
  return [
    Object.fromEntries(entries.map(([k, [v]]) => [k, v])),
    entries.every(([, [, ok]]) => ok),
  ];
}

/**
 * An array of tagged items: valid if every item is.
 *
 * @example
 * ```ts
 * import { tagList } from "./_tagged.ts";
 * console.log(tagList([[1, true], [2, true]])); // [ [ 1, 2 ], true ]
 * ```
 */
export function tagList(items: readonly Tagged[]): Tagged {
  return [items.map(([v]) => v), items.every(([, ok]) => ok)];
}

/**
 * A count (a safe integer ≥ 0, small or huge), or something that is not one.
 *
 * @example
 * ```ts
 * import fc from "fast-check";
 * import { countTagged } from "./_tagged.ts";
 * const [value, valid] = fc.sample(countTagged, 1)[0]!;
 * console.log(valid === (Number.isSafeInteger(value) && (value as number) >= 0)); // true
 * ```
 */
export const countTagged: fc.Arbitrary<Tagged> = tagged(
  fc.oneof(fc.nat({ max: 1000 }), fc.constantFrom(0, Number.MAX_SAFE_INTEGER)),
  fc.oneof(
    fc.constantFrom(-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, "1", null, undefined, true, {}),
    fc.integer({ max: -1 }),
    fc.double().filter((x) => !(Number.isSafeInteger(x) && x >= 0)),
  ),
);

/** The node id pattern: 1 to 64 of `[A-Za-z0-9_-]`. */
const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A node id, or something that is not one.
 *
 * @example
 * ```ts
 * import fc from "fast-check";
 * import { nodeIdTagged } from "./_tagged.ts";
 * const [value, valid] = fc.sample(nodeIdTagged, 1)[0]!;
 * console.log(valid === (typeof value === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(value))); // true
 * ```
 */
export const nodeIdTagged: fc.Arbitrary<Tagged> = tagged(
  fc.stringMatching(NODE_ID),
  fc.oneof(
    fc.constantFrom("", "a b", "é", "x".repeat(65), 7, null, undefined),
    fc.string().filter((s) => !NODE_ID.test(s)),
  ),
);

/**
 * Checks, over `cases`, that `validate` accepts exactly the values tagged valid, returning
 * each unchanged, and returns `undefined` for the others.
 *
 * @example
 * ```ts
 * import fc from "fast-check";
 * import { assertAcceptsExactly, countTagged } from "./_tagged.ts";
 * const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0 ? v : undefined;
 * assertAcceptsExactly(countTagged, isCount, 100);
 * ```
 */
export function assertAcceptsExactly(
  cases: fc.Arbitrary<Tagged>,
  validate: (value: unknown) => unknown,
  numRuns = 10_000,
): void {
  fc.assert(
    fc.property(cases, ([value, valid]) => {
      const checked = validate(value);
      assert.equal(checked !== undefined, valid, JSON.stringify(value));
      if (valid) assert.equal(checked, value);
    }),
    { numRuns },
  );
}

/**
 * Checks that `validate` never throws on `values` and returns either `undefined` or the
 * value itself.
 *
 * @example
 * ```ts
 * import fc from "fast-check";
 * import { assertNeverThrows } from "./_tagged.ts";
 * assertNeverThrows(fc.anything(), (v) => (typeof v === "string" ? v : undefined), 100);
 * ```
 */
export function assertNeverThrows(
  values: fc.Arbitrary<unknown>,
  validate: (value: unknown) => unknown,
  numRuns = 2000,
): void {
  fc.assert(
    fc.property(values, (value) => {
      const checked = validate(value);
      assert.ok(checked === undefined || checked === value);
    }),
    { numRuns },
  );
}
