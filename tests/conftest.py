"""Session fixtures: real voxcall server processes on loopback ports, and the no-skip rule."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RunningServer:
    """A `voxcall serve` process on 127.0.0.1 with one API key."""

    url: str
    api_key: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)
    """The `voxcall serve` process (for tests that signal it)."""

    def stop(self, *, kill: bool = False) -> None:
        """End the process: SIGTERM (a normal shutdown), or SIGKILL with `kill` (a crash)."""
        assert self.process is not None
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=30)

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


async def create_database(url: str, prefix: str) -> str:
    """A new, empty PostgreSQL database next to the one at `url` (a SQLAlchemy asyncpg URL); its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.rsplit("/", 1)[0] + "/" + name


def fresh_database(url: str, prefix: str = "voxcall_test") -> str:
    """`create_database` from synchronous code (fixtures outside the event loop)."""
    return asyncio.run(create_database(url, prefix))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _voxcall(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voxcall", *args], env=env, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Assembled model weights shared by every server of the session (link it as DATA_DIR/models)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[object]:
    processes: list[subprocess.Popen[bytes]] = []
    models = models_dir

    def start(llm: str = "smollm2-135m", *, database_url: str | None = None, extra_env: dict[str, str] | None = None,
              data_dir: Path | None = None, restart: RunningServer | None = None) -> RunningServer:
        """Start a server; with `data_dir`, on that (earlier server's) data directory, as a restart would;
        with `restart`, a new process on that (stopped) server's data and API key."""
        if restart is not None:
            data_dir = restart.data_dir
        if data_dir is None:
            data_dir = tmp_path_factory.mktemp(f"server-{llm}")
            (data_dir / "models").symlink_to(models, target_is_directory=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOXCALL_DATA_DIR": str(data_dir), **(extra_env or {})}
        if database_url:
            env["VOXCALL_DATABASE_URL"] = database_url
        key = restart.api_key if restart else _voxcall("keys", "create", "--name", "tests", env=env).stdout.strip().splitlines()[-1]
        port = free_port()
        log = data_dir / "server.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "voxcall", "serve", "--host", "127.0.0.1", "--port", str(port), "--llm", llm],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/api/accounts/me", headers={"X-API-Key": key}, timeout=2).status_code == 200:
                    return RunningServer(url, key, data_dir, log, proc)
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server did not start in time:\n{log.read_text()[-4000:]}")

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def server(server_factory: object) -> RunningServer:
    """A server with the small SmolLM2 model: for protocol flows where content does not matter."""
    return server_factory()  # type: ignore[operator,no-any-return]


@pytest.fixture(scope="session")
def qwen_server(server_factory: object) -> RunningServer:
    """A server with the default Qwen2.5-Coder-1.5B model: for tool calling and sensible answers."""
    return server_factory("qwen2.5-1.5b")  # type: ignore[operator,no-any-return]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Skipped tests fail the run: a suite must never skip silently (VOXCALL_ALLOW_SKIPS=1 allows it locally)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and not os.environ.get("VOXCALL_ALLOW_SKIPS") and session.exitstatus == 0:
        if reporter:
            reporter.write_line(f"{len(skipped)} test(s) skipped: failing the run (VOXCALL_ALLOW_SKIPS=1 allows it)", red=True)
        session.exitstatus = 1
