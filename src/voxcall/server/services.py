"""Everything a request handler needs, built once per process, plus the auth dependency."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from fastapi import Request, WebSocket

from voxcall.config import Settings
from voxcall.engine.spec import Speech
from voxcall.errors import NotFound, RateLimited, Unauthorized
from voxcall.outbound import OutboundPolicy, safe_client
from voxcall.protocol.rest import StartCallRequest, Voice
from voxcall.providers.base import LLM
from voxcall.server.call_tools import PUBLIC_TOOLS
from voxcall.server.capacity import NodeCapacity
from voxcall.server.cluster import Cluster, LocalCluster
from voxcall.server.limits import Limits, enforce, retry_after_header
from voxcall.server.live import SERVICE_RESTART, LiveCall, LiveCalls, LiveDirectory
from voxcall.server.metrics import CallMetrics
from voxcall.server.model_hosts import ModelHosts
from voxcall.server.phone import Phone
from voxcall.server.platform import Platform
from voxcall.server.tokens import JoinTokens
from voxcall.store import Store
from voxcall.store.recordings import RecordingStore
from voxcall.store.records import CallRecord
from voxcall.store.tools import ToolStore

__all__ = ["EndHook", "LiveCall", "Services", "get_services", "model_queues", "require_api_key"]

logger = logging.getLogger(__name__)

EndHook = Callable[[str, str], Awaitable[None]]
"""`hook(call_id, end_reason)`, awaited once when a call has ended; should return quickly (queue slow work)."""


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    llm: LLM
    tokens: JoinTokens
    recordings: RecordingStore
    speech: Speech | None = None
    voices: list[Voice] = field(default_factory=list)
    limits: Limits = None  # type: ignore[assignment]  # built from `settings` when not given
    live: LiveCalls = field(default_factory=LiveCalls)
    directory: LiveDirectory | None = None
    """Where the stale-call sweep asks whether a call is live anywhere; None = this process's `live`."""
    on_ended: list[EndHook] = field(default_factory=list)
    """Awaited, in order, each time a call ends: hosted calls, unjoined calls and calls the sweep ends."""
    draining: bool = False
    """Shutting down gracefully: new joins are refused (1013), live calls run on for a while."""
    stopping: bool = False
    """Shutting down now: calls whose socket closes end as `system_error`."""
    tools: ToolStore | None = None
    """Durable tools; built from `store` when not given."""
    outbound: httpx.AsyncClient | None = None
    """The one client for requests on a user's behalf (HTTP tools, webhooks): SSRF-checked (voxcall.outbound)."""
    phone: Phone = None  # type: ignore[assignment]  # carrier configs and REST APIs: built unless given
    _timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    platform: Platform = field(default=None)  # type: ignore[assignment]  # agents, webhooks, ...: built unless given
    cluster: Cluster = field(default=None)  # type: ignore[assignment]  # where live calls are: this process unless given
    capacity: NodeCapacity = field(default=None)  # type: ignore[assignment]  # the node's join slots: from settings
    metrics: CallMetrics = field(default_factory=CallMetrics)
    model_hosts: ModelHosts = field(default=None)  # type: ignore[assignment]  # the remote models' URLs: from settings

    async def notify(self, event: str, call_id: str) -> None:
        """Emit a call lifecycle event (call.started, call.joined, call.ended) to webhooks and callbacks; never raises."""
        await self.platform.notify(event, call_id)

    def __post_init__(self) -> None:
        if self.limits is None:
            self.limits = Limits.from_settings(self.settings)
        if self.tools is None:
            self.tools = ToolStore(self.store.engine, PUBLIC_TOOLS)
        if self.outbound is None:
            self.outbound = safe_client(OutboundPolicy.parse(self.settings.outbound_allow))
        if self.platform is None:
            self.platform = Platform.open(self.store, self.settings)
        if self.cluster is None:
            self.cluster = LocalCluster(self.live)
        if self.model_hosts is None:
            self.model_hosts = ModelHosts.from_settings(self.settings)
        if self.capacity is None:
            self.capacity = NodeCapacity(self.settings.max_node_calls, self.settings.max_node_load)
        self.metrics.watch(live=lambda: len(self.live), max_calls=lambda: self.capacity.max_calls, load=self.capacity.load)
        self.metrics.watch_queues(model_queues(self.llm, self.speech))
        self.live.listeners.append(self.metrics)  # with workers, each writes its live-call gauge as it changes
        self.on_ended.append(self._webhook_ended)
        if self.phone is None:
            self.phone = Phone.open(self.store, self.settings)
        self.on_ended.append(self.phone.on_ended)  # hangs up the carrier's side of calls voxcall dialled or answered

    async def _webhook_ended(self, call_id: str, reason: str) -> None:
        await self.notify("call.ended", call_id)

    @property
    def tool_store(self) -> ToolStore:
        assert self.tools is not None  # set in __post_init__
        return self.tools

    def watch_join_timeout(self, record: CallRecord) -> None:
        """End the call as `unjoined` if nobody joins within its joinTimeout."""
        delay = max(0.0, self.join_deadline(record) - time.time())
        loop = asyncio.get_running_loop()
        self._timers[record.call_id] = loop.call_later(delay, self._spawn_unjoined_check, record)

    def _spawn_unjoined_check(self, record: CallRecord) -> None:
        self._timers.pop(record.call_id, None)
        task = asyncio.get_running_loop().create_task(self._check_unjoined(record.call_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_unjoined(self, call_id: str) -> None:
        with contextlib.suppress(NotFound):  # deleted meanwhile
            await self.settle_unjoined(await self.store.get_call(call_id))

    async def settle_unjoined(self, record: CallRecord) -> CallRecord:
        """Mark a never-joined call whose join window has passed as ended `unjoined`."""
        deadline = self.join_deadline(record)
        if record.joined is None and record.ended is None and time.time() >= deadline:
            at = datetime.fromtimestamp(deadline, UTC)
            if await self.store.mark_ended(record.call_id, reason="unjoined", at=at):
                record.ended, record.end_reason = at, "unjoined"
                await self.notify_ended(record.call_id, "unjoined")
            else:
                record = await self.store.get_call(record.call_id)
        return record

    @staticmethod
    def join_deadline(record: CallRecord) -> float:
        timeout = StartCallRequest.model_validate(record.request).join_timeout or 30.0
        return record.created.timestamp() + timeout  # a float: a joinTimeout of 10^11 s does not overflow a datetime

    async def notify_ended(self, call_id: str, reason: str) -> None:
        """Run the `on_ended` hooks for a call that has just ended; a failing hook is logged and skipped."""
        for hook in list(self.on_ended):
            try:
                await hook(call_id, reason)
            except Exception:
                logger.exception("an on_ended hook failed for call %s", call_id)

    def live_directory(self) -> LiveDirectory:
        return self.directory if self.directory is not None else self.live

    async def end_live_calls(self, timeout: float = 10.0) -> None:
        """End every hosted call as `system_error` (close 1012) and wait, at most `timeout`, until each has ended."""
        calls = self.live.values()
        for live in calls:
            live.end("system_error", code=SERVICE_RESTART, message="server shutting down")
        if calls:
            logger.warning("ended %d live call(s): server shutting down", len(calls))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(lc.done.wait() for lc in calls)), timeout)

    async def close(self) -> None:
        self.draining = self.stopping = True
        for handle in self._timers.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.end_live_calls(5.0)
        await self.cluster.close()
        await self.platform.close()
        if self.outbound is not None:
            await self.outbound.aclose()
        await self.phone.close()
        await self.model_hosts.aclose()
        await self.store.close()


