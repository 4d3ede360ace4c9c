"""The `client_tool_result` each kind of tool return becomes (sync tests of pure code, plus run_tool)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voxcall.client.tools import (
    ClientToolResult,
    error_result,
    result_message,
    run_tool,
)
from voxcall.protocol.realtime import ClientToolInvocation, dump


def wire(value: object) -> dict[str, Any]:
    return result_message("inv-1", value).wire()


def test_string_result() -> None:
    assert wire('{"tempC":3}') == {
        "type": "client_tool_result",
        "invocationId": "inv-1",
        "result": '{"tempC":3}',
        "responseType": "tool-response",
        "agentReaction": "speaks",
    }


def test_tuple_result_sets_the_response_type() -> None:
    assert wire(('{"strict": true}', "hang-up")) == {
        "type": "client_tool_result",
        "invocationId": "inv-1",
        "result": '{"strict": true}',
        "responseType": "hang-up",
        "agentReaction": "speaks",
    }


def test_client_tool_result_with_every_field() -> None:
    value = ClientToolResult(
        result="ok", response_type="new-stage", agent_reaction="listens", update_call_state={"step": 2}
    )
    assert wire(value) == {
        "type": "client_tool_result",
        "invocationId": "inv-1",
        "result": "ok",
        "responseType": "new-stage",
        "agentReaction": "listens",
        "updateCallState": {"step": 2},
    }


def test_client_tool_result_defaults() -> None:
    assert wire(ClientToolResult(result="ok")) == wire("ok")


@pytest.mark.parametrize("value", [None, 3, {"result": "x"}, ("a",), ("a", "b", "c"), ("a", 1)])
def test_other_return_types_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="expected a str"):
        result_message("inv-1", value)


def test_error_result_shape() -> None:
    assert dump(error_result("inv-1", "undefined", "nope")) == (
        '{"type":"client_tool_result","invocationId":"inv-1","errorType":"undefined","errorMessage":"nope"}'
    )


def invocation(name: str = "getWeather", **parameters: Any) -> ClientToolInvocation:
    return ClientToolInvocation(tool_name=name, invocation_id="inv-1", parameters=parameters)


async def test_run_tool_sync_and_async_implementations() -> None:
    async def slow(params: dict[str, Any]) -> tuple[str, str]:
        await asyncio.sleep(0)
        return params["city"], "tool-response"

    tools = {"sync": lambda p: f"{p['city']}: sunny", "async": slow}
    assert (await run_tool(tools, invocation("sync", city="Oslo"))).result == "Oslo: sunny"
    assert (await run_tool(tools, invocation("async", city="Rome"))).result == "Rome"


async def test_run_tool_unknown_tool() -> None:
    result = await run_tool({}, invocation("getWeather"))
    assert result.wire() == {
        "type": "client_tool_result",
        "invocationId": "inv-1",
        "errorType": "undefined",
        "errorMessage": "Client tool getWeather is not registered (Python client)",
    }


async def test_run_tool_exception_and_bad_return() -> None:
    def boom(params: dict[str, Any]) -> str:
        raise ValueError("boom")

    result = await run_tool({"getWeather": boom}, invocation())
    assert (result.error_type, result.error_message, result.result) == ("implementation-error", "boom", None)
    bad = await run_tool({"getWeather": lambda p: 42}, invocation())
    assert bad.error_type == "implementation-error" and "int" in (bad.error_message or "")


async def test_run_tool_gets_a_copy_of_the_parameters() -> None:
    message = invocation(city="Oslo")
    await run_tool({"getWeather": lambda p: p.pop("city")}, message)
    assert message.parameters == {"city": "Oslo"}
