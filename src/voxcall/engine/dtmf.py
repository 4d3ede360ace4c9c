"""Key presses into the conversation: consecutive DTMF digits batched into one user text message.

`medium.<carrier>.dtmfHandling` (OpenAPI `CallMedium_DtmfHandling`): by default the digits
arrive as a user text message holding just the digits, urgency immediate, and "consecutive
DTMF digits are batched together with a short delay before being dispatched". `ignore`
drops them; `userTextMessage` sets the text template (`{digits}`) and the urgency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from voxcall.engine.spec import DtmfSpec
from voxcall.protocol.realtime import UserTextMessage

__all__ = ["DtmfBatcher"]


class DtmfBatcher:
    """Collects digits; `batch_delay` after the last one, posts them as one `UserTextMessage`."""

    def __init__(self, spec: DtmfSpec, post: Callable[[UserTextMessage], None]) -> None:
        self._spec = spec
        self._post = post
        self._digits = ""
        self._timer: asyncio.TimerHandle | None = None

    def press(self, digit: str) -> None:
        """One key; restarts the batching delay. Never blocks."""
        if self._spec.ignore:
            return
        self._digits += digit
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._spec.batch_delay, self._flush)

    def _flush(self) -> None:
        digits, self._digits, self._timer = self._digits, "", None
        if digits:
            text = (self._spec.template or "{digits}").replace("{digits}", digits)
            self._post(UserTextMessage(text=text, urgency=self._spec.urgency))

    def close(self) -> None:
        """Drop digits not yet dispatched (the call is ending)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._digits = None, ""
