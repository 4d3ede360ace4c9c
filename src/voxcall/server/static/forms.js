// Form helpers: errors as sentences next to the form (and the named fields marked invalid),
// a confirmation dialog for deletes, and a polite status line for "saved" notices.
import { $, el } from "./dom.js";
import { describeError, invalidPaths } from "./errors.js";

/** Clear the alert and every aria-invalid mark in `form`. */
export function clearErrors(form, alert) {
  alert.replaceChildren();
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-errormessage");
  }
}

/**
 * Show `error` in `alert` as sentences; mark the fields a 422 names.
 * @param {{labels?: Record<string, string>, fields?: Record<string, string>}} map
 *   labels: dotted path -> label in the sentence; fields: dotted path -> input id
 */
export function showError(form, alert, error, { labels = {}, fields = {} } = {}) {
  clearErrors(form, alert);
  const sentences = describeError(error, labels);
  alert.append(sentences.length > 1 ? el("ul", {}, ...sentences.map((s) => el("li", {}, s))) : sentences[0] || "");
  let first = null;
  for (const path of invalidPaths(error)) {
    const key = Object.keys(fields).filter((k) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`))
      .sort((a, b) => b.length - a.length)[0];
    const field = key ? $(fields[key]) : null;
    if (!field) continue;
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-errormessage", alert.id);
    first ??= field;
  }
  first?.focus();
}

/** Ask before something irreversible; resolves true when confirmed. */
export function confirmAction(message, confirmLabel = "Delete") {
  const dialog = $("confirm-dialog");
  $("confirm-message").textContent = message;
  $("confirm-ok").textContent = confirmLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** Lock a form's fields while it loads what it edits (typing into it would be overwritten). */
export function setLoading(fields, loading) {
  fields.disabled = loading;
  fields.form?.setAttribute("aria-busy", String(loading));
}

let keepNotice = false;

/** A short notice in the polite status line ("Agent saved."); it stays for the next page only. */
export function notify(message) {
  $("status-message").textContent = message;
  keepNotice = true;
}

/** On a route change: the last notice goes, unless it was made for this page. */
export function pageChanged() {
  if (!keepNotice) $("status-message").textContent = "";
  keepNotice = false;
}

/** Parse a JSON textarea; an empty one is `empty`. Throws an Error whose message is a sentence. */
export function parseJsonField(value, label, empty = undefined) {
  const text = String(value || "").trim();
  if (!text) return empty;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`Field ${label} is not valid JSON: ${error.message}.`);
  }
}
