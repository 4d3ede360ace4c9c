"""Tool rounds of a call: the model's tool calls (and `forced_agent_message.toolCalls`), run in order.

A round is uninterruptible (PROTOCOL.md 2.5). Each result goes into the history as a tool
message; `updateCallState` merges into the call state; the outcome's control (`HangUp`,
`NewStage`) acts on the call; the agent reaction (`speaks`, `listens`, `speaks-once`) decides
whether the model is asked again.

A `new-stage` result (see `stages.py`) is checked and resolved first: a problem becomes a tool
failure the model can speak about and the call stays in its stage. Otherwise the tool result
(`toolResultText`) is recorded in the old stage, and the call moves on: new stage id, system
prompt, temperature, voice, language, tools and history; the rest of the round is not run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from voxcall.engine.hearing import Hearing
from voxcall.engine.history import History
from voxcall.engine.spec import CallSpec
from voxcall.engine.stages import (
    ResolvedStage,
    StageError,
    StageRecord,
    StageRequest,
    StageResolver,
    chat_history,
    new_stage_id,
)
from voxcall.engine.tool_params import ToolContext
from voxcall.engine.tools import HangUp as ToolHangUp
from voxcall.engine.tools import NewStage, ToolOutcome, ToolRunner
from voxcall.engine.voice_out import VoiceOutput
from voxcall.providers.base import ChatMessage, ToolCall

__all__ = ["UNRUN", "ToolRoundMixin"]

UNRUN = "Not run: the call moved to a new stage."


class ToolRoundMixin:
    """The tool-round part of `Call`: its state is set up in `Call.__init__`; `_debug` and `_event` are
    `Call`'s, `_agent_hang_up` the agenda mixin's."""

    spec: CallSpec
    call_state: dict[str, Any]
    _h: History
    _tools: ToolRunner
    _interruptible: bool
    _end_reason: str | None
    _answered_upto: int
    _stages: StageResolver | None
    _stage_settings: dict[str, Any]
    _voice_out: VoiceOutput | None
    _hearing: Hearing | None
    _log: logging.Logger | logging.LoggerAdapter[logging.Logger]

    if TYPE_CHECKING:  # Call's, from its other parts
        _debug: Callable[[str], Awaitable[None]]
        _event: Callable[..., None]
        _agent_hang_up: Callable[[ToolHangUp], None]

    async def _tool_round(self, calls: list[ToolCall], *, spoke: bool) -> bool:
        """Run one round of tool calls, uninterruptible (PROTOCOL.md 2.5); True if the agent speaks next."""
        self._interruptible = False
        await self._debug(f"LLM response: Tool calls: {[(c.name, c.arguments) for c in calls]}")
        reaction = "speaks"
        stage = self._h.stage_id
        for call in calls:
            reaction = await self._run_tool(call)
            if self._end_reason is not None or reaction == "hang-up":
                return False
            if self._h.stage_id != stage:
                break  # the rest of the round was the old stage's (recorded as not run)
        self._interruptible = True
        return not (reaction == "listens" or (reaction == "speaks-once" and spoke))

    async def _run_tool(self, call: ToolCall) -> str:
        """Run one tool call and put its result into the history; returns the agent reaction."""
        outcome = await self._tools.run(call, self._tool_context())
        stage: tuple[StageRequest, ResolvedStage] | None = None
        if isinstance(outcome.control, NewStage):
            outcome, stage = await self._prepare_stage(call, outcome, outcome.control)
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
        if stage is not None:
            await self._enter_stage(*stage)
        return outcome.reaction

    def _tool_context(self) -> ToolContext:
        spec = self.spec
        return ToolContext(call_id=spec.call_id, call_stage_id=self._h.stage_id or spec.call_id,
                           call_state=dict(self.call_state), metadata=dict(spec.metadata),
                           output_sample_rate=spec.voice.output_rate, history=tuple(self._h.entries))

    # ------------------------------------------------------------ stages

    async def _prepare_stage(self, call: ToolCall, outcome: ToolOutcome,
                             control: NewStage) -> tuple[ToolOutcome, tuple[StageRequest, ResolvedStage] | None]:
        """Check and resolve a new-stage result: the outcome to record, and the stage to enter (None: a failure)."""
        try:
            if control.request is None:
                raise StageError(control.problem or "invalid new-stage result")
            request = control.request
            resolved = await self._resolve_stage(request)
        except StageError as exc:
            self._log.info("tool %s: no new stage: %s", call.name, exc)
            failed = ToolOutcome(f"The tool {call.name} could not start a new call stage: {exc}", reaction=outcome.reaction,
                                 error=f"new-stage refused: {exc}", update_call_state=outcome.update_call_state,
                                 notes=outcome.notes)
            return failed, None
        return replace(outcome, result=request.tool_result_text, control=None), (request, resolved)

    async def _resolve_stage(self, request: StageRequest) -> ResolvedStage:
        if self._stages is not None:
            try:
                return await self._stages.resolve(request)
            except StageError:
                raise
            except Exception as exc:  # a failing resolver (e.g. the tool store) must not end the call
                self._log.exception("could not resolve a new call stage")
                raise StageError(f"the server could not resolve the stage ({type(exc).__name__})") from exc
        if request.selected_tools is not None:
            raise StageError("this call cannot change its tools (selectedTools)")
        return ResolvedStage(voice=request.changes.get("voice"))

    async def _enter_stage(self, request: StageRequest, resolved: ResolvedStage) -> None:
        changes = {k: v for k, v in request.changes.items() if k != "selectedTools"}
        self._stage_settings = {**self._stage_settings, **changes}
        spec, voice = self.spec, self.spec.voice
        if "languageHint" in changes:
            voice = replace(voice, language=str(changes["languageHint"]).split("-")[0].lower())
        if resolved.voice is not None:
            voice = replace(voice, voice=resolved.voice)
        self.spec = replace(spec, system_prompt=changes.get("systemPrompt", spec.system_prompt),
                            temperature=changes.get("temperature", spec.temperature),
                            tools=resolved.tools if resolved.tools is not None else spec.tools, voice=voice)
        self._tools.set_tools(self.spec.tools)
        if self._voice_out is not None:
            self._voice_out.voice = voice.voice
        if self._hearing is not None:
            self._hearing.language = voice.language
        record = StageRecord(new_stage_id(), settings=dict(self._stage_settings), tools=resolved.tool_entries,
                             initial_messages=request.initial_messages)
        entries = chat_history(request.initial_messages) if request.initial_messages is not None else None
        await self._h.start_stage(record, entries, UNRUN)
        if entries is not None:
            self._answered_upto = 0
        self.spec = replace(self.spec, call_stage_id=record.call_stage_id)
        self._event("call_stage", "New call stage", "info", {"callStageId": record.call_stage_id})
        await self._debug(f"New call stage {record.call_stage_id}")
