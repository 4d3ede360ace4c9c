// The voxcall playground: sign in with an API key, create and join a call, talk or type,
// and look back at earlier calls. It uses the browser SDK exactly as a web app would.
import { Medium, UltravoxSession, UltravoxSessionStatus as Status } from "/sdk/ultravox.js";

const KEY_STORAGE = "voxcall.apiKey"; // sessionStorage only: the key never goes into a URL
const INPUT_RATE = 16000;
const OUTPUT_RATE = 24000;
const MESSAGE_ROLES = {
  MESSAGE_ROLE_USER: "You",
  MESSAGE_ROLE_AGENT: "Agent",
  MESSAGE_ROLE_TOOL_CALL: "Tool call",
  MESSAGE_ROLE_TOOL_RESULT: "Tool result",
};

const DEFAULT_TOOLS = [
  {
    temporaryTool: {
      modelToolName: "getWeather",
      description: "Get the current weather for a city.",
      client: {},
      dynamicParameters: [
        {
          name: "city",
          location: "PARAMETER_LOCATION_BODY",
          schema: { type: "string", description: "The city name" },
          required: true,
        },
      ],
    },
  },
];

/** Client tools implemented by the page (a demo: fixed or local answers). */
export const DEMO_TOOLS = {
  getWeather: ({ city }) => JSON.stringify({ city: city || "unknown", temp_c: 13, condition: "drizzle" }),
  getTime: () => JSON.stringify({ time: new Date().toLocaleTimeString() }),
  rollDice: ({ sides }) => String(1 + Math.floor(Math.random() * (Number(sides) || 6))),
};

const $ = (id) => /** @type {any} */ (document.getElementById(id));
const state = { apiKey: sessionStorage.getItem(KEY_STORAGE) || "", session: null, call: null, statsTimer: 0, recordingUrl: "" };
// A hook for tests and for poking around in the console.
window.voxcall = {
  get session() {
    return state.session;
  },
  get call() {
    return state.call;
  },
};

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : detail ? JSON.stringify(detail) : `HTTP ${status}`);
    this.status = status;
  }
}

/** A REST call with the key in the X-API-Key header. */
async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { "X-API-Key": state.apiKey };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    let detail = null;
    try {
      detail = (await response.json()).detail;
    } catch {
      // not JSON
    }
    throw new ApiError(response.status, detail);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

// --- sign in -------------------------------------------------------------------

async function signIn(key) {
  state.apiKey = key;
  const account = await api("/accounts/me");
  sessionStorage.setItem(KEY_STORAGE, key);
  $("api-key").value = "";
  $("account-name").textContent = `Signed in as ${account.name || account.accountId}`;
  $("account-bar").hidden = false;
  $("sign-in").hidden = true;
  $("new-call").hidden = false;
  $("history").hidden = false;
  $("system-prompt").focus();
  await Promise.all([loadVoices(), loadHistory()]);
}

function signOut() {
  void state.session?.leaveCall();
  sessionStorage.removeItem(KEY_STORAGE);
  state.apiKey = "";
  for (const id of ["account-bar", "new-call", "call", "history"]) $(id).hidden = true;
  $("sign-in").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  $("sign-in-error").textContent = "";
  if (!key) {
    $("sign-in-error").textContent = "Enter an API key.";
    return;
  }
  try {
    await signIn(key);
  } catch (error) {
    state.apiKey = "";
    $("sign-in-error").textContent = error.status === 401 || error.status === 403 ? "That key was not accepted." : `Sign-in failed: ${error.message}`;
  }
}

async function loadVoices() {
  const select = $("voice");
  select.replaceChildren(el("option", { value: "" }, "Server default"));
  try {
    for (const voice of (await api("/voices")).results) {
      const label = voice.description ? `${voice.name} (${voice.description})` : voice.name;
      select.append(el("option", { value: voice.voiceId || voice.name }, label));
    }
  } catch (error) {
    console.warn("voices", error);
  }
}

// --- one call --------------------------------------------------------------------

function callRequest() {
  let tools;
  const text = $("tools").value.trim();
  try {
    tools = text ? JSON.parse(text) : [];
  } catch (error) {
    throw new Error(`Tools are not valid JSON: ${error.message}`);
  }
  if (!Array.isArray(tools)) throw new Error("Tools must be a JSON array of selectedTools entries.");
  const greeting = $("greeting").value.trim();
  const body = {
    systemPrompt: $("system-prompt").value,
    firstSpeakerSettings: $("first-speaker").value === "user" ? { user: {} } : { agent: greeting ? { text: greeting } : {} },
    initialOutputMedium: $("output-medium").value === "text" ? "MESSAGE_MEDIUM_TEXT" : "MESSAGE_MEDIUM_VOICE",
    recordingEnabled: $("recording").checked,
    selectedTools: tools,
    medium: { serverWebSocket: { inputSampleRate: INPUT_RATE, outputSampleRate: OUTPUT_RATE } },
  };
  if ($("voice").value) body.voice = $("voice").value;
  return body;
}

async function onStartCall(event) {
  event.preventDefault();
  $("call-error").textContent = "";
  if (state.session && state.session.status !== Status.DISCONNECTED) return;
  let body;
  try {
    body = callRequest();
  } catch (error) {
    $("call-error").textContent = error.message;
    $("tools").focus();
    return;
  }
  $("start-call").disabled = true;
  try {
    state.call = await api("/calls", { method: "POST", body });
    joinCall(state.call, body.initialOutputMedium === "MESSAGE_MEDIUM_TEXT" ? Medium.TEXT : Medium.VOICE);
    void loadHistory();
  } catch (error) {
    window.clearInterval(state.statsTimer);
    $("call").hidden = true;
    $("new-call").hidden = false;
    $("call-error").textContent = `Could not start the call: ${error.message}`;
    $("start-call").disabled = false;
  }
}

