/**
 * Test helper: a private nats-server (with JetStream) on a free port, for fault tests that
 * must not touch the shared server on 4222. Stopped by its PID, never by name.
 *
 * @module
 */

const NATS_SERVER_BINARY = Deno.env.get("WARP_NATS_SERVER") ?? "/usr/sbin/nats-server";
const READY_TIMEOUT_MS = 10_000;

/** A nats-server child process that can be killed and started again on the same port. */
export class PrivateNatsServer {
  readonly port: number;
  readonly storeDir: string;
  readonly #configFile: string | undefined;
  readonly #jetstream: boolean;
  #child: Deno.ChildProcess | undefined;

  private constructor(
    port: number,
    storeDir: string,
    configFile: string | undefined,
    jetstream: boolean,
  ) {
    this.port = port;
    this.storeDir = storeDir;
    this.#configFile = configFile;
    this.#jetstream = jetstream;
  }

  /**
   * Starts a server on a free port with a fresh JetStream store directory under /tmp.
   * `config` is nats-server configuration text (users and permissions, say); the command
   * line's address, port and store directory take precedence over it. `jetstream: false`
   * starts it without JetStream (`-js` left out).
   */
  static async start(
    options: { config?: string; jetstream?: boolean } = {},
  ): Promise<PrivateNatsServer> {
    const storeDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "warp_nats_" });
    let configFile: string | undefined;
    if (options.config !== undefined) {
      configFile = `${storeDir}/server.conf`;
      await Deno.writeTextFile(configFile, options.config);
    }
    const server = new PrivateNatsServer(
      freePort(),
      storeDir,
      configFile,
      options.jetstream ?? true,
    );
    await server.restart();
    return server;
  }

  /** The server URL for `servers`. */
  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The PID of the running server, or `undefined` if it is stopped. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the server (again) on the same port and store, and waits until it accepts. */
  async restart(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`Server is running: ${this.#child.pid}`);
    const command = new Deno.Command(NATS_SERVER_BINARY, {
      args: [
        ...(this.#configFile === undefined ? [] : ["-c", this.#configFile]),
        ...["-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir],
        ...(this.#jetstream ? ["-js"] : []),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    });
    this.#child = command.spawn();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (true) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
        conn.close();
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          await this.kill();
          throw new Error(`nats-server did not start on port ${this.port}`, { cause: error });
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

  /** Kills the server and removes its store directory. */
  async stop(): Promise<void> {
    await this.kill();
    await Deno.remove(this.storeDir, { recursive: true }).catch(() => {});
  }
}

/** A port of 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
