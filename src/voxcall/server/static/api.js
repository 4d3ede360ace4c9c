// The REST client of the console: the API key (sessionStorage only, never in a URL) in the
// X-API-Key header, JSON in and out, errors as ApiError (errors.js turns them into sentences).
import { ApiError } from "./errors.js";

const KEY_STORAGE = "voxcall.apiKey";
let apiKey = sessionStorage.getItem(KEY_STORAGE) || "";

/** The key kept for this tab ("" when signed out). */
export const storedKey = () => apiKey;

export function setKey(key, { remember = false } = {}) {
  apiKey = key;
  if (remember) sessionStorage.setItem(KEY_STORAGE, key);
  else if (!key) sessionStorage.removeItem(KEY_STORAGE);
}

/** A REST call under /api: the parsed JSON (null for 204), or the Response with `raw`. */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { "X-API-Key": apiKey };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    let detail = null;
    try {
      detail = (await response.json()).detail;
    } catch {
      // not JSON: the status says enough
    }
    throw new ApiError(response.status, detail, response.headers);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** Every result of a paginated list (following `next` up to `limit` items). */
export async function listAll(path, limit = 1000) {
  const results = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}pageSize=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    results.push(...page.results);
    cursor = page.next ? new URL(page.next).searchParams.get("cursor") : null;
  } while (cursor && results.length < limit);
  return results;
}

let paths = null;

/** Whether this server declares an operation (read once from its OpenAPI document). */
export async function serverHas(method, template) {
  if (paths === null) {
    try {
      const response = await fetch("/api/openapi.json");
      paths = response.ok ? (await response.json()).paths || {} : {};
    } catch {
      paths = {};
    }
  }
  return Boolean(paths[template]?.[method.toLowerCase()]);
}
