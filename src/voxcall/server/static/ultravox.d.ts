// Types for the voxcall browser SDK (ultravox.js), mirroring the `ultravox-client` npm package.

export declare const SDK_VERSION: string;

export declare const UltravoxSessionStatus: {
  readonly DISCONNECTED: "disconnected";
  readonly DISCONNECTING: "disconnecting";
  readonly CONNECTING: "connecting";
  readonly IDLE: "idle";
  readonly LISTENING: "listening";
  readonly THINKING: "thinking";
  readonly SPEAKING: "speaking";
};
export type UltravoxSessionStatus = (typeof UltravoxSessionStatus)[keyof typeof UltravoxSessionStatus];

export declare const Role: { readonly USER: "user"; readonly AGENT: "agent" };
export type Role = (typeof Role)[keyof typeof Role];

export declare const Medium: { readonly VOICE: "voice"; readonly TEXT: "text" };
export type Medium = (typeof Medium)[keyof typeof Medium];

export declare const AgentReaction: { readonly SPEAKS: "speaks"; readonly LISTENS: "listens"; readonly SPEAKS_ONCE: "speaks-once" };
export type AgentReaction = (typeof AgentReaction)[keyof typeof AgentReaction];

export declare class Transcript {
  readonly text: string;
  readonly isFinal: boolean;
  readonly speaker: Role;
  readonly medium: Medium;
  readonly ordinal: number;
  constructor(text: string, isFinal: boolean, speaker: Role, medium: Medium, ordinal: number);
}

export type ClientToolReturnType =
  | string
  | {
      result: string;
      /** "tool-response" (default), "hang-up", "new-stage", ... */
      responseType?: string;
      agentReaction?: AgentReaction | null;
      updateCallState?: Record<string, unknown> | null;
    };
export type ClientToolImplementation = (parameters: { [key: string]: any }) => ClientToolReturnType | Promise<ClientToolReturnType>;

export interface UltravoxSessionOptions {
  audioContext?: AudioContext;
  /** Message types to enable at join time (JS SDK 0.5.0 name). */
  additionalMessages?: Iterable<string>;
  /** Message types to enable at join time; unknown types then fire `experimental_message` (JS SDK <= 0.4). */
  experimentalMessages?: Iterable<string>;
  /** The call's medium.serverWebSocket.inputSampleRate (default 48000). */
  inputSampleRate?: number;
  /** The call's medium.serverWebSocket.outputSampleRate (default: inputSampleRate). */
  outputSampleRate?: number;
  /** Agent audio buffered before playback starts (default 80). */
  playbackBufferMs?: number;
  /** Open the microphone (default true); false sends silence. */
  microphone?: boolean;
  audioConstraints?: MediaTrackConstraints;
  /** Where the worklet modules are served (default: next to ultravox.js). */
  sdkBaseUrl?: string | URL;
}

export interface UltravoxSessionStats {
  sentFrames: number;
  sentSoundFrames: number;
  capturedSoundFrames: number;
  droppedInputFrames: number;
  receivedAudioFrames: number;
  receivedAudioBytes: number;
  playedSamples: number;
  audibleSamples: number;
  playedBlocks: number;
  playedMs: number;
  playbackBufferedMs: number;
  clearedBuffers: number;
  clearedSamples: number;
  contextSampleRate: number;
  micError: string | null;
}

export declare class UltravoxSessionStatusChangedEvent extends Event {
  constructor();
}
export declare class UltravoxTranscriptsChangedEvent extends Event {
  constructor();
}
export declare class UltravoxDataMessageEvent extends Event {
  readonly message: { type: string; [key: string]: any };
  constructor(message: { type: string; [key: string]: any });
}
export declare class UltravoxExperimentalMessageEvent extends Event {
  readonly message: { type: string; [key: string]: any };
  constructor(message: { type: string; [key: string]: any });
}

export interface UltravoxSessionEventMap {
  status: UltravoxSessionStatusChangedEvent;
  transcripts: UltravoxTranscriptsChangedEvent;
  data_message: UltravoxDataMessageEvent;
  experimental_message: UltravoxExperimentalMessageEvent;
}

export declare class UltravoxSession extends EventTarget {
  constructor(options?: UltravoxSessionOptions);
  readonly status: UltravoxSessionStatus;
  readonly transcripts: Transcript[];
  readonly isMicMuted: boolean;
  readonly isSpeakerMuted: boolean;
  /** A snapshot of the audio counters (a test and debugging hook). */
  readonly stats: UltravoxSessionStats;
  /** The last call socket's close code (1000 = normal end), or null. */
  closeCode: number | null;
  closeReason: string;
  joinCall(joinUrl: string, clientVersion?: string): void;
  leaveCall(): Promise<void>;
  sendText(text: string, deferResponse?: boolean): void;
  sendData(obj: { type: string; [key: string]: any }): void;
  setOutputMedium(medium: Medium): void;
  registerToolImplementation(name: string, implementation: ClientToolImplementation): void;
  registerToolImplementations(implementations: { [name: string]: ClientToolImplementation }): void;
  muteMic(): void;
  unmuteMic(): void;
  toggleMicMute(): void;
  muteSpeaker(): void;
  unmuteSpeaker(): void;
  toggleSpeakerMute(): void;
  addEventListener<K extends keyof UltravoxSessionEventMap>(
    type: K,
    listener: (event: UltravoxSessionEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}
