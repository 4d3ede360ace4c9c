"""A small event emitter: `on(event, handler)` / `off(event, handler)` / `emit(event, *args)`.

Handlers may be plain functions or coroutine functions. Plain ones run inside
`emit`, in registration order; a coroutine becomes a task that the emitter owns
(STYLE.md rule 9) until it finishes or `drain` cancels it. A handler's
exception is logged and never reaches the emitter's caller, so a bad listener
cannot break the session that emits.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Emitter", "Handler"]

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)


class Emitter:
    """Named events with sync or async handlers."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[Any] | None = None) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._log = logger if logger is not None else logging.getLogger(__name__)

    def on(self, event: str, handler: H) -> H:
        """Call `handler(*args)` on every `emit(event, *args)`; returns the handler."""
        self._handlers.setdefault(event, []).append(handler)
        return handler

    def off(self, event: str, handler: Handler) -> None:
        """Remove one registration of `handler` (no error if absent)."""
        handlers = self._handlers.get(event, [])
        if handler in handlers:
            handlers.remove(handler)

    def emit(self, event: str, *args: Any) -> None:
        """Run the handlers of `event`; async ones are scheduled, not awaited."""
        for handler in list(self._handlers.get(event, ())):
            try:
                result = handler(*args)
            except Exception:
                self._log.exception("%r handler %r failed", event, handler)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._finished)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for running async handlers (except the caller's own task), cancelling them after `timeout`."""
        pending = self._tasks - {asyncio.current_task()}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            self._log.warning("cancelling an event handler that outlived the session: %r", task)
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("async event handler failed", exc_info=task.exception())
