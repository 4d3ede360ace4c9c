"""DTMF: key presses into the conversation (batched into one user text message), and the built-in
playDtmfSounds out of it.

`medium.<carrier>.dtmfHandling` (OpenAPI `CallMedium_DtmfHandling`): by default the digits
arrive as a user text message holding just the digits, urgency immediate, and "consecutive
DTMF digits are batched together with a short delay before being dispatched". `ignore`
drops them; `userTextMessage` sets the text template (`{digits}`) and the urgency.

`playDtmfSounds` (a `ToolExecutor` for the `play_dtmf` kind) sends `SendDtmf` where the call's
medium can play DTMF (Plivo's `sendDTMF`), and otherwise tells the model it cannot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from voxcall.engine.spec import DtmfSpec, ToolDef
from voxcall.engine.tools import ToolContext, ToolOutcome, failure
from voxcall.protocol.realtime import UserTextMessage
from voxcall.protocol.telephony.events import DTMF_DIGITS, SendDtmf
from voxcall.providers.base import ToolCall

__all__ = ["DtmfBatcher", "PlayDtmfExecutor"]


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


class PlayDtmfExecutor:
    """The built-in playDtmfSounds: out-of-band DTMF where the medium can send it, else say it cannot."""

    def __init__(self, send: Callable[[BaseModel], Awaitable[None]], enabled: bool) -> None:
        self._send = send
        self._enabled = enabled

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        digits = str(call.arguments.get("digits", "")).replace(" ", "").upper()
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            return failure(call, "Give the digits to press as 0-9, *, # or A-D.", f"bad digits {digits!r}", tool)
        if not self._enabled:
            return failure(call, "This call cannot send DTMF tones: its connection has no way to play them.",
                           "the call's medium cannot send DTMF", tool)
        await self._send(SendDtmf(digits=digits))
        return ToolOutcome(f"Pressed {digits}.", reaction=tool.default_reaction)
