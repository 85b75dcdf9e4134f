/**
 * The child side of the JSON-lines protocol between a test and a test program it runs in
 * its own process (`test/_lock_process.ts`, `test/_lease_process.ts`,
 * `test/_cluster_process.ts`; the parent side is `test/_json_lines_child.ts`): the
 * options every program takes, records written on stdout, commands read from stdin.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { lines } from "./_lines.ts";

/** A command read from stdin: its id (its `result` record repeats it) and its op. */
export type Command = { readonly id: number; readonly op: string } & Record<string, unknown>;

/** The options every test program takes, each as `--name value`. */
export interface ProgramOptions {
  /** This process's node id. */
  readonly node: string;
  /** The NATS server, `host:port`. */
  readonly nats: string;
  /** The JetStream KV bucket of the coordinator. */
  readonly bucket: string;
  /** The PostgreSQL connection URL. */
  readonly pg: string;
  /** The PostgreSQL table. */
  readonly table: string;
  /** The subject and key prefix the nodes share. */
  readonly prefix: string;
}

/** Where {@linkcode parseProgramOptions} looks for an option not given as an argument. */
export interface ProgramOptionsFallback {
  /**
   * The prefix of environment variables that stand in for missing options: `WARP_LOCK`
   * reads `--node` from `WARP_LOCK_NODE`. @default {undefined} (no environment)
   */
  readonly env?: string;
  /** Values of options given neither way. @default {{}} (every option required) */
  readonly defaults?: Partial<ProgramOptions>;
}

/** What {@linkcode parseProgramOptions} read. */
export interface ParsedProgramOptions<
  M extends Record<string, number | undefined>,
  T extends string = never,
> {
  /** The options every program takes. */
  readonly options: ProgramOptions;
  /** The program's own options, in milliseconds, by name. */
  readonly ms: { readonly [K in keyof M]: M[K] extends number ? number : number | undefined };
  /** The program's own text options, by name (`undefined`: not given). */
  readonly text: { readonly [K in T]: string | undefined };
}

const PROGRAM_OPTIONS = ["node", "nats", "bucket", "pg", "table", "prefix"] as const;

/** The current time in epoch milliseconds, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

const encoder = new TextEncoder();

/**
 * Writes a record on stdout as one line, synchronously and whole, so it is out before the
 * next step begins: a SIGKILL cannot lose a record of something already done.
 */
export function emit(record: Record<string, unknown>): void {
  const bytes = encoder.encode(JSON.stringify(record) + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/**
 * Reads `Deno.args`: the {@linkcode ProgramOptions}, the program's own options that are
 * durations in milliseconds, given in `msOptions` by name with their defaults
 * (`undefined`: none), and its own optional text options, named in `textOptions`. Throws a
 * `TypeError` for an unknown or missing option, a `RangeError` for a duration below 0 (0
 * passes: the program gives it its meaning, "off" say, or lets its library refuse it).
 */
export function parseProgramOptions<
  M extends Record<string, number | undefined>,
  T extends string = never,
>(
  msOptions: M,
  fallback: ProgramOptionsFallback = {},
  textOptions: readonly T[] = [],
): ParsedProgramOptions<M, T> {
  const names = [...PROGRAM_OPTIONS, ...Object.keys(msOptions), ...textOptions];
  const { values } = parseArgs({
    args: Deno.args,
    options: Object.fromEntries(names.map((name) => [name, { type: "string" as const }])),
  });
  const strings = values as Record<string, string | undefined>;
  const option = (name: keyof ProgramOptions): string => {
    const value = strings[name] ??
      (fallback.env === undefined
        ? undefined
        : Deno.env.get(`${fallback.env}_${name.toUpperCase()}`)) ??
      fallback.defaults?.[name];
    if (value === undefined) throw new TypeError(`Missing option: --${name}`);
    return value;
  };
  return {
    options: {
      node: option("node"),
      nats: option("nats"),
      bucket: option("bucket"),
      pg: option("pg"),
      table: option("table"),
      prefix: option("prefix"),
    },
    ms: durationsMs(strings, msOptions) as ParsedProgramOptions<M, T>["ms"],
    text: Object.fromEntries(
      textOptions.map((name) => [name, strings[name]]),
    ) as ParsedProgramOptions<
      M,
      T
    >["text"],
  };
}

/** Each option of `msOptions` as given in `strings` (0 or more), or its default. */
function durationsMs(
  strings: Record<string, string | undefined>,
  msOptions: Record<string, number | undefined>,
): Record<string, number | undefined> {
  return Object.fromEntries(
    Object.entries(msOptions).map(([name, defaultMs]) => {
      const text = strings[name];
      if (text === undefined) return [name, defaultMs];
      const value = Number(text);
      if (!(value >= 0) || !Number.isFinite(value)) {
        throw new RangeError(`Invalid --${name}: ${text}`);
      }
      return [name, value];
    }),
  );
}

/**
 * Runs `handle` on each command read from stdin, each as soon as it arrives (they run
 * concurrently), until stdin closes: the test is gone or done. Then waits for the
 * commands still running. `handle` answers a failure with a record: a rejection is a bug
 * and ends the process.
 */
export async function serveCommands(handle: (command: Command) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  for await (const line of lines(Deno.stdin.readable)) {
    const done = handle(JSON.parse(line) as Command);
    running.add(done);
    done.finally(() => running.delete(done));
  }
  await Promise.allSettled(running);
}
