// Client tool results (PROTOCOL.md 3.6 and 2.8).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AgentReaction,
  BAD_RETURN_MESSAGE,
  runClientTool,
  toolErrorResult,
  toolReturnResult,
  unknownToolResult,
} from "../../src/voxcall/server/static/ultravox-core.js";

const invocation = (toolName, parameters = {}) => ({ type: "client_tool_invocation", toolName, invocationId: "call_8Yx", parameters });

test("a string return is sent as result, with no responseType (the server defaults it)", async () => {
  const tools = new Map([["getWeather", ({ city }) => JSON.stringify({ city, tempC: 3 })]]);
  assert.deepEqual(await runClientTool(tools, invocation("getWeather", { city: "Oslo" })), {
    type: "client_tool_result",
    invocationId: "call_8Yx",
    result: '{"city":"Oslo","tempC":3}',
  });
});

test("an object return is spread into the message: responseType, agentReaction, updateCallState pass through", async () => {
  const value = { result: '{"strict":true}', responseType: "hang-up", agentReaction: AgentReaction.SPEAKS_ONCE, updateCallState: { n: 1 } };
  const tools = new Map([["end", async () => value]]);
  assert.deepEqual(await runClientTool(tools, invocation("end")), {
    type: "client_tool_result",
    invocationId: "call_8Yx",
    result: '{"strict":true}',
    responseType: "hang-up",
    agentReaction: "speaks-once",
    updateCallState: { n: 1 },
  });
});

test("an object cannot override the message type or the invocation id", () => {
  assert.deepEqual(toolReturnResult("id1", { result: "ok", type: "hang_up", invocationId: "other" }), {
    type: "client_tool_result",
    invocationId: "id1",
    result: "ok",
  });
});

test("an unknown tool gets errorType undefined with this client's name", async () => {
  const message = await runClientTool(new Map(), invocation("nope"));
  assert.deepEqual(message, unknownToolResult("call_8Yx", "nope"));
  assert.deepEqual(message, {
    type: "client_tool_result",
    invocationId: "call_8Yx",
    errorType: "undefined",
    errorMessage: "Client tool nope is not registered (voxcall web client)",
  });
});

test("a thrown error or a rejected promise is an implementation-error with the error's message", async () => {
  const tools = new Map([
    ["boom", () => {
      throw new Error("boom");
    }],
    ["rejects", async () => Promise.reject(new TypeError("bad city"))],
    ["throwsString", () => {
      throw "not an Error";
    }],
  ]);
  assert.deepEqual(await runClientTool(tools, invocation("boom")), {
    type: "client_tool_result", invocationId: "call_8Yx", errorType: "implementation-error", errorMessage: "boom",
  });
  assert.equal((await runClientTool(tools, invocation("rejects"))).errorMessage, "bad city");
  assert.deepEqual(await runClientTool(tools, invocation("throwsString")), toolErrorResult("call_8Yx", "not an Error"));
  assert.equal("errorMessage" in toolErrorResult("x", 42), false);
});

test("a return that is neither a string nor an object with a string result is an implementation-error", () => {
  for (const bad of [undefined, null, 42, { result: 1 }, { responseType: "tool-response" }, { result: "x", responseType: 5 }]) {
    assert.deepEqual(toolReturnResult("id", bad), {
      type: "client_tool_result", invocationId: "id", errorType: "implementation-error", errorMessage: BAD_RETURN_MESSAGE,
    });
  }
});

test("the parameters reach the implementation; missing parameters arrive as {}", async () => {
  const seen = [];
  const tools = new Map([["t", (p) => (seen.push(p), "ok")]]);
  await runClientTool(tools, { toolName: "t", invocationId: "1" });
  await runClientTool(tools, invocation("t", { a: 1 }));
  assert.deepEqual(seen, [{}, { a: 1 }]);
});
