// voxcall browser SDK: the pure parts (no DOM, no WebSocket, no Web Audio).
//
// Everything here runs unchanged in a browser window, in an AudioWorkletGlobalScope
// and in Node (tests/js), so it may only use language built-ins. The wire rules it
// follows are the ones in PROTOCOL.md section 2 (realtime protocol) and section 3
// (the `ultravox-client` JS SDK that ultravox.js mirrors).

/** Version of this SDK; sent as `clientVersion=web_voxcall_<version>[:<app string>]`. */
export const SDK_VERSION = "0.1.0";

/** Suffix of the error messages this client sends (the JS SDK says "(TypeScript client)"). */
export const CLIENT_NAME = "(voxcall web client)";

/**
 * Session status, as in `ultravox-client` (PROTOCOL.md 3.1).
 * @enum {string}
 */
export const UltravoxSessionStatus = Object.freeze({
  DISCONNECTED: "disconnected",
  DISCONNECTING: "disconnecting",
  CONNECTING: "connecting",
  IDLE: "idle",
  LISTENING: "listening",
  THINKING: "thinking",
  SPEAKING: "speaking",
});

/** @enum {string} */
export const Role = Object.freeze({ USER: "user", AGENT: "agent" });

/** @enum {string} */
export const Medium = Object.freeze({ VOICE: "voice", TEXT: "text" });

/** @enum {string} */
export const AgentReaction = Object.freeze({ SPEAKS: "speaks", LISTENS: "listens", SPEAKS_ONCE: "speaks-once" });

/** One utterance of the conversation, as the JS SDK's `Transcript`. */
export class Transcript {
  /**
   * @param {string} text
   * @param {boolean} isFinal
   * @param {string} speaker one of Role
   * @param {string} medium one of Medium
   * @param {number} ordinal
   */
  constructor(text, isFinal, speaker, medium, ordinal) {
    /** @readonly @type {string} */ this.text = text;
    /** @readonly @type {boolean} */ this.isFinal = isFinal;
    /** @readonly @type {string} */ this.speaker = speaker;
    /** @readonly @type {string} */ this.medium = medium;
    /** @readonly @type {number} */ this.ordinal = ordinal;
    Object.freeze(this);
  }
}

/**
 * The transcripts of one call, merged by ordinal (PROTOCOL.md 2.7, JS `addOrUpdateTranscript`).
 *
 * A message with `text` replaces the utterance's text; one with `delta` appends to it; a
 * message whose `text` and `delta` are both empty is ignored entirely, `final` included
 * (the JS SDK's rule). Ordinals are kept in a Map, so a gap or a huge ordinal costs nothing.
 */
export class TranscriptLog {
  /** @type {Map<number, Transcript>} */
  #byOrdinal = new Map();

  /**
   * Apply one `transcript` data message.
   * @param {{role?: string, medium?: string, text?: string|null, delta?: string|null, final?: boolean, ordinal?: number}} message
   * @returns {boolean} whether the transcripts changed
   */
  apply(message) {
    const { text, delta, ordinal } = message;
    if (!text && !delta) return false;
    if (!Number.isInteger(ordinal) || ordinal < 0) return false;
    const previous = this.#byOrdinal.get(ordinal);
    const merged = text ? String(text) : (previous ? previous.text : "") + String(delta);
    const speaker = message.role === Role.USER ? Role.USER : Role.AGENT;
    const medium = message.medium === Medium.TEXT ? Medium.TEXT : Medium.VOICE;
    this.#byOrdinal.set(ordinal, new Transcript(merged, Boolean(message.final), speaker, medium, ordinal));
    return true;
  }

