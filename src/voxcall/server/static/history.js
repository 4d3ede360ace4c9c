// Call history: one row per call (short id, date, duration, status, first words), the opened
// call highlighted; opening a row shows its call page (callpage.js) below the list.
import { api } from "./api.js";
import { showCall } from "./callpage.js";
import { $, el } from "./dom.js";
import { describeError } from "./errors.js";
import { callDurationMs, callStatus, formatDuration, previewText, shortId } from "./format.js";

const previews = new Map(); // callId -> preview text, once the call has ended or said something
let openId = "";

async function preview(call) {
  if (previews.has(call.callId)) return previews.get(call.callId);
  const messages = (await api(`/calls/${call.callId}/messages?pageSize=6`)).results;
  const text = previewText(messages);
  if (text || call.ended) previews.set(call.callId, text);
  return text;
}

function historyItem(call) {
  const duration = callDurationMs(call);
  const parts = [
    el("span", { class: "call-id" }, shortId(call.callId)),
    el("span", {}, new Date(call.created).toLocaleString()),
    duration === null ? null : el("span", { class: "duration" }, formatDuration(duration)),
    el("span", { class: "status" }, callStatus(call)),
    call.agent?.name ? el("span", {}, `agent ${call.agent.name}`) : null,
    call.recordingEnabled ? el("span", {}, "recorded") : null,
  ];
  const line = el("span", { class: "call-line" });
  parts.filter(Boolean).forEach((part, i) => line.append(...(i ? [" · ", part] : [part])));
  const text = el("span", { class: "preview" }, previews.get(call.callId) ?? "");
  const link = el("a", { href: `#/calls/${call.callId}`, class: "call-row", "data-call-id": call.callId,
    "aria-current": call.callId === openId ? "true" : null }, line, text);
  if (!previews.has(call.callId)) {
    preview(call).then((value) => { text.textContent = value || (call.ended ? "(nothing said)" : ""); }, () => {});
  }
  return el("li", {}, link);
}

/** Reload the list (newest first); returns the calls shown. */
export async function loadHistory() {
  const list = $("call-list");
  try {
    const page = await api("/calls?pageSize=20");
    list.replaceChildren(...page.results.map(historyItem));
    if (page.results.length === 0) list.append(el("li", {}, "No calls yet."));
    return page.results;
  } catch (error) {
    list.replaceChildren(el("li", { class: "error" }, `Could not load calls: ${describeError(error).join(" ")}`));
    return [];
  }
}

function highlight() {
  for (const row of $("call-list").querySelectorAll("a[data-call-id]")) {
    if (row.dataset.callId === openId) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

/** Redraw one row from a fresher copy of its call (the list may have been loaded while it was live). */
function updateRow(call) {
  const row = $("call-list").querySelector(`a[data-call-id="${call.callId}"]`);
  row?.parentElement.replaceWith(historyItem(call));
}

/** Open one call's page (route #/calls/{id}). */
export async function openCall(callId) {
  openId = callId;
  highlight();
  const call = await showCall(callId);
  if (call) updateRow(call);
}

export function closeCall() {
  openId = "";
  highlight();
  $("call-detail").replaceChildren();
}

/** The server records the end a moment after the socket closes (longer while its models are busy): reload the
 * list until it shows, for up to half a minute. */
export async function refreshUntilEnded(callId, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const calls = await loadHistory();
    if (!callId || calls.some((c) => c.callId === callId && c.ended)) {
      if (callId && callId === openId) await showCall(callId, { focus: false });
      return;
    }
    if (Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
