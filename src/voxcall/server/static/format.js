// Small pure formatters for calls: durations, status, previews. No DOM (Node tests import it).

/** "4.2 s", "42 s", "3 min 5 s", "1 h 2 min". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  const seconds = ms / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  if (hours) return `${hours} h ${minutes} min`;
  return `${minutes} min ${total % 60} s`;
}

/** How long the call ran: joined to ended (or to `now` while it is live); null if never joined. */
export function callDurationMs(call, now = Date.now()) {
  if (!call?.joined) return null;
  const start = Date.parse(call.joined);
  const end = call.ended ? Date.parse(call.ended) : now;
  return Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, end - start) : null;
}

/** "ended: hangup", "live", "not joined". */
export function callStatus(call) {
  if (call.ended) return `ended: ${call.endReason || "unknown"}`;
  return call.joined ? "live" : "not joined";
}

/** The first thing said in the call (user or agent text), shortened to `max` characters. */
export function previewText(messages, max = 80) {
  const first = (messages || []).find(
    (m) => (m.role === "MESSAGE_ROLE_USER" || m.role === "MESSAGE_ROLE_AGENT") && typeof m.text === "string" && m.text.trim(),
  );
  if (!first) return "";
  const text = first.text.trim().replace(/\s+/g, " ");
  const who = first.role === "MESSAGE_ROLE_USER" ? "You" : "Agent";
  return `${who}: ${text.length > max ? `${text.slice(0, max - 1).trimEnd()}…` : text}`;
}

export const shortId = (id) => String(id || "").slice(0, 8);

/** "1.2 s" from a protobuf Duration string ("1.234s"); "" when absent. */
export function formatCallTimestamp(value) {
  const seconds = Number.parseFloat(String(value ?? ""));
  return Number.isFinite(seconds) ? `${seconds.toFixed(1)} s` : "";
}

/**
 * The stages to show: the server's (GET /calls/{id}/stages results) when it has any, else the
 * whole call as one stage. A call that never changed stage has one: it is the whole call.
 */
export function callStages(call, results = null) {
  if (Array.isArray(results) && results.length) {
    return results.map((stage, i) => ({ ...stage, number: i + 1, whole: results.length === 1 }));
  }
  return [{ callStageId: null, number: 1, whole: true, created: call.created, systemPrompt: call.systemPrompt,
    voice: call.voice, temperature: call.temperature, model: call.model }];
}

/** A stage's prompt length in tokens: "120" (one count), "120 → 180" (first and latest), "" when the model did not say. */
export function promptTokens(stage) {
  const first = stage?.initialTokenCount, latest = stage?.latestTokenCount;
  if (!Number.isInteger(first) && !Number.isInteger(latest)) return "";
  if (!Number.isInteger(first) || !Number.isInteger(latest) || first === latest) return String(Number.isInteger(latest) ? latest : first);
  return `${first} → ${latest}`;
}

/** Tool calls paired with their results by invocationId, in call order. */
export function toolExchanges(messages) {
  const exchanges = [];
  const open = new Map();
  for (const m of messages || []) {
    if (m.role === "MESSAGE_ROLE_TOOL_CALL") {
      const entry = { name: m.toolName || "", invocationId: m.invocationId || "", args: m.text ?? "", result: null, error: null };
      exchanges.push(entry);
      if (entry.invocationId) open.set(entry.invocationId, entry);
    } else if (m.role === "MESSAGE_ROLE_TOOL_RESULT") {
      const entry = open.get(m.invocationId) ?? exchanges.findLast((e) => e.result === null && e.name === m.toolName);
      const target = entry ?? { name: m.toolName || "", invocationId: m.invocationId || "", args: "", result: null, error: null };
      if (!entry) exchanges.push(target);
      target.result = m.text ?? "";
      target.error = m.errorDetails || null;
      open.delete(m.invocationId);
    }
  }
  return exchanges;
}
