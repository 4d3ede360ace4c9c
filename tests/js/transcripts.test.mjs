// Transcript merging by ordinal and delta (PROTOCOL.md 2.7, JS addOrUpdateTranscript).
import assert from "node:assert/strict";
import { test } from "node:test";

import { Medium, Role, Transcript, TranscriptLog } from "../../src/voxcall/server/static/ultravox-core.js";

const agent = (fields) => ({ type: "transcript", role: "agent", medium: "voice", final: false, ...fields });

test("text opens an utterance, deltas append, the final text replaces", () => {
  const log = new TranscriptLog();
  assert.equal(log.apply(agent({ text: "Hello", ordinal: 0 })), true);
  assert.equal(log.apply(agent({ delta: ", this", ordinal: 0 })), true);
  assert.equal(log.apply(agent({ delta: " is James", ordinal: 0 })), true);
  assert.deepEqual(log.transcripts, [new Transcript("Hello, this is James", false, Role.AGENT, Medium.VOICE, 0)]);
  log.apply(agent({ text: "Hello, this is James from FastTrack.", final: true, ordinal: 0 }));
  const [only] = log.transcripts;
  assert.equal(only.text, "Hello, this is James from FastTrack.");
  assert.equal(only.isFinal, true);
});

test("a delta with no earlier text starts from empty", () => {
  const log = new TranscriptLog();
  log.apply(agent({ delta: "Hi", ordinal: 3 }));
  assert.equal(log.transcripts[0].text, "Hi");
});

test("user and agent utterances share one ordinal sequence and come out in order", () => {
  const log = new TranscriptLog();
  log.apply({ role: "user", medium: "text", text: "What's up?", final: true, ordinal: 1 });
  log.apply(agent({ text: "Hi!", final: true, ordinal: 0 }));
  log.apply(agent({ text: "Not", ordinal: 2 }));
  const list = log.transcripts;
  assert.deepEqual(list.map((t) => [t.ordinal, t.speaker, t.medium, t.isFinal]), [
    [0, "agent", "voice", true],
    [1, "user", "text", true],
    [2, "agent", "voice", false],
  ]);
});

test("gaps are removed and a huge ordinal costs nothing", () => {
  const log = new TranscriptLog();
  log.apply(agent({ text: "a", ordinal: 0 }));
  log.apply(agent({ text: "b", ordinal: 1_000_000_000 }));
  assert.deepEqual(log.transcripts.map((t) => t.text), ["a", "b"]);
});

test("a message with neither text nor delta is ignored, final included (the JS SDK's rule)", () => {
  const log = new TranscriptLog();
  log.apply(agent({ text: "Hello", ordinal: 0 }));
  assert.equal(log.apply(agent({ text: "", final: true, ordinal: 0 })), false);
  assert.equal(log.apply(agent({ delta: "", final: true, ordinal: 0 })), false);
  assert.equal(log.apply(agent({ text: null, delta: null, final: true, ordinal: 0 })), false);
  assert.equal(log.transcripts[0].isFinal, false);
  assert.equal(log.transcripts[0].text, "Hello");
});

test("a bad ordinal is ignored", () => {
  const log = new TranscriptLog();
  for (const ordinal of [undefined, -1, 1.5, "2"]) assert.equal(log.apply(agent({ text: "x", ordinal })), false);
  assert.deepEqual(log.transcripts, []);
});

test("transcripts are frozen snapshots; the getter returns a new array", () => {
  const log = new TranscriptLog();
  log.apply(agent({ text: "Hi", ordinal: 0 }));
  const first = log.transcripts;
  assert.throws(() => {
    "use strict";
    first[0].text = "changed";
  }, TypeError);
  first.push("junk");
  assert.equal(log.transcripts.length, 1);
  log.clear();
  assert.deepEqual(log.transcripts, []);
});