  /** @returns {Transcript[]} a new array in ordinal order, gaps removed */
  get transcripts() {
    return [...this.#byOrdinal.values()].sort((a, b) => a.ordinal - b.ordinal);
  }

  clear() {
    this.#byOrdinal.clear();
  }
}

const S = UltravoxSessionStatus;
const LIVE = new Set([S.LISTENING, S.THINKING, S.SPEAKING]);
const SERVER_STATES = new Set([S.IDLE, S.LISTENING, S.THINKING, S.SPEAKING]);

/**
 * Whether `sendText` and `setOutputMedium` are allowed (PROTOCOL.md 3.4, 3.7).
 * @param {string} status
 */
export function isLive(status) {
  return LIVE.has(status);
}

/**
 * Throw unless the session is live, with the JS SDK's kind of message.
 * @param {string} status
 * @param {string} action e.g. "send text"
 */
export function assertLive(status, action) {
  if (!isLive(status)) throw new Error(`Cannot ${action} while not connected. Current status is ${status}.`);
}

/**
 * The status transition function (PROTOCOL.md 3.7). Events:
 * - `{type: "join"}`: disconnected -> connecting; throws from any other status;
 * - `{type: "state", state}`: the server's `state` message; adopted while connecting or
 *   connected, ignored (status unchanged) once disconnecting or disconnected, and for unknown values;
 * - `{type: "leave"}`: -> disconnecting (a no-op when already disconnected);
 * - `{type: "closed"}`: -> disconnected.
 * As in JS 0.5.0 the status stays `connecting` until the server's first `state` message.
 * @param {string} current
 * @param {{type: "join"} | {type: "state", state: string} | {type: "leave"} | {type: "closed"}} event
 * @returns {string} the next status
 */
export function nextStatus(current, event) {
  switch (event.type) {
    case "join":
      if (current !== S.DISCONNECTED) throw new Error(`Cannot join a call while ${current}.`);
      return S.CONNECTING;
    case "state":
      if (current === S.DISCONNECTED || current === S.DISCONNECTING) return current;
      return SERVER_STATES.has(event.state) ? event.state : current;
    case "leave":
      return current === S.DISCONNECTED ? current : S.DISCONNECTING;
    case "closed":
      return S.DISCONNECTED;
    default:
      throw new Error(`unknown status event ${JSON.stringify(event)}`);
  }
}

/**
 * The join URL with the query parameters the JS SDK adds (PROTOCOL.md 2.1). The URL is
 * otherwise treated as opaque: its own parameters (the join token) are kept as they are.
 * @param {string} joinUrl
 * @param {{clientVersion?: string, additionalMessages?: Iterable<string>, experimentalMessages?: Iterable<string>, sdkVersion?: string}} [options]
 * @returns {string}
 */
export function buildJoinUrl(joinUrl, options = {}) {
  const url = new URL(joinUrl);
  const version = `web_voxcall_${options.sdkVersion ?? SDK_VERSION}`;
  url.searchParams.set("apiVersion", "1");
  url.searchParams.set("clientVersion", options.clientVersion ? `${version}:${options.clientVersion}` : version);
  const additional = [...new Set([...(options.additionalMessages ?? []), ...(options.experimentalMessages ?? [])])];
  url.searchParams.set("additionalMessages", additional.join(","));
  if (options.experimentalMessages !== undefined) {
    url.searchParams.set("experimentalMessages", [...options.experimentalMessages].join(","));
  }
  return url.toString();
}

// ---------------------------------------------------------------------------
// Client tools (PROTOCOL.md 3.6 and 2.8)
// ---------------------------------------------------------------------------

/**
 * @typedef {{result: string, responseType?: string, agentReaction?: string|null, updateCallState?: Record<string, unknown>|null}} ClientToolResultObject
 * @typedef {string | ClientToolResultObject} ClientToolReturnType
 * @typedef {(parameters: Record<string, any>) => ClientToolReturnType | Promise<ClientToolReturnType>} ClientToolImplementation
 */

export const BAD_RETURN_MESSAGE =
  "Client tool implementations must return a string or an object with a string `result` " +
  `(and optionally \`responseType\`, \`agentReaction\`, \`updateCallState\`) ${CLIENT_NAME}`;

/**
 * The `client_tool_result` for a tool nobody registered.
 * @param {string} invocationId
 * @param {string} toolName
 */
export function unknownToolResult(invocationId, toolName) {
  return {
    type: "client_tool_result",
    invocationId,
    errorType: "undefined",
    errorMessage: `Client tool ${toolName} is not registered ${CLIENT_NAME}`,
  };
}

/**
 * The `client_tool_result` for a thrown error or a rejected promise. As in the JS SDK the
 * message is the Error's message, and is left out when something other than an Error was thrown.
 * @param {string} invocationId
 * @param {unknown} error
 */
export function toolErrorResult(invocationId, error) {
  const message = { type: "client_tool_result", invocationId, errorType: "implementation-error" };
  if (error instanceof Error) message.errorMessage = error.message;
  return message;
}

/**
 * The `client_tool_result` for what an implementation returned. A string becomes `result`
 * (the server defaults responseType to "tool-response" and agentReaction to "speaks"). An
 * object needs a string `result`; `responseType`, when present, must be a string too (the JS
 * SDK requires it; here it may be left out). The object's other keys are passed through.
 * @param {string} invocationId
 * @param {unknown} value
 */
export function toolReturnResult(invocationId, value) {
  if (typeof value === "string") return { type: "client_tool_result", invocationId, result: value };
  const valid =
    value !== null &&
    typeof value === "object" &&
    typeof value.result === "string" &&
    (value.responseType === undefined || typeof value.responseType === "string");
  if (!valid) {
    return { type: "client_tool_result", invocationId, errorType: "implementation-error", errorMessage: BAD_RETURN_MESSAGE };
  }
  const { type: _type, invocationId: _id, ...fields } = /** @type {Record<string, unknown>} */ (value);
  return { type: "client_tool_result", invocationId, ...fields };
}

/**
 * Run the implementation for one `client_tool_invocation` and build the message to send.
 * Never throws: every outcome is a `client_tool_result`.
 * @param {Map<string, ClientToolImplementation>} implementations
 * @param {{toolName: string, invocationId: string, parameters?: Record<string, any>}} invocation
 * @returns {Promise<Record<string, unknown>>}
 */
export async function runClientTool(implementations, invocation) {
  const { toolName, invocationId } = invocation;
  const implementation = implementations.get(toolName);
  if (typeof implementation !== "function") return unknownToolResult(invocationId, toolName);
  try {
    return toolReturnResult(invocationId, await implementation(invocation.parameters ?? {}));
  } catch (error) {
    return toolErrorResult(invocationId, error);
  }
}

// ---------------------------------------------------------------------------
// PCM (s16le mono on the wire, PROTOCOL.md 2.2) and the audio helpers the worklets use
// ---------------------------------------------------------------------------

/**
 * Float samples in [-1, 1] to Int16 (clipped).
 * @param {Float32Array} samples
 * @returns {Int16Array}
 */
export function floatToInt16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
  }
  return out;
}

