/**
 * Private: the combinations of a registration's options that are valid one by one but
 * unsafe or meaningless together — an option of another mode, a strong-distributed
 * `writeTimeoutMs` that a silent holder's wait always overruns, a staleness bound above the
 * TTL. `Warp.register` refuses them; the simulator's `configProblems` lists them.
 *
 * @module
 */

import type { ConsistencyMode, KeyOptions, KeyPolicy } from "./registry.ts";

/**
 * The problems of one valid registration (`policy`, resolved from `options`), each a
 * sentence naming the option and its value; empty when there is none.
 *
 * @example
 * ```ts
 * import { registrationProblems } from "./_options.ts";
 * import { resolvePolicy } from "./registry.ts";
 * const options = { mode: "strong-local", maxStalenessMs: 500 } as const;
 * const [problem] = registrationProblems(resolvePolicy("k:*", options), options, 5e-4, undefined);
 * console.log(problem); // Registration "k:*": maxStalenessMs applies to eventual-distributed keys only, not strong-local: 500
 * ```
 */
export function registrationProblems(
  policy: KeyPolicy,
  options: KeyOptions,
  drift: number,
  sessions: { readonly sessionMs: number; readonly ackWaitMs: number } | undefined,
): string[] {
  const problems: string[] = [];
  const at = `Registration ${JSON.stringify(policy.pattern)}`;
  const only = (name: "maxStalenessMs" | "leaseMs", mode: ConsistencyMode) => {
    if (options[name] !== undefined && policy.mode !== mode) {
      problems.push(
        `${at}: ${name} applies to ${mode} keys only, not ${policy.mode}: ${options[name]}`,
      );
    }
  };
  only("maxStalenessMs", "eventual-distributed");
  only("leaseMs", "strong-distributed");
  if (policy.mode === "strong-distributed" && sessions === undefined) {
    const waitMs = policy.leaseMs * (1 + drift) + 1;
    if (policy.writeTimeoutMs <= waitMs) {
      problems.push(
        `${at}: writeTimeoutMs must be above leaseMs × (1 + drift) + 1 ms = ${
          waitMs.toFixed(1)
        } ms, or a silent holder fails every write: ${policy.writeTimeoutMs}`,
      );
    }
  }
  if (policy.mode === "strong-distributed" && sessions !== undefined) {
    const waitMs = sessions.ackWaitMs + sessions.sessionMs * (1 + drift) + 1;
    if (policy.writeTimeoutMs <= waitMs) {
      problems.push(
        `${at}: writeTimeoutMs must be above 2 heartbeats + sessionMs × (1 + drift) + 1 ms = ${
          waitMs.toFixed(1)
        } ms, or a silent holder fails every write: ${policy.writeTimeoutMs}`,
      );
    }
  }
  const bound = policy.mode === "eventual-distributed"
    ? ["maxStalenessMs", policy.maxStalenessMs] as const
    : policy.mode === "strong-distributed" && sessions === undefined
    ? ["leaseMs", policy.leaseMs] as const
    : undefined;
  // A default bound above the TTL is the defaults' business, not the caller's mistake.
  if (bound !== undefined && options[bound[0]] !== undefined && bound[1] > policy.ttlMs) {
    problems.push(
      `${at}: ${bound[0]} above ttlMs ${policy.ttlMs} bounds nothing (no entry outlives ` +
        `its TTL): ${bound[1]}`,
    );
  }
  return problems;
}
