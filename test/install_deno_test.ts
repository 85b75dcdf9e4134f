/**
 * A Deno project outside this repository uses Warp as `docs/getting-started.md` says: its
 * `deno.json` maps `@warp/warp` to the JSR package and `links` it to a local checkout (the
 * way to use an unpublished or patched copy). Warp's own `deno.json` then supplies the npm
 * packages its entry points import (`devalue`, `postgres`, `@nats-io/*`, `@redis/client`),
 * so the project declares none of them.
 *
 * Needs `--allow-run` (deno), `--allow-read` and `--allow-write=/tmp`; no network beyond
 * Deno's npm cache.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

const MAIN_TS = `
import { MemoryStore, Warp } from "@warp/warp";
import { NodeCore } from "@warp/warp/core";
import { NatsTransport } from "@warp/warp/nats";
import { PostgresStore } from "@warp/warp/postgres";
import { RedisTransport } from "@warp/warp/redis";

const warp = new Warp({ store: new MemoryStore() });
warp.register("user:*", { mode: "strong-local" });
await warp.set("user:1", { createdAt: new Date(0), id: 7n });
const user = await warp.get<{ createdAt: Date; id: bigint }>("user:1");
await warp.close();
console.log(JSON.stringify({
  user: user?.createdAt instanceof Date && user.id === 7n,
  adapters: [NodeCore, NatsTransport, PostgresStore, RedisTransport].map((f) => typeof f),
}));
`;

Deno.test("a Deno project outside the repository imports every entry point, declaring no dependency of Warp's", async () => {
  const folder = await Deno.makeTempDir({ prefix: "warp-deno-" });
  try {
    await Deno.writeTextFile(
      `${folder}/deno.json`,
      JSON.stringify({
        links: [decodeURIComponent(ROOT.pathname)],
        imports: { "@warp/warp": "jsr:@warp/warp@^0.1.0" },
      }),
    );
    await Deno.writeTextFile(`${folder}/main.ts`, MAIN_TS);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--check", "--allow-env", "--allow-read", "main.ts"],
      cwd: folder,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(stdout);
    assert.equal(code, 0, output + new TextDecoder().decode(stderr));
    assert.deepEqual(JSON.parse(output.trim().split("\n").at(-1)!), {
      user: true,
      adapters: ["function", "function", "function", "function"],
    });
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});
