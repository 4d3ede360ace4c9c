"""Tool rounds of a call: the model's tool calls (and `forced_agent_message.toolCalls`), run in order.

A round is uninterruptible (PROTOCOL.md 2.5). Each result goes into the history as a tool
message; `updateCallState` merges into the call state; the outcome's control (`HangUp`,
`NewStage`) acts on the call; the agent reaction (`speaks`, `listens`, `speaks-once`) decides
whether the model is asked again.
"""

from __future__ import annotations

from typing import Any

from voxcall.engine.history import History
from voxcall.engine.spec import CallSpec
from voxcall.engine.tool_params import ToolContext
from voxcall.engine.tools import HangUp as ToolHangUp
from voxcall.engine.tools import NewStage, ToolRunner
from voxcall.providers.base import ChatMessage, ToolCall

__all__ = ["ToolRoundMixin"]


class ToolRoundMixin:
    """The tool-round part of `Call`: its state is set up in `Call.__init__`; `_debug` is `Call`'s,
    `_agent_hang_up` the agenda mixin's."""

    spec: CallSpec
    call_state: dict[str, Any]
    _h: History
    _tools: ToolRunner
    _interruptible: bool
    _end_reason: str | None

    async def _tool_round(self, calls: list[ToolCall], *, spoke: bool) -> bool:
        """Run one round of tool calls, uninterruptible (PROTOCOL.md 2.5); True if the agent speaks next."""
        self._interruptible = False
        await self._debug(f"LLM response: Tool calls: {[(c.name, c.arguments) for c in calls]}")
        reaction = "speaks"
        for call in calls:
            reaction = await self._run_tool(call)
            if self._end_reason is not None or reaction == "hang-up":
                return False
        self._interruptible = True
        return not (reaction == "listens" or (reaction == "speaks-once" and spoke))

    async def _run_tool(self, call: ToolCall) -> str:
        """Run one tool call and put its result into the history; returns the agent reaction."""
        outcome = await self._tools.run(call, self._tool_context())
        if outcome.update_call_state is not None:
            self.call_state = {**self.call_state, **outcome.update_call_state}
        await self._h.tool_result(ChatMessage("tool", outcome.result, tool_call_id=call.id, name=call.name),
                                  error=outcome.error,
                                  state=dict(self.call_state) if outcome.update_call_state is not None else None)
        await self._debug(f"Tool call complete. Result: {outcome.result}")
        for note in outcome.notes:
            await self._debug(f"Tool {call.name}: {note}")
        if isinstance(outcome.control, ToolHangUp):
            self._agent_hang_up(outcome.control)
            return "hang-up"
        if isinstance(outcome.control, NewStage):
            # Call stages are not implemented yet: the body is used as a plain tool result.
            await self._debug(f"Tool {call.name} asked for a new stage; call stages are not supported yet")
        return outcome.reaction

    def _tool_context(self) -> ToolContext:
        spec = self.spec
        return ToolContext(call_id=spec.call_id, call_stage_id=spec.call_stage_id or spec.call_id,
                           call_state=dict(self.call_state), metadata=dict(spec.metadata),
                           output_sample_rate=spec.voice.output_rate, history=tuple(self._h.entries))
