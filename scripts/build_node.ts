/**
 * Builds Warp for Node in `dist/`: per-file ES modules and `.d.ts` for the public entry
 * points, and a `dist/package.json` whose `exports` mirror `deno.json`'s. The npm packages the
 * main entry point imports (from `deno.json`'s import map) are its `dependencies`; those
 * only the adapter entry points import (`@nats-io/*`, `postgres`, `@redis/client`) are
 * optional `peerDependencies`, installed by the user who imports that adapter, so that the
 * package's `engines` hold for what `npm install` brings (`@nats-io/nuid` 3 declares
 * Node ≥ 22; the core and the PostgreSQL and Redis adapters need Node ≥ 20).
 *
 * How: the entry points and the files they import are copied to `dist/.src/` (so that the
 * bare specifiers `@nats-io/*` and `postgres` resolve from `dist/node_modules/` exactly as
 * Node will resolve them), `npm install` fills `dist/node_modules/` (skipped when its
 * stamp matches `dist/package.json`), and TypeScript's own `tsc` compiles with
 * `rewriteRelativeImportExtensions`, which turns `./x.ts` into `./x.js`. `dist/.src/` is
 * removed afterwards; `dist/node_modules/` is kept as the install cache.
 *
 * Usage, from the repository root:
 *
 * ```sh
 * npx -y deno@2 task build:node
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";

/** The entry points built for Node, as `deno.json` `exports` names them. */
export const NODE_EXPORTS = [
  ".",
  "./core",
  "./nats",
  "./postgres",
  "./redis",
  "./otel",
  "./prometheus",
] as const;

/** Packages only the build needs: installed in `dist/`, never by the package's users. */
const BUILD_DEPENDENCIES: Readonly<Record<string, string>> = {
  "typescript": "~5.9.3",
  "@types/node": "^20.19.0",
};

/** Files the entry points may reach, at most: a guard against building the world. */
const FILES_MAX = 500;
const STAMP = ".warp-package-hash";

/** Where the build reads from and writes to. */
export interface BuildPaths {
  /** The repository root, holding `deno.json`. */
  readonly root: URL;
  /** The output folder. */
  readonly dist: URL;
}

/** What {@linkcode buildNode} did. */
export interface BuildResult {
  /** The package manifest written to `dist/package.json`. */
  readonly manifest: Record<string, unknown>;
  /** Whether `npm install` ran (false: `dist/node_modules/` was up to date). */
  readonly installed: boolean;
  /** Source files compiled. */
  readonly files: number;
  /** Wall time of each step, ms. */
  readonly timingsMs: Readonly<Record<string, number>>;
}

interface DenoConfig {
  name: string;
  version: string;
  license?: string;
  exports: Record<string, string>;
  imports: Record<string, string>;
  compilerOptions?: Record<string, unknown>;
}

/** The default paths: the repository this file lives in, and its `dist/`. */
export function defaultPaths(): BuildPaths {
  const root = new URL("../", import.meta.url);
  return { root, dist: new URL("dist/", root) };
}

/** Splits an `npm:name@range` import-map target into its package name and range. */
export function parseNpmSpecifier(target: string): { name: string; range: string } {
  const match = /^npm:(@?[^@/]+(?:\/[^@/]+)?)@([^/]+)$/.exec(target);
  if (match === null) {
    throw new TypeError(`Invalid npm specifier, expected npm:name@range: ${target}`);
  }
  return { name: match[1]!, range: match[2]! };
}

/** The package a bare specifier names: `@scope/name` or `name`, without a file path. */
function packageOf(specifier: string): string {
  return /^(@[^/]+\/[^/]+|[^/]+)/.exec(specifier)?.[1] ?? specifier;
}

/** The oldest Node the package supports: `engines.node`, checked by the smoke test. */
export const NODE_MAJOR_MIN = 20;

