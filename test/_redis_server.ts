/**
 * Test helper: a private redis-server on a free port, for fault tests that must never
 * touch the shared server on 6379. Killed by its PID, never by name.
 *
 * @module
 */

import { freePort } from "./_nats_server.ts";

const REDIS_SERVER_BINARY = Deno.env.get("WARP_REDIS_SERVER") ?? "redis-server";
const READY_TIMEOUT_MS = 10_000;

/** A redis-server child process that can be killed and started again on the same port. */
export class PrivateRedis {
  readonly port: number;
  readonly dir: string;
  readonly #extraArgs: string[];
  #child: Deno.ChildProcess | undefined;

  private constructor(port: number, dir: string, extraArgs: string[]) {
    this.port = port;
    this.dir = dir;
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

  /** Starts the server (again) on the same port and waits until it accepts. */
  async restart(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`Server is running: ${this.#child.pid}`);
    this.#child = new Deno.Command(REDIS_SERVER_BINARY, {
      args: [
        ...["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir],
        ...["--save", "", "--appendonly", "no", "--daemonize", "no"],
        ...this.#extraArgs,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (true) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          await this.kill();
          throw new Error(`redis-server did not start on port ${this.port}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Kills the server with SIGKILL (by PID) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
  }

  /** Kills the server and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
