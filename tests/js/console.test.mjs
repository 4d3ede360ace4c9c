// The console's pure parts: 422 details as sentences, call formatting, stages, tool exchanges, demo tools.
import assert from "node:assert/strict";
import { test } from "node:test";

import { DEMO_IMPLEMENTATIONS, DEMO_TOOLS, demoSelectedTools } from "../../src/voxcall/server/static/demotools.js";
import { ApiError, describeError, detailSentence, errorSentences, fieldPath, invalidPaths } from "../../src/voxcall/server/static/errors.js";
import { callDurationMs, callStages, callStatus, formatDuration, previewText, promptTokens, toolExchanges } from "../../src/voxcall/server/static/format.js";

test("a FastAPI 422 list becomes one 'Field X: message.' sentence per entry", () => {
  const detail = [
    { loc: ["body", "url"], msg: "Value error, url must be an absolute http:// or https:// URL", type: "value_error" },
    { loc: ["body", "callTemplate", "selectedTools", 0, "toolId"], msg: "Input should be a valid string", type: "string_type" },
    { loc: ["body", "name"], msg: "Field required", type: "missing" },
  ];
  assert.deepEqual(errorSentences(detail), [
    "Field url: url must be an absolute http:// or https:// URL.",
    "Field callTemplate.selectedTools[0].toolId: Input should be a valid string.",
    "Field name is required.",
  ]);
});

test("labels the page knows replace dotted paths; query and path roots are named", () => {
  const labels = { "definition.http.baseUrlPattern": "URL" };
  assert.equal(detailSentence({ loc: ["body", "definition", "http", "baseUrlPattern"], msg: "Value error, must be http" }, labels), "Field URL: must be http.");
  assert.equal(detailSentence({ loc: ["query", "pageSize"], msg: "Input should be greater than or equal to 1" }), "Field Query parameter pageSize: Input should be greater than or equal to 1.");
  assert.equal(detailSentence({ loc: ["body"], msg: "Value error, set exactly one of http, client and dataConnection" }),
    "The request is not valid: set exactly one of http, client and dataConnection.");
});

test("pydantic's internal loc parts (union branches, validator wrappers) are left out", () => {
  assert.equal(fieldPath(["body", "function-after[_check(), CallTemplate]", "temperature"]), "temperature");
  assert.equal(fieldPath(["body", "selectedTools", 2, "tagged-union[A,B]", "name"]), "selectedTools[2].name");
  assert.equal(fieldPath([]), "");
});

test("a string detail is one sentence; nothing is never shown as raw JSON of a list", () => {
  assert.deepEqual(errorSentences("Unknown voice 'x'. Installed voices: a"), ["Unknown voice 'x'. Installed voices: a."]);
  assert.deepEqual(errorSentences(null), []);
  assert.deepEqual(errorSentences({ loc: ["body", "events", 0], msg: "Input should be 'call.started' or 'call.ended'" }),
    ["Field events[0]: Input should be 'call.started' or 'call.ended'."]);
  const sentences = errorSentences([{ loc: ["body", "a"], msg: "bad" }]);
  assert.ok(!sentences.join(" ").includes("{"), sentences);
});

test("describeError: statuses a person can act on; invalidPaths names the fields", () => {
  assert.deepEqual(describeError(new ApiError(401, "Invalid API key")), ["The API key was not accepted."]);
  const headers = new Headers({ "Retry-After": "3" });
  assert.deepEqual(describeError(new ApiError(429, "Too many calls", headers)), ["Too many calls. Try again in 3 s."]);
  assert.deepEqual(describeError(new ApiError(500, null)), ["The server answered HTTP 500."]);
  assert.deepEqual(describeError(new TypeError("Failed to fetch")), ["The server could not be reached. Is voxcall still running?"]);
  const invalid = new ApiError(422, [{ loc: ["body", "callTemplate", "voice"], msg: "x" }, { loc: ["body", "name"], msg: "y" }]);
  assert.deepEqual(invalidPaths(invalid), ["callTemplate.voice", "name"]);
  assert.equal(invalid.message, "Field callTemplate.voice: x. Field name: y.");
});

