// Agents: list, create, edit, delete, and start a call from one (joined in the live-call panel).
// The form edits the common call-template fields; every other template field is kept as it was.
import { api, listAll } from "./api.js";
import { $, el, when } from "./dom.js";
import { clearErrors, confirmAction, notify, parseJsonField, setLoading, showError } from "./forms.js";
import { callInProgress, joinCall, loadVoices, PAGE_MEDIUM } from "./playground.js";

const FIELDS = {
  name: "agent-name", "callTemplate.systemPrompt": "agent-prompt", "callTemplate.voice": "agent-voice",
  "callTemplate.selectedTools": "agent-tools", "callTemplate.firstSpeakerSettings": "agent-greeting",
  templateContext: "agent-context",
};
const LABELS = {
  name: "Name", "callTemplate.systemPrompt": "System prompt", "callTemplate.voice": "Voice",
  "callTemplate.selectedTools": "Tools", "callTemplate.firstSpeakerSettings": "Greeting", templateContext: "Template context",
};
let current = null; // the agent being edited (null: a new one)
let tools = []; // the account's and the built-in tools, for the checkboxes

function agentItem(agent) {
  const count = agent.statistics?.calls ?? 0;
  const toolCount = agent.callTemplate?.selectedTools?.length ?? 0;
  return el("li", { "data-agent-id": agent.agentId },
    el("a", { href: `#/agents/${agent.agentId}` }, agent.name || "(no name)"),
    el("span", { class: "help" }, ` · ${count} call${count === 1 ? "" : "s"} · ${toolCount} tool${toolCount === 1 ? "" : "s"} · created ${when(agent.created)}`));
}

async function showList() {
  const list = $("agent-list");
  try {
    const agents = await listAll("/agents");
    list.replaceChildren(...(agents.length ? agents.map(agentItem) : [el("li", {}, "No agents yet. Create one to reuse a call setup.")]));
  } catch (error) {
    showError($("agent-form"), $("agent-list-error"), error);
  }
}

/** toolId of a selectedTools entry when it names one of `tools` (else null: kept as is). */
function selectedId(entry) {
  if (entry.toolId) return entry.toolId;
  const byName = entry.toolName && !entry.nameOverride ? tools.find((t) => t.name === entry.toolName) : null;
  return byName ? byName.toolId : null;
}

function renderToolChoices(selected) {
  const chosen = new Set(selected.map(selectedId).filter(Boolean));
  const boxes = tools.map((tool) => {
    const id = `agent-tool-${tool.toolId}`;
    const note = tool.ownership === "public" ? " (built-in)" : "";
    return el("div", { class: "field checkbox" },
      el("input", { type: "checkbox", id, value: tool.toolId, checked: chosen.has(tool.toolId) }),
      el("label", { for: id }, tool.name, el("span", { class: "help" }, `${note} ${tool.definition?.description || ""}`)));
  });
  const others = selected.filter((entry) => !selectedId(entry)).length;
  $("agent-tool-choices").replaceChildren(...(boxes.length ? boxes : [el("p", { class: "help" }, "No tools yet.")]));
  $("agent-tools-help").textContent = others
    ? `${others} more tool${others === 1 ? "" : "s"} of this agent (temporary tools) stay as they are.`
    : "Create tools on the Tools page; built-in tools are always here.";
}

function selectedTools(existing) {
  const checked = new Set([...$("agent-tool-choices").querySelectorAll("input:checked")].map((box) => box.value));
  const kept = existing.filter((entry) => {
    const id = selectedId(entry);
    return !id || checked.has(id);
  });
  const present = new Set(kept.map(selectedId));
  for (const tool of tools) {
    if (checked.has(tool.toolId) && !present.has(tool.toolId)) kept.push(tool.ownership === "public" ? { toolName: tool.name } : { toolId: tool.toolId });
  }
  return kept;
}

function templateFromForm(existing = {}) {
  const { created, updated, ...template } = existing; // read-only fields
  const set = (key, value) => {
    if (value === "" || value === undefined) delete template[key];
    else template[key] = value;
  };
  set("systemPrompt", $("agent-prompt").value.trim());
  set("voice", $("agent-voice").value);
  const greeting = $("agent-greeting").value.trim();
  template.firstSpeakerSettings = $("agent-first-speaker").value === "user" ? { user: {} } : { agent: greeting ? { text: greeting } : {} };
  template.initialOutputMedium = $("agent-medium").value === "text" ? "MESSAGE_MEDIUM_TEXT" : "MESSAGE_MEDIUM_VOICE";
  template.recordingEnabled = $("agent-recording").checked;
  set("selectedTools", selectedTools(existing.selectedTools || []));
  return template;
}

