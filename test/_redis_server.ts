/**
 * Test helper: a private redis-server on a free port, for fault tests that must never
 * touch the shared server on 6379. Killed by its PID, never by name.
 *
 * @module
 */

import { freePort, PrivateServer } from "./_private_server.ts";

const REDIS_SERVER_BINARY = Deno.env.get("WARP_REDIS_SERVER") ?? "redis-server";

/** A redis-server child process that can be killed and started again on the same port. */
export class PrivateRedis extends PrivateServer {
  readonly #extraArgs: string[];

  private constructor(port: number, dir: string, extraArgs: string[]) {
    super(port, dir);
    this.#extraArgs = extraArgs;
  }

  /** Starts a server without persistence; `cluster` starts it in cluster mode. */
  static async start(options: { cluster?: boolean } = {}): Promise<PrivateRedis> {
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "warp_redis_" });
    const extra = options.cluster
      ? ["--cluster-enabled", "yes", "--cluster-config-file", `${dir}/nodes.conf`]
      : [];
    const server = new PrivateRedis(freePort(), dir, extra);
    await server.restart();
    return server;
  }

  /** The server URL. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  protected get binary(): string {
    return REDIS_SERVER_BINARY;
  }

  protected args(): string[] {
    return [
      ...["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir],
      ...["--save", "", "--appendonly", "no", "--daemonize", "no"],
      ...this.#extraArgs,
    ];
  }
}
