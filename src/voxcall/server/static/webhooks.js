// Webhooks (/api/webhooks): list with their health, create, edit, delete.
import { api, listAll } from "./api.js";
import { $, el, when } from "./dom.js";
import { clearErrors, confirmAction, notify, setLoading, showError } from "./forms.js";

export const EVENTS = {
  "call.started": "Call started (created)",
  "call.joined": "Call joined",
  "call.ended": "Call ended",
  "call.billed": "Call billed",
};
const FIELDS = { url: "webhook-url", events: "webhook-event-call.started", secrets: "webhook-secrets", agentId: "webhook-agent" };
const LABELS = { url: "URL", events: "Events", secrets: "Secrets", agentId: "Agent" };
let current = null;

function webhookItem(hook, agents) {
  const agent = hook.agentId ? agents.find((a) => a.agentId === hook.agentId)?.name || hook.agentId : "every call";
  const failures = hook.recentFailures?.length
    ? el("span", { class: "error" }, ` · ${hook.recentFailures.length} recent failure${hook.recentFailures.length === 1 ? "" : "s"}, last: ${hook.recentFailures.at(-1).failure}`)
    : null;
  return el("li", { "data-webhook-id": hook.webhookId },
    el("a", { href: `#/webhooks/${hook.webhookId}` }, hook.url),
    el("span", { class: "help" }, ` · ${hook.events.join(", ")} · ${agent} · `),
    el("span", { class: `health ${hook.status}` }, hook.status), failures);
}

async function showList() {
  try {
    const [hooks, agents] = await Promise.all([listAll("/webhooks"), listAll("/agents")]);
    $("webhook-list").replaceChildren(...(hooks.length ? hooks.map((h) => webhookItem(h, agents)) : [el("li", {}, "No webhooks yet.")]));
  } catch (error) {
    showError($("webhook-form"), $("webhook-list-error"), error);
  }
}

function fillForm(hook, agents) {
  $("webhook-url").value = hook?.url || "";
  for (const event of Object.keys(EVENTS)) $(`webhook-event-${event}`).checked = hook ? hook.events.includes(event) : event === "call.ended";
  $("webhook-secrets").value = (hook?.secrets || []).join("\n");
  $("webhook-agent").replaceChildren(el("option", { value: "" }, "Every call"),
    ...agents.map((a) => el("option", { value: a.agentId, selected: a.agentId === hook?.agentId }, `Calls of ${a.name}`)));
  const status = hook ? `Status: ${hook.status}${hook.lastStatusChange ? ` since ${when(hook.lastStatusChange)}` : ""}` : "";
  $("webhook-status").textContent = status;
}

async function onSave(event) {
  event.preventDefault();
  const form = $("webhook-form");
  clearErrors(form, $("webhook-error"));
  const secrets = $("webhook-secrets").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const body = {
    url: $("webhook-url").value.trim(),
    events: Object.keys(EVENTS).filter((e) => $(`webhook-event-${e}`).checked),
    agentId: $("webhook-agent").value || null,
  };
  if (secrets.length || current) body.secrets = secrets;
  if (!body.events.length) {
    showError(form, $("webhook-error"), new Error("Choose at least one event to send."));
    $("webhook-event-call.started").focus();
    return;
  }
  try {
    const saved = current ? await api(`/webhooks/${current.webhookId}`, { method: "PATCH", body }) : await api("/webhooks", { method: "POST", body });
    notify(`Webhook to ${saved.url} saved.`);
    location.hash = "#/webhooks";
  } catch (error) {
    showError(form, $("webhook-error"), error, { labels: LABELS, fields: FIELDS });
  }
}

async function onDelete() {
  if (!current || !(await confirmAction(`Delete the webhook to ${current.url}? Events waiting for it are dropped.`, "Delete webhook"))) return;
  try {
    await api(`/webhooks/${current.webhookId}`, { method: "DELETE" });
    notify("Webhook deleted.");
    location.hash = "#/webhooks";
  } catch (error) {
    showError($("webhook-form"), $("webhook-error"), error);
  }
}

/** Route #/webhooks[/new|/{id}]. */
export async function showWebhooks(id) {
  $("webhooks-panel").hidden = Boolean(id);
  $("webhook-editor").hidden = !id;
  if (!id) return showList();
  clearErrors($("webhook-form"), $("webhook-error"));
  $("webhook-editor-title").textContent = id === "new" ? "New webhook" : "Edit webhook";
  $("webhook-delete").hidden = id === "new";
  setLoading($("webhook-fields"), true); // until the form holds what it edits
  try {
    const [hook, agents] = await Promise.all([id === "new" ? null : api(`/webhooks/${id}`), listAll("/agents")]);
    current = hook;
    fillForm(hook, agents);
    setLoading($("webhook-fields"), false);
  } catch (error) {
    showError($("webhook-form"), $("webhook-error"), error);
  }
  $("webhook-editor-title").focus();
}

export function initWebhooks() {
  const events = $("webhook-events");
  for (const [event, label] of Object.entries(EVENTS)) {
    const id = `webhook-event-${event}`;
    events.append(el("div", { class: "field checkbox" }, el("input", { type: "checkbox", id, value: event }), el("label", { for: id }, label, " ", el("code", {}, event))));
  }
  $("webhook-form").addEventListener("submit", onSave);
  $("webhook-delete").addEventListener("click", onDelete);
}
