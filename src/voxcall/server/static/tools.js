// Durable tools (/api/tools): list (yours and the built-in ones), create, edit, delete.
// The form covers the usual definition fields; other definition fields are kept on save.
import { api, listAll } from "./api.js";
import { $, el } from "./dom.js";
import { clearErrors, confirmAction, notify, setLoading, showError } from "./forms.js";

const KINDS = { client: "Client", http: "HTTP", static: "Fixed response" };
const TYPES = ["string", "number", "integer", "boolean", "object", "array"];
const LOCATIONS = { PARAMETER_LOCATION_BODY: "Body", PARAMETER_LOCATION_QUERY: "Query", PARAMETER_LOCATION_PATH: "Path", PARAMETER_LOCATION_HEADER: "Header" };
const LABELS = {
  name: "Name", "definition.description": "Description", "definition.http.baseUrlPattern": "URL", "definition.http.httpMethod": "Method",
  "definition.timeout": "Timeout", "definition.staticResponse.responseText": "Response text",
};
let current = null; // the tool being edited (null: a new one)
let rowCount = 0;

const kindOf = (definition) =>
  definition?.http ? "http" : definition?.staticResponse && !definition.client ? "static" : definition?.dataConnection ? "dataConnection" : "client";

function toolItem(tool) {
  const builtIn = tool.ownership === "public";
  const name = builtIn ? el("strong", {}, tool.name) : el("a", { href: `#/tools/${tool.toolId}` }, tool.name);
  const kind = kindOf(tool.definition);
  return el("li", { "data-tool-id": tool.toolId }, name,
    el("span", { class: "help" }, ` · ${builtIn ? "built-in" : KINDS[kind] || kind}${tool.definition?.description ? ` · ${tool.definition.description}` : ""}`));
}

async function showList() {
  try {
    const tools = await listAll("/tools");
    $("tool-list").replaceChildren(...(tools.length ? tools.map(toolItem) : [el("li", {}, "No tools yet.")]));
  } catch (error) {
    showError($("tool-form"), $("tool-list-error"), error);
  }
}

function select(id, options, value) {
  return el("select", { id }, ...Object.entries(options).map(([v, label]) => el("option", { value: v, selected: v === value }, label)));
}

function addParameterRow(param = { name: "", location: "PARAMETER_LOCATION_BODY", schema: { type: "string" }, required: false }) {
  const n = ++rowCount;
  const id = (part) => `tool-param-${n}-${part}`;
  const row = el("fieldset", { class: "param", "data-row": String(n) }, el("legend", {}, "Parameter"));
  row.original = param;
  const field = (label, input) => el("div", { class: "field" }, el("label", { for: input.id }, label), input);
  row.append(
    field("Parameter name", el("input", { id: id("name"), type: "text", value: param.name || "", autocomplete: "off", spellcheck: "false" })),
    field("Type", select(id("type"), Object.fromEntries(TYPES.map((t) => [t, t])), param.schema?.type || "string")),
    field("Location", select(id("location"), LOCATIONS, param.location || "PARAMETER_LOCATION_BODY")),
    field("Parameter description", el("input", { id: id("description"), type: "text", value: param.schema?.description || "", autocomplete: "off" })),
    el("div", { class: "field checkbox" }, el("input", { id: id("required"), type: "checkbox", checked: Boolean(param.required) }),
      el("label", { for: id("required") }, "Required")),
    el("button", { type: "button", class: "link", onclick: () => { row.remove(); renumber(); $("tool-add-param").focus(); } }, "Remove parameter"),
  );
  $("tool-params").append(row);
  renumber();
  return row;
}

function renumber() {
  [...$("tool-params").querySelectorAll("fieldset.param")].forEach((row, i) => {
    row.querySelector("legend").textContent = `Parameter ${i + 1}`;
    row.querySelector("button").setAttribute("aria-label", `Remove parameter ${i + 1}`);
  });
  const http = $("tool-kind").value === "http";
  for (const box of $("tool-params").querySelectorAll("select[id$='-location']")) {
    box.disabled = !http;
    if (!http) box.value = "PARAMETER_LOCATION_BODY";
  }
}

function parametersFromForm() {
  return [...$("tool-params").querySelectorAll("fieldset.param")].map((row) => {
    const value = (part) => row.querySelector(`[id$='-${part}']`);
    const schema = { ...(row.original.schema || {}), type: value("type").value };
    const description = value("description").value.trim();
    if (description) schema.description = description;
    else delete schema.description;
    return { ...row.original, name: value("name").value.trim(), location: value("location").value, schema, required: value("required").checked };
  });
}

