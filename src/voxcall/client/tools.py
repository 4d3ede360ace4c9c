"""Client tool implementations and the `client_tool_result` each return kind becomes (PROTOCOL.md 2.8, 4.1).

An implementation takes the invocation's `parameters` dict and returns (or,
if async, resolves to) one of:

- `str` -> `{result, responseType: "tool-response", agentReaction: "speaks"}`
- `(result, response_type)` -> the same with that response type
- `ClientToolResult(...)` -> every field it sets

An unknown tool answers `errorType: "undefined"`, a raised exception (or a
return value of another type) `errorType: "implementation-error"`, both with
an `errorMessage`, as the official Python SDK does. Unlike that SDK, a null
`updateCallState` is left out rather than sent as `null` (same meaning).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from voxcall.protocol.realtime import ClientToolInvocation
from voxcall.protocol.realtime import ClientToolResult as ToolResultMessage

__all__ = ["ClientToolImplementation", "ClientToolResult", "error_result", "result_message", "run_tool"]

logger = logging.getLogger(__name__)

AgentReaction = Literal["speaks", "listens", "speaks-once"]


@dataclass(frozen=True, kw_only=True)
class ClientToolResult:
    """A tool's full answer (the official SDK's `ClientToolResult`)."""

    result: str
    response_type: str = "tool-response"
    agent_reaction: AgentReaction = "speaks"
    update_call_state: dict[str, Any] | None = None


ToolReturn = str | tuple[str, str] | ClientToolResult
ClientToolImplementation = Callable[[dict[str, Any]], ToolReturn | Awaitable[ToolReturn]]


def result_message(invocation_id: str, value: object) -> ToolResultMessage:
    """The `client_tool_result` for what an implementation returned.

    Raises:
        TypeError: `value` is not a str, a 2-tuple of str or a `ClientToolResult`.
    """
    if isinstance(value, str):
        value = ClientToolResult(result=value)
    elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        value = ClientToolResult(result=value[0], response_type=value[1])
    if not isinstance(value, ClientToolResult):
        raise TypeError(
            f"returned {type(value).__name__}; expected a str, a (result, response_type) tuple or a ClientToolResult"
        )
    return ToolResultMessage(
        invocation_id=invocation_id,
        result=value.result,
        response_type=value.response_type,
        agent_reaction=value.agent_reaction,
        update_call_state=value.update_call_state,
    )


def error_result(invocation_id: str, error_type: str, message: str) -> ToolResultMessage:
    """An error answer: `error_type` is "undefined" or "implementation-error"."""
    return ToolResultMessage(invocation_id=invocation_id, error_type=error_type, error_message=message)


async def run_tool(
    implementations: Mapping[str, ClientToolImplementation], invocation: ClientToolInvocation
) -> ToolResultMessage:
    """Run the implementation registered for `invocation.tool_name` and build its answer; never raises
    (except `CancelledError`, which propagates so that leaving a call stops its tools)."""
    name, invocation_id = invocation.tool_name, invocation.invocation_id
    impl = implementations.get(name)
    if impl is None:
        return error_result(invocation_id, "undefined", f"Client tool {name} is not registered (Python client)")
    try:
        value: Any = impl(dict(invocation.parameters))
        if inspect.isawaitable(value):
            value = await value
        return result_message(invocation_id, value)
    except Exception as exc:  # a tool's failure goes back to the model, not up the stack
        logger.warning("client tool %s failed: %r", name, exc)
        return error_result(invocation_id, "implementation-error", str(exc))
