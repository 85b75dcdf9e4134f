import { checkHistory, GUARANTEES } from "./consistency.ts";
import { syntheticHistory } from "./_synthetic.ts";
import { SimCluster } from "../cluster.ts";

const typical = syntheticHistory({ seed: 1, ops: 5000 });
const contended = syntheticHistory({ seed: 2, ops: 5000, keysPerMode: 1, durationMaxMs: 20 });
const simulated = new SimCluster({ seed: 1, leases: true }).run().history;
const withoutLogChecks = GUARANTEES.filter((g) => g !== "E1s" && g !== "EP");

Deno.bench("checkHistory() on 5000 ops, 12 keys, ops up to 5 ms", () => {
  checkHistory(typical);
});

Deno.bench(
  "checkHistory() on 5000 ops, 3 keys, ops up to 20 ms (~13 open per key: S1 unknown)",
  () => {
    checkHistory(contended);
  },
);

Deno.bench("checkHistory() on 5000 ops without the linearizability searches", () => {
  checkHistory(typical, { guarantees: ["E1", "E2", "E3", "E4", "S2", "SL2"] });
});

Deno.bench("checkHistory() on a simulated swarm run, without E1s and EP", {
  group: "simulated",
  baseline: true,
}, () => {
  checkHistory(simulated, { guarantees: withoutLogChecks });
});

Deno.bench("checkHistory() on a simulated swarm run, every guarantee", {
  group: "simulated",
}, () => {
  checkHistory(simulated);
});

Deno.bench("checkHistory() on a simulated swarm run, E1s and EP alone", {
  group: "simulated",
}, () => {
  checkHistory(simulated, { guarantees: ["E1s", "EP"] });
});