function definitionFromForm(existing = {}) {
  const { http, client, staticResponse, dataConnection, ...definition } = existing;
  definition.description = $("tool-description").value.trim();
  const kind = $("tool-kind").value;
  if (kind === "http") definition.http = { ...(http || {}), baseUrlPattern: $("tool-url").value.trim(), httpMethod: $("tool-method").value };
  else if (kind === "static") definition.staticResponse = { responseText: $("tool-static").value };
  else if (kind === "dataConnection") definition.dataConnection = dataConnection || {};
  else definition.client = client || {};
  definition.dynamicParameters = parametersFromForm();
  const timeout = $("tool-timeout").value.trim();
  if (timeout) definition.timeout = `${timeout}s`;
  else delete definition.timeout;
  return definition;
}

function showKind() {
  const kind = $("tool-kind").value;
  $("tool-http").hidden = kind !== "http";
  $("tool-static-field").hidden = kind !== "static";
  renumber();
}

function fillForm(tool) {
  const d = tool?.definition || {};
  $("tool-name").value = tool?.name || "";
  $("tool-description").value = d.description || "";
  const kind = kindOf(d);
  const kindSelect = $("tool-kind");
  kindSelect.querySelector("option[value='dataConnection']")?.remove();
  if (kind === "dataConnection") kindSelect.append(el("option", { value: "dataConnection" }, "Data connection (kept as it is)"));
  kindSelect.value = kind;
  $("tool-url").value = d.http?.baseUrlPattern || "";
  $("tool-method").value = d.http?.httpMethod || "GET";
  $("tool-static").value = d.staticResponse?.responseText || "";
  $("tool-timeout").value = d.timeout ? String(Number.parseFloat(d.timeout)) : "";
  $("tool-params").replaceChildren();
  for (const param of d.dynamicParameters || []) addParameterRow(param);
  showKind();
}

function errorFields() {
  const fields = { name: "tool-name", "definition.description": "tool-description", "definition.http.baseUrlPattern": "tool-url",
    "definition.http.httpMethod": "tool-method", "definition.timeout": "tool-timeout", "definition.staticResponse": "tool-static", definition: "tool-kind" };
  [...$("tool-params").querySelectorAll("fieldset.param")].forEach((row, i) => {
    fields[`definition.dynamicParameters[${i}]`] = row.querySelector("input").id;
  });
  return fields;
}

async function onSave(event) {
  event.preventDefault();
  const form = $("tool-form");
  clearErrors(form, $("tool-error"));
  const body = { name: $("tool-name").value.trim(), definition: definitionFromForm(current?.definition || {}) };
  try {
    const saved = current ? await api(`/tools/${current.toolId}`, { method: "PUT", body }) : await api("/tools", { method: "POST", body });
    notify(`Tool ${saved.name} saved.`);
    location.hash = "#/tools";
  } catch (error) {
    showError(form, $("tool-error"), error, { labels: LABELS, fields: errorFields() });
  }
}

async function onDelete() {
  if (!current || !(await confirmAction(`Delete the tool ${current.name}? Agents that use it can no longer start calls with it.`, "Delete tool"))) return;
  try {
    await api(`/tools/${current.toolId}`, { method: "DELETE" });
    notify(`Tool ${current.name} deleted.`);
    location.hash = "#/tools";
  } catch (error) {
    showError($("tool-form"), $("tool-error"), error);
  }
}

/** Route #/tools[/new|/{id}]. */
export async function showTools(id) {
  $("tools-panel").hidden = Boolean(id);
  $("tool-editor").hidden = !id;
  if (!id) return showList();
  clearErrors($("tool-form"), $("tool-error"));
  $("tool-editor-title").textContent = id === "new" ? "New tool" : "Edit tool";
  $("tool-delete").hidden = id === "new";
  setLoading($("tool-fields"), true); // until the form holds what it edits
  try {
    current = id === "new" ? null : await api(`/tools/${id}`);
    fillForm(current);
    setLoading($("tool-fields"), false);
  } catch (error) {
    showError($("tool-form"), $("tool-error"), error);
  }
  $("tool-editor-title").focus();
}

export function initTools() {
  const kind = $("tool-kind");
  kind.replaceChildren(...Object.entries(KINDS).map(([value, label]) => el("option", { value }, label)));
  kind.addEventListener("change", showKind);
  $("tool-add-param").addEventListener("click", () => addParameterRow().querySelector("input").focus());
  $("tool-form").addEventListener("submit", onSave);
  $("tool-delete").addEventListener("click", onDelete);
}
