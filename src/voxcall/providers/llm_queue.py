"""Between the event loop and the embedded LLM's worker thread: requests, their channel, per-call sessions.

`LlamaLLM` (embedded.py) queues a `Request` on its `workers.FairWorker` and reads the
events back through a `Channel`; a `LlamaSession` is one call's view of the shared
model, whose requests queue under the call's key.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

from voxcall.errors import ProviderError
from voxcall.providers.base import ChatMessage, LLMEvent, ToolSpec
from voxcall.providers.workers import FairWorker, Job

__all__ = ["END", "STARTED", "Channel", "Listener", "LlamaSession", "Memory", "Queue", "Request", "Speculation",
           "SpeculativeStream", "queued_events"]

logger = logging.getLogger(__name__)

END = object()
"""The last item of every channel."""
STARTED = object()
"""The worker has started on the request (after it waited in the queue, the deadline starts now)."""


class Channel:
    """Carries events from the worker thread to the event loop; `stopped` is the cancel flag.

    At most `WINDOW` items wait unread: a consumer that stops reading (a voice reply
    synthesising its first clause) pauses generation instead of fighting it for the
    two cores; it resumes as soon as the consumer reads again.
    """

    WINDOW = 4

    def __init__(self, loop: asyncio.AbstractEventLoop, closed: threading.Event) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._slots = threading.Semaphore(self.WINDOW)
        self._closed = closed
        self.stopped = threading.Event()

    def put(self, item: object) -> None:
        """Called from the worker thread; waits while `WINDOW` items are unread (never once stopped or closed)."""
        while not self._slots.acquire(timeout=0.05):
            if self.stopped.is_set() or self._closed.is_set():
                return
        if not self.stopped.is_set():
            self._deliver(item)

    def finish(self, error: BaseException | None = None) -> None:
        """The last items, whatever the window or the stop flag: `error` if any, then the end. Any thread."""
        if error is not None:
            self._deliver(error)
        self._deliver(END)

    def _deliver(self, item: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.stopped.set()

    async def get(self) -> object:
        item = await self._queue.get()
        if item is not END and not isinstance(item, BaseException):
            self._slots.release()
        return item


class Memory:
    """What the worker remembers about one conversation: where its history is cut (see `prompt.Fit`)."""

    start = 0


@dataclass(frozen=True, slots=True)
class Listener:
    on_queued: Callable[[int], None] | None = None
    on_started: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Request:
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...]
    temperature: float
    max_tokens: int
    memory: Memory | None = None
    open_end: bool = False
    """A prefill whose last message goes on (the user is still talking): its prompt stops at that
    message's text, before the template closes it."""


class LlamaSession:
    """One call's view of a shared `LlamaLLM`: an `LLM` (with `prefill`) whose work is queued under `key`.

    `on_queued(ahead)` is called, in the event loop, when a `stream()` has to wait for
    `ahead` requests of other calls; `on_started()` when that waiting request starts.
    """

    def __init__(
        self,
        llm: Queue,
        key: Hashable,
        *,
        on_queued: Callable[[int], None] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.name = llm.name
        self._llm = llm
        self._key = key
        self._listener = Listener(on_queued, on_started)
        self._memory = Memory()

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> AsyncIterator[LLMEvent]:
        """`LlamaLLM.stream`, queued fairly under this session's key."""
        request = Request(tuple(messages), tuple(tools), temperature, max_tokens, self._memory)
        return self._llm.submit(request, self._key, listener=self._listener)

    async def prefill(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), *,
                      open_end: bool = False) -> None:
        """`LlamaLLM.prefill` as this session's one background request (replacing an earlier one)."""
        request = Request(tuple(messages), tuple(tools), 0.0, 0, self._memory, open_end)
        async for _ in self._llm.submit(request, self._key, background=True):
            pass

    def draft(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> SpeculativeStream:
        """`stream()` for a preemptive reply: until it is `settle()`d, another call's turn stops it
        (its stream then raises `ProviderError`), so a guess never delays a turn that is due."""
        request = Request(tuple(messages), tuple(tools), temperature, max_tokens, self._memory)
        speculation = Speculation()
        return SpeculativeStream(self._llm.submit(request, self._key, speculation=speculation), speculation)

    def end(self) -> None:
        """Drop this session's waiting requests and stop its running one. Never blocks."""
        dropped = self._llm.cancel(self._key)
        if dropped:
            logger.debug("dropped %d waiting LLM requests of an ended session", dropped)


class Queue(Protocol):
    """What a session needs from the shared model (`LlamaLLM`)."""

    name: str

    def submit(
        self, request: Request, owner: Hashable, *, background: bool = False, listener: Listener | None = None,
        speculation: Speculation | None = None,
    ) -> AsyncIterator[LLMEvent]: ...

    def cancel(self, owner: Hashable) -> int: ...


class Speculation:
    """The handle of a speculative request (`FairWorker`): `settle()` makes it ordinary once its guess is taken."""

    def __init__(self) -> None:
        self._worker: FairWorker | None = None
        self._job: Job | None = None
        self._settled = False

    def bind(self, worker: FairWorker, job: Job) -> None:
        self._worker, self._job = worker, job

    @property
    def speculative(self) -> bool:
        return not self._settled

    def settle(self) -> bool:
        """The guess was right: nothing may stop it now. False if another call's turn stopped it already."""
        self._settled = True
        if self._worker is None or self._job is None:
            return True  # not queued yet: it will be queued as an ordinary request
        return self._worker.settle(self._job)


class SpeculativeStream:
    """The events of a speculative request, with its `settle()`."""

    def __init__(self, events: AsyncIterator[LLMEvent], speculation: Speculation) -> None:
        self._events = events
        self._speculation = speculation

    def __aiter__(self) -> SpeculativeStream:
        return self

    async def __anext__(self) -> LLMEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()

    def settle(self) -> bool:
        return self._speculation.settle()


async def queued_events(
    worker: FairWorker,
    work: Callable[[Channel], None],
    owner: Hashable,
    *,
    closed: threading.Event,
    background: bool = False,
    listener: Listener | None = None,
    name: str = "the model",
    speculation: Speculation | None = None,
) -> AsyncIterator[LLMEvent]:
    """Queue `work` on `worker` under `owner` and yield the events it puts on its channel.

    `work` runs on the worker thread; it puts `STARTED` first, then events, and always ends
    with `channel.finish()`. Cancellation-safe: closing or cancelling the consumer drops the
    job if it is still waiting, or sets its stop flag if it runs. `listener` hears about a
    job that has to wait (`on_queued`) and when it starts (`on_started`). With `speculation`,
    the job is speculative until settled, and one another call's turn stopped ends in `ProviderError`.
    """
    channel = Channel(asyncio.get_running_loop(), closed)
    speculative = speculation is not None and speculation.speculative
    job = Job(owner, lambda job: work(channel), drop=channel.finish, background=background, stop=channel.stopped,
              speculative=speculative)
    if speculation is not None:
        speculation.bind(worker, job)
    try:
        ahead = worker.submit(job)
    except RuntimeError as exc:  # the worker was closed
        raise ProviderError(f"{name} is closed") from exc
    listener = listener if ahead > 0 else None  # it only hears about a job that waits
    if listener is not None and listener.on_queued is not None:
        listener.on_queued(ahead)
    try:
        while (item := await channel.get()) is not END:
            if item is STARTED:
                if listener is not None and listener.on_started is not None:
                    listener.on_started()
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item  # type: ignore[misc]
        if job.preempted:
            raise ProviderError(f"{name}: a preemptive reply gave way to another call's turn", retryable=True)
    finally:
        worker.withdraw(job)