def model_queues(llm: object, speech: Speech | None) -> dict[str, Callable[[], float]]:
    """The queue depth readers of the shared models that have one (the embedded LLM, Whisper, Piper)."""
    models = {"llm": llm, "stt": speech.stt if speech else None, "tts": speech.tts if speech else None}
    found = {name: getattr(model, "queue_depth", None) for name, model in models.items()}
    return {name: depth for name, depth in found.items() if callable(depth)}


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def ws_services(websocket: WebSocket) -> Services:
    return websocket.app.state.services  # type: ignore[no-any-return]


async def require_api_key(request: Request) -> str:
    """The caller's account id, from `X-API-Key` (or `X-Unsafe-API-Key`); 401 otherwise.

    429 (with Retry-After) when this client address sent too many invalid keys lately, checked
    before the key is looked at, or when this key's request rate is used up (server/limits.py).
    """
    key = request.headers.get("x-api-key") or request.headers.get("x-unsafe-api-key")
    if not key:
        raise Unauthorized("Authentication credentials were not provided: send your key in the X-API-Key header.")
    key, svc = key.strip(), get_services(request)
    address = request.client.host if request.client else "unknown"
    limits = svc.limits
    blocked = await limits.auth_failures.check(address)
    if not blocked.allowed:  # before the key is looked at: guessing keys gets no answer at all
        raise RateLimited(f"Too many invalid API keys from this address. Retry with a valid key after "
                          f"{retry_after_header(blocked.retry_after)} s.", retry_after=blocked.retry_after)
    account = await svc.store.authenticate(key)
    if account is None:
        await limits.auth_failures.hit(address)
        raise Unauthorized("Invalid API key.")
    await enforce(limits.requests, key[:8], f"Too many requests for this API key (at most {svc.settings.requests_per_second} per second).")
    return account
