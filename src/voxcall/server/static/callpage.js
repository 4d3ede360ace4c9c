// One call's page: its facts, stages, transcript, tool calls and results, per-turn latency
// chart, events, and the recording with its waveform.
import { api, listAll, serverHas } from "./api.js";
import { latencyChart, latencyLegend, latencyTable, latencyTurns } from "./charts.js";
import { $, definitionList, el, when } from "./dom.js";
import { describeError } from "./errors.js";
import { callDurationMs, callStages, callStatus, formatCallTimestamp, formatDuration, promptTokens, shortId, toolExchanges } from "./format.js";
import { attachWaveform, decodeRecording } from "./waveform.js";

const ROLES = { MESSAGE_ROLE_USER: "You", MESSAGE_ROLE_AGENT: "Agent", MESSAGE_ROLE_TOOL_CALL: "Tool call", MESSAGE_ROLE_TOOL_RESULT: "Tool result" };
const SEVERITIES = ["debug", "info", "warning", "error"];
let shown = { recordingUrl: "", detach: null, resize: null }; // what the page on view holds

const section = (id, title, ...content) =>
  el("section", { class: "call-section", "aria-labelledby": `${id}-title`, id }, el("h4", { id: `${id}-title` }, title), ...content);

function facts(call) {
  const duration = callDurationMs(call);
  const agent = call.agent ? el("a", { href: `#/agents/${call.agent.agentId}` }, call.agent.name || call.agent.agentId) : "";
  return definitionList([
    ["Call id", el("code", {}, call.callId)],
    ["Agent", agent],
    ["Created", when(call.created)],
    ["Joined", when(call.joined) || "not joined"],
    ["Status", callStatus(call)],
    ["Duration", duration === null ? "" : formatDuration(duration)],
    ["Replies as", call.initialOutputMedium === "MESSAGE_MEDIUM_TEXT" ? "text" : "voice"],
  ]);
}

async function stagesSection(call, messages) {
  let results = null;
  if (await serverHas("get", "/api/calls/{call_id}/stages")) {
    try {
      results = (await api(`/calls/${call.callId}/stages?pageSize=100`)).results;
    } catch (error) {
      console.info("stages unavailable", error.status);
    }
  }
  const stages = callStages(call, results);
  const items = await Promise.all(stages.map(async (stage) => {
    const count = stage.whole ? messages.length : messages.filter((m) => m.callStageId === stage.callStageId).length;
    const prompt = stage.systemPrompt ? el("p", { class: "prompt" }, stage.systemPrompt) : null;
    const facts = [["Started", when(stage.created)], ["Voice", stage.voice || "server default"],
      ["Temperature", String(stage.temperature ?? 0)], ["Messages", String(count)]];
    facts.push(["Prompt tokens", promptTokens(stage)]); // left out when the model did not count
    if (stage.callStageId && !stage.whole) facts.push(["Tools", await stageTools(call, stage)]);
    return el("li", { "data-stage-id": stage.callStageId || "whole-call" },
      el("strong", {}, stage.whole ? "Stage 1 (the whole call)" : `Stage ${stage.number}`), definitionList(facts), prompt);
  }));
  const note = stages[0].whole ? el("p", { class: "help" }, "This call has no stage changes, so it is shown as one stage.") : null;
  return section("call-stages", "Stages", el("ol", { class: "stages" }, ...items), note);
}

/** The names of a stage's tools ("none" without any). */
async function stageTools(call, stage) {
  try {
    const tools = await api(`/calls/${call.callId}/stages/${stage.callStageId}/tools`);
    return tools.length ? tools.map((t) => t.name).join(", ") : "none";
  } catch (error) {
    return describeError(error).join(" ");
  }
}

function transcriptSection(messages) {
  const items = messages.map((m) => el("li", { "data-role": m.role },
    el("span", { class: "speaker" }, ROLES[m.role] || m.role),
    el("span", { class: "text" }, m.role === "MESSAGE_ROLE_TOOL_CALL" ? `${m.toolName}(${m.text ?? ""})` : m.text ?? "")));
  return section("call-transcript", "Transcript",
    el("ol", { class: "transcripts", "aria-label": "Call transcript" }, ...(items.length ? items : [el("li", {}, "No messages.")])));
}

function toolsSection(messages) {
  const exchanges = toolExchanges(messages);
  if (!exchanges.length) return section("call-tools", "Tool calls and results", el("p", { class: "help" }, "No tool was called."));
  const table = el("table", { class: "data" }, el("thead", {}, el("tr", {}, ...["Tool", "Arguments", "Result"].map((h) => el("th", { scope: "col" }, h)))));
  const body = el("tbody");
  for (const x of exchanges) {
    const result = x.result === null ? el("em", {}, "no result") : el("code", {}, x.result);
    body.append(el("tr", { "data-tool": x.name, class: x.error ? "failed" : null }, el("td", {}, el("code", {}, x.name)),
      el("td", {}, el("code", {}, x.args || "{}")), el("td", {}, result, x.error ? el("span", { class: "error" }, ` failed: ${x.error}`) : null)));
  }
  table.append(body);
  return section("call-tools", "Tool calls and results", el("div", { class: "table-scroll" }, table));
}

