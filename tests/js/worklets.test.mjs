// The two AudioWorklet processors, run in Node inside a minimal AudioWorkletGlobalScope stand-in.
import assert from "node:assert/strict";
import { test } from "node:test";

import { floatToInt16 } from "../../src/voxcall/server/static/ultravox-core.js";

const processors = new Map();
globalThis.sampleRate = 48000;
globalThis.registerProcessor = (name, cls) => processors.set(name, cls);
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.posted = [];
    this.port = { onmessage: null, postMessage: (message) => this.posted.push(message) };
  }
};
await import("../../src/voxcall/server/static/ultravox-capture-worklet.js");
await import("../../src/voxcall/server/static/ultravox-playback-worklet.js");

const block = (value = 0) => new Float32Array(128).fill(value);
const send = (processor, data) => processor.port.onmessage({ data });

test("capture: 48 kHz input becomes 20 ms frames of 16 kHz s16le, silence included", () => {
  const Capture = processors.get("voxcall-capture");
  const capture = new Capture({ processorOptions: { targetRate: 16000, frameMs: 20 } });
  for (let i = 0; i < 375; i++) assert.equal(capture.process([[block(0.5)]], [[block()]]), true); // 1 s
  assert.ok(capture.posted.length >= 49 && capture.posted.length <= 50, `${capture.posted.length} frames`);
  const frame = new Int16Array(capture.posted[10]);
  assert.equal(frame.length, 320);
  assert.ok(frame.every((s) => Math.abs(s - 16384) < 50)); // DC 0.5 passes the low-pass unchanged
  capture.posted = [];
  for (let i = 0; i < 375; i++) capture.process([[]], [[block()]]); // no microphone: silence still flows
  assert.ok(capture.posted.length >= 49);
  // after the first frame (the filter still rings with the tone before), only silence
  assert.ok(capture.posted.slice(1).every((b) => new Int16Array(b).every((s) => Math.abs(s) < 5)));
  send(capture, { type: "stop" });
  assert.equal(capture.process([[block()]], [[block()]]), false);
});

test("capture mixes stereo to mono", () => {
  const capture = new (processors.get("voxcall-capture"))({ processorOptions: { targetRate: 48000 } });
  for (let i = 0; i < 10; i++) capture.process([[block(0.5), block(-0.1)]], [[block()]]);
  assert.ok(new Int16Array(capture.posted[0]).every((s) => Math.abs(s - 6554) <= 1));
});

function playback(options = {}) {
  return new (processors.get("voxcall-playback"))({ processorOptions: { sourceRate: 24000, prebufferMs: 20, ...options } });
}

function agentAudio(ms, value = 0.25) {
  return floatToInt16(new Float32Array((24000 * ms) / 1000).fill(value)).buffer;
}

function render(processor, blocks) {
  const out = [];
  for (let i = 0; i < blocks; i++) {
    const output = [new Float32Array(128), new Float32Array(128)];
    processor.process([], [output]);
    out.push(output);
  }
  return out;
}

test("playback: agent audio at 24 kHz plays at the context rate on every channel and is reported", () => {
  const p = playback();
  send(p, agentAudio(100));
  const out = render(p, 60);
  const heard = out.flatMap(([left]) => [...left]).filter((v) => Math.abs(v - 0.25) < 0.01).length;
  assert.ok(Math.abs(heard - 4800) < 40, `${heard} samples of audio`); // 100 ms at 48 kHz
  assert.deepEqual([...out[10][0]], [...out[10][1]]);
  const report = p.posted.filter((m) => m.type === "played").at(-1);
  assert.ok(report.samples > 4700 && report.audible === report.samples, JSON.stringify(report));
});

test("playback: a muted speaker renders silence but keeps consuming audio", () => {
  const p = playback({ muted: true });
  send(p, agentAudio(100));
  const out = render(p, 60);
  assert.ok(out.every(([left, right]) => left.every((v) => v === 0) && right.every((v) => v === 0)));
  const report = p.posted.filter((m) => m.type === "played").at(-1);
  assert.ok(report.samples > 4700 && report.audible === 0, JSON.stringify(report));
  send(p, { type: "mute", muted: false });
  send(p, agentAudio(40));
  assert.ok(render(p, 30).some(([left]) => left.some((v) => v !== 0)));
});

test("playback: clear drops the unplayed audio at once (playback_clear_buffer)", () => {
  const p = playback();
  send(p, agentAudio(1000));
  render(p, 10);
  send(p, { type: "clear" });
  const cleared = p.posted.find((m) => m.type === "cleared");
  assert.ok(cleared.samples > 40000, JSON.stringify(cleared));
  assert.ok(render(p, 5).every(([left]) => left.every((v) => v === 0)));
  send(p, { type: "stop" });
  assert.equal(p.process([], [[block()]]), false);
});
