"""Sends the webhook outbox: signed POSTs, retried with exponential backoff.

Signing, as the hosted platform does it (https://docs.ultravox.ai/webhooks/securing-webhooks):
the `X-Ultravox-Webhook-Timestamp` header holds the ISO-8601 time the request
is sent, and `X-Ultravox-Webhook-Signature` holds the hex HMAC-SHA256, keyed
with a secret, of the raw request body followed by that timestamp; with several
secrets (key rotation) there is one signature per secret, comma-separated.

Retries (https://docs.ultravox.ai/webhooks/errors-and-retries): any answer
other than 2xx, and any transport error, is a failure. The first retry comes
about `retry_base` (30 s) later and each further one waits twice as long, with
a little random jitter, for `max_retries` (10) retries; then the delivery is
given up. Each failed attempt is added to the webhook's `recentFailures`, and
after `UNHEALTHY_AFTER` failures in a row the webhook's status is `unhealthy`
until a delivery succeeds.

The sender never logs bodies, URLs' query strings or secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from voxcall import __version__
from voxcall.store.webhooks import Delivery, Outbox, WebhookStore

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Deliveries", "retry_delay", "sign"]

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Ultravox-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Ultravox-Webhook-Signature"
_POLL = 5.0  # look at the outbox at least this often (rows written by other processes)
_MIN_WAIT = 0.05


def sign(body: bytes, timestamp: str, secrets: Iterable[str]) -> str:
    """The X-Ultravox-Webhook-Signature value: hex HMAC-SHA256(secret, body + timestamp) per secret, comma-joined."""
    message = body + timestamp.encode()
    return ",".join(hmac.new(s.encode(), message, hashlib.sha256).hexdigest() for s in secrets)


def retry_delay(attempt: int, base: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first): base, 2 x base, 4 x base, ... with +-10% jitter."""
    return float(base * 2 ** (attempt - 1) * random.uniform(0.9, 1.1))


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Deliveries:
    """The outbox sender: one background task, at most `concurrency` requests at a time.

    Args:
        client: the HTTP client to send with (an outbound-safe one in production); owned by the caller.
        retry_base: seconds before the first retry.
        max_retries: retries after the first attempt.
        timeout: seconds a receiver has to answer; a leased row is retried by anyone after timeout + 5 s.
    """

    def __init__(
        self, outbox: Outbox, webhooks: WebhookStore, client: httpx.AsyncClient, *, retry_base: float = 30.0,
        max_retries: int = 10, timeout: float = 10.0, concurrency: int = 8,
    ) -> None:
        self._outbox = outbox
        self._webhooks = webhooks
        self._client = client
        self.retry_base = retry_base
        self.max_retries = max_retries
        self.timeout = timeout
        self._concurrency = concurrency
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start sending (pending rows left by an earlier process included). Needs a running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-deliveries")

    def wake(self) -> None:
        """Look at the outbox now (new rows were queued)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop. Requests in flight are cancelled; their rows stay leased and come due again later."""
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None

    async def run_once(self) -> int:
        """Lease what is due now and send it all, waiting for the answers; returns how many were sent."""
        leased = await self._lease(self._concurrency)
        await asyncio.gather(*(self._send(d) for d in leased))
        return len(leased)

    async def _lease(self, limit: int) -> list[Delivery]:
        now = datetime.now(UTC)
        return await self._outbox.lease_due(now=now, until=now + timedelta(seconds=self.timeout + 5), limit=limit)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = _POLL
            try:
                free = self._concurrency - len(self._sending)
                for delivery in await self._lease(free) if free > 0 else []:
                    self._spawn(delivery)
                if len(self._sending) < self._concurrency:
                    wait = await self._until_next_due()
            except Exception:
                logger.exception("webhook outbox pass failed; trying again in %.0f s", _POLL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _until_next_due(self) -> float:
        due = await self._outbox.next_due()
        if due is None:
            return _POLL
        return min(_POLL, max(_MIN_WAIT, (due - datetime.now(UTC)).total_seconds()))

    def _spawn(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._send(delivery))
        self._sending.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._sending.discard(t)
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    async def _send(self, delivery: Delivery) -> None:
        failure = await self._post(delivery)
        at = datetime.now(UTC)
        attempt = delivery.attempts + 1
        if failure is None:
            await self._outbox.delivered(delivery.id, at=at)
            logger.info("delivered %s of call %s to %s", delivery.event, delivery.call_id, _where(delivery.url))
        else:
            retry = None if attempt > self.max_retries else at + timedelta(seconds=retry_delay(attempt, self.retry_base))
            await self._outbox.failed(delivery.id, error=failure, retry_at=retry, at=at)
            logger.warning("delivery %d of %s to %s failed (attempt %d): %s%s", delivery.id, delivery.event,
                           _where(delivery.url), attempt, failure, "" if retry else "; giving up")
        if delivery.webhook_id is not None:
            await self._webhooks.record_attempt(delivery.webhook_id, at=at, failure=failure)

    async def _post(self, delivery: Delivery) -> str | None:
        """Send once; None on a 2xx answer, else what went wrong."""
        body = delivery.body.encode()
        timestamp = datetime.now(UTC).isoformat()
        headers: dict[str, Any] = {
            "Content-Type": "application/json",
            "User-Agent": f"voxcall/{__version__}",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(body, timestamp, delivery.secrets),
        }
        try:
            async with asyncio.timeout(self.timeout):  # the whole exchange, not only each read
                response = await self._client.post(delivery.url, content=body, headers=headers, timeout=self.timeout)
        except (httpx.TimeoutException, TimeoutError):
            return f"timed out after {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except ValueError as exc:  # e.g. a target the outbound policy refuses
            return str(exc) or type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
