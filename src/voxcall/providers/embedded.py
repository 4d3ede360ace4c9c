"""The embedded LLM: llama-cpp-python running a GGUF model in this process.

One `Llama` per process, used only from ONE worker thread and under one lock, so its
single KV cache is never shared by two generations at once (STYLE.md 8.5 rule 5).
Tokens go back to the event loop through a queue; cancelling the consumer sets a flag
that the worker checks after every token.

Prompt layout, for KV-cache reuse: the system prompt and tool instructions come first,
then the history, then the new turn. llama-cpp-python keeps the longest token prefix
shared with the previous evaluation, so a later turn only evaluates what is new.
If several calls with different system prompts share the model, they evict each other.

Tool calls use the JSON router of `routing.py` (MODELS.md: `tools=` produced no calls
with Qwen 1.5B; a grammar-constrained router was 5/5).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxcall.errors import ProviderError
from voxcall.providers import routing
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.models import LLMName, Progress, llm_model_path

__all__ = ["LlamaLLM", "load_llm"]

logger = logging.getLogger(__name__)

_END = object()
_CONTEXT_MARGIN = 16  # tokens kept free beyond max_tokens for the forced JSON pieces
_ARGUMENTS_MAX_TOKENS = 256  # tool arguments are not limited by max_tokens, which is about speech
_MAX_TOKEN_CHARS = 32  # no token is longer: turns beyond budget * this many characters cannot fit
_DROP_STEP = 16  # turns left out of a long prompt go in steps of this many (see _prompt_tokens)


def load_llm(name: LLMName, *, cache_dir: Path, n_threads: int = 2, progress: Progress | None = None) -> LlamaLLM:
    """Assemble and verify the weights of `name` (see `models.py`), then load them. Blocking."""
    return LlamaLLM(llm_model_path(name, cache_dir, progress), name=name, n_threads=n_threads)


class _Channel:
    """Carries events from the worker thread to the event loop; `stopped` is the cancel flag.

    At most `WINDOW` items wait unread: a consumer that stops reading (a voice reply
    synthesising its first clause) pauses generation instead of fighting it for the
    two cores; it resumes as soon as the consumer reads again.
    """

    WINDOW = 4

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._slots = threading.Semaphore(self.WINDOW)
        self.stopped = threading.Event()

    def put(self, item: object) -> None:
        """Called from the worker thread; waits while `WINDOW` items are unread (never once stopped)."""
        while not self._slots.acquire(timeout=0.05):
            if self.stopped.is_set():
                return
        if self.stopped.is_set():
            return
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.stopped.set()

    async def get(self) -> object:
        item = await self._queue.get()
        self._slots.release()
        return item


@dataclass(frozen=True, slots=True)
class _Request:
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...]
    temperature: float
    max_tokens: int


class LlamaLLM:
    """An `LLM` backed by llama-cpp-python. Loading is blocking; construct it off the event loop.

    Args:
        model_path: a verified GGUF file (see `models.llm_model_path`).
        name: the model's name, reported as `self.name`.
        n_threads: CPU threads for prompt evaluation and generation.
        n_ctx: context length in tokens.
    """

    def __init__(self, model_path: Path, *, name: str, n_threads: int = 2, n_ctx: int = 4096) -> None:
        llama_cpp, formatter_class = _import_llama_cpp()
        self.name = name
        self._llama_cpp = llama_cpp
        started = time.perf_counter()
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=0,
                verbose=False,
            )
        except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError/OSError
            raise ProviderError(f"cannot load {model_path}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ProviderError(f"{model_path} has no chat template")
        eos = self._llama.detokenize([self._llama.token_eos()], special=True).decode("utf-8", "replace")
        self._format = formatter_class(template=template, eos_token=eos, bos_token="")
        self._n_ctx = n_ctx
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{name}")
        self._closed = threading.Event()
        logger.info("loaded %s in %.2f s", name, self.load_seconds)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> AsyncIterator[LLMEvent]:
        """Yield text deltas as tokens are sampled, or one `ToolCall` at the end.

        Cancellation-safe: closing or cancelling the consumer stops generation after the
        current token and frees the model for the next request (a prompt already being
        evaluated is finished first); nothing is left queued. Concurrent calls run one
        after another. Raises `ProviderError` when llama.cpp fails, the prompt cannot fit
        the context, or the model has been closed.
        """
        request = _Request(tuple(messages), tuple(tools), temperature, max_tokens)
        channel = _Channel(asyncio.get_running_loop())
        try:
            self._executor.submit(self._run, request, channel)
        except RuntimeError as exc:  # the executor was shut down by close()
            raise ProviderError(f"{self.name} is closed") from exc
        try:
            while (item := await channel.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            channel.stopped.set()

    async def warm_up(self, system_prompt: str = "", tools: Sequence[ToolSpec] = ()) -> None:
        """Evaluate the system prompt and tool instructions so the first turn starts warm.

        Cancellation-safe in the same way as `stream()`.
        """
        if not system_prompt and not tools:
            return
        messages = (ChatMessage("system", system_prompt),) if system_prompt else ()
        async for _ in self.stream(messages, tools, max_tokens=0):
            pass

    async def prefill(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> None:
        """Evaluate a conversation so far into the KV cache, so the next turn only reads what is new.

        The engine calls this while the user has the floor. Cancellation-safe like `stream()`.
        """
        async for _ in self.stream(messages, tools, max_tokens=0):
            pass

    def close(self) -> None:
        """Stop generating, wait for the worker thread and free the model. Blocking.

        The running request and any waiting ones end with `ProviderError`.
        """
        self._closed.set()
        self._executor.shutdown(wait=True)
        self._llama.close()

    # --- worker thread -------------------------------------------------------------------

    def _run(self, request: _Request, channel: _Channel) -> None:
        with self._lock:
            try:
                self._check_open()
                if not channel.stopped.is_set():
                    self._generate(request, channel)
            except ProviderError as exc:
                channel.put(exc)
            except Exception as exc:  # everything from llama.cpp becomes ProviderError
                # Only the type: the text of some errors (UnicodeEncodeError) holds the whole prompt.
                error = ProviderError(f"llama.cpp generation failed: {type(exc).__name__}")
                error.__cause__ = exc
                channel.put(error)
            finally:
                channel.put(_END)

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ProviderError(f"{self.name} was closed")

    def _generate(self, request: _Request, channel: _Channel) -> None:
        mode = routing.choose_mode(request.messages, request.tools)
        prefill = {"plain": "", "route": routing.ROUTE_PREFILL, "answer": routing.ANSWER_PREFILL}[mode]
        context = self._prompt_tokens(request, prefill)
        started = time.perf_counter()
        stats = _Stats(len(context), started)
        if request.max_tokens <= 0:  # warm-up: evaluate the prompt only
            with closing(self._sample(context, request, channel, limit=1)) as pieces:
                for _ in pieces:
                    pass
        elif mode == "plain":
            for piece in self._sample_counted(context, request, channel, stats):
                channel.put(TextDelta(piece))
        elif mode == "answer":
            self._stream_answer(context, request, channel, stats)
        else:
            self._route(context, request, channel, stats)
        stats.log(self.name, mode)

    def _route(self, context: list[int], request: _Request, channel: _Channel, stats: _Stats) -> None:
        grammar = self._llama_cpp.LlamaGrammar.from_string(routing.action_grammar(request.tools), verbose=False)
        names = routing.action_names(request.tools)
        sampled, action = "", None
        with closing(self._sample(context, request, channel, grammar=grammar, limit=32)) as pieces:
            for piece in pieces:
                sampled += piece
                if (action := routing.settle_action(sampled, names)) is not None:
                    break
        if channel.stopped.is_set():
            return
        if action not in names:
            raise ProviderError(f"the model chose no valid action: {sampled!r}", retryable=True)
        context += self._tokenize(routing.forced_after_action(action, sampled), special=False)
        if action == routing.ANSWER:
            self._stream_answer(context, request, channel, stats)
            return
        tool = next(tool for tool in request.tools if tool.name == action)
        grammar = self._llama_cpp.LlamaGrammar.from_string(routing.arguments_grammar(tool.parameters), verbose=False)
        with closing(self._sample(context, request, channel, grammar=grammar, limit=_ARGUMENTS_MAX_TOKENS)) as pieces:
            text = "".join(pieces)
        if channel.stopped.is_set():
            return
        try:
            arguments = json.loads(text)
        except ValueError as exc:
            raise ProviderError(f"incomplete arguments for {action}: {text!r}", retryable=True) from exc
        channel.put(ToolCall(id=f"call_{uuid.uuid4().hex}", name=action, arguments=arguments))

    def _stream_answer(self, context: list[int], request: _Request, channel: _Channel, stats: _Stats) -> None:
        """Stream the body of the JSON `text` string, decoded; stop at its closing quote."""
        decoder = routing.JsonStringDecoder()
        with closing(self._sample_counted(context, request, channel, stats)) as pieces:
            for piece in pieces:
                if text := decoder.feed(piece):
                    channel.put(TextDelta(text))
                if decoder.done:
                    return
        if text := decoder.finish():
            channel.put(TextDelta(text))

    def _sample_counted(
        self, context: list[int], request: _Request, channel: _Channel, stats: _Stats, grammar: Any = None
    ) -> Generator[str, None, None]:
        with closing(self._sample(context, request, channel, grammar=grammar, limit=request.max_tokens)) as pieces:
            for piece in pieces:
                stats.token()
                yield piece

    def _sample(
        self, context: list[int], request: _Request, channel: _Channel, *, grammar: Any = None, limit: int
    ) -> Generator[str, None, None]:
        """Generate after `context`, appending each sampled token to it; yield the decoded text.

        Stops at an end-of-generation token, after `limit` tokens, or when the channel is stopped.
        """
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = self._llama._model.vocab  # llama-cpp-python has no public EOG test
        tokens = self._llama.generate(list(context), grammar=grammar, **_sampling(request.temperature))
        with closing(tokens):
            for count, token in enumerate(tokens, start=1):
                self._check_open()
                if channel.stopped.is_set() or self._llama_cpp.llama_vocab_is_eog(vocab, token):
                    return
                context.append(token)
                if piece := utf8.decode(self._llama.detokenize([token])):
                    yield piece
                if count >= limit:
                    return

    def _prompt_tokens(self, request: _Request, prefill: str) -> list[int]:
        """Render and tokenize the prompt, dropping the oldest turns if it does not fit.

        Turns are dropped in steps of `_DROP_STEP` counted from the start of the conversation,
        so the kept prefix, and llama.cpp's cache of it, lasts for several turns instead of
        changing (and being evaluated again) every turn. Turns far beyond what the context
        can hold are cut by length first, and a binary search finds the first step that fits:
        a long history costs a few tokenizations, not one per turn.
        """
        rendered = routing.render_messages(request.messages, request.tools)
        first = 1 if rendered and rendered[0]["role"] == "system" else 0
        budget = self._n_ctx - max(request.max_tokens, _ARGUMENTS_MAX_TOKENS) - _CONTEXT_MARGIN
        head, turns = rendered[:first], rendered[first:]

        def tokens_without(oldest: int) -> list[int]:
            return self._tokenize(self._format(messages=head + turns[oldest:]).prompt + prefill, special=True)

        drops = _drop_points(turns, budget * _MAX_TOKEN_CHARS)
        tokens = tokens_without(drops[0])
        if len(tokens) <= budget:
            return tokens
        best = tokens_without(drops[-1]) if len(drops) > 1 else tokens
        if len(best) > budget:
            raise ProviderError(f"prompt of {len(best)} tokens does not fit the context of {self._n_ctx}")
        low, high = 0, len(drops) - 1  # leaving out drops[low] turns is too long, drops[high] fits
        while high - low > 1:
            middle = (low + high) // 2
            candidate = tokens_without(drops[middle])
            if len(candidate) <= budget:
                high, best = middle, candidate
            else:
                low = middle
        logger.debug("prompt of %d tokens too long; left out the %d oldest turns", len(tokens), drops[high])
        return best

    def _tokenize(self, text: str, *, special: bool) -> list[int]:
        # "replace": text that is not valid Unicode (a lone surrogate) must not fail every later turn.
        tokens: list[int] = self._llama.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=special)
        return tokens


def _drop_points(turns: list[dict[str, str]], max_chars: int) -> list[int]:
    """How many of the oldest turns a prompt may leave out, fewest first: multiples of `_DROP_STEP`,
    at least as many as leave the rest under `max_chars` characters, and at most all but the newest."""
    last = max(0, len(turns) - 1)
    total, fewest = 0, 0
    for index in range(len(turns) - 1, -1, -1):
        total += len(turns[index].get("content") or "")
        if total > max_chars and index < last:
            fewest = index + 1
            break
    fewest = -(-fewest // _DROP_STEP) * _DROP_STEP
    return [*range(fewest, last, _DROP_STEP), last] if fewest < last else [last]


class _Stats:
    """Per-request timing for the DEBUG log: prompt size, time to first token, tokens/s."""

    def __init__(self, prompt_tokens: int, started: float) -> None:
        self.prompt_tokens = prompt_tokens
        self.started = started
        self.first: float | None = None
        self.count = 0

    def token(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.count += 1

    def log(self, name: str, mode: str) -> None:
        if not logger.isEnabledFor(logging.DEBUG) or self.first is None:
            return
        end = time.perf_counter()
        rate = (self.count - 1) / (end - self.first) if self.count > 1 and end > self.first else 0.0
        logger.debug(
            "%s %s: %d prompt tokens, first token after %.3f s, %d tokens at %.1f tok/s",
            name,
            mode,
            self.prompt_tokens,
            self.first - self.started,
            self.count,
            rate,
        )


def _sampling(temperature: float) -> dict[str, Any]:
    if temperature <= 0:
        return {"temp": 0.0}  # greedy
    return {"temp": temperature, "top_k": 40, "top_p": 0.95, "min_p": 0.05}


def _import_llama_cpp() -> tuple[Any, Any]:
    try:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError as exc:
        raise ProviderError("llama-cpp-python is not installed (pip install 'voxcall[embedded]')") from exc
    return llama_cpp, Jinja2ChatFormatter