function latencySection(ctx, events) {
  const turns = latencyTurns(events);
  if (!turns.length) {
    return section("call-latency", "Latency per turn", el("p", { class: "help" }, "No spoken turn was measured in this call (latency is reported for voice turns)."));
  }
  const holder = el("div", { class: "chart" });
  const draw = () => holder.replaceChildren(latencyChart(turns, { width: Math.max(280, Math.min(holder.clientWidth || 640, 900)), id: "latency" }));
  ctx.resize = draw;
  const details = el("details", {}, el("summary", {}, "The numbers"), el("div", { class: "table-scroll" }, latencyTable(turns)));
  const result = section("call-latency", "Latency per turn", holder, latencyLegend(), details);
  requestAnimationFrame(draw);
  return result;
}

async function eventsSection(call, severity) {
  const events = await listAll(`/calls/${call.callId}/events?minimum_severity=${severity}`);
  const select = el("select", { id: "event-severity" }, ...SEVERITIES.map((s) => el("option", { value: s, selected: s === severity }, s)));
  select.addEventListener("change", async () => {
    const fresh = await eventsSection(call, select.value);
    $("call-events").replaceWith(fresh);
    $("event-severity").focus();
  });
  const filter = el("div", { class: "field inline" }, el("label", { for: "event-severity" }, "Minimum severity"), select);
  if (!events.length) return section("call-events", "Events", filter, el("p", { class: "help" }, "No events at this severity."));
  const table = el("table", { class: "data" }, el("thead", {}, el("tr", {}, ...["Time", "Severity", "Type", "Text"].map((h) => el("th", { scope: "col" }, h)))));
  const body = el("tbody");
  for (const e of events) {
    body.append(el("tr", { "data-type": e.type, "data-severity": e.severity }, el("td", {}, formatCallTimestamp(e.callTimestamp)),
      el("td", {}, e.severity), el("td", {}, el("code", {}, e.type)), el("td", {}, e.text)));
  }
  table.append(body);
  return section("call-events", "Events", filter, el("div", { class: "table-scroll" }, table));
}

async function recordingSection(ctx, call) {
  if (!call.recordingEnabled) return section("call-recording", "Recording", el("p", { class: "help" }, "This call was not recorded."));
  if (!call.ended) return section("call-recording", "Recording", el("p", { class: "help" }, "The recording is written when the call ends."));
  try {
    const blob = await (await api(`/calls/${call.callId}/recording`, { raw: true })).blob();
    ctx.recordingUrl = URL.createObjectURL(blob);
    const audio = el("audio", { controls: true, id: "recording-player", src: ctx.recordingUrl, "aria-label": "Recording" });
    const canvas = el("canvas", { id: "recording-waveform", class: "waveform", role: "img", "aria-label": "Waveform of the recording" });
    const result = section("call-recording", "Recording", canvas, audio,
      el("p", { class: "help" }, "Top: your audio (left channel); bottom: the agent's (right channel). Click the waveform to jump there."));
    decodeRecording(await blob.arrayBuffer()).then(({ channels, duration }) => {
      canvas.setAttribute("aria-label", `Waveform of the ${duration.toFixed(1)} s recording: your audio above, the agent's below`);
      canvas.dataset.duration = String(duration);
      if (ctx === shown) ctx.detach = attachWaveform(canvas, audio, channels);
    }, (error) => canvas.replaceWith(el("p", { class: "help" }, `The waveform could not be drawn: ${error.message}`)));
    return result;
  } catch (error) {
    return section("call-recording", "Recording", el("p", { class: "help" }, describeError(error).join(" ")));
  }
}

function release(ctx) {
  if (ctx.recordingUrl) URL.revokeObjectURL(ctx.recordingUrl);
  ctx.detach?.();
}

/** Render the call page of `callId` into #call-detail; returns the call as just fetched (null if it could not be
 * loaded or another call was opened meanwhile). */
export async function showCall(callId, { focus = true } = {}) {
  release(shown);
  const ctx = { recordingUrl: "", detach: null, resize: null };
  shown = ctx;
  const detail = $("call-detail");
  const title = el("h3", { id: "call-detail-title", tabindex: "-1" }, `Call ${shortId(callId)}`);
  detail.replaceChildren(title, el("p", {}, "Loading…"));
  try {
    const call = await api(`/calls/${callId}`);
    const messages = await listAll(`/calls/${callId}/messages?mode=in_call`); // every stage's, without their initial copies
    const latency = await listAll(`/calls/${callId}/events?type=turn_latency&minimum_severity=debug`);
    const parts = [facts(call), await stagesSection(call, messages), transcriptSection(messages), toolsSection(messages),
      latencySection(ctx, latency), await eventsSection(call, "info"), await recordingSection(ctx, call)];
    if (ctx !== shown) return release(ctx);
    detail.replaceChildren(title, ...parts);
    detail.dataset.callId = callId;
    if (focus) title.focus();
    return call;
  } catch (error) {
    if (ctx === shown) detail.replaceChildren(title, el("p", { class: "error", role: "alert" }, `Could not load the call: ${describeError(error).join(" ")}`));
  }
  return null;
}

window.addEventListener("resize", () => shown.resize?.());
