"""/metrics of several workers: each worker process writes its values to the shared directory, a scrape sums them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from tests.server.test_ops import samples
from voxcall.config import METRICS_DIR_VARIABLE
from voxcall.server.metrics import CallMetrics

# One worker: hosts `live` calls under a limit of `limit`, has ended one call and stored one agent turn.
WORKER = """
import sys
from voxcall.protocol.rest import CallMessage
from voxcall.server.metrics import CallMetrics

live, limit, load = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
metrics = CallMetrics(sys.argv[4])
metrics.watch(live=lambda: live, max_calls=lambda: limit, load=lambda: load)
metrics.ended("hangup")
metrics.recorded(CallMessage(role="MESSAGE_ROLE_AGENT", text="hello"))
"""


def run_worker(directory: Path, live: int, limit: int, load: float) -> int:
    """Run one worker process to its end; its pid (its files stay in `directory`)."""
    env = {**os.environ, METRICS_DIR_VARIABLE: str(directory)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(live), str(limit), str(load), str(directory)], env=env)
    assert worker.wait(60) == 0
    return worker.pid


def test_a_scrape_sums_every_worker_and_a_dead_worker_leaves_the_live_gauges(tmp_path: Path) -> None:
    first = run_worker(tmp_path, live=2, limit=10, load=0.25)
    run_worker(tmp_path, live=3, limit=10, load=0.5)  # the later reading of the machine's load
    scrape = CallMetrics(tmp_path)  # the worker that takes the scrape: here with no calls of its own
    got = samples(scrape.render().decode())
    assert got[("voxcall_live_calls", ())] == 5
    assert got[("voxcall_node_max_calls", ())] == 20
    assert got[("voxcall_node_load", ())] == 0.5
    assert got[("voxcall_calls_ended_total", (("end_reason", "hangup"),))] == 2
    assert got[("voxcall_turns_total", (("role", "agent"),))] == 2
    mark_process_dead(first, str(tmp_path))  # what the supervisor does when a worker exits
    got = samples(scrape.render().decode())
    assert got[("voxcall_live_calls", ())] == 3 and got[("voxcall_node_max_calls", ())] == 10
    assert got[("voxcall_calls_ended_total", (("end_reason", "hangup"),))] == 2  # what it counted stays counted


def test_one_process_reads_its_gauges_at_the_scrape() -> None:
    metrics = CallMetrics()
    live = [1]
    metrics.watch(live=lambda: live[0], max_calls=lambda: 0, load=lambda: 0.1)
    live[0] = 4
    assert samples(metrics.render().decode())[("voxcall_live_calls", ())] == 4
