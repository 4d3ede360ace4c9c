// API errors as sentences a person can act on. Pure: no DOM, so Node tests import it.
//
// FastAPI and pydantic answer a 422 with `detail`: a list of {loc, msg, type}. Each entry
// becomes "Field X: message." where X is the form's label for that field when the page
// knows it, else the dotted path ("callTemplate.selectedTools[0].toolId").

export class ApiError extends Error {
  /** @param {number} status @param {unknown} detail @param {Headers | null} headers */
  constructor(status, detail, headers = null) {
    super(errorSentences(detail).join(" ") || `The server answered HTTP ${status}.`);
    this.status = status;
    this.detail = detail;
    this.retryAfter = Number(headers?.get?.("Retry-After")) || 0;
  }
}

const LOC_ROOTS = new Set(["body", "query", "path", "header", "cookie"]);
const ROOT_NAMES = { query: "Query parameter", path: "Path parameter", header: "Header", cookie: "Cookie" };
// pydantic names the branch of a union or a validator wrapper in `loc`; a person needs neither.
const INTERNAL_PART = /^(function-(after|before|wrap|plain)\[|tagged-union\[|union\[|json-or-python\[|chain\[)|\[.*\]$/;
const PYDANTIC_PREFIX = /^(Value error|Assertion failed|Type error), /;

/** The dotted path of a `loc` without its root ("body") and pydantic's internal parts. */
export function fieldPath(loc) {
  const parts = (Array.isArray(loc) ? loc : loc == null ? [] : [loc]).filter((p) => !(typeof p === "string" && INTERNAL_PART.test(p)));
  if (parts.length && LOC_ROOTS.has(String(parts[0]))) parts.shift();
  let path = "";
  for (const part of parts) {
    if (typeof part === "number" || /^\d+$/.test(String(part))) path += `[${part}]`;
    else path += path ? `.${part}` : String(part);
  }
  return path;
}

function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return "";
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

function cleanMessage(msg) {
  const text = String(msg ?? "is not valid").replace(PYDANTIC_PREFIX, "").trim();
  return text.endsWith(".") ? text : `${text}.`;
}

/**
 * One 422 entry as a sentence.
 * @param {{loc?: unknown[], msg?: string, type?: string}} entry
 * @param {Record<string, string>} labels dotted path -> the label a person sees
 */
export function detailSentence(entry, labels = {}) {
  if (entry == null || typeof entry !== "object") return sentence(String(entry ?? ""));
  const loc = Array.isArray(entry.loc) ? entry.loc : [];
  const path = fieldPath(loc);
  const root = loc.length > 1 ? ROOT_NAMES[String(loc[0])] : undefined;
  if (!path) return sentence(`The request is not valid: ${cleanMessage(entry.msg)}`);
  const name = labels[path] ?? (root ? `${root} ${path}` : path);
  if (entry.type === "missing") return `Field ${name} is required.`;
  return `Field ${name}: ${cleanMessage(entry.msg)}`;
}

/** Every sentence of a `detail` (a string, a list of 422 entries, or one entry). */
export function errorSentences(detail, labels = {}) {
  if (detail == null || detail === "") return [];
  if (typeof detail === "string") return [sentence(detail)];
  if (Array.isArray(detail)) return detail.map((entry) => detailSentence(entry, labels)).filter(Boolean);
  if (typeof detail === "object" && ("msg" in detail || "loc" in detail)) return [detailSentence(detail, labels)];
  if (typeof detail === "object" && typeof detail.message === "string") return [sentence(detail.message)];
  return [sentence(JSON.stringify(detail))];
}

/** The sentences to show for any error thrown by an API call (or by the page itself). */
export function describeError(error, labels = {}) {
  if (!(error instanceof ApiError)) {
    if (error instanceof TypeError) return ["The server could not be reached. Is voxcall still running?"];
    return [sentence(error?.message ?? String(error))];
  }
  if (error.status === 401 || error.status === 403) {
    return [error.status === 401 ? "The API key was not accepted." : sentence(error.message)];
  }
  const sentences = errorSentences(error.detail, labels);
  if (error.status === 429) {
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : " Try again shortly.";
    return [`${sentences.join(" ") || "Too many requests."}${wait}`];
  }
  return sentences.length ? sentences : [`The server answered HTTP ${error.status}.`];
}

/** The dotted paths a 422 names (to mark those fields invalid). */
export function invalidPaths(error) {
  const detail = error instanceof ApiError ? error.detail : null;
  return Array.isArray(detail) ? detail.map((entry) => fieldPath(entry?.loc)).filter(Boolean) : [];
}