/**
 * The `dist/package.json` for a `deno.json`, the bare specifiers the built code imports, and
 * those of them the main entry point reaches (the others become optional peers).
 */
export function packageManifest(
  config: DenoConfig,
  bareImports: ReadonlySet<string>,
  coreImports: ReadonlySet<string> = bareImports,
): Record<string, unknown> {
  const exports: Record<string, { types: string; default: string }> = {};
  for (const name of NODE_EXPORTS) {
    const source = config.exports[name];
    if (source === undefined) throw new TypeError(`Missing export in deno.json: ${name}`);
    const base = source.replace(/\.ts$/, "");
    exports[name] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  const dependencies: Record<string, string> = {};
  const peerDependencies: Record<string, string> = {};
  for (const specifier of [...bareImports].sort()) {
    // A file of a mapped package (`@nats-io/transport-node/lib/x.js`) counts as that package.
    const key = specifier in config.imports ? specifier : packageOf(specifier);
    const target = config.imports[key];
    if (target === undefined) {
      throw new TypeError(`Bare import missing from deno.json imports: ${specifier}`);
    }
    const { name, range } = parseNpmSpecifier(target);
    if (name !== key) {
      throw new TypeError(`Import map renames a package, which Node cannot follow: ${specifier}`);
    }
    if (coreImports.has(specifier)) dependencies[name] = range;
    else peerDependencies[name] = range;
  }
  const subpaths = Object.fromEntries(
    Object.entries(exports).filter(([name]) => name !== ".").map((
      [name, { types }],
    ) => [name.slice(2), [types.replace(/^\.\//, "")]]),
  );
  return {
    name: config.name,
    version: config.version,
    description: "Consistent in-memory caches across the instances of a Deno or Node service",
    license: config.license ?? "MIT",
    type: "module",
    engines: { node: `>=${NODE_MAJOR_MIN}` },
    sideEffects: false,
    exports,
    // For TypeScript's `moduleResolution: "node"` (node10), which ignores `exports`.
    main: exports["."]!.default,
    types: exports["."]!.types,
    typesVersions: { "*": subpaths },
    files: ["**/*.js", "**/*.d.ts", "README.md", "LICENSE"],
    dependencies,
    peerDependencies,
    peerDependenciesMeta: Object.fromEntries(
      Object.keys(peerDependencies).map((name) => [name, { optional: true }]),
    ),
    // The build installs the peers too: it compiles the adapters against them.
    devDependencies: { ...BUILD_DEPENDENCIES, ...peerDependencies },
  };
}

/**
 * The local source files reachable from the entry points and the bare specifiers they
 * import, from Deno's own module graph (`deno info --json`).
 */
async function moduleGraph(
  root: URL,
  entries: readonly string[],
): Promise<{ files: string[]; bare: Set<string> }> {
  const files = new Set<string>();
  const bare = new Set<string>();
  for (const entry of entries) {
    const output = await run(Deno.execPath(), ["info", "--json", entry], root);
    const graph = JSON.parse(output) as {
      modules: { kind: string; specifier: string; dependencies?: { specifier: string }[] }[];
    };
    for (const module of graph.modules) {
      if (module.kind !== "esm") continue;
      if (!module.specifier.startsWith(root.href)) {
        throw new TypeError(
          `Entry point imports a file outside the repository: ${module.specifier}`,
        );
      }
      files.add(module.specifier.slice(root.href.length));
      assert(
        files.size <= FILES_MAX,
        `More than ${FILES_MAX} files reachable from the entry points`,
      );
      for (const { specifier } of module.dependencies ?? []) {
        if (/^(\.|\/|node:)/.test(specifier)) continue;
        bare.add(specifier);
      }
    }
  }
  return { files: [...files].sort(), bare };
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function readTextOrUndefined(url: URL): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(url);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Runs a command and returns its standard output; throws with all its output if it fails. */
async function run(command: string, args: string[], cwd: URL): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    throw new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output}`);
  }
  return new TextDecoder().decode(stdout);
}

/** Removes everything in `dist/` but the install cache. */
async function cleanDist(dist: URL): Promise<void> {
  await Deno.mkdir(dist, { recursive: true });
  for await (const entry of Deno.readDir(dist)) {
    if (entry.name === "node_modules" || entry.name === "package-lock.json") continue;
    await Deno.remove(new URL(entry.name, dist), { recursive: true });
  }
}

/** Runs `npm install` in `dist/` unless its stamp says it already ran for this manifest. */
async function installDependencies(dist: URL, manifestText: string): Promise<boolean> {
  const hash = await sha256Hex(manifestText);
  const stamp = new URL(`node_modules/${STAMP}`, dist);
  if ((await readTextOrUndefined(stamp)) === hash) return false;
  await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], dist);
  await Deno.writeTextFile(stamp, hash);
  return true;
}

function tsconfig(config: DenoConfig, files: readonly string[]): Record<string, unknown> {
  return {
    compilerOptions: {
      ...config.compilerOptions,
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      // The @nats-io type files use ESNext library types.
      lib: ["ESNext"],
      types: ["node"],
      rootDir: ".",
      outDir: "..",
      declaration: true,
      rewriteRelativeImportExtensions: true,
      skipLibCheck: true,
      newLine: "lf",
    },
    files,
  };
}

/** Builds `dist/`: see the module documentation. */
export async function buildNode(paths: BuildPaths = defaultPaths()): Promise<BuildResult> {
  const timingsMs: Record<string, number> = {};
  let started = performance.now();
  const lap = (step: string) => {
    const now = performance.now();
    timingsMs[step] = Math.round(now - started);
    started = now;
  };
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", paths.root)),
  ) as DenoConfig;
  const entries = NODE_EXPORTS.map((name) => config.exports[name]!.replace(/^\.\//, ""));
  const { files, bare } = await moduleGraph(paths.root, entries);
  const core = await moduleGraph(paths.root, [entries[0]!]);
  const manifest = packageManifest(config, bare, core.bare);
  const manifestText = JSON.stringify(manifest, null, 2) + "\n";

  await cleanDist(paths.dist);
  const stage = new URL(".src/", paths.dist);
  for (const file of files) {
    const target = new URL(file, stage);
    await Deno.mkdir(new URL(".", target), { recursive: true });
    await Deno.copyFile(new URL(file, paths.root), target);
  }
  await Deno.writeTextFile(
    new URL("tsconfig.json", stage),
    JSON.stringify(tsconfig(config, files), null, 2),
  );
  await Deno.writeTextFile(new URL("package.json", paths.dist), manifestText);
  for (const extra of ["README.md", "LICENSE"]) {
    await Deno.copyFile(new URL(extra, paths.root), new URL(extra, paths.dist));
  }
  lap("stage");

  const installed = await installDependencies(paths.dist, manifestText);
  lap("install");

  await run("node", ["node_modules/typescript/bin/tsc", "-p", ".src/tsconfig.json"], paths.dist);
  await Deno.remove(stage, { recursive: true });
  for (const name of NODE_EXPORTS) {
    const { types, default: js } =
      (manifest.exports as Record<string, { types: string; default: string }>)[name]!;
    for (const output of [types, js]) {
      const stat = await Deno.stat(new URL(output, paths.dist));
      assert(stat.isFile && stat.size > 0, `Build did not produce: ${output}`);
    }
  }
  lap("compile");
  return { manifest, installed, files: files.length, timingsMs };
}

if (import.meta.main) {
  const result = await buildNode();
  const { timingsMs } = result;
  console.log(
    `Built dist/: ${result.files} files, npm install ${result.installed ? "ran" : "cached"}, ` +
      Object.entries(timingsMs).map(([step, ms]) => `${step} ${ms} ms`).join(", "),
  );
}
