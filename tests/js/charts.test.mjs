// Latency-chart data shaping and axis ticks; waveform downsampling.
import assert from "node:assert/strict";
import { test } from "node:test";

import { LATENCY_STAGES, latencyTurns, niceTicks } from "../../src/voxcall/server/static/charts.js";
import { peaks } from "../../src/voxcall/server/static/waveform.js";

const latency = (extras, at = "1.0s") => ({ type: "turn_latency", callTimestamp: at, severity: "info", text: "Turn latency", extras });

test("one turn per turn_latency event, stages in the engine's order, other events ignored", () => {
  const events = [
    { type: "media_idle", extras: null },
    latency({ endpointMs: 300, transcriptMs: 120, firstTokenMs: 250, firstAudioMs: 180, totalMs: 850 }, "3.2s"),
    latency({ endpointMs: 280, transcriptMs: 90, firstTokenMs: 400, firstAudioMs: 150, totalMs: 920 }, "9.8s"),
  ];
  const turns = latencyTurns(events);
  assert.equal(turns.length, 2);
  assert.deepEqual(turns.map((t) => t.turn), [1, 2]);
  assert.deepEqual(turns[0].stages.map((s) => s.key), ["endpointMs", "transcriptMs", "firstTokenMs", "firstAudioMs"]);
  assert.deepEqual(turns[0].stages.map((s) => s.ms), [300, 120, 250, 180]);
  assert.deepEqual(LATENCY_STAGES.map((s) => s.label), ["End of turn", "Transcript", "First token", "First audio"]);
  assert.equal(turns[0].sum, 850);
  assert.equal(turns[1].total, 920);
  assert.equal(turns[1].at, "9.8s");
});

test("negative, missing or non-numeric stages count as 0; total falls back to the sum", () => {
  const [turn] = latencyTurns([latency({ endpointMs: -40, transcriptMs: "x", firstTokenMs: 200.6 })]);
  assert.deepEqual(turn.stages.map((s) => s.ms), [0, 0, 201, 0]);
  assert.equal(turn.total, 201);
  assert.deepEqual(latencyTurns([{ type: "turn_latency", extras: null }, null]), []);
});

test("axis ticks are round numbers from 0 that cover the tallest bar", () => {
  assert.deepEqual(niceTicks(850).ticks, [0, 200, 400, 600, 800, 1000]);
  assert.deepEqual(niceTicks(1000).ticks, [0, 200, 400, 600, 800, 1000]);
  const { top, ticks } = niceTicks(1234);
  assert.ok(top >= 1234 && ticks.at(-1) === top && ticks[0] === 0);
  assert.deepEqual(niceTicks(0).ticks, [0, 25, 50, 75, 100]);
  assert.deepEqual(niceTicks(9).ticks, [0, 2, 4, 6, 8, 10]);
});

test("peaks: min and max of each equal slice", () => {
  const samples = Float32Array.from([0, 0.5, -0.25, 1, -1, 0.2, 0.1, -0.1]);
  const { min, max } = peaks(samples, 4);
  assert.deepEqual([...min], [0, -0.25, -1, -0.1].map(Math.fround));
  assert.deepEqual([...max], [0.5, 1, 0.2, 0.1].map(Math.fround));
});

test("peaks: uneven slices cover every sample once; more buckets than samples leave zeros", () => {
  const samples = Float32Array.from({ length: 10 }, (_, i) => i / 10);
  const { min, max } = peaks(samples, 3);
  assert.deepEqual([...min], [0, 0.3, 0.6].map(Math.fround));
  assert.deepEqual([...max], [0.2, 0.5, 0.9].map(Math.fround));
  const sparse = peaks(Float32Array.from([0.5, -0.5]), 4);
  assert.equal(sparse.max.length, 4);
  assert.deepEqual([...sparse.max], [0, 0.5, 0, -0.5]); // a one-sample slice is that sample
  assert.deepEqual([...sparse.min], [0, 0.5, 0, -0.5]);
  assert.equal(peaks(new Float32Array(0), 5).min.length, 5);
  assert.equal(peaks(samples, 0).min.length, 0);
});

test("peaks of a long tone keep its amplitude", () => {
  const tone = Float32Array.from({ length: 16000 }, (_, i) => 0.8 * Math.sin((2 * Math.PI * 440 * i) / 16000));
  const { min, max } = peaks(tone, 100);
  assert.ok(max.every((v) => v > 0.79 && v <= 0.8 + 1e-6));
  assert.ok(min.every((v) => v < -0.79));
});
