"""Call-plane load: N concurrent streaming voice calls against one node, with instant loopback backends.

Starts a tiny OpenAI-compatible server on loopback whose LLM (`/chat/completions`, streamed),
STT (`/audio/transcriptions`) and TTS (`/audio/speech`, PCM) answer at once, so what is
measured is voxcall's call plane alone: WebSocket frames, resampling, Silero VAD, turn-taking,
the engine and the database. Then starts one node, `voxcall serve` (`--workers 1`) or one
`voxcall serve --workers N` group (the default: one worker per core, on PostgreSQL and Redis,
started with scripts/test-services.sh and scripts/redis.sh unless URLs are given), and for each N:

  * creates and joins N calls (`serverWebSocket`, 16 kHz in and out), each streaming spoken
    prompts (tests/fixtures/speech) with silence between them, looped, in real time as 20 ms
    binary frames, each call starting at another point of the loop; the VAD finds the turns, the
    instant backends answer, and the agent's audio streams back;
  * every call sends the protocol's `ping` about every 0.5 s: the `pong` round trip is the
    latency figure (it waits behind every frame the server is handling);
  * every call plays the agent's audio as a client would, from its first chunk on: an
    underrun is a chunk that arrives after all audio before it would have finished playing;
  * the server's CPU (all its processes; 100% = one core) and RSS are read from /proc.

A round "degrades" when the ping p99 is 20 ms or more (`--threshold-ms`), any underrun
happens, or a call fails; the last line names the largest N that did not.

`--voice-talkers 1,2,4` instead starts `voxcall serve` with the embedded models (Qwen, Whisper,
Piper; `--llm`) and prints the voice-to-voice medians with 1, 2 and 4 concurrent talkers
(benchmarks/voice_latency.py's `run_call`).

    .venv/bin/python benchmarks/load.py [--calls 25,50,100,150,200,250] [--seconds 30] [--workers auto|1|N]
                                        [--event-loop auto|asyncio|auto,asyncio]
    .venv/bin/python benchmarks/load.py --voice-talkers 1,2,4 [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import uvloop
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from voxcall.audio import read_wav, resample  # noqa: E402 (after the path to the sibling benchmarks)

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
PROMPTS = ["capital.wav", "weather.wav", "joke.wav", "timer.wav"]
RATE = 16000
FRAME = RATE // 50 * 2  # 20 ms of s16le
TICK = 0.005  # the sender wakes every 5 ms and serves a quarter of the calls: frames arrive spread out
GAP = 3.5  # seconds of silence after each prompt: the turn ends, the agent answers and finishes
REPLY = "Sure, here is a short answer for you."
TTS_RATE = 24000
TTS_SECONDS = 0.6  # of tone per /audio/speech request (one clause)
PING_EVERY = 0.5
WARMUP = 3.0
LABEL = "instant loopback backends (LLM, STT, TTS answer at once)"


# ------------------------------------------------------------------ instant backends


def _tone(seconds: float) -> bytes:
    t = np.arange(int(TTS_RATE * seconds)) / TTS_RATE
    return (np.sin(2 * np.pi * 220 * t) * 6000).astype("<i2").tobytes()


def _sse(text: str) -> bytes:
    words = text.split(" ")
    events = [{"choices": [{"index": 0, "delta": {"content": (" " if i else "") + w}}]} for i, w in enumerate(words)]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


ANSWERS = {
    "/v1/chat/completions": (b"text/event-stream", _sse(REPLY)),
    "/v1/audio/transcriptions": (b"application/json", json.dumps({"text": "What is the weather like today?"}).encode()),
    "/v1/audio/speech": (b"audio/pcm", _tone(TTS_SECONDS)),
}


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 with keep-alive: read a request (Content-Length body), answer it at once."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next((int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0)
            await reader.readexactly(length)
            kind, body = ANSWERS.get(path, (b"application/json", b'{"error": "not found"}'))
            status = b"200 OK" if path in ANSWERS else b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + kind + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
        pass
    finally:
        writer.close()


async def _serve_backends() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def start_backends() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-backends"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


# ------------------------------------------------------------------ the node


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service(script: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / script)], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/{script} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def fresh_database(url: str) -> str:
    import asyncpg

    name = f"voxcall_load_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return url.rsplit("/", 1)[0] + "/" + name


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    url: str
    key: str
    workers: int
    loop: str = "auto"

    def pids(self) -> list[int]:
        """The server's processes: the one started, and its children (the workers)."""
        pids = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_node(backends: str, workers: int, args: argparse.Namespace, loop: str = "auto") -> Node:
    data = Path(tempfile.mkdtemp(prefix="voxcall-load-"))
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOXCALL_DATA_DIR": str(data), "VOXCALL_LLM": "openai",
           "VOXCALL_LLM_URL": backends, "VOXCALL_STT_URL": backends, "VOXCALL_TTS_URL": backends,
           "VOXCALL_MAX_CALLS": "0", "VOXCALL_CALLS_PER_SECOND": "0", "VOXCALL_CALLS_PER_MINUTE": "0",
           "VOXCALL_REQUESTS_PER_SECOND": "0", "VOXCALL_DRAIN_SECONDS": "0", "VOXCALL_WORKERS": str(workers),
           "VOXCALL_EVENT_LOOP": loop}
    if workers > 1:
        env["VOXCALL_DATABASE_URL"] = fresh_database(args.database_url or _service("test-services.sh"))
        env["VOXCALL_REDIS_URL"] = args.redis_url or _service("redis.sh")
    key = subprocess.run([sys.executable, "-m", "voxcall", "keys", "create"], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    log = open(os.environ.get("VOXCALL_BENCH_LOG", os.devnull), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "voxcall", "serve", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    nodes: set[str] = set()
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("the server exited at start-up (set VOXCALL_BENCH_LOG=file to see why)")
        try:
            r = httpx.get(f"{url}/readyz", headers={"Connection": "close"}, timeout=2)
            if r.status_code == 200:
                nodes.add(r.json()["load"]["node"])
                if len(nodes) >= workers:
                    return Node(proc, url, key, workers, loop)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


# ------------------------------------------------------------------ one call


def speech_loop() -> bytes:
    """The prompts with GAP seconds of silence after each, 16 kHz, cut to whole 20 ms frames."""
    parts = []
    for name in PROMPTS:
        pcm, rate = read_wav(str(FIXTURES / name))
        parts += [resample(pcm, rate, RATE), b"\0" * int(RATE * GAP) * 2]
    loop = b"".join(parts)
    return loop[: len(loop) // FRAME * FRAME]


@dataclass
class CallStats:
    rtts: list[float] = field(default_factory=list)
    underruns: int = 0
    gap_max: float = 0.0
    replies: int = 0
    audio_seconds: float = 0.0
    failed: str | None = None
    measuring: bool = False
    _until: float | None = None  # when the audio received so far will have played out


class LoadCall:
    def __init__(self, ws: websockets.ClientConnection, loop_audio: bytes, offset: int) -> None:
        self.ws = ws
        self.audio = loop_audio
        self.position = offset
        self.stats = CallStats()
        self.start = time.monotonic()
        self.next_ping = self.start + random.uniform(0, PING_EVERY)
        self.sent = 0
        self.reader = asyncio.create_task(self._read())

    async def send_due(self, now: float) -> None:
        due = min(int((now - self.start) / 0.02) + 1, self.sent + 5)  # catch up at most 100 ms at once
        while self.sent < due:
            chunk = self.audio[self.position : self.position + FRAME]
            self.position = (self.position + FRAME) % len(self.audio)
            await self.ws.send(chunk)
            self.sent += 1
        if now >= self.next_ping:
            self.next_ping = now + PING_EVERY * random.uniform(0.8, 1.2)
            await self.ws.send(json.dumps({"type": "ping", "timestamp": time.monotonic()}))

    async def _read(self) -> None:
        stats = self.stats
        try:
            async for frame in self.ws:
                now = time.monotonic()
                if isinstance(frame, bytes):
                    self._play(frame, now)
                    continue
                message = json.loads(frame)
                kind = message["type"]
                if kind == "pong":
                    if stats.measuring:
                        stats.rtts.append(now - message["timestamp"])
                elif kind in ("state", "playback_clear_buffer"):
                    stats._until = None  # a new utterance (or none) starts: the player starts afresh
                elif kind == "transcript" and message.get("role") == "agent" and message.get("final"):
                    stats.replies += stats.measuring
        except websockets.ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 1000:
                stats.failed = f"closed {exc.rcvd.code if exc.rcvd else 'abruptly'}"

    def _play(self, chunk: bytes, now: float) -> None:
        stats = self.stats
        length = len(chunk) / 2 / RATE
        if stats._until is not None and now > stats._until:
            if stats.measuring:
                stats.underruns += 1
                stats.gap_max = max(stats.gap_max, now - stats._until)
            stats._until = None
        stats._until = (stats._until if stats._until is not None else now) + length
        stats.audio_seconds += length * stats.measuring

    async def hang_up(self) -> None:
        try:
            await self.ws.send(json.dumps({"type": "hang_up"}))
            async with asyncio.timeout(10):
                await self.reader
        except (websockets.ConnectionClosed, TimeoutError):
            pass
        await self.ws.close()
        self.reader.cancel()


CALL = {"systemPrompt": "You are a helpful voice assistant.", "firstSpeakerSettings": {"user": {}}, "recordingEnabled": False,
        "medium": {"serverWebSocket": {"inputSampleRate": RATE, "outputSampleRate": RATE}}}


async def join(client: httpx.AsyncClient, loop_audio: bytes) -> LoadCall:
    r = await client.post("/api/calls", json=CALL)
    r.raise_for_status()
    ws = await websockets.connect(r.json()["joinUrl"], max_size=None, open_timeout=30, compression=None)
    offset = random.randrange(len(loop_audio) // FRAME) * FRAME
    async with asyncio.timeout(30):
        while True:
            message = await ws.recv()
            if isinstance(message, str) and json.loads(message) == {"type": "state", "state": "listening"}:
                return LoadCall(ws, loop_audio, offset)


# ------------------------------------------------------------------ one round


@dataclass
class Round:
    calls: int
    joined: int
    p50: float
    p99: float
    pmax: float
    underruns: int
    gap_max: float
    replies: int
    cpu: float
    rss_per_call: float
    rss_total: float
    client_cpu: float
    failed: int

    def degraded(self, threshold: float) -> bool:
        return self.p99 >= threshold or self.underruns > 0 or self.failed > 0 or self.joined < self.calls


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def _sender(calls: list[LoadCall], stop: asyncio.Event) -> None:
    """Every TICK, send what is due of a quarter of the calls (each call in real time from its join)."""
    start, tick = time.monotonic(), 0
    while not stop.is_set():
        now = time.monotonic()
        for call in calls[tick % 4 :: 4]:
            if call.stats.failed is None:
                try:
                    await call.send_due(now)
                except websockets.ConnectionClosed:
                    call.stats.failed = call.stats.failed or "closed while sending"
        tick += 1
        await asyncio.sleep(max(0.0, start + tick * TICK - time.monotonic()))


async def run_round(node: Node, n: int, seconds: float, loop_audio: bytes) -> Round:
    baseline_rss = node.rss_bytes()
    calls: list[LoadCall] = []
    stop = asyncio.Event()
    sender = asyncio.create_task(_sender(calls, stop))
    async with httpx.AsyncClient(base_url=node.url, headers={"X-API-Key": node.key}, timeout=60,
                                 limits=httpx.Limits(max_connections=20)) as client:
        for first in range(0, n, 25):  # joined 25 at a time, each call streaming as soon as it is in
            results = await asyncio.gather(*(join(client, loop_audio) for _ in range(first, min(n, first + 25))),
                                           return_exceptions=True)
            calls += [c for c in results if isinstance(c, LoadCall)]
    gc.collect()
    gc.freeze()  # the client's own collector pauses would show up as the server's latency
    await asyncio.sleep(WARMUP)
    for call in calls:
        call.stats.measuring = True
    cpu0, wall0, client0 = node.cpu_seconds(), time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    cpu, wall, client_cpu = node.cpu_seconds() - cpu0, time.monotonic() - wall0, time.process_time() - client0
    rss = node.rss_bytes()
    for call in calls:
        call.stats.measuring = False
    stop.set()
    await sender
    await asyncio.gather(*(call.hang_up() for call in calls))
    rtts = [r * 1000 for call in calls for r in call.stats.rtts]
    await asyncio.sleep(2.0)  # the server finishes ending the calls before the next round
    return Round(calls=n, joined=len(calls), p50=_percentile(rtts, 0.5), p99=_percentile(rtts, 0.99),
                 pmax=max(rtts, default=math.nan), underruns=sum(c.stats.underruns for c in calls),
                 gap_max=max((c.stats.gap_max for c in calls), default=0.0) * 1000,
                 replies=sum(c.stats.replies for c in calls), cpu=100 * cpu / wall, rss_per_call=(rss - baseline_rss) / max(1, len(calls)),
                 rss_total=rss, client_cpu=100 * client_cpu / wall, failed=sum(c.stats.failed is not None for c in calls))


# ------------------------------------------------------------------ the VAD's share


async def _vad_alone(streams: int, loop_audio: bytes, seconds: float) -> float:
    """CPU seconds per second (all threads of this process) of `streams` Silero streams batched as a worker
    batches them, fed the calls' audio in real time, and nothing else."""
    from voxcall.providers.vad_batch import WINDOW, SileroBatch

    batch = SileroBatch()
    try:
        frame = 2 * WINDOW
        vads = [batch() for _ in range(streams)]
        starts = [random.randrange(len(loop_audio) // frame) * frame for _ in range(streams)]
        offsets = [random.uniform(0, 0.032) for _ in range(streams)]
        sent = [0] * streams
        loop = asyncio.get_running_loop()
        begin, cpu0 = loop.time(), time.process_time()
        while (now := loop.time() - begin) < seconds:
            for i, vad in enumerate(vads):
                while sent[i] * 0.032 + offsets[i] <= now:
                    at = (starts[i] + sent[i] * frame) % (len(loop_audio) - frame)
                    vad.submit(loop_audio[at : at + frame], lambda p: None)  # even: whole s16le samples
                    sent[i] += 1
            await asyncio.sleep(0.004)
        return (time.process_time() - cpu0) / seconds
    finally:
        batch.close()


def print_vad_share(counts: list[int], workers: int, loop_audio: bytes) -> None:
    """The floor under every round: what the VAD alone costs at each N, on this machine."""
    print("Silero VAD alone at each N (every call's 31 frames a second, batched as a worker batches them, in this "
          "process with nothing else running: a lower bound, as in a busy worker the model's weights are colder "
          "in the CPU's caches):")
    for n in counts:
        per_worker = max(1, round(n / workers))
        share = uvloop.run(_vad_alone(per_worker, loop_audio, 3.0))
        frames = per_worker * 31.25
        print(f"  {n:>4} calls: {workers} x {per_worker} streams, {100 * share * workers:.0f}% of a core "
              f"({1e6 * share / frames:.0f} µs a frame)", flush=True)


# ------------------------------------------------------------------ output

HEADER = (f"{'calls':>5} {'joined':>6} {'ping p50':>9} {'p99':>8} {'max':>8} {'underruns':>9} {'worst gap':>9} "
          f"{'replies':>7} {'server CPU':>10} {'RSS/call':>9} {'RSS':>8} {'client CPU':>10}  verdict")


def row(r: Round, threshold: float) -> str:
    verdict = "degraded" if r.degraded(threshold) else "ok"
    if r.failed:
        verdict += f" ({r.failed} calls failed)"
    return (f"{r.calls:>5} {r.joined:>6} {r.p50:>7.1f}ms {r.p99:>6.1f}ms {r.pmax:>6.0f}ms {r.underruns:>9} "
            f"{r.gap_max:>7.0f}ms {r.replies:>7} {r.cpu:>9.0f}% {r.rss_per_call / 2**20:>7.2f}MB "
            f"{r.rss_total / 2**20:>6.0f}MB {r.client_cpu:>9.0f}%  {verdict}")


def print_legend(node: Node, seconds: float, threshold: float) -> None:
    kind = f"voxcall serve --workers {node.workers} (PostgreSQL, Redis)" if node.workers > 1 else "voxcall serve (one process, SQLite)"
    print(f"\nBackends: {LABEL}")
    print(f"Node: {kind}, VOXCALL_EVENT_LOOP={node.loop}, on a {os.cpu_count()}-core machine; {seconds:g} s measured per "
          f"round after {WARMUP:g} s of warm-up. The load client and the backends run on uvloop.")
    print("Each call: 16 kHz PCM, 20 ms frames in real time (spoken prompts, 3.5 s pauses, looped), VAD on, ping every ~0.5 s.")
    print("ping = ping/pong round trip; underrun = an agent audio chunk arriving after the audio before it played out;")
    print("server CPU: all voxcall processes, 100% = one core; RSS/call = (RSS with the calls - RSS before) / calls.")
    print(f"degraded = ping p99 >= {threshold:g} ms, or any underrun, or a call that failed or could not join.\n")


def load_benchmark(args: argparse.Namespace) -> None:
    counts = [int(c) for c in str(args.calls).split(",")]
    workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    backends, url = start_backends()
    loop_audio = speech_loop()
    summary: list[str] = []
    if args.vad_share:
        print_vad_share(counts, workers, loop_audio)
    try:
        for loop in str(args.event_loop).split(","):
            node = start_node(url, workers, args, loop)
            try:
                print_legend(node, args.seconds, args.threshold_ms)
                print(HEADER, flush=True)
                best = None
                for n in counts:
                    result = uvloop.run(run_round(node, n, args.seconds, loop_audio))
                    print(row(result, args.threshold_ms), flush=True)
                    if not result.degraded(args.threshold_ms):
                        best = n if best is None else max(best, n)
            finally:
                node.stop()
            summary.append(f"Largest N with nothing degraded, VOXCALL_EVENT_LOOP={loop}: {best if best is not None else 'none'}")
        print("", *summary, f"(goal: 200 calls, p99 < 20 ms, zero underruns; {LABEL})", sep="\n")
    finally:
        backends.terminate()


# ------------------------------------------------------------------ voice talkers


def voice_talkers(args: argparse.Namespace) -> None:
    from voice_latency import PROMPTS as SPOKEN
    from voice_latency import run_call, start_server

    counts = [int(c) for c in str(args.voice_talkers).split(",")]
    proc, url, key = start_server(args.llm)
    try:
        print(f"\nVoice-to-voice with the embedded models ({args.llm}, Whisper base, Piper joe) on one `voxcall serve`; "
              f"{args.rounds} round(s) of {len(SPOKEN)} prompts per talker\n")
        print(f"{'talkers':>7} {'turns':>6} {'median':>8} {'p90':>8} {'max':>8}")
        for n in counts:
            async def talk(n: int = n) -> list[list[dict[str, float]]]:
                return await asyncio.gather(*(run_call(url, key, args.rounds, quiet=True) for _ in range(n)))

            v2v = sorted(r["v2v"] for results in asyncio.run(talk()) for r in results)
            if not v2v:
                print(f"{n:>7} {0:>6}  no turn was answered")
                continue
            print(f"{n:>7} {len(v2v):>6} {statistics.median(v2v):>6.0f}ms {_percentile(v2v, 0.9):>6.0f}ms "
                  f"{v2v[-1]:>6.0f}ms", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Figures are printed, nothing is asserted.")
    parser.add_argument("--calls", default="25,50,100,150,200,250", help="comma-separated call counts, one round each")
    parser.add_argument("--seconds", type=float, default=30.0, help=f"measured seconds per round (after {WARMUP:g} s of warm-up)")
    parser.add_argument("--workers", default="auto", help="worker processes of the node: auto (one per core) or a number; "
                        "more than 1 runs on PostgreSQL and Redis")
    parser.add_argument("--event-loop", default="auto", help="the node's VOXCALL_EVENT_LOOP, or several to compare "
                        "(auto,asyncio): one node and one set of rounds each, side by side")
    parser.add_argument("--no-vad-share", dest="vad_share", action="store_false",
                        help="skip the first section: the VAD's own CPU at each N, measured in this process")
    parser.add_argument("--threshold-ms", type=float, default=20.0, help="ping p99 at or above which a round is degraded")
    parser.add_argument("--database-url", help="PostgreSQL server URL for --workers > 1 (default: scripts/test-services.sh)")
    parser.add_argument("--redis-url", help="Redis URL for --workers > 1 (default: scripts/redis.sh)")
    parser.add_argument("--voice-talkers", help="instead: voice-to-voice medians with the embedded models, e.g. 1,2,4")
    parser.add_argument("--rounds", type=int, default=1, help="with --voice-talkers: rounds of prompts per talker")
    parser.add_argument("--llm", default="qwen2.5-1.5b", choices=["qwen2.5-1.5b", "smollm2-135m"],
                        help="with --voice-talkers: the embedded LLM")
    parser.add_argument("--serve-backends", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backends:
        uvloop.run(_serve_backends())
    elif args.voice_talkers:
        voice_talkers(args)
    else:
        load_benchmark(args)


if __name__ == "__main__":
    main()
