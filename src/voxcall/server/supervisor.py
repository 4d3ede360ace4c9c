"""`voxcall serve --workers N`: the call plane in N processes on one port, each a cluster member.

One process runs every call on one event loop, so one process uses one core. With
`--workers N` (`VOXCALL_WORKERS`) the `voxcall serve` process becomes a small
supervisor: it starts N worker processes (`voxcall serve ... --worker-index i`),
each binding the same host and port with `SO_REUSEPORT`, so the kernel spreads
new connections over them. Each worker is a full node of the cluster
(docs/deploy.md): its own node id in Redis, the shared PostgreSQL database, so
a call created through one worker is joined, reached and ended through any other.
That is also why N > 1 needs `VOXCALL_REDIS_URL` and a PostgreSQL database, and the
models on a model host (OpenAI-compatible URLs): N copies of the embedded models
would fight over the same cores.

Signals: SIGTERM and SIGINT are passed on to every worker (each drains as a single
node does: new joins refused with 1013, live calls run on for up to
`VOXCALL_DRAIN_SECONDS`; a second signal stops at once); the supervisor exits when
they all have. Under systemd use `KillMode=mixed`, so the signal reaches the
supervisor only and each worker gets it once. A worker that
dies on its own is started again, unless it dies within `EARLY_EXIT` seconds of
its start (a configuration error): then the others are stopped too, and the
supervisor exits with status 1. A worker whose supervisor is gone shuts down.

Metrics: a scrape of `/metrics` reaches one worker, so the supervisor gives its
workers a multiprocess directory of prometheus-client (`PROMETHEUS_MULTIPROC_DIR`,
a fresh temporary directory, removed when the supervisor exits): each worker writes
its values there and answers a scrape with the sum of all of them
(server/metrics.py). When a worker exits its live gauges (calls hosted, the node's
capacity) are removed from the sum (`mark_process_dead`); its counters stay in it.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from voxcall.config import Settings, with_metrics_dir

__all__ = ["EARLY_EXIT", "Supervisor", "reuse_port_socket", "worker_problem"]

logger = logging.getLogger(__name__)

EARLY_EXIT = 10.0
"""A worker that exits within this many seconds of its start is taken for a broken configuration."""


def worker_problem(settings: Settings) -> str | None:
    """Why these settings cannot run `settings.workers` > 1 worker processes, or None."""
    n = settings.workers
    if n <= 1:
        return None
    if not settings.redis_url:
        return (f"--workers {n} needs VOXCALL_REDIS_URL: every worker is a cluster node, and live calls are "
                "reached across workers through Redis (docs/deploy.md)")
    url = settings.database_url or ""
    if not url.startswith("postgresql"):
        return (f"--workers {n} needs a shared PostgreSQL database: set VOXCALL_DATABASE_URL="
                "postgresql+asyncpg://user:password@host/db (SQLite is for one process)")
    if settings.llm != "openai" or not settings.llm_url:
        return (f"--workers {n} runs the call plane only: serve the models once (`voxcall models serve`) and pass "
                "--models-url (or set VOXCALL_LLM_URL); N copies of the embedded models would share the same cores")
    if settings.speech and not (settings.stt_url and settings.tts_url):
        return (f"--workers {n} runs the call plane only: pass --models-url, or set VOXCALL_STT_URL and "
                "VOXCALL_TTS_URL to OpenAI-compatible speech servers, or run text-only with --no-speech")
    return None


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, so several processes can listen on the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Starts and watches the worker processes of one node. `run()` blocks until they have all exited."""

    def __init__(self, argv: Sequence[str], settings: Settings) -> None:
        self._argv = list(argv)
        self._settings = settings
        self._workers: list[_Worker] = []
        self._stopping = False
        self._failed = False
        self._reservation = reuse_port_socket(settings.host, settings.port)  # resolves port 0, holds the port
        self.port: int = self._reservation.getsockname()[1]
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="voxcall-metrics-"))
        """The workers' prometheus-client multiprocess directory: theirs alone, empty at the start."""

    def command(self, index: int) -> list[str]:
        """The command line of worker `index`: this command, with its index and the resolved port."""
        return [sys.executable, "-m", "voxcall", *self._argv, "--worker-index", str(index), "--port", str(self.port)]

    def start(self) -> None:
        """Start every worker and take over SIGTERM and SIGINT."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self._workers = [self._spawn(i) for i in range(self._settings.workers)]

    def wait_ready(self, timeout: float = 600.0) -> bool:
        """Wait until every worker answers /readyz (each is a node with its own id); False if one exited first."""
        import httpx

        host = "127.0.0.1" if self._settings.host in ("0.0.0.0", "") else self._settings.host
        host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
        url = f"http://{host}:{self.port}/readyz"
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(seen) < len(self._workers) and time.monotonic() < deadline:
            if self._stopping or any(w.process.poll() is not None for w in self._workers):
                return False
            try:  # a new connection each time: the kernel picks a worker for each
                body = httpx.get(url, timeout=2.0, headers={"Connection": "close"}).json()
                seen.add(str(body["load"]["node"]))
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                time.sleep(0.2)
        return len(seen) >= len(self._workers)

    def run(self) -> int:
        """Watch the workers until all have exited; 0, or 1 when one failed at start-up."""
        try:
            while self._workers:
                time.sleep(0.2)
                self._reap()
        finally:
            self._reservation.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return 1 if self._failed else 0

    def _spawn(self, index: int) -> _Worker:
        # A session of its own: Ctrl-C in a terminal reaches the supervisor only, which passes it on once.
        process = subprocess.Popen(self.command(index), start_new_session=True, env=with_metrics_dir(self.metrics_dir))
        logger.info("started worker %d (pid %d) on port %d", index, process.pid, self.port)
        return _Worker(index, process)

    def _reap(self) -> None:
        for worker in list(self._workers):
            code = worker.process.poll()
            if code is None:
                continue
            self._workers.remove(worker)
            mark_process_dead(worker.process.pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]  # leaves the sums
            if self._stopping:
                continue
            if time.monotonic() - worker.started < EARLY_EXIT:
                logger.error("worker %d exited at start-up (status %s): stopping the node", worker.index, code)
                self._failed = True
                self._stop(signal.SIGTERM)
                continue
            logger.error("worker %d exited (status %s): starting it again", worker.index, code)
            self._workers.append(self._spawn(worker.index))

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        # Every signal is passed on, so a second one stops the workers at once, as it does one process.
        logger.warning("%s: stopping %d worker(s)", signal.Signals(sig).name, len(self._workers))
        self._stop(sig)

    def _stop(self, sig: int) -> None:
        self._stopping = True
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.send_signal(sig)
