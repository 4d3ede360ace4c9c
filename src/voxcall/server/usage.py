"""Usage statistics from call facts: `CallUsage` and `ConcurrencyResponse` (pure functions).

A call's duration runs from `joined` to `ended` (nothing for a call never
joined or still live); an error is an end reason of connection_error or
system_error; nothing is billed by a self-hosted server, so billedMinutes is 0.
Days and hours are UTC. For concurrency, a call is active from `created` to
`ended` (or now) and joined from `joined` to `ended` (or now); each bucket has
the peak and the time-weighted average of both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from voxcall.protocol.platform import (
    CallStatistics,
    CallUsage,
    ConcurrencyBucket,
    ConcurrencyResponse,
    DailyCallStatistics,
    HourlyCallStatistics,
)
from voxcall.protocol.wire import format_duration
from voxcall.store.usage import CallSample

__all__ = ["BUCKETS", "MAX_BUCKETS", "SampleFilter", "call_usage", "concurrency", "duration_of"]

BUCKETS = {"minute": 60, "5min": 300, "hour": 3600, "day": 86400}
MAX_BUCKETS = 10_000
ERROR_REASONS = ("connection_error", "system_error")


def duration_of(sample: CallSample) -> float:
    if sample.joined is None or sample.ended is None:
        return 0.0
    return max(0.0, (sample.ended - sample.joined).total_seconds())


@dataclass(frozen=True, slots=True)
class SampleFilter:
    """The usage filters the database does not apply (agentIds and dates are applied there)."""

    duration_min: float | None = None
    duration_max: float | None = None
    time_of_day_start: time = time(0, 0, 0)
    time_of_day_end: time = time(23, 59, 59, 999999)
    metadata: dict[str, str] = field(default_factory=dict)
    voice: str | None = None

    def keeps(self, sample: CallSample) -> bool:
        duration = duration_of(sample)
        if self.duration_min is not None and duration < self.duration_min:
            return False
        if self.duration_max is not None and duration > self.duration_max:
            return False
        if not self.time_of_day_start <= sample.created.astimezone(UTC).time() <= self.time_of_day_end:
            return False
        if any(sample.metadata.get(k) != v for k, v in self.metadata.items()):
            return False
        return self.voice is None or (sample.voice or "").lower() == self.voice.lower()


def _statistics(samples: list[CallSample]) -> dict[str, object]:
    return {
        "total_count": len(samples),
        "error_count": sum(1 for s in samples if s.end_reason in ERROR_REASONS),
        "duration": format_duration(round(sum(duration_of(s) for s in samples), 3)),
        "joined_count": sum(1 for s in samples if s.joined is not None),
        "billed_minutes": 0.0,
    }


def call_usage(samples: Iterable[CallSample], keep: SampleFilter) -> CallUsage:
    """All-time, per-day and per-hour statistics of the samples the filter keeps (days and hours ascending)."""
    kept = [s for s in samples if keep.keeps(s)]
    days: dict[str, list[CallSample]] = {}
    hours: dict[tuple[str, int], list[CallSample]] = {}
    for sample in kept:
        created = sample.created.astimezone(UTC)
        days.setdefault(created.date().isoformat(), []).append(sample)
        hours.setdefault((created.date().isoformat(), created.hour), []).append(sample)
    return CallUsage(
        all_time=CallStatistics(**_statistics(kept)),
        daily=[DailyCallStatistics(date=d, **_statistics(days[d])) for d in sorted(days)],
        hourly=[HourlyCallStatistics(date=d, hour=h, **_statistics(hours[(d, h)])) for d, h in sorted(hours)],
    )


def _levels(intervals: list[tuple[float, float]], start: float, size: float, count: int, end: float) -> list[tuple[int, float]]:
    """(peak, time-weighted average) of how many intervals are open, per bucket; averages stop at `end`."""
    events = sorted([(s, 1) for s, e in intervals if e > s] + [(e, -1) for s, e in intervals if e > s])
    level, i, result = 0, 0, []  # ends sort before starts at the same instant
    for k in range(count):
        low = start + k * size
        high = low + size
        until = min(high, end) if end > low else high
        while i < len(events) and events[i][0] <= low:  # what changes at the very start belongs to this bucket
            level += events[i][1]
            i += 1
        peak, area, t = level, 0.0, low
        while i < len(events) and events[i][0] < high:
            at, change = events[i]
            area += level * (min(at, until) - min(t, until))
            t, level = at, level + change
            peak = max(peak, level)
            i += 1
        area += level * (until - min(t, until))
        result.append((peak, area / (until - low)))
    return result


def concurrency(samples: Iterable[CallSample], *, start: datetime, end: datetime, bucket: str, now: datetime) -> ConcurrencyResponse:
    """Peak and average active and joined calls per bucket from `start` (rounded down to a bucket) to `end`."""
    size = BUCKETS[bucket]
    first = start.timestamp() // size * size
    count = max(1, int(-(-(end.timestamp() - first) // size)))
    last = end.timestamp()
    samples = list(samples)
    totals = [(s.created.timestamp(), (s.ended or now).timestamp()) for s in samples]
    joined = [(s.joined.timestamp(), (s.ended or now).timestamp()) for s in samples if s.joined is not None]
    total_levels = _levels(totals, first, size, count, last)
    joined_levels = _levels(joined, first, size, count, last)
    return ConcurrencyResponse(time_series=[
        ConcurrencyBucket(
            timestamp=datetime.fromtimestamp(first, UTC) + timedelta(seconds=k * size),
            max_total_calls=total_levels[k][0], max_joined_calls=joined_levels[k][0],
            avg_total_calls=round(total_levels[k][1], 6), avg_joined_calls=round(joined_levels[k][1], 6),
        )
        for k in range(count)
    ])
