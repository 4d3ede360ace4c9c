"""Prometheus metrics of one node, fed by what the host sees of its calls (the engine knows nothing of them).

The seam is `CallMetrics`: the host hands it each event and history entry a call
records (the engine's `EventRecord`s and `CallMessage`s, the same ones stored for
GET /api/calls/{id}/events), each call's end reason and each refused join. So
per-stage turn latency comes from the engine's `turn_latency` events, dropped
audio from `audio_overflow`, and so on; the engine stays free of prometheus.

Each `CallMetrics` has its own registry (tests build many in one process);
`render()` is the text exposition format served at `/metrics`.

Several workers of one node (`voxcall serve --workers N`, server/supervisor.py)
share one port, so a scrape reaches whichever worker the kernel picks. There the
supervisor gives every worker prometheus-client's multiprocess directory
(`PROMETHEUS_MULTIPROC_DIR`, read by prometheus-client when it is imported:
each process then writes its values to its own files there), and `render()`
sums the files of every worker (`MultiProcessCollector`): counters and
histograms of all workers, including ones that exited, and the gauges of the
live workers (`livesum`; the machine's load is the `livemostrecent` reading).
A gauge read from a function at scrape time cannot work across processes, so
there each worker writes its gauges when they change (a call added or ended) and
before it renders a scrape. With one process nothing of this is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from voxcall.engine.spec import EventRecord
from voxcall.protocol.rest import CallMessage

__all__ = ["CONTENT_TYPE", "STAGES", "CallMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

STAGES = {"endpointMs": "endpoint", "transcriptMs": "transcript", "firstTokenMs": "first_token",
          "firstAudioMs": "first_audio", "totalMs": "total"}
"""The stages of a `turn_latency` event's extras (engine/latency.py), as `stage` label values."""

_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_ROLES = {"MESSAGE_ROLE_USER": "user", "MESSAGE_ROLE_AGENT": "agent"}
_DROPS = {"inbox_overflow": "client_messages", "agenda_overflow": "forced_agent_messages"}


class CallMetrics:
    """The metrics of one node. Observers never raise: metrics must not break a call.

    Args:
        multiprocess_dir: prometheus-client's multiprocess directory when this process is one
            of several workers of a node (the same as its `PROMETHEUS_MULTIPROC_DIR`); None for one process.
    """

    def __init__(self, multiprocess_dir: Path | str | None = None) -> None:
        self.multiprocess_dir = None if multiprocess_dir is None else Path(multiprocess_dir)
        self._readers: list[tuple[Gauge, Callable[[], float]]] = []
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.live_calls = Gauge("voxcall_live_calls", "Calls hosted by this node now", registry=r,
                                multiprocess_mode="livesum")
        self.max_calls = Gauge("voxcall_node_max_calls", "Calls this node accepts at once (0 = no limit)", registry=r,
                               multiprocess_mode="livesum")
        self.load = Gauge("voxcall_node_load", "1-minute load average per CPU of this machine", registry=r,
                          multiprocess_mode="livemostrecent")
        self.calls = Counter("voxcall_calls_ended", "Hosted calls ended, by end reason", ["end_reason"], registry=r)
        self.turns = Counter("voxcall_turns", "Conversation turns stored, by who spoke", ["role"], registry=r)
        self.stages = Histogram("voxcall_turn_stage_seconds", "Spoken-turn latency per stage (end of speech to first audio)",
                                ["stage"], buckets=_BUCKETS, registry=r)
        self.errors = Counter("voxcall_call_errors", "Error events of calls, by event type", ["type"], registry=r)
        self.audio_drops = Counter("voxcall_audio_overflows", "Reports of inbound audio dropped because a client sent "
                                   "faster than real time (at most one a second per call)", registry=r)
        self.drops = Counter("voxcall_dropped", "Client messages and forced agent messages a busy call dropped "
                             "(counted at the first drop and every 1000th)", ["what"], registry=r)
        self.refused = Counter("voxcall_joins_refused", "Joins turned away, by cause", ["cause"], registry=r)
        self.queue_depth = Gauge("voxcall_model_queue_depth", "Requests of every call waiting for a shared embedded "
                                 "model (not the one running), by model", ["model"], registry=r,
                                 multiprocess_mode="livesum")

    def watch(self, *, live: Callable[[], float], max_calls: Callable[[], float], load: Callable[[], float]) -> None:
        """Read these gauges from the node when scraped (and, with workers, when `refresh()` is called)."""
        self._observe(self.live_calls, live)
        self._observe(self.max_calls, max_calls)
        self._observe(self.load, load)

    def watch_queues(self, depths: Mapping[str, Callable[[], float]]) -> None:
        """Read each model's queue depth (`{"llm": llm.queue_depth, ...}`) when scraped."""
        for model, depth in depths.items():
            self._observe(self.queue_depth.labels(model), depth)

    def _observe(self, gauge: Gauge, read: Callable[[], float]) -> None:
        if self.multiprocess_dir is None:
            gauge.set_function(read)
        else:
            self._readers.append((gauge, read))
            gauge.set(read())

    def refresh(self) -> None:
        """With workers: write this process's watched gauges now (one process reads them at each scrape)."""
        for gauge, read in self._readers:
            gauge.set(read())

    def added(self, call_id: str) -> None:
        """A call is hosted here now (a `LiveListener`: the other workers' scrapes see it at once)."""
        self.refresh()

    def discarded(self, call_id: str) -> None:
        """A call is no longer hosted here."""
        self.refresh()

    def recorded(self, item: CallMessage | EventRecord) -> None:
        """One history entry or event a call stored."""
        if isinstance(item, CallMessage):
            role = _ROLES.get(item.role)
            if role is not None:
                self.turns.labels(role).inc()
            return
        if item.type == "turn_latency" and item.extras:
            for key, stage in STAGES.items():
                value = item.extras.get(key)
                if isinstance(value, int | float):
                    self.stages.labels(stage).observe(max(value, 0) / 1000)
        elif item.type == "audio_overflow":
            self.audio_drops.inc()
        elif item.type in _DROPS:
            self.drops.labels(_DROPS[item.type]).inc()
        if item.severity == "error":
            self.errors.labels(item.type).inc()

    def ended(self, reason: str) -> None:
        self.calls.labels(reason).inc()

    def refused_join(self, cause: str) -> None:
        self.refused.labels(cause).inc()

    def render(self) -> bytes:
        """The exposition of this node: this process's metrics, or, with workers, the sum of every worker's."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        self.refresh()
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(merged)
