"""`RealtimeClient`: the low-level join-URL client (the C# seed's UltravoxRealtimeClient).

A thin asyncio layer over the sans-I/O `ClientConnection` (STYLE.md rule 1):
frames read from `websockets` go into the connection, typed events come out;
`send_*` methods queue client messages and write the frames it hands back.
Every `websockets` failure is translated to `voxcall.errors.ConnectionClosed`
in `_translate()` (rule 2), the only place that knows websockets' exceptions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection as _WebSocket
from websockets.asyncio.client import connect as _ws_connect
from websockets.exceptions import ConnectionClosed as _WsClosed
from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException

from voxcall.errors import ConnectionClosed
from voxcall.protocol.connection import AudioIn, BadMessage, ClientConnection
from voxcall.protocol.realtime import (
    CallStarted,
    ClientToolInvocation,
    ClientToolResult,
    Debug,
    ForcedAgentMessage,
    HangUp,
    InputTextMessage,
    Ping,
    PlaybackClearBuffer,
    Pong,
    SetOutputMedium,
    State,
    Transcript,
    UnknownMessage,
    UserTextMessage,
)

__all__ = ["ABNORMAL_CLOSURE", "MAX_MESSAGE_SIZE", "RealtimeClient", "RealtimeEvent", "with_query"]

MAX_MESSAGE_SIZE = 4 * 1024 * 1024
"""Largest inbound frame; big enough for a second of 48 kHz audio and any data message."""

ABNORMAL_CLOSURE = 1006
"""The close code reported when there was no closing handshake (RFC 6455 7.4.1)."""

RealtimeEvent = (
    CallStarted
    | State
    | Transcript
    | ClientToolInvocation
    | Pong
    | PlaybackClearBuffer
    | Debug
    | UnknownMessage
    | AudioIn
)
"""What `RealtimeClient.receive_events` yields."""


def with_query(url: str, params: Mapping[str, str]) -> str:
    """Add query parameters to an opaque join URL (PROTOCOL.md 2.1).

    Existing parameters are kept byte for byte, repeated keys and empty values
    included, except that a key set here replaces every earlier value of that
    key (as the JS and Python SDKs do), so the server never sees it twice.
    """
    if not params:
        return url
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and unquote_plus(p.split("=", 1)[0]) not in params]
    added = [f"{quote(k, safe='')}={quote(v, safe=',:')}" for k, v in params.items()]
    return urlunsplit(parts._replace(query="&".join(kept + added)))


@contextlib.contextmanager
def _translate(action: str) -> Iterator[None]:
    """Turn websockets' and the network's exceptions into `ConnectionClosed`."""
    try:
        yield
    except _WsClosed as exc:
        frame = exc.rcvd or exc.sent
        code = frame.code if frame else ABNORMAL_CLOSURE
        raise ConnectionClosed(code, frame.reason if frame else f"{action}: connection lost") from exc
    except InvalidURI as exc:
        raise ValueError(f"not a WebSocket URL: {exc.uri!r}") from exc
    except InvalidStatus as exc:
        body = exc.response.body.decode("utf-8", "replace")[:200] if exc.response.body else ""
        reason = f"{action}: HTTP {exc.response.status_code} {body}".rstrip()
        raise ConnectionClosed(ABNORMAL_CLOSURE, reason) from exc
    except (WebSocketException, OSError, TimeoutError) as exc:
        raise ConnectionClosed(ABNORMAL_CLOSURE, f"{action}: {exc!r}") from exc


class RealtimeClient:
    """One realtime session on a call's `joinUrl` (serverWebSocket medium).

    Use it as `async with RealtimeClient() as rt: await rt.connect(url); ...`.

    Args:
        logger: a per-connection logger (e.g. a LoggerAdapter with the call id).
        open_timeout: seconds allowed for the opening handshake.
        close_timeout: seconds to wait for the server's half of the closing handshake.
        max_size: largest inbound frame in bytes (at least 1 MiB).
    """

    def __init__(
        self,
        *,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        open_timeout: float | None = 10,
        close_timeout: float | None = 10,
        max_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        self.log = logger if logger is not None else logging.getLogger(__name__)
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.max_size = max(max_size, 1024 * 1024)
        self._conn = ClientConnection()
        self._ws: _WebSocket | None = None
        self.url: str | None = None

    async def __aenter__(self) -> RealtimeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ lifecycle

    async def connect(
        self,
        join_url: str,
        *,
        api_version: int | str | None = None,
        client_version: str | None = None,
        experimental_messages: Iterable[str] | None = None,
    ) -> None:
        """Open the WebSocket. Query parameters are added only for the arguments given.

        `experimental_messages` is sent comma-separated, even when empty
        (`experimentalMessages=`), as the JS SDK does.

        Raises:
            ConnectionClosed: the connection could not be opened (code 1006;
                the reason names the HTTP status when the server refused the upgrade).
            ValueError: `join_url` is not a ws:// or wss:// URL.
            RuntimeError: already connected.
        """
        if self._ws is not None:
            raise RuntimeError("already connected; use a new RealtimeClient for another call")
        params: dict[str, str] = {}
        if api_version is not None:
            params["apiVersion"] = str(api_version)
        if client_version is not None:
            params["clientVersion"] = client_version
        if experimental_messages is not None:
            params["experimentalMessages"] = ",".join(experimental_messages)
        self.url = with_query(join_url, params)
        with _translate("connect"):
            self._ws = await _ws_connect(
                self.url,
                max_size=self.max_size,
                open_timeout=self.open_timeout,
                close_timeout=self.close_timeout,
                compression=None,  # PCM does not deflate well; it would only cost CPU per frame
            )
        self.log.debug("connected to %s", urlsplit(self.url)._replace(query="").geturl())  # the query may hold tokens

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (a normal closure ends the call); does nothing if not open.

        Cancellation-safe: if cancelled, websockets still tears the TCP connection down.
        """
        if self._ws is not None:
            await self._ws.close(code, reason)

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._ws is not None and self._ws.close_code is None

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code once closed (1006 when the connection was lost), else None."""
        return None if self._ws is None else self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason once closed, else None."""
        return None if self._ws is None else self._ws.close_reason

    # ------------------------------------------------------------ receiving

    async def receive_events(self) -> AsyncIterator[RealtimeEvent]:
        """Yield server messages as typed models, and agent audio as `AudioIn`, until the socket closes.

        Unknown message types come as `UnknownMessage`; malformed ones are
        logged and skipped. The iteration ends normally when the connection
        closes, whoever closed it; read `close_code` afterwards. Only one
        consumer may iterate at a time. Cancellation-safe: no frame is lost
        between `receive_events` calls, since each frame is parsed as soon as read.
        """
        ws = self._require()
        while True:
            try:
                frame = await ws.recv()
            except _WsClosed:
                self.log.debug("connection closed: %s %s", ws.close_code, ws.close_reason)
                return
            if isinstance(frame, str):
                self._conn.receive_text(frame)
            else:
                self._conn.receive_bytes(frame)
            for event in self._conn.events_received():
                if isinstance(event, BadMessage):
                    self.log.warning("ignored a server message: %s", event.reason)
                    continue
                yield event

    # ------------------------------------------------------------ sending

    async def send(self, message: BaseModel | bytes) -> None:
        """Send one client message model (`voxcall.protocol.realtime`) or PCM bytes.

        Waits while the socket's write buffer is full (backpressure).

        Raises:
            ConnectionClosed: the connection is closed.
            RuntimeError: `connect` was not called.
        """
        ws = self._require()
        self._conn.send(message)
        with _translate("send"):
            for frame in self._conn.data_to_send():
                await ws.send(frame)

    async def send_data(self, message: Mapping[str, Any]) -> None:
        """Send any JSON object as one text frame, unvalidated (it needs a string `type`)."""
        if not isinstance(message.get("type"), str):
            raise ValueError("a data message needs a string 'type'")
        ws = self._require()
        with _translate("send"):
            await ws.send(json.dumps(dict(message), separators=(",", ":")))

    async def send_audio(self, pcm: bytes) -> None:
        """Send user audio: s16le mono PCM at the call's `inputSampleRate`, paced in real time."""
        await self.send(bytes(pcm))

    async def send_user_text_message(
        self, text: str, *, urgency: str | None = None, defer_response: bool | None = None
    ) -> None:
        """`user_text_message`: add a user turn as text (urgency immediate/soon/later)."""
        await self.send(UserTextMessage(text=text, urgency=urgency, defer_response=defer_response))

    async def send_input_text_message(self, text: str, defer_response: bool | None = None) -> None:
        """`input_text_message`: the legacy text message every official SDK's sendText uses."""
        await self.send(InputTextMessage(text=text, defer_response=defer_response))

    async def send_client_tool_result(
        self,
        invocation_id: str,
        *,
        result: Any = None,
        response_type: str | None = None,
        agent_reaction: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        update_call_state: dict[str, Any] | None = None,
    ) -> None:
        """`client_tool_result`: answer a `client_tool_invocation` (None fields are left out)."""
        await self.send(
            ClientToolResult(
                invocation_id=invocation_id,
                result=result,
                response_type=response_type,
                agent_reaction=agent_reaction,
                error_type=error_type,
                error_message=error_message,
                update_call_state=update_call_state,
            )
        )

    async def send_set_output_medium(self, medium: str) -> None:
        """`set_output_medium`: "voice" or "text"."""
        await self.send(SetOutputMedium(medium=medium))

    async def send_forced_agent_message(
        self, content: str, *, uninterruptible: bool | None = None, urgency: str | None = None
    ) -> None:
        """`forced_agent_message`: make the agent say `content`."""
        await self.send(ForcedAgentMessage(content=content, uninterruptible=uninterruptible, urgency=urgency))

    async def send_hang_up(self, message: str | None = None) -> None:
        """`hang_up`: the agent says `message` (if any) and the server ends the call."""
        await self.send(HangUp(message=message))

    async def send_ping(self, timestamp: float | None = None) -> None:
        """`ping`; the server answers `pong` with the same timestamp (default: now, Unix seconds)."""
        await self.send(Ping(timestamp=round(time.time(), 3) if timestamp is None else timestamp))

    def _require(self) -> _WebSocket:
        if self._ws is None:
            raise RuntimeError("not connected: call connect(join_url) first")
        return self._ws
