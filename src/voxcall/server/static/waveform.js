// The recording's waveform: the WAV decoded with Web Audio (decodeAudioData), each channel
// reduced to min/max peaks per pixel column, drawn on a canvas (the user's track above, the
// agent's below), with a playhead that follows the audio element. `peaks` is pure (Node tests).

/**
 * Min and max of each of `buckets` equal slices of `samples` (a Float32Array in -1..1).
 * A slice with no samples (more buckets than samples) is 0/0.
 */
export function peaks(samples, buckets) {
  const n = Math.max(0, Math.floor(buckets));
  const min = new Float32Array(n);
  const max = new Float32Array(n);
  const length = samples?.length ?? 0;
  if (!n || !length) return { min, max };
  for (let b = 0; b < n; b++) {
    const start = Math.floor((b * length) / n);
    const end = Math.max(start, Math.floor(((b + 1) * length) / n));
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = start; i < end; i++) {
      const v = samples[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (end > start) {
      min[b] = lo;
      max[b] = hi;
    }
  }
  return { min, max };
}

/** The WAV's channels as Float32Arrays, decoded by the browser (resampled to `rate`). */
export async function decodeRecording(arrayBuffer, rate = 16000) {
  const context = new OfflineAudioContext(1, 1, rate);
  const buffer = await context.decodeAudioData(arrayBuffer);
  const channels = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) channels.push(buffer.getChannelData(c));
  return { channels, duration: buffer.duration, sampleRate: buffer.sampleRate };
}

const LANE_NAMES = ["You", "Agent"];
const LANE_COLORS = ["#2e7d32", "#0b5cad"];

/**
 * Draw the lanes on `canvas` at its CSS size; `progress` (0..1) places the playhead.
 * Returns the per-lane peaks so a redraw (playhead moves) need not recompute them.
 */
export function drawWaveform(canvas, channels, progress = 0, cached = null) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) Object.assign(canvas, { width, height });
  const lanes = cached && cached.width === width ? cached : { width, peaks: channels.map((ch) => peaks(ch, width)) };
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  const laneH = height / Math.max(1, lanes.peaks.length);
  lanes.peaks.forEach((lane, index) => {
    const mid = laneH * index + laneH / 2;
    const half = laneH / 2 - 2 * ratio;
    g.fillStyle = LANE_COLORS[index % LANE_COLORS.length];
    for (let x = 0; x < width; x++) {
      const top = mid - Math.max(lane.max[x], 0) * half;
      const bottom = mid - Math.min(lane.min[x], 0) * half;
      g.fillRect(x, top, 1, Math.max(ratio, bottom - top));
    }
    g.fillStyle = "#1b1f24";
    g.font = `${12 * ratio}px system-ui, sans-serif`;
    g.fillText(LANE_NAMES[index] ?? `Channel ${index + 1}`, 4 * ratio, laneH * index + 14 * ratio);
  });
  if (progress > 0) {
    g.fillStyle = "#b42318";
    g.fillRect(Math.min(width - ratio, progress * width), 0, 2 * ratio, height);
  }
  return lanes;
}

/** Wire the canvas to the audio element: the playhead follows playback, a click seeks. */
export function attachWaveform(canvas, audio, channels) {
  let lanes = drawWaveform(canvas, channels);
  const redraw = () => {
    const progress = audio.duration ? audio.currentTime / audio.duration : 0;
    lanes = drawWaveform(canvas, channels, progress, lanes);
  };
  audio.addEventListener("timeupdate", redraw);
  canvas.addEventListener("click", (event) => {
    if (!audio.duration) return;
    const box = canvas.getBoundingClientRect();
    audio.currentTime = ((event.clientX - box.left) / box.width) * audio.duration;
    redraw();
  });
  window.addEventListener("resize", redraw);
  return () => window.removeEventListener("resize", redraw);
}
