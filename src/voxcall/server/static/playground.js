// The playground: the new-call form and the live call (browser SDK), which calls started from
// an agent join too. It uses the SDK exactly as a web app would.
import { Medium, UltravoxSession, UltravoxSessionStatus as Status } from "/sdk/ultravox.js";
import { api } from "./api.js";
import { DEMO_IMPLEMENTATIONS, DEMO_TOOLS, demoSelectedTools } from "./demotools.js";
import { $, el } from "./dom.js";
import { clearErrors, parseJsonField, showError } from "./forms.js";
import { loadHistory, refreshUntilEnded } from "./history.js";

export const INPUT_RATE = 16000;
export const OUTPUT_RATE = 24000;
/** The medium every call the page joins uses: its WebSocket, at the page's audio rates. */
export const PAGE_MEDIUM = { serverWebSocket: { inputSampleRate: INPUT_RATE, outputSampleRate: OUTPUT_RATE } };

const state = { session: null, call: null, statsTimer: 0 };
// A hook for tests and for poking around in the console.
window.voxcall = {
  get session() {
    return state.session;
  },
  get call() {
    return state.call;
  },
};

const CALL_FIELDS = { systemPrompt: "system-prompt", voice: "voice", selectedTools: "tools", firstSpeakerSettings: "first-speaker" };
const CALL_LABELS = { systemPrompt: "System prompt", voice: "Voice", selectedTools: "Tools" };

/** Fill a voice <select> with the server's voices (the first option, "Server default", stays). */
export async function loadVoices(select) {
  const keep = select.value;
  select.replaceChildren(el("option", { value: "" }, "Server default"));
  try {
    for (const voice of (await api("/voices")).results) {
      const label = voice.description ? `${voice.name} (${voice.description})` : voice.name;
      select.append(el("option", { value: voice.voiceId || voice.name }, label));
    }
  } catch (error) {
    console.warn("voices", error);
  }
  select.value = keep;
}

function callRequest() {
  const tools = parseJsonField($("tools").value, "Tools", []);
  if (!Array.isArray(tools)) throw new Error("Field Tools must be a JSON array of selectedTools entries.");
  const greeting = $("greeting").value.trim();
  const body = {
    systemPrompt: $("system-prompt").value,
    firstSpeakerSettings: $("first-speaker").value === "user" ? { user: {} } : { agent: greeting ? { text: greeting } : {} },
    initialOutputMedium: $("output-medium").value === "text" ? "MESSAGE_MEDIUM_TEXT" : "MESSAGE_MEDIUM_VOICE",
    recordingEnabled: $("recording").checked,
    selectedTools: tools,
    medium: PAGE_MEDIUM,
  };
  if ($("voice").value) body.voice = $("voice").value;
  return body;
}

async function onStartCall(event) {
  event.preventDefault();
  const form = $("call-form");
  clearErrors(form, $("call-error"));
  if (state.session && state.session.status !== Status.DISCONNECTED) return;
  let body;
  try {
    body = callRequest();
  } catch (error) {
    showError(form, $("call-error"), error);
    $("tools").focus();
    return;
  }
  $("start-call").disabled = true;
  try {
    const call = await api("/calls", { method: "POST", body });
    joinCall(call);
    void loadHistory();
  } catch (error) {
    $("call").hidden = true;
    $("new-call").hidden = false;
    showError(form, $("call-error"), error, { labels: CALL_LABELS, fields: CALL_FIELDS });
    $("start-call").disabled = false;
  }
}

/** Join `call` (a Call resource with its joinUrl) in the page's live-call panel. */
export function joinCall(call) {
  const medium = call.initialOutputMedium === "MESSAGE_MEDIUM_TEXT" ? Medium.TEXT : Medium.VOICE;
  const session = new UltravoxSession({ inputSampleRate: INPUT_RATE, outputSampleRate: OUTPUT_RATE });
  for (const [name, implementation] of Object.entries(DEMO_IMPLEMENTATIONS)) {
    session.registerToolImplementation(name, (parameters) => {
      const result = implementation(parameters);
      logTool(name, parameters, result);
      return result;
    });
  }
  session.addEventListener("status", () => renderStatus(session));
  session.addEventListener("transcripts", () => renderTranscripts(session.transcripts));
  session.addEventListener("data_message", (event) => {
    const message = event.message;
    if (message.type === "client_tool_invocation" && !(message.toolName in DEMO_IMPLEMENTATIONS)) logTool(message.toolName, message.parameters, "(not registered here)");
  });
  state.session = session;
  state.call = call;
  $("transcripts").replaceChildren();
  $("tool-log").replaceChildren();
  $("call-message").textContent = "";
  $("call-title").textContent = call.agent?.name ? `Call with ${call.agent.name}` : "Call";
  $("live-medium").value = medium;
  $("mute-mic").setAttribute("aria-pressed", "false");
  $("mute-speaker").setAttribute("aria-pressed", "false");
  $("new-call").hidden = true;
  $("call").hidden = false;
  session.joinCall(call.joinUrl, "playground");
  renderStatus(session);
  $("call-title").focus();
  window.clearInterval(state.statsTimer);
  state.statsTimer = window.setInterval(() => renderStats(session), 500);
}

