/**
 * Private: the bus subjects of a cluster. A node subscribes to `<prefix>.all`
 * (broadcasts) and `<prefix>.node.<nodeId>` (messages to it alone).
 *
 * **Isolation.** Prefixes are dot-separated tokens and node ids one token without dots, so
 * a subject has as many tokens as its prefix plus one (broadcast) or two (direct). Two
 * broadcast subjects, or two direct ones, are therefore equal only for the same prefix
 * (and node id). A broadcast subject of prefix `Q` equals a direct subject of prefix `P`
 * only if `Q` is `P.node` and the node id is `all`: so `all` is reserved
 * ({@linkcode RESERVED_NODE_IDS}), and then clusters with different prefixes share no
 * subject, nested prefixes (`a` and `a.node`) included. `test/subjects_test.ts` checks it
 * over generated prefixes and ids. (The other fix, a marker token no prefix can hold,
 * would change every subject and the NATS permissions of running clusters.)
 *
 * @module
 */

/** The last token of a broadcast subject, which no node id may be. */
const BROADCAST_TOKEN = "all";

/** Node ids a `Warp` node may not have: they would alias another cluster's broadcasts. */
export const RESERVED_NODE_IDS: readonly string[] = [BROADCAST_TOKEN];

/** The subjects of one cluster. */
export interface ClusterSubjects {
  /** Every node of the cluster subscribes to it. */
  readonly broadcast: string;
  /** The subject of one node. */
  direct(nodeId: string): string;
}

/**
 * The subjects of the cluster with `prefix` (a valid prefix; see `checkPrefix`).
 *
 * @example
 * ```ts
 * import { clusterSubjects } from "./_subjects.ts";
 * const subjects = clusterSubjects("orders");
 * console.log(subjects.broadcast, subjects.direct("n1")); // orders.all orders.node.n1
 * ```
 */
export function clusterSubjects(prefix: string): ClusterSubjects {
  const nodePrefix = `${prefix}.node.`;
  return {
    broadcast: `${prefix}.${BROADCAST_TOKEN}`,
    direct: (nodeId) => nodePrefix + nodeId,
  };
}
