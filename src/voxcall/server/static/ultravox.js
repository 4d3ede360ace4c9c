// voxcall browser SDK: `UltravoxSession` with the method and event names of the
// `ultravox-client` npm package (PROTOCOL.md section 3), speaking voxcall's join WebSocket
// directly (the serverWebSocket medium, PROTOCOL.md 2.2): JSON data messages in text
// frames and s16le mono PCM in binary frames, both ways. No LiveKit, no build step.
//
//   import { UltravoxSession } from "/sdk/ultravox.js";
//   const session = new UltravoxSession({ inputSampleRate: 16000, outputSampleRate: 24000 });
//   session.addEventListener("status", () => console.log(session.status));
//   session.addEventListener("transcripts", () => console.log(session.transcripts));
//   session.registerToolImplementation("getWeather", ({ city }) => JSON.stringify({ city, tempC: 13 }));
//   session.joinCall(joinUrl);
//   session.sendText("Hello!");
//   await session.leaveCall();
import {
  AgentReaction,
  Medium,
  Role,
  SDK_VERSION,
  Transcript,
  TranscriptLog,
  UltravoxSessionStatus,
  assertLive,
  buildJoinUrl,
  isSoundFrame,
  nextStatus,
  runClientTool,
} from "./ultravox-core.js";

export { AgentReaction, Medium, Role, SDK_VERSION, Transcript, UltravoxSessionStatus };

/** Fired when `session.status` changes. */
export class UltravoxSessionStatusChangedEvent extends Event {
  constructor() {
    super("status");
  }
}

/** Fired when `session.transcripts` changes. */
export class UltravoxTranscriptsChangedEvent extends Event {
  constructor() {
    super("transcripts");
  }
}

/** Fired for every data message from the server; `preventDefault()` skips the SDK's own handling. */
export class UltravoxDataMessageEvent extends Event {
  /** @param {Record<string, any>} message */
  constructor(message) {
    super("data_message", { cancelable: true });
    /** @readonly */ this.message = message;
  }
}

/** Fired for message types the SDK does not handle, when `experimentalMessages` was given (JS <= 0.4). */
export class UltravoxExperimentalMessageEvent extends Event {
  /** @param {Record<string, any>} message */
  constructor(message) {
    super("experimental_message");
    /** @readonly */ this.message = message;
  }
}

const S = UltravoxSessionStatus;
const HANDLED = new Set(["state", "transcript", "client_tool_invocation", "playback_clear_buffer", "call_started", "pong"]);
const MAX_SOCKET_BACKLOG = 64 * 1024; // bytes waiting in the socket before outgoing audio is dropped
const MAX_PENDING_AUDIO = 250; // agent frames kept while the playback worklet is still loading

/**
 * Counters for tests and debugging; `session.stats` returns a copy.
 * @typedef {object} UltravoxSessionStats
 * @property {number} sentFrames binary audio frames sent (silence included)
 * @property {number} sentSoundFrames sent frames that were not silent (a muted mic sends none)
 * @property {number} capturedSoundFrames microphone frames that were not silent, before muting
 * @property {number} droppedInputFrames frames not sent because the socket was backed up
 * @property {number} receivedAudioFrames binary frames received from the server
 * @property {number} receivedAudioBytes their bytes
 * @property {number} playedSamples agent samples rendered, at the AudioContext's rate (muted or not)
 * @property {number} audibleSamples those rendered while the speaker was not muted
 * @property {number} playedBlocks render quanta (128 samples) that carried agent audio
 * @property {number} playedMs playedSamples in milliseconds
 * @property {number} playbackBufferedMs agent audio waiting in the jitter buffer at the last report
 * @property {number} clearedBuffers `playback_clear_buffer` messages received
 * @property {number} clearedSamples samples those dropped
 * @property {number} contextSampleRate the AudioContext's rate (0 before audio starts)
 * @property {string|null} micError why the microphone could not be opened, if it could not
 */

/**
 * The Web Audio side of one joined call.
 * @typedef {{context: AudioContext, owned: boolean, capture?: AudioWorkletNode, playback?: AudioWorkletNode,
 *   source?: MediaStreamAudioSourceNode, stream?: MediaStream}} AudioGraph
 */

function emptyStats() {
  return {
    sentFrames: 0,
    sentSoundFrames: 0,
    capturedSoundFrames: 0,
    droppedInputFrames: 0,
    receivedAudioFrames: 0,
    receivedAudioBytes: 0,
    playedSamples: 0,
    audibleSamples: 0,
    playedBlocks: 0,
    playedMs: 0,
    playbackBufferedMs: 0,
    clearedBuffers: 0,
    clearedSamples: 0,
    contextSampleRate: 0,
    micError: null,
  };
}