export const callInProgress = () => Boolean(state.session && state.session.status !== Status.DISCONNECTED);

function renderStatus(session) {
  if (session !== state.session) return;
  const status = session.status;
  const output = $("call-status");
  output.textContent = status;
  output.dataset.status = status;
  const live = [Status.LISTENING, Status.THINKING, Status.SPEAKING].includes(status);
  const joined = status !== Status.DISCONNECTED && status !== Status.DISCONNECTING;
  for (const id of ["text-input", "send-text", "live-medium"]) $(id).disabled = !live;
  for (const id of ["mute-mic", "mute-speaker", "hang-up"]) $(id).disabled = !joined;
  const focus = document.activeElement;
  if (live && (focus === document.body || focus === $("call-title"))) $("text-input").focus();
  if (status === Status.DISCONNECTED) callEnded(session);
}

function callEnded(session) {
  window.clearInterval(state.statsTimer);
  renderStats(session);
  const code = session.closeCode;
  $("call-message").textContent = code && code !== 1000 ? `The call ended (close code ${code}${session.closeReason ? `: ${session.closeReason}` : ""}).` : "";
  $("call-status").textContent = "disconnected (call ended)";
  $("call-details-link").hidden = !state.call;
  if (state.call) $("call-details-link").href = `#/calls/${state.call.callId}`;
  const hadFocus = $("call").contains(document.activeElement) || document.activeElement === document.body;
  $("new-call").hidden = false;
  $("start-call").disabled = false;
  if (hadFocus) $("start-call").focus();
  void refreshUntilEnded(state.call?.callId);
}

function renderTranscripts(transcripts) {
  const list = $("transcripts");
  for (const transcript of transcripts) {
    let item = list.querySelector(`li[data-ordinal="${transcript.ordinal}"]`);
    if (!item) {
      const who = transcript.speaker === "user" ? "You" : "Agent";
      item = el("li", { "data-ordinal": String(transcript.ordinal), "data-speaker": transcript.speaker },
        el("span", { class: "speaker" }, who), el("span", { class: "text" }), el("span", { class: "badge" }));
      list.append(item);
    }
    item.dataset.final = String(transcript.isFinal);
    item.dataset.medium = transcript.medium;
    item.querySelector(".text").textContent = transcript.text;
    item.querySelector(".badge").textContent = `${transcript.medium}${transcript.isFinal ? "" : ", in progress…"}`;
  }
  list.scrollTop = list.scrollHeight;
}

function logTool(name, parameters, result) {
  $("tool-log").append(el("li", { "data-tool": name }, el("code", {}, `${name}(${JSON.stringify(parameters ?? {})})`), ` → ${result}`));
}

function renderStats(session) {
  const s = session.stats;
  $("stats").textContent =
    `Audio: sent ${s.sentFrames} frames (${s.sentSoundFrames} with sound), received ${s.receivedAudioFrames}, ` +
    `played ${(s.playedMs / 1000).toFixed(1)} s of agent audio` + (s.micError ? `. Microphone: ${s.micError}` : "");
}

function onText(event) {
  event.preventDefault();
  const input = $("text-input");
  const text = input.value.trim();
  if (!text || !state.session) return;
  try {
    state.session.sendText(text);
    input.value = "";
  } catch (error) {
    $("call-message").textContent = error.message;
  }
}

function toolsHelp() {
  const items = DEMO_TOOLS.flatMap((tool, i) => [i ? (i === DEMO_TOOLS.length - 1 ? " and " : ", ") : "", el("code", {}, tool.name), ` (${tool.summary})`]);
  return ["Client tools this page answers, all declared in the JSON: ", ...items, ". Any other client tool is answered \"not registered\"."];
}

export function leaveCall() {
  void state.session?.leaveCall();
}

export function initPlayground() {
  $("tools").value = JSON.stringify(demoSelectedTools(), null, 2);
  $("tools-help").replaceChildren(...toolsHelp());
  $("call-form").addEventListener("submit", onStartCall);
  $("text-form").addEventListener("submit", onText);
  $("hang-up").addEventListener("click", leaveCall);
  for (const [id, toggle, flag] of [["mute-mic", "toggleMicMute", "isMicMuted"], ["mute-speaker", "toggleSpeakerMute", "isSpeakerMuted"]]) {
    $(id).addEventListener("click", (e) => {
      state.session?.[toggle]();
      e.currentTarget.setAttribute("aria-pressed", String(Boolean(state.session?.[flag])));
    });
  }
  $("live-medium").addEventListener("change", (e) => {
    try {
      state.session?.setOutputMedium(e.currentTarget.value);
    } catch (error) {
      $("call-message").textContent = error.message;
    }
  });
}
