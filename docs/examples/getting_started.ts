/**
 * The session store of `docs/getting-started.md`: two service instances (two Warp nodes in
 * one process here, over the in-memory store and bus), user sessions that every instance
 * sees, and a logout that ends all of a user's sessions on every instance at once.
 *
 * Run it from the repository root; it needs no server and no permission:
 *
 * ```sh
 * npx -y deno@2 run docs/examples/getting_started.ts
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "../../mod.ts";
import type { WarpConfig } from "../../mod.ts";

/** A session as the application keeps it: a database row, dates and all. */
interface Session {
  readonly userId: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly roles: Set<string>;
}

/** The same configuration on every instance (and for `deno task sim --config`). */
export const config = {
  keys: {
    // Read on every request: served from memory, at most 500 ms behind a write elsewhere.
    "session:*": { mode: "eventual-distributed", maxStalenessMs: 500, ttlMs: 15 * 60_000 },
    // The user's lease id: every instance must agree on it at once.
    "user-lease:*": { mode: "strong-distributed" },
  },
} satisfies WarpConfig;

// In production: PostgresStore, PostgresCoordinator and PostgresTransport (or NATS), one
// set per process; see docs/deploy-postgres.md.
const store = new MemoryStore();
const coordinator = new MemoryCoordinator();
const bus = new InProcessBus();
const [a, b] = [1, 2].map(() =>
  new Warp({ ...config, store, coordinator, transport: bus.connect() })
) as [Warp, Warp];

/** Logs a user in on `node`: one lease per user, each session attached to it. */
async function login(node: Warp, userId: string, sessionId: string): Promise<void> {
  let lease = await node.get<string>(`user-lease:${userId}`);
  if (lease === undefined) {
    lease = await node.grantLease({ ttlMs: 24 * 3_600_000 });
    await node.set(`user-lease:${userId}`, lease);
  }
  const now = new Date();
  await node.set<Session>(`session:${sessionId}`, {
    userId,
    createdAt: now,
    expiresAt: new Date(now.getTime() + 15 * 60_000),
    roles: new Set(["member"]),
  }, { lease });
}

/** Ends every session of `userId` on every node. */
async function logoutEverywhere(node: Warp, userId: string): Promise<void> {
  const lease = await node.get<string>(`user-lease:${userId}`);
  if (lease !== undefined) await node.revokeLease(lease);
  await node.delete(`user-lease:${userId}`);
}

try {
  await login(a, "ada", "s1");
  await login(b, "ada", "s2"); // another instance, the same user
  const session = await b.get<Session>("session:s1"); // typed, no cast
  assert.ok(session?.createdAt instanceof Date && session.roles.has("member"));
  console.log("instance b sees session s1 of", session.userId);

  await logoutEverywhere(a, "ada");
  assert.equal(await b.get<Session>("session:s1"), undefined);
  assert.equal(await b.get<Session>("session:s2"), undefined);
  console.log("after logout, neither instance serves a session of ada");
} finally {
  await a.close();
  await b.close();
}
