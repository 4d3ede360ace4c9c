"""Text latency: what the server adds on top of the model's own time to first token.

For each prompt, interleaved and warm:
  * model TTFT: the embedded LLM streams [system, user] directly, time to its first text;
  * server TTFT: a client on a fresh call sends `user_text_message` over the join
    WebSocket (loopback), time to the first agent `transcript` message;
both with the same model instance and the same messages. Prints per-prompt
figures, medians, the ratio and the absolute overhead.

    .venv/bin/python benchmarks/text_latency.py [--llm qwen2.5-1.5b|smollm2-135m] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
import websockets

from voxcall.config import Settings
from voxcall.providers.base import ChatMessage, TextDelta
from voxcall.server.app import build_services, create_app, load_llm

SYSTEM = "You are a helpful voice assistant. Answer in one short sentence."
PROMPTS = [
    "Hello, how are you?",
    "What is the capital of France?",
    "Suggest something fun to do on a rainy afternoon.",
    "How many legs does a spider have?",
    "Give me a tip for sleeping better.",
]


async def model_ttft(llm: object, prompt: str) -> float:
    messages = [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)]
    started = time.perf_counter()
    stream = llm.stream(messages, [], temperature=0.0)  # type: ignore[attr-defined]
    try:
        async for event in stream:
            if isinstance(event, TextDelta) and event.text:
                return time.perf_counter() - started
    finally:
        await stream.aclose()
    raise RuntimeError("the model produced no text")


async def server_ttft(api: httpx.AsyncClient, prompt: str) -> float:
    body = {"systemPrompt": SYSTEM, "firstSpeakerSettings": {"user": {}}, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT"}
    call = (await api.post("/calls", json=body)).json()
    async with websockets.connect(call["joinUrl"]) as ws:
        while json.loads(await ws.recv()) != {"type": "state", "state": "listening"}:
            pass
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "user_text_message", "text": prompt}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "transcript" and message["role"] == "agent":
                elapsed = time.perf_counter() - started
                break
        while not (message["type"] == "transcript" and message["role"] == "agent" and message["final"]):
            message = json.loads(await ws.recv())  # let the reply finish so the next turn starts on an idle model
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", default="qwen2.5-1.5b", choices=["qwen2.5-1.5b", "smollm2-135m"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    data = Path(tempfile.mkdtemp(prefix="voxcall-bench-"))
    cache = Settings().data_dir  # the weights `make run` assembled
    settings = Settings(data_dir=data, llm=args.llm)
    llm = load_llm(settings.model_copy(update={"data_dir": cache}))
    services = await build_services(settings, llm=llm)
    key, _ = await services.store.create_api_key("bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services=services), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api", headers={"X-API-Key": key}, timeout=60) as api:
        await model_ttft(llm, "Warm up.")
        await server_ttft(api, "Warm up.")
        direct: list[float] = []
        served: list[float] = []
        print(f"model: {args.llm}   rounds: {args.rounds}   prompts: {len(PROMPTS)}")
        print(f"{'prompt':52} {'model ms':>9} {'server ms':>10} {'ratio':>6}")
        for _ in range(args.rounds):
            for prompt in PROMPTS:
                d = await model_ttft(llm, prompt)
                v = await server_ttft(api, prompt)
                direct.append(d)
                served.append(v)
                print(f"{prompt[:52]:52} {d * 1000:9.1f} {v * 1000:10.1f} {v / d:6.2f}")
    md, ms = statistics.median(direct), statistics.median(served)
    overhead = statistics.median(v - d for d, v in zip(direct, served, strict=True))
    print(f"\nmedian model TTFT {md * 1000:.1f} ms | median server TTFT {ms * 1000:.1f} ms | "
          f"ratio {ms / md:.3f} | median added by the server {overhead * 1000:.1f} ms")
    server.should_exit = True
    await serving
    await services.close()


if __name__ == "__main__":
    asyncio.run(main())
