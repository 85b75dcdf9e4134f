/**
 * The echo budget of a node's heartbeats: at most `echoesMax` echoes per heartbeat, taken
 * in turn over the peers heard lately, so a heartbeat's size stays bounded as the cluster
 * grows.
 *
 * Why: every heartbeat is broadcast, so each node receives N heartbeats per interval; with
 * an echo for every peer heard, each heartbeat carries N echoes, and the bytes each node
 * receives grow as N² (the cluster's as N³; `bench/sessions.ts`, docs/operations.md). With
 * the budget, a heartbeat carries at most `echoesMax` echoes and each node receives
 * O(N × echoesMax) bytes per interval.
 *
 * What it costs: a peer's round is echoed back to it once every `⌈peers / echoesMax⌉`
 * heartbeats instead of every one, so a member's freshness proof (`_peers.ts`) lags by up
 * to that many heartbeat intervals. Safety does not depend on it: an echo still says
 * exactly what it said (the sender had heard that round before this heartbeat), only
 * fewer are sent; a proof that comes later serves eventual entries past their age bound
 * later, never earlier. Below `echoesMax` peers nothing changes.
 *
 * Design: a cursor over the list of peers eligible at each heartbeat, advanced by the
 * number taken, so every eligible peer is echoed within `⌈eligible / echoesMax⌉`
 * heartbeats while the list is stable (a peer that joins or leaves may shift the others
 * by one turn).
 *
 * Rejected: one compact digest per heartbeat instead of per-peer echoes (a cluster-wide
 * Lamport round and the lowest round heard from every member, O(1) bytes) — it needs a new
 * heartbeat wire format and a proof that the digest covers the receiver's incarnation
 * (membership views differ while a node joins), and one member unheard by one node would
 * stall every node's proof instead of that member's; sampling echoes at random — the same
 * bytes with an unbounded worst-case lag per peer; and lengthening the heartbeat interval
 * with N, which delays gap detection for every broadcast, not only the proofs.
 *
 * @module
 */

/** The default number of echoes one heartbeat carries at most. */
export const ECHOES_PER_HEARTBEAT_DEFAULT = 32;

/** Takes at most `echoesMax` items per call, in turn over the list it is given. */
export class EchoBudget {
  readonly echoesMax: number;
  #cursor = 0;

  /** A budget of `echoesMax` (a positive integer) echoes per heartbeat. */
  constructor(echoesMax: number) {
    if (!Number.isSafeInteger(echoesMax) || echoesMax < 1) {
      throw new RangeError(`Invalid echoesMax, expected a positive integer: ${echoesMax}`);
    }
    this.echoesMax = echoesMax;
  }

  /**
   * The items of this heartbeat: all of `eligible` when they fit the budget, else
   * `echoesMax` of them from where the previous call stopped, wrapping around.
   */
  take<T>(eligible: readonly T[]): T[] {
    const n = eligible.length;
    if (n <= this.echoesMax) return [...eligible];
    const start = this.#cursor % n;
    const taken: T[] = [];
    for (let i = 0; i < this.echoesMax; i++) taken.push(eligible[(start + i) % n]!);
    this.#cursor = (start + this.echoesMax) % n;
    return taken;
  }
}