/**
 * Int16 samples to floats in [-1, 1).
 * @param {Int16Array} samples
 * @returns {Float32Array}
 */
export function int16ToFloat(samples) {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i] / 32768;
  return out;
}

/**
 * Peak level of Int16 samples, 0..1.
 * @param {Int16Array} samples
 */
export function peakLevel(samples) {
  let peak = 0;
  for (let i = 0; i < samples.length; i++) {
    const v = Math.abs(samples[i]);
    if (v > peak) peak = v;
  }
  return peak / 32768;
}

/** Peak level above which a frame counts as "not silent" in the SDK's stats (about -40 dBFS). */
export const SPEECH_PEAK = 0.01;

/**
 * Whether a frame holds sound rather than (near) silence.
 * @param {Int16Array} samples
 */
export function isSoundFrame(samples, threshold = SPEECH_PEAK) {
  return peakLevel(samples) > threshold;
}

/**
 * A streaming mono resampler: windowed-sinc low-pass (when downsampling) followed by linear
 * interpolation, with state carried across chunks so chunk boundaries leave no clicks.
 * Good enough for speech at 8-48 kHz; it is not a mastering-grade converter.
 */
export class Resampler {
  /**
   * @param {number} inputRate
   * @param {number} outputRate
   * @param {number} [taps] odd FIR length used when downsampling
   */
  constructor(inputRate, outputRate, taps = 31) {
    if (!(inputRate > 0 && outputRate > 0)) throw new RangeError("sample rates must be positive");
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    this.step = inputRate / outputRate;
    this.filter = outputRate < inputRate ? lowPass(taps, (0.5 * outputRate * 0.9) / inputRate) : null;
    this.history = this.filter ? new Float32Array(this.filter.length - 1) : null;
    this.previous = 0; // last input sample of the previous chunk
    this.position = 1; // where the next output sample lies, in input samples from `previous`
  }

  /**
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    if (this.inputRate === this.outputRate) return Float32Array.from(input);
    const x = this.filter ? this.#lowPass(input) : input;
    const out = new Float32Array(Math.ceil((x.length + 1) / this.step) + 1);
    let n = 0;
    let t = this.position;
    while (t <= x.length) {
      const i = Math.floor(t);
      const frac = t - i;
      const a = i === 0 ? this.previous : x[i - 1];
      const b = frac > 0 ? x[i] : a;
      out[n++] = a + (b - a) * frac;
      t += this.step;
    }
    if (x.length > 0) this.previous = x[x.length - 1];
    this.position = t - x.length;
    return out.subarray(0, n);
  }

  /** @param {Float32Array} input */
  #lowPass(input) {
    const h = /** @type {Float32Array} */ (this.filter);
    const past = /** @type {Float32Array} */ (this.history);
    const k = past.length;
    const joined = new Float32Array(k + input.length);
    joined.set(past);
    joined.set(input, k);
    const out = new Float32Array(input.length);
    for (let i = 0; i < input.length; i++) {
      let acc = 0;
      for (let j = 0; j < h.length; j++) acc += h[j] * joined[i + j];
      out[i] = acc;
    }
    this.history = joined.slice(joined.length - k);
    return out;
  }
}

