/**
 * Test helper: a server binary run as a child process on a free port of 127.0.0.1, for
 * fault tests that must never touch the shared servers. Killed by its PID, never by name,
 * and started again on the same port and directory. `PrivateNatsServer` and
 * `PrivateRedis` are two of these; `PrivatePostgres` is not (PostgreSQL runs as its own
 * user, through `pg_ctl`).
 *
 * @module
 */

const READY_TIMEOUT_MS = 10_000;

/** A server child process; subclasses say which binary and which arguments. */
export abstract class PrivateServer {
  readonly port: number;
  /** The server's own directory (data, configuration), removed by {@linkcode stop}. */
  readonly dir: string;
  #child: Deno.ChildProcess | undefined;

  protected constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** The binary to run. */
  protected abstract get binary(): string;
  /** Its arguments. */
  protected abstract args(): string[];

  /** The PID of the running server, or `undefined` if it is stopped. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the server (again) on the same port and directory, and waits until it accepts. */
  async restart(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`Server is running: ${this.#child.pid}`);
    const child = new Deno.Command(this.binary, {
      args: this.args(),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (true) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          await this.kill();
          throw new Error(`${this.binary} did not start on port ${this.port}`, { cause: error });
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

/** A port of 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
