/**
 * What the benchmarks that compare this tree with an earlier commit share: the
 * `--rounds`/`--hits` arguments, a copy of a folder of the repository as of a commit (or
 * this working tree) imported on its own, so that each side runs its own compiled code, and
 * the rounds that time every row in a shuffled order against the first row.
 *
 * @example
 * ```ts ignore
 * import { importTreeCopy } from "./_compare.ts";
 * const [core] = await importTreeCopy("HEAD~1", "src/core", ["src/core/node.ts"]);
 * console.log(typeof core!.NodeCore); // "function"
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Runs git and gives its standard output. */
export async function git(...gitArgs: string[]): Promise<Uint8Array> {
  const output = await new Deno.Command("git", { args: gitArgs, stderr: "inherit" }).output();
  if (!output.success) throw new Error(`git ${gitArgs.join(" ")} failed`);
  return output.stdout;
}

/** The commit to compare with: `--base`, else where this branch left main. */
export async function baseCommit(base: string | undefined): Promise<string> {
  return base ?? new TextDecoder().decode(await git("merge-base", "HEAD", "main")).trim();
}

/** `--base`, `--rounds` and `--hits` (positive integers), with the given defaults. */
export function roundsAndHits(
  defaults: { rounds: number; hits: number },
): { base: string | undefined; rounds: number; hitsPerRound: number } {
  const { values } = parseArgs({
    options: {
      base: { type: "string" },
      rounds: { type: "string", default: String(defaults.rounds) },
      hits: { type: "string", default: String(defaults.hits) },
    },
  });
  const rounds = Number(values.rounds);
  const hitsPerRound = Number(values.hits);
  if (
    !(Number.isInteger(rounds) && rounds > 0 && Number.isInteger(hitsPerRound) &&
      hitsPerRound > 0)
  ) {
    throw new RangeError(`Invalid --rounds or --hits: ${values.rounds}, ${values.hits}`);
  }
  return { base: values.base, rounds, hitsPerRound };
}

/**
 * Extracts `folder` (relative to the repository root) as of `ref` (`undefined`: this
 * working tree) into a temporary folder, imports each of `entries` from it (one copy for
 * all of them) and removes the folder.
 */
export async function importTreeCopy(
  ref: string | undefined,
  folder: string,
  entries: readonly string[],
): Promise<Record<string, unknown>[]> {
  const dir = await Deno.makeTempDir({ prefix: "warp-tree-copy-" });
  const tar = ref === undefined
    ? await new Deno.Command("tar", {
      args: ["-c", "-C", new URL("..", import.meta.url).pathname, folder],
      stdout: "piped",
    }).output().then((o) => o.stdout)
    : await git("archive", "--format=tar", ref, folder);
  const untar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
  const writer = untar.stdin.getWriter();
  await writer.write(tar);
  await writer.close();
  if (!(await untar.status).success) throw new Error("tar failed");
  try {
    return await Promise.all(entries.map((entry) => import(`file://${dir}/${entry}`)));
  } finally {
    await Deno.remove(dir, { recursive: true }); // loaded: the files are no longer needed
  }
}

/** The `q` quantile of `values` (nearest rank below). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

/**
 * Times `rows` over `rounds` rounds: in each round every row runs `time` once, in a
 * shuffled order, and its time is divided by the first row's in the same round (a ratio of
 * two times taken moments apart cancels most of the load of a shared machine). Prints each
 * row's median time and its ratio's quartiles; gives the times, per row and round.
 */
export async function measureRounds<R>(
  title: string,
  rows: readonly [string, R][],
  rounds: number,
  time: (row: R) => number | Promise<number>,
): Promise<number[][]> {
  const times = rows.map(() => [] as number[]);
  const ratios = rows.map(() => [] as number[]);
  let seed = 12345;
  for (let round = 0; round < rounds; round++) {
    const order = rows.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const ns = rows.map(() => 0);
    for (const i of order) ns[i] = await time(rows[i]![1]);
    for (const [i, value] of ns.entries()) {
      times[i]!.push(value);
      ratios[i]!.push(value / ns[0]!);
    }
  }
  console.log(`\n${title}`);
  console.log("row                                   ns/hit   × today (p25  p50  p75)");
  for (const [i, [name]] of rows.entries()) {
    console.log(
      `${name.padEnd(36)} ${quantile(times[i]!, 0.5).toFixed(1).padStart(7)}   ${
        [0.25, 0.5, 0.75].map((q) => quantile(ratios[i]!, q).toFixed(3)).join("  ")
      }`,
    );
  }
  return times;
}
