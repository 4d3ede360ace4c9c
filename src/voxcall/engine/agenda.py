"""The call loop's values and its agenda: what the agent does next, one action at a time.

`Generate` and `Say` are agent actions; the other values are events the call posts to its own
inbox (a finished action, a timer, an end from outside, a voice turn, a heard transcript).
`AgendaMixin` holds the scheduling part of `Call`: start the next action when nothing runs,
settle a finished one, interrupt (barge-in is `task.cancel()`), stop the running one when
the call ends, queue replies, and the inactivity messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxcall.engine.history import History
from voxcall.engine.inactivity import Inactivity
from voxcall.engine.latency import TurnTiming
from voxcall.engine.tools import HangUp as ToolHangUp
from voxcall.engine.voice_in import VoiceInput
from voxcall.providers.base import ChatMessage, ToolCall

__all__ = ["Action", "AgendaMixin", "End", "Finished", "Generate", "Heard", "Say", "Timer", "Turn"]


@dataclass(frozen=True, slots=True)
class Generate:
    instruction: str | None = None
    offer_tools: bool = True
    reply: bool = False  # answers user text: skipped if a later reply already answered it


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    uninterruptible: bool = False
    end_reason: str | None = None
    inactivity: str | None = None  # "soft" / "strict": may end the call after it is said
    tool_calls: tuple[ToolCall, ...] = ()  # forced_agent_message.toolCalls: run after the text is said


@dataclass(frozen=True, slots=True)
class End:
    reason: str


@dataclass(frozen=True, slots=True)
class Timer:
    name: str


@dataclass(frozen=True, slots=True)
class Finished:
    task: asyncio.Task[Any]


@dataclass(frozen=True, slots=True)
class Turn:
    event: object
    at: float


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    timing: TurnTiming


Action = Generate | Say


class AgendaMixin:
    """The agenda part of `Call`: its state is set up in `Call.__init__`; `_say`, `_generate`,
    `_prefill` and `_set_state` are `Call`'s (from its reply mixin and itself)."""

    _h: History
    _state: str | None
    _voice_in: VoiceInput | None
    _agenda: deque[Action]
    _current: asyncio.Task[None] | None
    _current_action: Action | None
    _interruptible: bool
    _end_reason: str | None
    _cutting: str | None
    _answered_upto: int
    _inactivity: Inactivity
    _inbox: asyncio.Queue[Any]

    if TYPE_CHECKING:  # Call's, from its other parts
        _prefill: Callable[..., None]
        _set_state: Callable[[str], Awaitable[None]]
        _say: Callable[[Say], Coroutine[Any, Any, None]]
        _generate: Callable[[Generate], Coroutine[Any, Any, None]]

    async def _drive(self) -> None:
        """Start the next agent action when nothing is running."""
        if self._current is not None or self._end_reason is not None:
            return
        await self._h.release(force=True)  # nothing runs: no tool round is still open
        while self._agenda and isinstance(self._agenda[0], Generate) and self._agenda[0].reply \
                and self._h.last_user_at < self._answered_upto:
            self._agenda.popleft()  # that user text was already answered
        if not self._agenda:
            if self._state != "listening":
                self._prefill(ChatMessage("user", ""), open_end=True)  # up to the user's words to come
            await self._set_state("listening")
            self._inactivity.arm()
            return
        self._inactivity.cancel()
        action = self._agenda.popleft()
        self._current_action = action
        self._interruptible = not (isinstance(action, Say) and action.uninterruptible)
        coro = self._say(action) if isinstance(action, Say) else self._generate(action)
        task = asyncio.create_task(coro)
        task.add_done_callback(lambda t: self._inbox.put_nowait(Finished(t)))
        self._current = task

    async def _finished(self, task: asyncio.Task[None]) -> None:
        if task is not self._current:
            return
        action, self._current, self._current_action = self._current_action, None, None
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        if isinstance(action, Say) and not task.cancelled():
            if action.end_reason:
                self._end_reason = action.end_reason
            elif action.inactivity == "strict" or (action.inactivity == "soft" and not self._inactivity.active_since_message):
                self._end_reason = "agent_hangup"

    def _interrupt(self) -> None:
        if self._current is not None and self._interruptible:
            self._current.cancel()

    async def _stop_current(self, cause: str) -> None:
        """Cancel the running action because the call is ending; a reply it cuts off is stored as interrupted by `cause`."""
        task = self._current
        if task is None:
            return
        self._cutting = cause
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(5):
                await asyncio.shield(task)
        self._cutting = None
        self._current = None
        self._current_action = None

    def _want_reply(self, to_user: bool = True) -> None:
        """Queue one reply; a reply to user text is dropped if a later reply has seen that text by then."""
        for i, action in enumerate(self._agenda):
            if isinstance(action, Generate):
                if action.reply and not to_user:
                    self._agenda[i] = Generate()
                return
        self._agenda.append(Generate(reply=to_user))

    def _agent_hang_up(self, hang_up: ToolHangUp) -> None:
        self._agenda.clear()
        if hang_up.message:
            self._agenda.append(Say(hang_up.message, True, end_reason="agent_hangup"))
        else:
            self._end_reason = "agent_hangup"

    # ------------------------------------------------------------ inactivity

    def _activity(self) -> None:
        """The user did something: restart the inactivity sequence."""
        self._inactivity.activity()

    def _inactivity_due(self) -> None:
        voice_in = self._voice_in
        if self._current is not None or self._agenda or (voice_in is not None and voice_in.in_speech):
            self._inactivity.cancel()
            return
        message = self._inactivity.take()
        if message is not None:
            behavior = message.end_behavior if message.end_behavior != "none" else None
            self._agenda.append(Say(message.message, inactivity=behavior))
