"""`voxcall serve` under uvicorn, with a graceful shutdown: SIGTERM drains the calls first.

On the first SIGTERM the server keeps listening but refuses new joins (close
code 1013, "try again later", the join token left unused), lets live calls go
on for up to `drain_seconds`, ends the ones still running as `system_error`
(close code 1012) and only then lets uvicorn shut down. SIGINT (Ctrl-C), a
second signal, or `drain_seconds = 0` shut down at once; calls still end as
`system_error` with close code 1012.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voxcall.config import Settings
from voxcall.server.services import Services
from voxcall.server.ws_protocol import BufferedWebSocketProtocol

__all__ = ["GracefulServer", "drain", "graceful_server"]

logger = logging.getLogger(__name__)


async def drain(svc: Services, seconds: float) -> None:
    """Refuse new joins, let live calls run for up to `seconds`, then end the rest as `system_error`."""
    svc.draining = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    logger.warning("shutting down: refusing new joins; %d live call(s) may go on for up to %gs", len(svc.live), seconds)
    while len(svc.live) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    svc.stopping = True
    await svc.end_live_calls()


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM drains the calls of `app.state.services` before it exits."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, *, drain_seconds: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_seconds = drain_seconds
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        svc: Services | None = getattr(self._app.state, "services", None)
        if svc is None or self._loop is None or not self.started:
            super().handle_exit(sig, frame)
            return
        svc.draining = True
        if sig == signal.SIGTERM and self._drain_seconds > 0 and not self._draining and not self.should_exit:
            self._draining = True
            self._captured_signals.append(sig)  # re-raised once uvicorn is done, as for a plain shutdown
            self._loop.call_soon_threadsafe(self._start_drain, svc)
            return
        svc.stopping = True
        super().handle_exit(sig, frame)

    def _start_drain(self, svc: Services) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain_then_exit(svc))

    async def _drain_then_exit(self, svc: Services) -> None:
        try:
            await drain(svc, self._drain_seconds)
        except Exception:
            logger.exception("draining the calls failed")
        finally:
            self.should_exit = True


def graceful_server(app: FastAPI, settings: Settings, *, log_level: str = "info") -> GracefulServer:
    """A server for `app` on `settings.host:settings.port` (uvicorn's sans-I/O websockets), draining on SIGTERM.

    permessage-deflate is not offered: a call's frames are mostly PCM, which hardly compresses, and
    deflating every 20 ms frame costs CPU at both ends of every call. Reading pauses only when messages
    pile up (server/ws_protocol.py), not after each one. Run it on `config.get_loop_factory()` (uvloop by
    default: its sockets and callbacks cost a call's many small frames less than asyncio's).
    """
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level.lower(),
                            ws=BufferedWebSocketProtocol, ws_per_message_deflate=False, loop=settings.event_loop)
    return GracefulServer(config, app, drain_seconds=settings.drain_seconds)