/**
 * A voice (or text) session with a voxcall agent.
 *
 * Options:
 * - `inputSampleRate` (default 48000): the call's `medium.serverWebSocket.inputSampleRate`;
 *   the microphone is resampled to it. voxcall's default when a call has no medium is 48000.
 * - `outputSampleRate` (default: inputSampleRate): the call's `outputSampleRate`.
 * - `audioContext`: an AudioContext to use (otherwise one is created by `joinCall`).
 * - `additionalMessages` / `experimentalMessages`: message types to enable at join time.
 * - `playbackBufferMs` (default 80): jitter buffer filled before agent audio starts playing.
 * - `microphone` (default true): open the microphone; false sends silence (text-only use).
 * - `audioConstraints`: extra getUserMedia audio constraints (echo cancellation, noise
 *   suppression and auto gain are on unless overridden).
 * - `sdkBaseUrl`: where the worklet files live (default: next to this module).
 */
export class UltravoxSession extends EventTarget {
  #status = S.DISCONNECTED;
  #log = new TranscriptLog();
  /** @type {Map<string, import("./ultravox-core.js").ClientToolImplementation>} */
  #tools = new Map();
  #micMuted = false;
  #speakerMuted = false;
  /** @type {WebSocket|null} */
  #socket = null;
  #options;
  #stats = emptyStats();
  /** @type {AudioGraph|null} */
  #audio = null;
  /** @type {ArrayBuffer[]} */
  #pendingAudio = [];
  #generation = 0;

