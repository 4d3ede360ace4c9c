"""The model host: the embedded models (llama.cpp, Whisper, Piper) behind OpenAI-compatible endpoints.

`voxcall models serve` loads the models once and serves them to any number of call-plane
processes (`voxcall serve --models-url http://HOST:8001/v1`), which then load only Silero.

Why not llama-cpp-python's own server (`llama_cpp.server`): it loads its own `Llama` per
model and serialises requests behind one global lock, so it cannot share the fair
per-caller worker queue of `providers/workers.py`, the cancel-at-next-token of
`providers/llm_queue.py`, nor the grammar-constrained tool router of `providers/routing.py`
(its `tools=` support goes through chat formats, which made no tool calls with the
default model); it would need two more packages (sse-starlette, starlette-context) and
would still serve neither Whisper nor Piper. So this is a
thin FastAPI app over the providers `voxcall serve` itself uses.

Modules: `app` (the app, `load_models`), `chat` (chat completions), `speech`
(transcriptions, speech), `errors` (OpenAI's error shape), `cli` (the command).
"""

from __future__ import annotations

__all__: list[str] = []
