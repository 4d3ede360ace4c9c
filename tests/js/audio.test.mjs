// The audio helpers the worklets use: PCM conversion, resampling, 20 ms framing, the jitter buffer.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  FrameChunker,
  PcmQueue,
  Resampler,
  floatToInt16,
  int16ToFloat,
  isSoundFrame,
  peakLevel,
} from "../../src/voxcall/server/static/ultravox-core.js";

function sine(freq, rate, n, amplitude = 0.5) {
  return Float32Array.from({ length: n }, (_, i) => amplitude * Math.sin((2 * Math.PI * freq * i) / rate));
}

function rms(x) {
  return Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
}

test("float and int16 convert both ways, clipping out-of-range floats", () => {
  assert.deepEqual([...floatToInt16(Float32Array.from([0, 1, -1, 2, -2, 0.5]))], [0, 32767, -32768, 32767, -32768, 16384]);
  assert.deepEqual([...int16ToFloat(Int16Array.from([0, -32768, 16384]))], [0, -1, 0.5]);
});

test("silence and sound frames", () => {
  assert.equal(isSoundFrame(new Int16Array(320)), false);
  assert.equal(isSoundFrame(Int16Array.from({ length: 320 }, (_, i) => (i % 2 ? 100 : -100))), false);
  assert.equal(isSoundFrame(floatToInt16(sine(440, 16000, 320, 0.1))), true);
  assert.ok(Math.abs(peakLevel(Int16Array.from([0, -16384])) - 0.5) < 1e-9);
});

test("48 kHz to 16 kHz in 128-sample chunks gives a third of the samples, continuous across chunks", () => {
  const r = new Resampler(48000, 16000);
  const input = sine(440, 48000, 48000);
  const parts = [];
  for (let i = 0; i < input.length; i += 128) parts.push(r.process(input.subarray(i, i + 128)));
  const out = Float32Array.from(parts.flatMap((p) => [...p]));
  assert.ok(Math.abs(out.length - 16000) <= 1, `got ${out.length}`);
  // Compare with the ideal 440 Hz sine at 16 kHz, allowing for the filter's delay (15 taps at 48 kHz = 5 samples at 16 kHz).
  const ideal = sine(440, 16000, out.length + 5);
  let err = 0;
  for (let i = 100; i < out.length - 100; i++) err = Math.max(err, Math.abs(out[i] - ideal[i - 5]));
  assert.ok(err < 0.02, `max error ${err}`);
});

test("downsampling filters out what would alias: 7 kHz at 48 kHz nearly vanishes at 8 kHz", () => {
  const r = new Resampler(48000, 8000, 63);
  const out = r.process(sine(7000, 48000, 48000));
  assert.ok(rms(out.subarray(200)) < 0.05, `rms ${rms(out.subarray(200))}`);
});

test("24 kHz to 48 kHz upsampling doubles the samples and keeps the tone", () => {
  const r = new Resampler(24000, 48000);
  const out = [];
  const input = sine(300, 24000, 2400);
  for (let i = 0; i < input.length; i += 480) out.push(...r.process(input.subarray(i, i + 480)));
  assert.ok(Math.abs(out.length - 4800) <= 1);
  assert.ok(Math.abs(rms(Float32Array.from(out)) - rms(input)) < 0.01);
});

test("equal rates pass samples through unchanged, as a copy", () => {
  const input = Float32Array.from([0.1, 0.2]);
  const out = new Resampler(16000, 16000).process(input);
  assert.deepEqual([...out], [...input]);
  assert.notEqual(out, input);
  assert.throws(() => new Resampler(0, 16000), RangeError);
});

test("44.1 kHz to 16 kHz keeps the long-run sample count exact", () => {
  const r = new Resampler(44100, 16000);
  let n = 0;
  for (let i = 0; i < 44100 / 100; i++) n += r.process(new Float32Array(100)).length;
  assert.ok(Math.abs(n - 16000) <= 1, `got ${n}`);
});

test("the chunker cuts 20 ms frames whatever the input sizes", () => {
  const c = new FrameChunker(320);
  const frames = [];
  let next = 0;
  for (const size of [43, 128, 300, 1, 500, 308]) {
    frames.push(...c.push(Int16Array.from({ length: size }, () => next++)));
  }
  assert.equal(frames.length, 4);
  assert.deepEqual(frames.map((f) => [f.length, f[0], f[319]]), [[320, 0, 319], [320, 320, 639], [320, 640, 959], [320, 960, 1279]]);
  assert.notEqual(frames[0].buffer, frames[1].buffer); // each frame owns its buffer (it is transferred)
  assert.throws(() => new FrameChunker(0), RangeError);
});

test("the jitter buffer waits for its prebuffer, then plays in order", () => {
  const q = new PcmQueue({ prebuffer: 256 });
  const out = new Float32Array(128);
  q.push(Float32Array.from({ length: 200 }, (_, i) => i + 1));
  assert.equal(q.pull(out), 0); // 200 < 256 and it has waited 128
  q.push(Float32Array.from({ length: 100 }, (_, i) => 201 + i));
  assert.equal(q.pull(out), 128);
  assert.deepEqual([out[0], out[127]], [1, 128]);
  assert.equal(q.pull(out), 128);
  assert.deepEqual([out[0], out[127]], [129, 256]);
  assert.equal(q.pull(out), 44); // the rest, then zeros: an underrun
  assert.deepEqual([out[43], out[44]], [300, 0]);
  assert.equal(q.playing, false);
});

test("a short last chunk still plays once it has waited the prebuffer time", () => {
  const q = new PcmQueue({ prebuffer: 256 });
  const out = new Float32Array(128);
  q.push(new Float32Array(50).fill(0.5));
  assert.equal(q.pull(out), 0);
  assert.equal(q.pull(out), 50);
  assert.equal(q.pull(out), 0);
});

test("clear drops everything not yet played (playback_clear_buffer)", () => {
  const q = new PcmQueue({ prebuffer: 0 });
  const out = new Float32Array(128);
  q.push(new Float32Array(1000).fill(0.25));
  assert.equal(q.pull(out), 128);
  assert.equal(q.clear(), 872);
  assert.equal(q.buffered, 0);
  assert.equal(q.pull(out), 0);
  assert.ok(out.every((v) => v === 0));
});

test("the buffer is bounded: past maxSamples the oldest audio is dropped and counted", () => {
  const q = new PcmQueue({ prebuffer: 0, maxSamples: 300 });
  q.push(Float32Array.from({ length: 200 }, (_, i) => i));
  q.push(Float32Array.from({ length: 200 }, (_, i) => 200 + i));
  assert.equal(q.buffered, 300);
  assert.equal(q.dropped, 100);
  const out = new Float32Array(128);
  q.pull(out);
  assert.equal(out[0], 100);
});