function joinCall(call, medium) {
  const session = new UltravoxSession({ inputSampleRate: INPUT_RATE, outputSampleRate: OUTPUT_RATE });
  for (const [name, implementation] of Object.entries(DEMO_TOOLS)) {
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
    if (message.type === "client_tool_invocation" && !(message.toolName in DEMO_TOOLS)) logTool(message.toolName, message.parameters, "(not registered here)");
  });
  state.session = session;
  $("transcripts").replaceChildren();
  $("tool-log").replaceChildren();
  $("call-message").textContent = "";
  $("live-medium").value = medium;
  $("mute-mic").setAttribute("aria-pressed", "false");
  $("mute-speaker").setAttribute("aria-pressed", "false");
  $("new-call").hidden = true;
  $("call").hidden = false;
  session.joinCall(call.joinUrl, "playground");
  renderStatus(session);
  $("call-title").focus();
  state.statsTimer = window.setInterval(() => renderStats(session), 500);
}

function renderStatus(session) {
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
  const hadFocus = $("call").contains(document.activeElement) || document.activeElement === document.body;
  $("new-call").hidden = false;
  $("start-call").disabled = false;
  if (hadFocus) $("start-call").focus();
  void refreshUntilEnded(state.call?.callId);
}

/** The server records the end a moment after the socket closes: reload the list until it shows. */
async function refreshUntilEnded(callId, tries = 10) {
  for (let i = 0; i < tries; i++) {
    const calls = await loadHistory();
    if (!callId || calls.some((c) => c.callId === callId && c.ended)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
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

function toggle(button, muted) {
  button.setAttribute("aria-pressed", String(muted));
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

// --- history ------------------------------------------------------------------------

async function loadHistory() {
  const list = $("call-list");
  try {
    const page = await api("/calls?pageSize=20");
    list.replaceChildren(...page.results.map(historyItem));
    if (page.results.length === 0) list.append(el("li", {}, "No calls yet."));
    return page.results;
  } catch (error) {
    list.replaceChildren(el("li", { class: "error" }, `Could not load calls: ${error.message}`));
    return [];
  }
}

function historyItem(call) {
  const when = new Date(call.created).toLocaleString();
  const status = call.ended ? `ended: ${call.endReason || "unknown"}` : call.joined ? "live" : "not joined";
  const label = `${when} · ${status}${call.recordingEnabled ? " · recorded" : ""}`;
  const button = el("button", { type: "button", "aria-controls": "call-detail", "data-call-id": call.callId, onclick: () => showCall(call) }, label);
  return el("li", {}, button);
}

async function showCall(call) {
  const detail = $("call-detail");
  if (state.recordingUrl) URL.revokeObjectURL(state.recordingUrl);
  state.recordingUrl = "";
  detail.replaceChildren(el("h3", { id: "call-detail-title" }, `Call ${call.callId.slice(0, 8)}`), el("p", {}, "Loading…"));
  try {
    const messages = (await api(`/calls/${call.callId}/messages?pageSize=1000`)).results;
    const items = messages.map((m) =>
      el("li", { "data-role": m.role }, el("span", { class: "speaker" }, MESSAGE_ROLES[m.role] || m.role),
        el("span", { class: "text" }, m.text ?? (m.toolName ? `${m.toolName}` : ""))));
    detail.replaceChildren(detail.firstChild, el("ol", { class: "transcripts", "aria-label": "Call transcript" }, ...(items.length ? items : [el("li", {}, "No messages.")])));
    if (call.recordingEnabled) detail.append(await recordingPlayer(call));
    detail.focus();
  } catch (error) {
    detail.replaceChildren(el("p", { class: "error" }, `Could not load the call: ${error.message}`));
  }
}

async function recordingPlayer(call) {
  try {
    const blob = await (await api(`/calls/${call.callId}/recording`, { raw: true })).blob();
    state.recordingUrl = URL.createObjectURL(blob);
    const audio = el("audio", { controls: "", id: "recording-player", src: state.recordingUrl, "aria-labelledby": "recording-label" });
    return el("div", { class: "field" }, el("p", { id: "recording-label" }, "Recording"), audio);
  } catch (error) {
    return el("p", { class: "help" }, error.status === 404 ? "No recording yet (it is written when the call ends)." : `Recording unavailable: ${error.message}`);
  }
}

// --- wiring -------------------------------------------------------------------------

function init() {
  $("tools").value = JSON.stringify(DEFAULT_TOOLS, null, 2);
  $("sign-in-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", signOut);
  $("call-form").addEventListener("submit", onStartCall);
  $("text-form").addEventListener("submit", onText);
  $("refresh-history").addEventListener("click", () => void loadHistory());
  $("hang-up").addEventListener("click", () => void state.session?.leaveCall());
  $("mute-mic").addEventListener("click", (e) => {
    state.session?.toggleMicMute();
    toggle(e.currentTarget, Boolean(state.session?.isMicMuted));
  });
  $("mute-speaker").addEventListener("click", (e) => {
    state.session?.toggleSpeakerMute();
    toggle(e.currentTarget, Boolean(state.session?.isSpeakerMuted));
  });
  $("live-medium").addEventListener("change", (e) => {
    try {
      state.session?.setOutputMedium(e.currentTarget.value);
    } catch (error) {
      $("call-message").textContent = error.message;
    }
  });
  if (state.apiKey) {
    signIn(state.apiKey).catch(() => signOut());
  } else {
    $("api-key").focus();
  }
}

init();
