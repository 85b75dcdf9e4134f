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
import { ECHOES_MAX, isAbsurd, MESSAGE_NUMBER_MAX, validateMessage } from "./messages.ts";
import type { Message } from "./messages.ts";

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
      // Well formed but absurd (a number above MESSAGE_NUMBER_MAX): dropped and counted too.
      const valid = messages.filter(([m, ok]) => ok && !isAbsurd(m as Message));
      assert.equal(n.stats.messagesReceived, valid.length);
      assert.equal(n.stats.absurdMessages, messages.filter(([, ok]) => ok).length - valid.length);
      assert.equal(n.stats.messagesDropped, messages.length - valid.length);
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

Deno.test("NodeCore drops and counts messages with a number above MESSAGE_NUMBER_MAX, and keeps serving", () => {
  const n = testNode("z");
  const big = MESSAGE_NUMBER_MAX + 1;
  const absurd: Message[] = [
    { t: "inv", from: "x", inc: 1, seq: 1, key: "ev:1", version: 2 ** 53 - 1 },
    { t: "inv", from: "x", inc: big, seq: 1, key: "ev:1", version: 2 },
    { t: "drop", from: "x", inc: 1, seq: big, key: "ev:1" },
    { t: "hb", from: "x", inc: 1, seq: 2 ** 53 - 1, round: 1, echo: [] },
    { t: "hb", from: "x", inc: 1, seq: 1, round: 1, echo: [["z", 1, big]] },
    { t: "revoke", from: "x", inc: 1, id: big, key: "st:1", rev: 1, nonce: 1 },
    { t: "ack", from: "x", inc: 1, id: 1, key: "st:1", to: big, nonce: 1 },
  ];
  for (const message of absurd) n.onMessage(message, 1);
  assert.equal(n.stats.absurdMessages, absurd.length);
  assert.equal(n.stats.messagesReceived, 0);
  assert.equal(n.stats.flushes, 0);
  // A nonce may be anything safe: it is drawn, not counted.
  n.onMessage(
    { t: "revoke", from: "x", inc: 1, id: 1, key: "st:1", rev: 1, nonce: 2 ** 53 - 1 },
    2,
  );
  assert.equal(n.stats.absurdMessages, absurd.length);
  assert.equal(n.stats.messagesReceived, 1);
});