test("durations, status and preview of a call row", () => {
  assert.equal(formatDuration(4200), "4.2 s");
  assert.equal(formatDuration(42_000), "42 s");
  assert.equal(formatDuration(185_000), "3 min 5 s");
  assert.equal(formatDuration(3_720_000), "1 h 2 min");
  const call = { joined: "2026-01-01T10:00:00Z", ended: "2026-01-01T10:00:42.5Z", endReason: "hangup" };
  assert.equal(callDurationMs(call), 42_500);
  assert.equal(callDurationMs({ joined: null }), null);
  assert.equal(callStatus(call), "ended: hangup");
  assert.equal(callStatus({ joined: "x" }), "live");
  const messages = [{ role: "MESSAGE_ROLE_TOOL_CALL", text: "{}" }, { role: "MESSAGE_ROLE_AGENT", text: "  Hello   there, how can I help? " }];
  assert.equal(previewText(messages), "Agent: Hello there, how can I help?");
  assert.equal(previewText([{ role: "MESSAGE_ROLE_USER", text: "a".repeat(100) }], 10), `You: ${"a".repeat(9)}…`);
  assert.equal(previewText([]), "");
});

test("stages: the server's when it has some, else the whole call as one", () => {
  const call = { created: "c", systemPrompt: "p", voice: "v" };
  const one = callStages(call, null);
  assert.equal(one.length, 1);
  assert.equal(one[0].whole, true);
  assert.equal(one[0].systemPrompt, "p");
  assert.deepEqual(callStages(call, []).map((s) => s.whole), [true]);
  assert.deepEqual(callStages(call, [{ callStageId: "only" }]).map((s) => [s.callStageId, s.whole]), [["only", true]]);
  const two = callStages(call, [{ callStageId: "a" }, { callStageId: "b" }]);
  assert.deepEqual(two.map((s) => [s.callStageId, s.number, s.whole]), [["a", 1, false], ["b", 2, false]]);
});

test("a stage's prompt tokens: one count, first and latest, or nothing", () => {
  assert.equal(promptTokens({ initialTokenCount: 120, latestTokenCount: 180 }), "120 → 180");
  assert.equal(promptTokens({ initialTokenCount: 90, latestTokenCount: 90 }), "90");
  assert.equal(promptTokens({ initialTokenCount: null, latestTokenCount: null }), "");
  assert.equal(promptTokens({}), "");
  assert.equal(promptTokens({ initialTokenCount: 7 }), "7");
});

test("tool calls pair with their results by invocationId", () => {
  const messages = [
    { role: "MESSAGE_ROLE_TOOL_CALL", toolName: "a", invocationId: "1", text: '{"x":1}' },
    { role: "MESSAGE_ROLE_TOOL_CALL", toolName: "b", invocationId: "2", text: "{}" },
    { role: "MESSAGE_ROLE_TOOL_RESULT", toolName: "b", invocationId: "2", text: "ok" },
    { role: "MESSAGE_ROLE_TOOL_RESULT", toolName: "a", invocationId: "1", text: "", errorDetails: "timed out" },
  ];
  assert.deepEqual(toolExchanges(messages).map((x) => [x.name, x.args, x.result, x.error]), [
    ["a", '{"x":1}', "", "timed out"],
    ["b", "{}", "ok", null],
  ]);
  assert.deepEqual(toolExchanges([{ role: "MESSAGE_ROLE_TOOL_CALL", toolName: "c", text: "{}" }])[0].result, null);
});

test("the default tools JSON declares exactly the client tools the page implements", () => {
  const declared = demoSelectedTools().map((entry) => entry.temporaryTool.modelToolName);
  assert.deepEqual(declared, Object.keys(DEMO_IMPLEMENTATIONS));
  assert.deepEqual(declared, ["getWeather", "getTime", "rollDice"]);
  for (const entry of demoSelectedTools()) assert.deepEqual(entry.temporaryTool.client, {});
  assert.equal(DEMO_IMPLEMENTATIONS.getWeather({ city: "Oslo" }), JSON.stringify({ city: "Oslo", temp_c: 13, condition: "drizzle" }));
  const roll = Number(DEMO_IMPLEMENTATIONS.rollDice({ sides: 4 }));
  assert.ok(roll >= 1 && roll <= 4);
  assert.equal(DEMO_TOOLS.length, 3);
});