/**
 * Blackman-windowed sinc low-pass, unity gain at DC.
 * @param {number} taps odd
 * @param {number} cutoff in cycles per sample (0..0.5)
 */
function lowPass(taps, cutoff) {
  const h = new Float32Array(taps);
  const m = (taps - 1) / 2;
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const x = n - m;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * n) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * n) / (taps - 1));
    h[n] = sinc * w;
    sum += h[n];
  }
  for (let n = 0; n < taps; n++) h[n] /= sum;
  return h;
}

/** Cuts a stream of samples into fixed-size Int16 frames (20 ms on the wire). */
export class FrameChunker {
  /** @param {number} frameSize samples per frame */
  constructor(frameSize) {
    if (!(frameSize > 0)) throw new RangeError("frameSize must be positive");
    this.frame = new Int16Array(frameSize);
    this.filled = 0;
  }

  /**
   * @param {Int16Array} samples
   * @returns {Int16Array[]} the frames completed by these samples
   */
  push(samples) {
    const frames = [];
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(this.frame.length - this.filled, samples.length - offset);
      this.frame.set(samples.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.frame.length) {
        frames.push(this.frame);
        this.frame = new Int16Array(this.frame.length);
        this.filled = 0;
      }
    }
    return frames;
  }
}

/**
 * The playback jitter buffer: float chunks in, fixed-size blocks out.
 *
 * Playback starts once `prebuffer` samples are queued, or once the first queued sample has
 * waited `prebuffer` samples' worth of pulls (so a short last chunk still plays). An underrun
 * goes back to prebuffering. `clear()` drops everything not yet played (`playback_clear_buffer`).
 * The queue is bounded: past `maxSamples` the oldest samples are dropped and counted.
 */
export class PcmQueue {
  /** @param {{prebuffer?: number, maxSamples?: number}} [options] in samples at the playback rate */
  constructor({ prebuffer = 1920, maxSamples = 48000 * 20 } = {}) {
    this.prebuffer = prebuffer;
    this.maxSamples = maxSamples;
    /** @type {Float32Array[]} */
    this.chunks = [];
    this.offset = 0; // read position in chunks[0]
    this.buffered = 0;
    this.playing = false;
    this.waited = 0;
    this.dropped = 0;
  }

  /** @param {Float32Array} samples */
  push(samples) {
    if (samples.length === 0) return;
    this.chunks.push(samples);
    this.buffered += samples.length;
    while (this.buffered > this.maxSamples) this.#dropOldest(this.buffered - this.maxSamples);
  }

  /**
   * Fill `out` with the next samples (zeros where there are none).
   * @param {Float32Array} out
   * @returns {number} how many real samples were written
   */
  pull(out) {
    out.fill(0);
    if (!this.playing) {
      if (this.buffered === 0) return 0;
      this.waited += out.length;
      if (this.buffered < this.prebuffer && this.waited < this.prebuffer) return 0;
      this.playing = true;
    }
    let written = 0;
    while (written < out.length && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const take = Math.min(out.length - written, chunk.length - this.offset);
      out.set(chunk.subarray(this.offset, this.offset + take), written);
      written += take;
      this.#consume(take);
    }
    if (this.buffered === 0) {
      this.playing = false;
      this.waited = 0;
    }
    return written;
  }

  /** Drop every sample not yet played. @returns {number} how many were dropped */
  clear() {
    const dropped = this.buffered;
    this.chunks = [];
    this.offset = 0;
    this.buffered = 0;
    this.playing = false;
    this.waited = 0;
    return dropped;
  }

  /** @param {number} n */
  #consume(n) {
    this.offset += n;
    this.buffered -= n;
    if (this.offset === this.chunks[0].length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }

  /** @param {number} n */
  #dropOldest(n) {
    const take = Math.min(n, this.chunks[0].length - this.offset);
    this.#consume(take);
    this.dropped += take;
  }
}
