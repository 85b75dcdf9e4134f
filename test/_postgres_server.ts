/**
 * Test helper: a private PostgreSQL server on a free port, for fault tests that must never
 * touch the shared server on 5432. `initdb` refuses to run as root, so every command runs
 * as the `postgres` user (`runuser`); the server is stopped through `pg_ctl`, which signals
 * the postmaster by the PID in its own data directory, never by name.
 *
 * @module
 */

import { freePort } from "./_private_server.ts";

const BIN = Deno.env.get("WARP_POSTGRES_BIN") ?? "/usr/lib/postgresql/15/bin";
const READY_TIMEOUT_MS = 20_000;

/** A PostgreSQL server of its own: started, crashed, restarted on the same port and data. */
export class PrivatePostgres {
  readonly port: number;
  readonly dataDir: string;
  #running = false;

  private constructor(port: number, dataDir: string) {
    this.port = port;
    this.dataDir = dataDir;
  }

  /** Creates a cluster (`initdb`, trust authentication) in a fresh directory, and starts it. */
  static async start(): Promise<PrivatePostgres> {
    const dataDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "warp_pg_" });
    await run("chown", ["postgres:postgres", dataDir]);
    await asPostgres(`${BIN}/initdb`, ["-D", dataDir, "-A", "trust", "-U", "postgres", "-N"]);
    const server = new PrivatePostgres(freePort(), dataDir);
    await server.restart();
    return server;
  }

  /** The URL of its `postgres` database. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Whether the server runs (as far as this helper started and stopped it). */
  get running(): boolean {
    return this.#running;
  }

  /** Starts the server (again) and waits until it accepts queries. */
  async restart(): Promise<void> {
    if (this.#running) throw new Error(`Server is running on port ${this.port}`);
    await asPostgres(`${BIN}/pg_ctl`, [
      "-D",
      this.dataDir,
      "-o",
      `-p ${this.port} -k ${this.dataDir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "-l",
      `${this.dataDir}/log`,
      "-w",
      "-t",
      String(READY_TIMEOUT_MS / 1000),
      "start",
    ]);
    this.#running = true;
  }

  /** Stops the server: `immediate` is a crash (no checkpoint), `fast` a clean shutdown. */
  async stop(mode: "immediate" | "fast" = "immediate"): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await asPostgres(`${BIN}/pg_ctl`, ["-D", this.dataDir, "-m", mode, "-w", "stop"]);
  }

  /** Stops the server and removes its data directory. */
  async remove(): Promise<void> {
    await this.stop("immediate").catch(() => {});
    await Deno.remove(this.dataDir, { recursive: true }).catch(() => {});
  }
}

async function asPostgres(command: string, args: string[]): Promise<void> {
  await run("runuser", ["-u", "postgres", "--", command, ...args]);
}

async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${code}: ${new TextDecoder().decode(stderr)}`,
    );
  }
}
