"""Inactivity messages (PROTOCOL.md 1.5.2 `inactivityMessages`): said after the user has been quiet.

Durations are cumulative: message m is due its own duration after message m-1.
Any user activity restarts the sequence. A message with an end behaviour may end
the call once said: STRICT always, SOFT unless the user did something meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from voxcall.engine.spec import InactivityMessage

__all__ = ["Inactivity"]


class Inactivity:
    def __init__(self, messages: tuple[InactivityMessage, ...], due: Callable[[], None]) -> None:
        self._messages = messages
        self._due = due
        self._index = 0
        self._timer: asyncio.TimerHandle | None = None
        self.active_since_message = False

    def activity(self) -> None:
        """The user did something: start over."""
        self._index = 0
        self.active_since_message = True
        self.cancel()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def arm(self) -> None:
        """The agent is listening: count down to the next message (if any is left)."""
        if self._timer is None and self._index < len(self._messages):
            self._timer = asyncio.get_running_loop().call_later(self._messages[self._index].duration, self._due)

    def take(self) -> InactivityMessage | None:
        """The message that is due now (the timer fired), moving on to the next."""
        self._timer = None
        if self._index >= len(self._messages):
            return None
        message = self._messages[self._index]
        self._index += 1
        self.active_since_message = False
        return message
