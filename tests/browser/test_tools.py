"""A client tool registered in the page's JavaScript answers the agent (Qwen2.5-1.5B, which calls tools)."""

from __future__ import annotations

import json

from tests.browser.conftest import PageFor
from tests.browser.playground import sign_in, start_call, wait_final
from tests.conftest import RunningServer

PROMPT = "You are a helpful voice assistant. Keep answers short."


async def test_a_js_client_tool_is_invoked_and_its_result_changes_the_answer(qwen_server: RunningServer, page_for: PageFor) -> None:
    p = await page_for(qwen_server)
    await sign_in(p)
    await start_call(p, prompt=PROMPT, medium="text")  # the form's default tools: the getWeather client tool
    page = p.page
    await page.get_by_label("Message").fill("What's the weather in Paris?")
    await page.get_by_label("Message").press("Enter")
    logged = page.locator('#tool-log li[data-tool="getWeather"]')
    await logged.wait_for(timeout=120_000)
    answer = await wait_final(p, "agent", timeout=120_000)
    invocation = p.of("received", "client_tool_invocation")[0]
    assert invocation["toolName"] == "getWeather" and invocation["parameters"]["city"].lower() == "paris"
    result = p.of("sent", "client_tool_result")[0]
    assert result == {"type": "client_tool_result", "invocationId": invocation["invocationId"],
                      "result": json.dumps({"city": invocation["parameters"]["city"], "temp_c": 13, "condition": "drizzle"},
                                           separators=(",", ":"))}
    # The page's fixed weather (13 degrees, drizzle) is nothing the model could guess.
    assert "13" in answer["text"] or "drizzle" in answer["text"].lower(), answer["text"] + p.debug()
    await p.shot("03-client-tool")
