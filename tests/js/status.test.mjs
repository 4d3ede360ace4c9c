// Status transitions (PROTOCOL.md 3.7) and the join URL (2.1).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  SDK_VERSION,
  UltravoxSessionStatus as S,
  assertLive,
  buildJoinUrl,
  isLive,
  nextStatus,
} from "../../src/voxcall/server/static/ultravox-core.js";

test("the status values are the JS SDK's", () => {
  assert.deepEqual(Object.values(S), ["disconnected", "disconnecting", "connecting", "idle", "listening", "thinking", "speaking"]);
});

test("a full call: connecting until the first state, server states, then disconnecting and disconnected", () => {
  let status = S.DISCONNECTED;
  const path = [];
  for (const event of [
    { type: "join" },
    { type: "state", state: "idle" },
    { type: "state", state: "speaking" },
    { type: "state", state: "listening" },
    { type: "state", state: "thinking" },
    { type: "leave" },
    { type: "closed" },
  ]) {
    status = nextStatus(status, event);
    path.push(status);
  }
  assert.deepEqual(path, ["connecting", "idle", "speaking", "listening", "thinking", "disconnecting", "disconnected"]);
});

test("joining twice throws", () => {
  for (const status of [S.CONNECTING, S.IDLE, S.LISTENING, S.DISCONNECTING]) {
    assert.throws(() => nextStatus(status, { type: "join" }), /Cannot join/);
  }
});

test("late or unknown server states do not move the status", () => {
  assert.equal(nextStatus(S.DISCONNECTING, { type: "state", state: "listening" }), S.DISCONNECTING);
  assert.equal(nextStatus(S.DISCONNECTED, { type: "state", state: "listening" }), S.DISCONNECTED);
  assert.equal(nextStatus(S.LISTENING, { type: "state", state: "dancing" }), S.LISTENING);
  assert.equal(nextStatus(S.LISTENING, { type: "state", state: "disconnected" }), S.LISTENING);
});

test("leaving when already disconnected stays disconnected; closing always ends", () => {
  assert.equal(nextStatus(S.DISCONNECTED, { type: "leave" }), S.DISCONNECTED);
  assert.equal(nextStatus(S.CONNECTING, { type: "leave" }), S.DISCONNECTING);
  assert.equal(nextStatus(S.SPEAKING, { type: "closed" }), S.DISCONNECTED);
  assert.throws(() => nextStatus(S.IDLE, { type: "nope" }), /unknown status event/);
});

test("text and output medium need listening, thinking or speaking", () => {
  assert.deepEqual(Object.values(S).filter(isLive), ["listening", "thinking", "speaking"]);
  assert.throws(() => assertLive(S.IDLE, "send text"), /Cannot send text while not connected. Current status is idle./);
  assert.doesNotThrow(() => assertLive(S.THINKING, "send text"));
});

test("the join URL keeps its token and gains apiVersion, clientVersion and message lists", () => {
  const url = new URL(buildJoinUrl("ws://127.0.0.1:8000/calls/abc/server_web_socket?token=t0k", { clientVersion: "playground" }));
  assert.equal(url.searchParams.get("token"), "t0k");
  assert.equal(url.searchParams.get("apiVersion"), "1");
  assert.equal(url.searchParams.get("clientVersion"), `web_voxcall_${SDK_VERSION}:playground`);
  assert.equal(url.searchParams.get("additionalMessages"), "");
  assert.equal(url.searchParams.has("experimentalMessages"), false);
  const plain = new URL(buildJoinUrl("wss://h/calls/x?apiVersion=7", { experimentalMessages: new Set(["debug"]) }));
  assert.equal(plain.searchParams.get("clientVersion"), `web_voxcall_${SDK_VERSION}`);
  assert.equal(plain.searchParams.getAll("apiVersion").join(), "1");
  assert.equal(plain.searchParams.get("experimentalMessages"), "debug");
  assert.equal(plain.searchParams.get("additionalMessages"), "debug");
});
