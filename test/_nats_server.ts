/**
 * Test helper: a private nats-server (with JetStream) on a free port, for fault tests that
 * must not touch the shared server on 4222. Stopped by its PID, never by name.
 *
 * @module
 */

import { freePort, PrivateServer } from "./_private_server.ts";

const NATS_SERVER_BINARY = Deno.env.get("WARP_NATS_SERVER") ?? "/usr/sbin/nats-server";

/** A nats-server child process that can be killed and started again on the same port. */
export class PrivateNatsServer extends PrivateServer {
  readonly #configFile: string | undefined;
  readonly #jetstream: boolean;

  private constructor(
    port: number,
    storeDir: string,
    configFile: string | undefined,
    jetstream: boolean,
  ) {
    super(port, storeDir);
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

  /** The JetStream store directory. */
  get storeDir(): string {
    return this.dir;
  }

  protected get binary(): string {
    return NATS_SERVER_BINARY;
  }

  protected args(): string[] {
    return [
      ...(this.#configFile === undefined ? [] : ["-c", this.#configFile]),
      ...["-a", "127.0.0.1", "-p", String(this.port), "-sd", this.dir],
      ...(this.#jetstream ? ["-js"] : []),
    ];
  }
}