  /**
   * @param {{audioContext?: AudioContext, experimentalMessages?: Iterable<string>, additionalMessages?: Iterable<string>,
   *   inputSampleRate?: number, outputSampleRate?: number, playbackBufferMs?: number, microphone?: boolean,
   *   audioConstraints?: MediaTrackConstraints, sdkBaseUrl?: string|URL}} [options]
   */
  constructor(options = {}) {
    super();
    const inputSampleRate = options.inputSampleRate ?? 48000;
    this.#options = {
      ...options,
      inputSampleRate,
      outputSampleRate: options.outputSampleRate ?? inputSampleRate,
      playbackBufferMs: options.playbackBufferMs ?? 80,
      microphone: options.microphone ?? true,
      sdkBaseUrl: new URL(options.sdkBaseUrl ?? "./", import.meta.url),
    };
    /** The close code of the last call's socket (1000 = normal end), or null. */
    this.closeCode = null;
    /** The close reason of the last call's socket. */
    this.closeReason = "";
  }

  /** @returns {string} one of UltravoxSessionStatus */
  get status() {
    return this.#status;
  }

  /** @returns {Transcript[]} the conversation so far, in ordinal order */
  get transcripts() {
    return this.#log.transcripts;
  }

  get isMicMuted() {
    return this.#micMuted;
  }

  get isSpeakerMuted() {
    return this.#speakerMuted;
  }

  /** @returns {UltravoxSessionStats} a snapshot of the counters (a test hook) */
  get stats() {
    return { ...this.#stats };
  }

  /**
   * Join a call by its `joinUrl`. Throws unless the session is disconnected.
   * @param {string} joinUrl
   * @param {string} [clientVersion] appended to `clientVersion=web_voxcall_<ver>:`
   */
  joinCall(joinUrl, clientVersion) {
    nextStatus(this.#status, { type: "join" }); // throws unless disconnected
    const url = buildJoinUrl(joinUrl, {
      clientVersion,
      additionalMessages: this.#options.additionalMessages,
      experimentalMessages: this.#options.experimentalMessages,
    });
    const socket = new WebSocket(url); // throws on a URL it cannot open; the status stays disconnected
    this.#setStatus(nextStatus(this.#status, { type: "join" }));
    this.#log.clear();
    this.#stats = emptyStats();
    this.#pendingAudio = [];
    this.closeCode = null;
    this.closeReason = "";
    this.dispatchEvent(new UltravoxTranscriptsChangedEvent());
    const generation = ++this.#generation;
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.closeCode = event.code;
      this.closeReason = event.reason;
      this.#setStatus(nextStatus(this.#status, { type: "leave" }));
      void this.#teardown();
    };
    // The AudioContext is made here, synchronously, so a click that calls joinCall lets it start.
    let context;
    try {
      context = this.#options.audioContext ?? new AudioContext({ latencyHint: "interactive" });
    } catch (error) {
      console.error("voxcall: no Web Audio; the call goes on without audio", error);
      return;
    }
    this.#audio = { context, owned: !this.#options.audioContext };
    this.#stats.contextSampleRate = context.sampleRate;
    void context.resume().catch(() => {});
    void this.#startAudio(generation).catch((error) => {
      if (generation === this.#generation) console.error("voxcall: audio could not start", error);
    });
  }

  /** Leave the call: close the socket (the server ends the call as `hangup`) and stop audio. */
  async leaveCall() {
    if (this.#status === S.DISCONNECTED) return;
    this.#setStatus(nextStatus(this.#status, { type: "leave" }));
    await this.#teardown();
  }

  /**
   * Send a user message as text (`input_text_message`, as every official SDK does).
   * @param {string} text
   * @param {boolean} [deferResponse] add it to the conversation without a reply
   */
  sendText(text, deferResponse) {
    assertLive(this.#status, "send text");
    this.sendData({ type: "input_text_message", text, deferResponse });
  }

  /**
   * Send any data message (it must have a `type`).
   * @param {Record<string, any>} obj
   */
  sendData(obj) {
    if (!obj || typeof obj.type !== "string") throw new Error("Data must contain a 'type' property.");
    if (!this.#socket || this.#socket.readyState !== WebSocket.OPEN) return;
    this.#socket.send(JSON.stringify(obj));
  }

  /**
   * Switch the agent between voice and text replies.
   * @param {string} medium one of Medium
   */
  setOutputMedium(medium) {
    assertLive(this.#status, "set output medium");
    if (medium !== Medium.VOICE && medium !== Medium.TEXT) throw new Error(`Unknown medium ${medium}`);
    this.sendData({ type: "set_output_medium", medium });
  }

  /**
   * @param {string} name the model-facing tool name (nameOverride, else modelToolName)
   * @param {import("./ultravox-core.js").ClientToolImplementation} implementation
   */
  registerToolImplementation(name, implementation) {
    this.#tools.set(name, implementation);
  }

  /** @param {Record<string, import("./ultravox-core.js").ClientToolImplementation>} implementations */
  registerToolImplementations(implementations) {
    for (const [name, implementation] of Object.entries(implementations)) this.registerToolImplementation(name, implementation);
  }

  muteMic() {
    this.#setMicMuted(true);
  }

  unmuteMic() {
    this.#setMicMuted(false);
  }

  toggleMicMute() {
    this.#setMicMuted(!this.#micMuted);
  }

  muteSpeaker() {
    this.#setSpeakerMuted(true);
  }

  unmuteSpeaker() {
    this.#setSpeakerMuted(false);
  }

  toggleSpeakerMute() {
    this.#setSpeakerMuted(!this.#speakerMuted);
  }

  // -------------------------------------------------------------------------

  /** @param {string} status */
  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.dispatchEvent(new UltravoxSessionStatusChangedEvent());
  }

  /** @param {boolean} muted */
  #setMicMuted(muted) {
    this.#micMuted = muted;
    for (const track of this.#audio?.stream?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  /** @param {boolean} muted */
  #setSpeakerMuted(muted) {
    this.#speakerMuted = muted;
    this.#audio?.playback?.port.postMessage({ type: "mute", muted });
  }

  /** @param {string|ArrayBuffer} data */
  #receive(data) {
    if (typeof data !== "string") {
      this.#receiveAudio(data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn("voxcall: ignoring a text frame that is not JSON");
      return;
    }
    if (!message || typeof message.type !== "string") return;
    const event = new UltravoxDataMessageEvent(message);
    this.dispatchEvent(event);
    if (!event.defaultPrevented) this.#handle(message);
  }

  /** @param {Record<string, any>} message */
  #handle(message) {
    switch (message.type) {
      case "state":
        this.#setStatus(nextStatus(this.#status, { type: "state", state: message.state }));
        break;
      case "transcript":
        if (this.#log.apply(message)) this.dispatchEvent(new UltravoxTranscriptsChangedEvent());
        break;
      case "client_tool_invocation":
        void this.#invokeTool(message);
        break;
      case "playback_clear_buffer":
        this.#stats.clearedBuffers += 1;
        this.#pendingAudio = [];
        this.#audio?.playback?.port.postMessage({ type: "clear" });
        break;
      default:
        if (!HANDLED.has(message.type) && this.#options.experimentalMessages !== undefined) {
          this.dispatchEvent(new UltravoxExperimentalMessageEvent(message));
        }
    }
  }

  /** @param {Record<string, any>} invocation */
  async #invokeTool(invocation) {
    const socket = this.#socket;
    const result = await runClientTool(this.#tools, /** @type {any} */ (invocation));
    if (socket === this.#socket) this.sendData(result);
  }

  /** @param {ArrayBuffer} buffer */
  #receiveAudio(buffer) {
    this.#stats.receivedAudioFrames += 1;
    this.#stats.receivedAudioBytes += buffer.byteLength;
    const usable = buffer.byteLength % 2 === 0 ? buffer : buffer.slice(0, buffer.byteLength - 1);
    const playback = this.#audio?.playback;
    if (playback) {
      playback.port.postMessage(usable, [usable]);
    } else if (this.#pendingAudio.length < MAX_PENDING_AUDIO) {
      this.#pendingAudio.push(usable);
    }
  }

  /** @param {ArrayBuffer} buffer one frame of s16le PCM from the capture worklet */
  #sendAudio(buffer) {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const frame = new Int16Array(buffer);
    if (isSoundFrame(frame)) this.#stats.capturedSoundFrames += 1;
    const outgoing = this.#micMuted ? new Int16Array(frame.length) : frame;
    if (socket.bufferedAmount > MAX_SOCKET_BACKLOG) {
      this.#stats.droppedInputFrames += 1;
      return;
    }
    socket.send(outgoing.buffer);
    this.#stats.sentFrames += 1;
    if (!this.#micMuted && isSoundFrame(outgoing)) this.#stats.sentSoundFrames += 1;
  }

  /** @param {number} generation */
  async #startAudio(generation) {
    const audio = this.#audio;
    if (!audio) return;
    const { context } = audio;
    const base = this.#options.sdkBaseUrl;
    await context.audioWorklet.addModule(new URL("ultravox-capture-worklet.js", base));
    await context.audioWorklet.addModule(new URL("ultravox-playback-worklet.js", base));
    if (generation !== this.#generation) return;
    this.#startPlayback(audio);
    const stream = await this.#openMicrophone();
    if (generation !== this.#generation) {
      for (const track of stream?.getTracks() ?? []) track.stop();
      return;
    }
    const capture = new AudioWorkletNode(context, "voxcall-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { targetRate: this.#options.inputSampleRate, frameMs: 20 },
    });
    capture.port.onmessage = (event) => this.#sendAudio(event.data);
    if (stream) {
      audio.stream = stream;
      audio.source = context.createMediaStreamSource(stream);
      audio.source.connect(capture);
      this.#setMicMuted(this.#micMuted);
    }
    capture.connect(context.destination); // it outputs silence; the connection keeps it running
    audio.capture = capture;
  }

  /** @param {AudioGraph} audio */
  #startPlayback(audio) {
    const playback = new AudioWorkletNode(audio.context, "voxcall-playback", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [audio.context.destination.channelCount >= 2 ? 2 : 1],
      processorOptions: {
        sourceRate: this.#options.outputSampleRate,
        prebufferMs: this.#options.playbackBufferMs,
        muted: this.#speakerMuted,
      },
    });
    playback.port.onmessage = (event) => this.#playbackReport(event.data, audio.context.sampleRate);
    playback.connect(audio.context.destination);
    audio.playback = playback;
    for (const buffer of this.#pendingAudio) playback.port.postMessage(buffer, [buffer]);
    this.#pendingAudio = [];
  }

  /** @param {Record<string, number|string>} report @param {number} rate */
  #playbackReport(report, rate) {
    if (report.type === "played") {
      this.#stats.playedSamples = Number(report.samples);
      this.#stats.audibleSamples = Number(report.audible);
      this.#stats.playedBlocks = Number(report.blocks);
      this.#stats.playedMs = Math.round((Number(report.samples) * 1000) / rate);
      this.#stats.playbackBufferedMs = Math.round((Number(report.buffered) * 1000) / rate);
    } else if (report.type === "cleared") {
      this.#stats.clearedSamples += Number(report.samples);
    }
  }

  /** @returns {Promise<MediaStream|null>} */
  async #openMicrophone() {
    if (!this.#options.microphone) return null;
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: {
          echoCancellation: true,
          noiseSuppression: true,
          autoGainControl: true,
          channelCount: 1,
          ...this.#options.audioConstraints,
        },
      });
    } catch (error) {
      this.#stats.micError = String(error && error.message ? error.message : error);
      console.warn("voxcall: no microphone, sending silence", error);
      return null;
    }
  }

  async #teardown() {
    this.#generation += 1;
    const socket = this.#socket;
    this.#socket = null;
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) {
      socket.close(1000);
    }
    const audio = this.#audio;
    this.#audio = null;
    this.#pendingAudio = [];
    if (audio) {
      for (const track of audio.stream?.getTracks() ?? []) track.stop();
      audio.source?.disconnect();
      for (const node of [audio.capture, audio.playback]) {
        node?.port.postMessage({ type: "stop" });
        node?.disconnect();
      }
      if (audio.owned && audio.context.state !== "closed") await audio.context.close().catch(() => {});
    }
    this.#setStatus(nextStatus(this.#status, { type: "closed" }));
  }
}
