/**
 * Test helper: a private cluster of three (or `size`) nats-server processes on free
 * loopback ports, routed into one cluster, each with JetStream in its own temporary
 * directory, for fault tests of replicated (R3) KV buckets. Never the shared server on
 * 4222: every server is started here and stopped by its PID (SIGKILL), paused by SIGSTOP
 * and resumed by SIGCONT, by PID too.
 *
 * The servers are nats-server 2.9.10 (Debian's), which knows no `sync_interval` (2.10+):
 * docs/deploy-nats.md says what a production cluster should set.
 *
 * @module
 */

import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { freePort, PrivateServer } from "./_private_server.ts";

const NATS_SERVER_BINARY = Deno.env.get("WARP_NATS_SERVER") ?? "/usr/sbin/nats-server";
const READY_TIMEOUT_MS = 20_000;

/** The version of the nats-server binary the cluster runs (`2.9.10`), from `--version`. */
export function natsServerVersion(): string {
  const { stdout } = new Deno.Command(NATS_SERVER_BINARY, { args: ["--version"] }).outputSync();
  const match = /v(\d+\.\d+\.\d+\S*)/.exec(new TextDecoder().decode(stdout));
  if (match === null) throw new Error(`No version from ${NATS_SERVER_BINARY} --version`);
  return match[1]!;
}

/** Ports of one cluster member. */
interface MemberPorts {
  readonly client: number;
  readonly route: number;
  readonly monitor: number;
}

/** One nats-server of a {@linkcode NatsCluster}. */
export class ClusterNatsServer extends PrivateServer {
  /** The server's name in the cluster (`s1`, `s2`, ...), as JetStream reports leaders. */
  readonly name: string;
  readonly #ports: MemberPorts;
  readonly #routes: string;
  #paused = false;

  constructor(name: string, ports: MemberPorts, routes: string, dir: string) {
    super(ports.client, dir);
    this.name = name;
    this.#ports = ports;
    this.#routes = routes;
  }

  /** The client URL (`host:port`). */
  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The monitoring port (`/jsz`). */
  get monitorPort(): number {
    return this.#ports.monitor;
  }

  /** Whether it was paused by {@linkcode pause} and not resumed. */
  get paused(): boolean {
    return this.#paused;
  }

  protected get binary(): string {
    return NATS_SERVER_BINARY;
  }

  protected args(): string[] {
    return [
      ...["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.dir],
      ...["--server_name", this.name, "--cluster_name", "warp_test"],
      ...["--cluster", `nats://127.0.0.1:${this.#ports.route}`, "--routes", this.#routes],
      ...["-m", String(this.#ports.monitor)],
    ];
  }

  /** Stops the process where it stands (SIGSTOP, by PID): it holds its sockets, answers nothing. */
  pause(): void {
    const pid = this.pid;
    if (pid === undefined) throw new Error(`Server ${this.name} is not running`);
    Deno.kill(pid, "SIGSTOP");
    this.#paused = true;
  }

  /** Lets a paused server run again (SIGCONT, by PID). */
  resume(): void {
    const pid = this.pid;
    if (pid === undefined || !this.#paused) return;
    Deno.kill(pid, "SIGCONT");
    this.#paused = false;
  }

  /** Kills the server (resumed first, so the kill is not held up by a stopped process). */
  override async kill(): Promise<void> {
    this.resume();
    await super.kill();
  }
}

/** What the monitoring endpoint `/jsz` says about the JetStream metadata group. */
interface Jsz {
  readonly meta_cluster?: { readonly leader?: string; readonly cluster_size?: number };
}

/** A cluster of nats-servers with JetStream, started and stopped by the test. */
export class NatsCluster {
  readonly servers: readonly ClusterNatsServer[];

  private constructor(servers: readonly ClusterNatsServer[]) {
    this.servers = servers;
  }

  /** Starts `size` routed servers and waits until JetStream has a metadata leader. */
  static async start(size = 3): Promise<NatsCluster> {
    const ports: MemberPorts[] = [];
    const taken = new Set<number>();
    const port = () => {
      let p = freePort();
      while (taken.has(p)) p = freePort();
      taken.add(p);
      return p;
    };
    for (let i = 0; i < size; i++) ports.push({ client: port(), route: port(), monitor: port() });
    const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(",");
    const servers: ClusterNatsServer[] = [];
    for (const [i, p] of ports.entries()) {
      const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: `warp_natsc_s${i + 1}_` });
      servers.push(new ClusterNatsServer(`s${i + 1}`, p, routes, dir));
    }
    const cluster = new NatsCluster(servers);
    try {
      await Promise.all(servers.map((s) => s.restart()));
      await cluster.waitForMetaLeader();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Every server's client URL, separated by commas (the harness's `natsUrl`). */
  get urls(): string {
    return this.servers.map((s) => s.url).join(",");
  }

  /** The server named `name`. */
  server(name: string): ClusterNatsServer {
    const server = this.servers.find((s) => s.name === name);
    if (server === undefined) throw new RangeError(`No server named ${name}`);
    return server;
  }

  /** The metadata leader as a running, unpaused server sees it, or `undefined`. */
  async metaLeader(): Promise<string | undefined> {
    for (const server of this.servers) {
      if (server.pid === undefined || server.paused) continue;
      try {
        const response = await fetch(`http://127.0.0.1:${server.monitorPort}/jsz`, {
          signal: AbortSignal.timeout(1000),
        });
        const jsz = await response.json() as Jsz;
        const leader = jsz.meta_cluster?.leader;
        if (leader !== undefined && leader !== "") return leader;
      } catch {
        // Starting, or gone: ask the next.
      }
    }
    return undefined;
  }

  /** Waits until some server reports a metadata leader. */
  async waitForMetaLeader(timeoutMs = READY_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const leader = await this.metaLeader();
      if (leader !== undefined) return leader;
      if (Date.now() > deadline) throw new Error("The NATS cluster elected no metadata leader");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The leader of the KV bucket's stream (`KV_<bucket>`), asked of any server that answers. */
  async streamLeader(bucket: string, timeoutMs = READY_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({
          servers: this.servers.filter((s) => s.pid !== undefined && !s.paused).map((s) => s.url),
          name: "warp-cluster-harness",
          maxReconnectAttempts: 0,
          timeout: 1000,
        });
        const jsm = await jetstreamManager(nc, { timeout: 1000 });
        const leader = (await jsm.streams.info(`KV_${bucket}`)).cluster?.leader;
        if (leader !== undefined && leader !== "") return leader;
      } catch {
        // No quorum yet: ask again.
      } finally {
        await nc?.close();
      }
      if (Date.now() > deadline) throw new Error(`Stream KV_${bucket} has no leader`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Kills every server by its PID and removes their directories. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}
