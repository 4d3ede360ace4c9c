// voxcall browser SDK: microphone capture AudioWorklet.
//
// Mixes the input to mono, resamples it from the AudioContext's rate to the call's input
// rate, and posts one ArrayBuffer of s16le PCM per frame (20 ms by default) to the main
// thread, which sends it as a binary WebSocket frame (PROTOCOL.md 2.2). With no input
// connected (no microphone) it posts silence, so the call still gets audio in real time.
import { FrameChunker, Resampler, floatToInt16 } from "./ultravox-core.js";

class VoxcallCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate, frameMs = 20 } = options.processorOptions;
    this.resampler = new Resampler(sampleRate, targetRate);
    this.chunker = new FrameChunker(Math.round((targetRate * frameMs) / 1000));
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "stop") this.running = false;
    };
  }

  process(inputs, outputs) {
    if (!this.running) return false;
    const channels = inputs[0] || [];
    const size = channels.length > 0 ? channels[0].length : outputs[0] && outputs[0][0] ? outputs[0][0].length : 128;
    const mono = new Float32Array(size);
    for (const channel of channels) {
      for (let i = 0; i < size; i++) mono[i] += channel[i] / channels.length;
    }
    for (const frame of this.chunker.push(floatToInt16(this.resampler.process(mono)))) {
      this.port.postMessage(frame.buffer, [frame.buffer]);
    }
    return true;
  }
}

registerProcessor("voxcall-capture", VoxcallCaptureProcessor);
