/** Bus message validation (`messages.ts`): heartbeats with their rounds and echoes. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { testNode } from "../../test/_node_core.ts";
import {
  assertAcceptsExactly,
  assertNeverThrows,
  countTagged,
  invalid,
  nodeIdTagged,
  tagList,
  tagObject,
  VALID_WEIGHT,
} from "../../test/_tagged.ts";
import type { Tagged } from "../../test/_tagged.ts";
import { ECHOES_MAX, validateMessage } from "./messages.ts";

const echoTagged: fc.Arbitrary<Tagged> = fc.oneof(
  {
    arbitrary: fc.tuple(nodeIdTagged, countTagged, countTagged).map(tagList),
    weight: VALID_WEIGHT,
  },
  // Not a triple: too short, too long, or no array at all.
  fc.tuple(nodeIdTagged, countTagged).map(([id, inc]): Tagged => [[id[0], inc[0]], false]),
  fc.tuple(nodeIdTagged, countTagged, countTagged, countTagged).map((parts): Tagged => [
    parts.map(([v]) => v),
    false,
  ]),
  invalid(null, "b", 3, {}, { 0: "b", 1: 1, 2: 1, length: 3 }),
);
const validEcho: readonly [string, number, number] = ["b", 1, 2];
const echoesTagged: fc.Arbitrary<Tagged> = fc.oneof(
  { arbitrary: fc.array(echoTagged, { maxLength: 4 }).map(tagList), weight: VALID_WEIGHT },
  fc.constant<Tagged>([Array(ECHOES_MAX).fill(validEcho), true]),
  invalid(Array(ECHOES_MAX + 1).fill(validEcho), null, undefined, "echo", {}),
);
/** A heartbeat, or something near one, with whether it is well formed. */
const heartbeatTagged: fc.Arbitrary<Tagged> = fc.record({
  t: fc.constant<Tagged>(["hb", true]),
  from: nodeIdTagged,
  inc: countTagged,
  seq: countTagged,
  round: countTagged,
  echo: echoesTagged,
}).map(tagObject);

Deno.test("validateMessage() accepts exactly the well-formed heartbeats, echoes included", () => {
  assertAcceptsExactly(heartbeatTagged, validateMessage);
});

Deno.test("NodeCore takes in well-formed heartbeats and drops the others, never throwing", () => {
  fc.assert(
    fc.property(fc.array(heartbeatTagged, { maxLength: 20 }), (messages) => {
      const n = testNode("z");
      let t = 1;
      for (const [message] of messages) n.onMessage(message, t++);
      const valid = messages.filter(([, ok]) => ok).length;
      assert.equal(n.stats.messagesReceived, valid);
      assert.equal(n.stats.messagesDropped, messages.length - valid);
    }),
    { numRuns: 300 },
  );
});

Deno.test("validateMessage() never throws on a heartbeat of anything", () => {
  const anyHeartbeat = fc.record({
    t: fc.constant("hb"),
    from: fc.anything(),
    inc: fc.anything(),
    seq: fc.anything(),
    round: fc.anything(),
    echo: fc.oneof(fc.anything(), fc.array(fc.anything()), fc.array(fc.array(fc.anything()))),
  });
  assertNeverThrows(fc.oneof(fc.anything(), anyHeartbeat), validateMessage);
});