function fillForm(agent) {
  const t = agent?.callTemplate || {};
  $("agent-name").value = agent?.name || "";
  $("agent-prompt").value = t.systemPrompt || "";
  $("agent-voice").value = t.voice || "";
  $("agent-first-speaker").value = t.firstSpeakerSettings?.user ? "user" : "agent";
  $("agent-greeting").value = t.firstSpeakerSettings?.agent?.text || "";
  $("agent-medium").value = t.initialOutputMedium === "MESSAGE_MEDIUM_TEXT" ? "text" : "voice";
  $("agent-recording").checked = Boolean(t.recordingEnabled);
  renderToolChoices(t.selectedTools || []);
}

async function showEditor(id) {
  const form = $("agent-form");
  clearErrors(form, $("agent-error"));
  clearErrors($("agent-call-form"), $("agent-call-error"));
  $("agent-editor-title").textContent = id === "new" ? "New agent" : "Edit agent";
  $("agent-delete").hidden = id === "new";
  $("agent-start").hidden = id === "new";
  setLoading($("agent-fields"), true); // until the form holds what it edits
  try {
    [tools, current] = await Promise.all([listAll("/tools"), id === "new" ? null : api(`/agents/${id}`), loadVoices($("agent-voice"))]);
    fillForm(current);
    setLoading($("agent-fields"), false);
    $("agent-start-title").textContent = `Start a call with ${current?.name || "this agent"}`;
  } catch (error) {
    showError(form, $("agent-error"), error);
  }
  $("agent-editor-title").focus();
}

async function onSave(event) {
  event.preventDefault();
  const form = $("agent-form");
  clearErrors(form, $("agent-error"));
  const body = { name: $("agent-name").value.trim(), callTemplate: templateFromForm(current?.callTemplate || {}) };
  try {
    const saved = current
      ? await api(`/agents/${current.agentId}`, { method: "PATCH", body })
      : await api("/agents", { method: "POST", body });
    notify(`Agent ${saved.name} saved.`);
    if (current) {
      current = saved;
      fillForm(saved);
    } else {
      location.hash = `#/agents/${saved.agentId}`;
    }
  } catch (error) {
    showError(form, $("agent-error"), error, { labels: LABELS, fields: FIELDS });
  }
}

async function onDelete() {
  if (!current || !(await confirmAction(`Delete the agent ${current.name}? Its calls stay in the history.`, "Delete agent"))) return;
  try {
    await api(`/agents/${current.agentId}`, { method: "DELETE" });
    notify(`Agent ${current.name} deleted.`);
    location.hash = "#/agents";
  } catch (error) {
    showError($("agent-form"), $("agent-error"), error);
  }
}

async function onStartCall(event) {
  event.preventDefault();
  const form = $("agent-call-form");
  clearErrors(form, $("agent-call-error"));
  if (!current) return;
  if (callInProgress()) {
    showError(form, $("agent-call-error"), new Error("A call is in progress: hang up on the Calls page first."));
    return;
  }
  try {
    const context = parseJsonField($("agent-context").value, "Template context");
    const body = { medium: PAGE_MEDIUM, ...(context === undefined ? {} : { templateContext: context }) };
    const call = await api(`/agents/${current.agentId}/calls`, { method: "POST", body });
    location.hash = "#/calls";
    joinCall(call);
  } catch (error) {
    showError(form, $("agent-call-error"), error, { labels: LABELS, fields: FIELDS });
  }
}

/** Route #/agents[/new|/{id}]. */
export async function showAgents(id) {
  $("agents-panel").hidden = Boolean(id);
  $("agent-editor").hidden = !id;
  if (!id) {
    $("agent-start").hidden = true;
    await showList();
    return;
  }
  await showEditor(id);
}

export function initAgents() {
  $("agent-form").addEventListener("submit", onSave);
  $("agent-delete").addEventListener("click", onDelete);
  $("agent-call-form").addEventListener("submit", onStartCall);
}
