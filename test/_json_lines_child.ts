/**
 * The parent side of the JSON-lines protocol between a test and a test program it runs in
 * its own process (`test/_lock_process.ts`, `test/_lease_process.ts`,
 * `test/_cluster_process.ts`; the child side is `test/_child_io.ts`): spawn the program,
 * wait for its `ready` record, send commands with an id and match each `result` record to
 * its command, keep the tail of stderr for failure messages, kill or close the process.
 *
 * @module
 */

import { lines } from "./_lines.ts";

/** A record a child process wrote on stdout. */
export type ChildRecord = { readonly type: string } & Record<string, unknown>;

/** Options of {@linkcode JsonLinesChild.spawn}. */
export interface JsonLinesChildOptions {
  /** What error messages call the child: its node id, say. */
  readonly name: string;
  /** The program's arguments. @default {[]} */
  readonly args?: readonly string[];
  /** Sees every record the child writes (`ready` and `result` too), in order. @default {undefined} */
  readonly onRecord?: (record: ChildRecord) => void;
  /**
   * Called once the child is gone and every record it wrote was handled, before the
   * commands still waiting for an answer reject. @default {undefined}
   */
  readonly onExit?: () => void;
  /** How long the child may take to write `ready`. @default {30_000} */
  readonly readyTimeoutMs?: number;
  /** How long a command waits for its `result`. @default {60_000} */
  readonly commandTimeoutMs?: number;
  /** How long {@linkcode JsonLinesChild.close} waits for `exit` before SIGKILL. @default {5_000} */
  readonly exitTimeoutMs?: number;
}

/** The permissions of every test program: the shared servers, their settings, nothing else. */
const PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-env", "--allow-sys"];
const REPO_ROOT = new URL("../", import.meta.url).pathname;
const READY_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 5_000;
const STDERR_LINES_MAX = 40;

const encoder = new TextEncoder();

interface Waiting {
  resolve(record: ChildRecord): void;
  reject(error: Error): void;
}

/**
 * A test program in its own process, driven through JSON lines: one command a line on its
 * stdin, one record a line on its stdout.
 */
export class JsonLinesChild {
  /** What error messages call it. */
  readonly name: string;
  /** The last lines it wrote on stderr (and stdout lines that were not JSON). */
  readonly stderrTail: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #options: JsonLinesChildOptions;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #readers: Promise<void>[];
  readonly #waiting = new Map<number, Waiting>();
  #wake: (() => void)[] = [];
  #nextId = 1;
  #ready = false;
  #exitCode: number | undefined;
  #killed = false;

  /**
   * Spawns `program` (a path) with `deno run` and waits for its `ready` record. Rejects,
   * after closing it, if it exits or times out first.
   */
  static async spawn(program: string, options: JsonLinesChildOptions): Promise<JsonLinesChild> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMISSIONS, program, ...(options.args ?? [])],
      cwd: REPO_ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const process = new JsonLinesChild(child, options);
    try {
      const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
      await process.until(() => process.#ready || undefined, timeoutMs, "ready");
    } catch (error) {
      await process.close();
      throw error;
    }
    return process;
  }

  private constructor(child: Deno.ChildProcess, options: JsonLinesChildOptions) {
    this.name = options.name;
    this.#child = child;
    this.#options = options;
    this.#writer = child.stdin.getWriter();
    // Every record the child wrote is handled before it counts as exited.
    const exited = this.#readStdout().then(() => child.status).then((s) => this.#onExit(s.code));
    this.#readers = [exited, this.#readStderr()];
  }

  /** Whether the process is gone and every record it wrote was handled. */
  get exited(): boolean {
    return this.#exitCode !== undefined;
  }

  /**
   * Sends a command (with the next id) and resolves to its `result` record, whether that
   * holds an error or not. Rejects if the child exits or does not answer in time.
   */
  async send(command: Record<string, unknown>): Promise<ChildRecord> {
    if (this.exited) throw new Error(`${this.name} has exited:\n${this.#tail()}`);
    const id = this.#nextId++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = new Promise<ChildRecord>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`${this.name} did not answer ${JSON.stringify(command)}`));
      }, this.#options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS);
    }).finally(() => clearTimeout(timer));
    // Not awaited: `result` needs its handler before an exit or the timer can reject it.
    // The stream queues concurrent writes in order.
    this.#writer.write(encoder.encode(JSON.stringify({ ...command, id }) + "\n")).catch(
      (error) => {
        this.#waiting.get(id)?.reject(error);
        this.#waiting.delete(id);
      },
    );
    return await result;
  }

  /**
   * Resolves to what `find` returns once it is not `undefined`; `find` is asked now and
   * after each record. Rejects if the child exits or `timeoutMs` passes first; `what`
   * names the awaited thing in that error.
   */
  async until<T>(find: () => T | undefined, timeoutMs: number, what = "a record"): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = find();
      if (found !== undefined) return found;
      if (this.exited) {
        throw new Error(
          `${this.name} exited (code ${this.#exitCode}) before ${what}:\n${this.#tail()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${this.name}: no ${what} in ${timeoutMs} ms:\n${this.#tail()}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Sends a signal (SIGSTOP, SIGCONT...) to the process. */
  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** SIGKILLs the process and waits for it to be gone. */
  async kill(): Promise<void> {
    this.#killed = true;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.#child.status;
  }

  /** Asks the process to exit (SIGKILL if it does not), then frees every stream. */
  async close(): Promise<void> {
    if (!this.exited && !this.#killed) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.send({ op: "exit" }).catch(() => {}),
        new Promise((resolve) => {
          timer = setTimeout(resolve, this.#options.exitTimeoutMs ?? EXIT_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    await this.#writer.close().catch(() => {});
    await this.kill();
    await Promise.all(this.#readers);
  }

  async #readStdout(): Promise<void> {
    for await (const line of lines(this.#child.stdout)) {
      let record: ChildRecord;
      try {
        record = JSON.parse(line);
      } catch {
        this.#remember(`stdout: ${line}`);
        continue;
      }
      this.#onRecord(record);
    }
  }

  async #readStderr(): Promise<void> {
    for await (const line of lines(this.#child.stderr)) this.#remember(line);
  }

  #onRecord(record: ChildRecord): void {
    this.#options.onRecord?.(record);
    if (record.type === "ready") this.#ready = true;
    if (record.type === "result") {
      const waiting = this.#waiting.get(record.id as number);
      this.#waiting.delete(record.id as number);
      waiting?.resolve(record);
    }
    this.#notify();
  }

  #onExit(code: number): void {
    this.#exitCode = code;
    this.#options.onExit?.();
    for (const waiting of this.#waiting.values()) {
      waiting.reject(new Error(`${this.name} exited (code ${code}):\n${this.#tail()}`));
    }
    this.#waiting.clear();
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }

  #remember(line: string): void {
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_LINES_MAX) this.stderrTail.shift();
  }

  #tail(): string {
    return this.stderrTail.join("\n");
  }
}
