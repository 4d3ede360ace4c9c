"""The platform resources' services: their stores, the webhook sender, and event emission.

`notify(event, call_id)` is the one function every lifecycle point calls
(created: `call.started`; joined: `call.joined`; ended: `call.ended`, followed
by `call.billed`, since a self-hosted call is settled when it ends). It writes
one outbox row per subscribed webhook and per matching per-call callback
(`StartCallRequest.callbacks`: joined, ended, billed), each with the payload
`{"event": <name>, "call": <Call>}` as the call is at that moment, and wakes
the sender. Callbacks are signed like webhooks, with their own secrets.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from voxcall.config import Settings
from voxcall.errors import InvalidRequest, NotFound
from voxcall.outbound import OutboundPolicy, safe_client
from voxcall.protocol.rest import StartCallRequest
from voxcall.server.calls import to_call
from voxcall.server.deliveries import Deliveries
from voxcall.store import Store
from voxcall.store.agents import AgentStore
from voxcall.store.api_keys import ApiKeyStore
from voxcall.store.records import CallRecord
from voxcall.store.tombstones import TombstoneStore
from voxcall.store.usage import UsageStore
from voxcall.store.webhooks import NewDelivery, Outbox, WebhookStore

__all__ = ["CALLBACK_EVENTS", "Platform"]

logger = logging.getLogger(__name__)

CALLBACK_EVENTS = {"call.joined": "joined", "call.ended": "ended", "call.billed": "billed"}
"""Which `callbacks` entry of a call each event invokes."""


@dataclass(slots=True)
class Platform:
    """Stores of agents, webhooks, tombstones, API keys and usage, plus the webhook sender."""

    store: Store
    agents: AgentStore
    webhooks: WebhookStore
    outbox: Outbox
    tombstones: TombstoneStore
    api_keys: ApiKeyStore
    usage: UsageStore
    deliveries: Deliveries
    policy: OutboundPolicy
    _client: httpx.AsyncClient | None = None

    @classmethod
    def open(cls, store: Store, settings: Settings, client: httpx.AsyncClient | None = None) -> Platform:
        """Build on `store`'s engine. Without `client`, an outbound-safe HTTP client is made (and closed by `close`).

        Webhook and callback targets must be public addresses, unless VOXCALL_OUTBOUND_ALLOW lets them
        through (voxcall.outbound checks every address at connect time).
        """
        engine = store.engine
        policy = OutboundPolicy.parse(settings.outbound_allow)
        owned = None if client is not None else safe_client(policy, timeout=settings.webhook_timeout)
        outbox, webhooks = Outbox(engine), WebhookStore(engine)
        deliveries = Deliveries(
            outbox, webhooks, client or owned,  # type: ignore[arg-type]
            retry_base=settings.webhook_retry_base, max_retries=settings.webhook_max_retries, timeout=settings.webhook_timeout,
        )
        return cls(store=store, agents=AgentStore(engine), webhooks=webhooks, outbox=outbox, tombstones=TombstoneStore(engine),
                   api_keys=ApiKeyStore(engine), usage=UsageStore(engine), deliveries=deliveries, policy=policy,
                   _client=owned)

    def check_url(self, url: str, *loc: str | int) -> None:
        """Refuse (422) a webhook or callback URL that can never be delivered to (a loopback or private target)."""
        reason = self.policy.url_refusal(url)
        if reason is not None:
            raise InvalidRequest([{"loc": list(loc), "type": "value_error",
                                   "msg": f"{reason}: webhooks go to public addresses only (VOXCALL_OUTBOUND_ALLOW lists exceptions)"}])

    def check_callbacks(self, request: StartCallRequest) -> None:
        """Refuse a call whose `callbacks` point where they can never be delivered."""
        for name in ("joined", "ended", "billed"):
            callback = getattr(request.callbacks, name) if request.callbacks else None
            if callback is not None:
                self.check_url(callback.url, "body", "callbacks", name, "url")

    def start(self) -> None:
        """Start the webhook sender (it picks up deliveries left pending by an earlier process)."""
        self.deliveries.start()

    async def close(self) -> None:
        await self.deliveries.close()
        if self._client is not None:
            await self._client.aclose()

    async def notify(self, event: str, call_id: str) -> None:
        """Queue `event` of the call for its webhooks and callbacks. Never raises: a call goes on regardless."""
        try:
            record = await self.store.get_call(call_id)
        except NotFound:
            return  # deleted meanwhile
        try:
            events = [event, "call.billed"] if event == "call.ended" else [event]
            queued = [d for name in events for d in await self._deliveries(name, record)]
            await self.outbox.add(queued, at=datetime.now(UTC))
        except Exception:
            logger.exception("could not queue %s of call %s", event, call_id)
            return
        if queued:
            self.deliveries.wake()

    async def _deliveries(self, event: str, record: CallRecord) -> list[NewDelivery]:
        body = json.dumps({"event": event, "call": to_call(record).wire()}, separators=(",", ":"))
        hooks = await self.webhooks.subscribed(record.account_id, event, record.agent_id)
        queued = [NewDelivery(record.account_id, record.call_id, event, body, webhook_id=h.webhook_id) for h in hooks]
        callback = (record.request.get("callbacks") or {}).get(CALLBACK_EVENTS.get(event, ""))
        if callback and callback.get("url"):
            queued.append(NewDelivery(record.account_id, record.call_id, event, body, url=callback["url"],
                                      secrets=tuple(callback.get("secrets") or ())))
        return queued

