// voxcall browser SDK: agent audio playback AudioWorklet.
//
// Takes s16le PCM ArrayBuffers at the call's output rate, resamples them to the
// AudioContext's rate into a small jitter buffer (PcmQueue), and renders them. Messages:
// ArrayBuffer = audio; {type: "clear"} = drop what is not played yet (playback_clear_buffer);
// {type: "mute", muted} = render silence while still consuming audio (a muted speaker keeps
// time); {type: "stop"} = end. It reports what it played with {type: "played", ...}.
import { PcmQueue, Resampler, int16ToFloat } from "./ultravox-core.js";

class VoxcallPlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { sourceRate, prebufferMs = 80, maxBufferMs = 30000, muted = false } = options.processorOptions;
    this.resampler = new Resampler(sourceRate, sampleRate);
    this.queue = new PcmQueue({
      prebuffer: Math.round((sampleRate * prebufferMs) / 1000),
      maxSamples: Math.round((sampleRate * maxBufferMs) / 1000),
    });
    this.muted = muted;
    this.running = true;
    this.playedSamples = 0;
    this.audibleSamples = 0;
    this.playedBlocks = 0;
    this.reported = 0;
    this.reportEvery = Math.round(sampleRate / 20); // 50 ms
    this.sinceReport = 0;
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      this.queue.push(this.resampler.process(int16ToFloat(new Int16Array(data))));
    } else if (data.type === "clear") {
      const dropped = this.queue.clear();
      this.port.postMessage({ type: "cleared", samples: dropped });
    } else if (data.type === "mute") {
      this.muted = Boolean(data.muted);
    } else if (data.type === "stop") {
      this.running = false;
    }
  }

  process(_inputs, outputs) {
    if (!this.running) return false;
    const output = outputs[0];
    const first = output[0];
    const written = this.queue.pull(first);
    if (written > 0) {
      this.playedSamples += written;
      this.playedBlocks += 1;
      if (!this.muted) this.audibleSamples += written;
    }
    if (this.muted) first.fill(0);
    for (let c = 1; c < output.length; c++) output[c].set(first);
    this.sinceReport += first.length;
    if (this.sinceReport >= this.reportEvery && this.reported !== this.playedSamples) {
      this.sinceReport = 0;
      this.reported = this.playedSamples;
      this.port.postMessage({
        type: "played",
        samples: this.playedSamples,
        audible: this.audibleSamples,
        blocks: this.playedBlocks,
        buffered: this.queue.buffered,
        dropped: this.queue.dropped,
      });
    }
    return true;
  }
}

registerProcessor("voxcall-playback", VoxcallPlaybackProcessor);
