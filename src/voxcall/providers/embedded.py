"""The embedded LLM: llama-cpp-python running a GGUF model in this process.

One `Llama` per process, used only from ONE worker thread, so no two generations ever
run at once (STYLE.md 8.5 rule 5). It has `n_slots` KV caches (`kv_slots.py`): each
recent call keeps its own, so calls taking turns on the model do not evict each other. That thread is a
`workers.FairWorker`: every call gets its own queue under its `session()`, served
round-robin one request at a time, so a call that floods the model, or reads a huge
history into it, delays another call by one request at most. A prefill is background
work: at most one per call, dropped when the call's next turn comes, and stopped by
any call's turn. Ending a session drops its waiting requests and stops its running one.

Tokens go back to the event loop through a `llm_queue.Channel`; cancelling the consumer sets its
stop flag, which the worker checks after every token and every `EVAL_CHUNK` tokens of
prompt, so a superseded request frees the model within a fraction of a second.

Prompt layout, for KV-cache reuse: the system prompt and tool instructions come first,
then the history, then the new turn. The prompt is evaluated from the longest token
prefix shared with the previous evaluation, so a later turn only evaluates what is new.
Calls beyond `n_slots` share the least recently used slot, and evict each other there.
Each request's first event carries the prompt's length in tokens (`TextDelta.prompt_tokens`).
A history too long for the context keeps its newest turns (`prompt.PromptBuilder`, in
time linear in what is kept).

Tool calls use the JSON router of `routing.py` (MODELS.md: `tools=` produced no calls
with Qwen 1.5B; a grammar-constrained router was 5/5).
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Hashable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voxcall.errors import ProviderError
from voxcall.providers import routing
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.cpu import CpuShare, threads_for
from voxcall.providers.kv_slots import Anonymous, KvSlots
from voxcall.providers.llm_queue import (
    STARTED,
    Channel,
    Listener,
    LlamaSession,
    Request,
    Speculation,
    queued_events,
)
from voxcall.providers.models import LLMName, Progress, llm_model_path
from voxcall.providers.prompt import PromptBuilder
from voxcall.providers.workers import FairWorker

__all__ = ["EVAL_CHUNK", "LlamaLLM", "LlamaSession", "load_llm"]

logger = logging.getLogger(__name__)
E = TypeVar("E", TextDelta, ToolCall)

_CONTEXT_MARGIN = 16  # tokens kept free beyond max_tokens for the forced JSON pieces
_ARGUMENTS_MAX_TOKENS = 256  # tool arguments are not limited by max_tokens, which is about speech
AUTO_MAX_THREADS = 4
"""Auto threads stop here: beyond 4, token generation on CPU is bound by memory bandwidth."""
DEFAULT_SLOTS = 4
"""KV-cache slots (conversations kept warm at once); about 115 MB each for Qwen2.5 1.5B."""
EVAL_CHUNK = 64
"""Prompt tokens evaluated between two checks of the stop flag (well under a second on 2 cores)."""


def load_llm(
    name: LLMName,
    *,
    cache_dir: Path,
    n_threads: int = 0,
    n_threads_batch: int | None = None,
    n_slots: int = DEFAULT_SLOTS,
    progress: Progress | None = None,
) -> LlamaLLM:
    """Assemble and verify the weights of `name` (see `models.py`), then load them. Blocking."""
    path = llm_model_path(name, cache_dir, progress)
    return LlamaLLM(path, name=name, n_threads=n_threads, n_threads_batch=n_threads_batch, n_slots=n_slots)


class LlamaLLM:
    """An `LLM` backed by llama-cpp-python. Loading is blocking; construct it off the event loop.

    Args:
        model_path: a verified GGUF file (see `models.llm_model_path`).
        name: the model's name, reported as `self.name`.
        n_threads: CPU threads for generation (one token at a time); 0 = auto (`providers/cpu.py`):
            before each generation, as many as the cores other processes leave free, up to
            `AUTO_MAX_THREADS` or the core count.
        n_threads_batch: CPU threads for prompt evaluation; `n_threads` when None; 0 = auto.
        n_ctx: context length in tokens.
        n_slots: KV caches, one per recent call (`kv_slots.py`).
    """

    def __init__(
        self, model_path: Path, *, name: str, n_threads: int = 0, n_threads_batch: int | None = None, n_ctx: int = 4096,
        n_slots: int = DEFAULT_SLOTS,
    ) -> None:
        llama_cpp, formatter_class = _import_llama_cpp()
        self.name = name
        auto_max = min(os.cpu_count() or 1, AUTO_MAX_THREADS)
        batch = n_threads if n_threads_batch is None else n_threads_batch
        self._threads = (n_threads or auto_max, batch or auto_max)
        self._auto = (n_threads == 0, batch == 0)
        self._cpu = CpuShare() if any(self._auto) else None
        self._llama_cpp = llama_cpp
        started = time.perf_counter()
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=self._threads[0],
                n_threads_batch=self._threads[1],
                seed=0,
                verbose=False,
            )
            self._slots = KvSlots(self._llama, n_slots, functools.partial(
                llama_cpp._internals.LlamaContext, model=self._llama._model, params=self._llama.context_params,
                verbose=False))
        except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError/OSError
            raise ProviderError(f"cannot load {model_path}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ProviderError(f"{model_path} has no chat template")
        eos = self._llama.detokenize([self._llama.token_eos()], special=True).decode("utf-8", "replace")
        self._format = formatter_class(template=template, eos_token=eos, bos_token="")
        self._n_ctx = n_ctx
        self._prompts = PromptBuilder(lambda text: self._tokenize(text, special=True),
                                      lambda messages: str(self._format(messages=messages).prompt))
        self._worker = FairWorker(f"llm-{name}")
        self._closed = threading.Event()
        self._current_threads: tuple[int, int] | None = self._threads
        logger.info("loaded %s in %.2f s (%s threads, %s for prompts)", name, self.load_seconds,
                    *("auto<=%d" % n if auto else str(n) for n, auto in zip(self._threads, self._auto, strict=True)))

    def session(
        self,
        key: Hashable,
        *,
        on_queued: Callable[[int], None] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> LlamaSession:
        """A view of this model for one call: its requests queue under `key`, fairly with other calls'.

        `on_queued(ahead)` is called, in the event loop, when one of its `stream()`s has to
        wait for `ahead` requests of other calls; `on_started()` when that request starts.
        """
        return LlamaSession(self, key, on_queued=on_queued, on_started=on_started)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> AsyncIterator[LLMEvent]:
        """Yield text deltas as tokens are sampled, or one `ToolCall` at the end.

        Cancellation-safe: closing or cancelling the consumer drops the request if it is
        still waiting, or stops it within a token or `EVAL_CHUNK` prompt tokens, and frees
        the model for the next request. Without a `session()`, each request queues on its
        own. Raises `ProviderError` when llama.cpp fails, the prompt cannot fit the
        context, or the model has been closed.
        """
        return self.submit(Request(tuple(messages), tuple(tools), temperature, max_tokens), Anonymous())

    async def warm_up(self, system_prompt: str = "", tools: Sequence[ToolSpec] = ()) -> None:
        """Evaluate the system prompt and tool instructions so the first turn starts warm.

        Cancellation-safe in the same way as `stream()`.
        """
        if not system_prompt and not tools:
            return
        messages = (ChatMessage("system", system_prompt),) if system_prompt else ()
        async for _ in self.stream(messages, tools, max_tokens=0):
            pass

    async def prefill(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), *,
                      open_end: bool = False) -> None:
        """Evaluate a conversation so far into the KV cache, so the next turn only reads what is new.

        `open_end`: the last message is not finished (a user still talking, or an empty user
        message for the turn to come): the prompt stops at its text, so what follows it can
        still be anything. Background work: it waits for every turn and is stopped by any
        new one. Cancellation-safe like `stream()`.
        """
        request = Request(tuple(messages), tuple(tools), 0.0, 0, open_end=open_end)
        async for _ in self.submit(request, Anonymous(), background=True):
            pass

    def queue_depth(self) -> int:
        """Requests waiting for the model (not the one running), of every call."""
        return self._worker.waiting

    def cancel(self, owner: Hashable) -> int:
        """Drop the waiting requests of `owner` and stop its running one; returns how many were dropped."""
        self._slots.release(owner)
        return self._worker.cancel(owner)

    def close(self) -> None:
        """Stop generating, wait for the worker thread and free the model. Blocking.

        The running request and any waiting ones end with `ProviderError`.
        """
        self._closed.set()
        self._worker.close()
        self._slots.close()
        self._llama.close()
        if self._cpu is not None:
            self._cpu.close()

    def submit(
        self, request: Request, owner: Hashable, *, background: bool = False, listener: Listener | None = None,
        speculation: Speculation | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """Queue `request` under `owner` and yield its events (what `stream()` and sessions use)."""
        work = functools.partial(self._run, request, owner)
        return queued_events(self._worker, work, owner, closed=self._closed, background=background, listener=listener,
                             name=self.name, speculation=speculation)

    # --- worker thread -------------------------------------------------------------------

    def _run(self, request: Request, owner: Hashable, channel: Channel) -> None:
        error: BaseException | None = None
        try:
            self._check_open()
            channel.put(STARTED)
            if not channel.stopped.is_set():
                self._generate(request, owner, channel)
        except ProviderError as exc:
            error = exc
        except Exception as exc:  # everything from llama.cpp becomes ProviderError
            # Only the type: the text of some errors (UnicodeEncodeError) holds the whole prompt.
            error = ProviderError(f"llama.cpp generation failed: {type(exc).__name__}")
            error.__cause__ = exc
        finally:
            channel.finish(None if channel.stopped.is_set() else error)

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ProviderError(f"{self.name} was closed")

    def _generate(self, request: Request, owner: Hashable, channel: Channel) -> None:
        mode = routing.choose_mode(request.messages, request.tools)
        prefill = "" if request.open_end else \
            {"plain": "", "route": routing.ROUTE_PREFILL, "answer": routing.ANSWER_PREFILL}[mode]
        context = self._prompt_tokens(request, prefill)
        if self._slots.use(owner, context):
            self._current_threads = None  # another context: its thread count is not ours to assume
        self._fit_threads()
        started = time.perf_counter()
        stats = _Stats(len(context), started)
        if not self._evaluate(context, channel.stopped) or request.max_tokens <= 0:
            return  # stopped, or a prefill / warm-up: the prompt is in the KV cache
        if mode == "plain":
            for piece in self._sample_counted(context, request, channel, stats):
                channel.put(stats.stamp(TextDelta(piece)))
        elif mode == "answer":
            self._stream_answer(context, request, channel, stats)
        else:
            self._route(context, request, channel, stats)
        stats.log(self.name, mode)

    def _fit_threads(self) -> None:
        """With auto threads: as many as the cores other processes leave free right now."""
        if self._cpu is None:
            return
        (generate, batch), (generate_auto, batch_auto) = self._threads, self._auto
        wanted = (threads_for(self._cpu, generate) if generate_auto else generate,
                  threads_for(self._cpu, batch) if batch_auto else batch)
        if wanted != self._current_threads:
            logger.debug("llama.cpp threads %d/%d (other processes use %.1f cores)", *wanted, self._cpu.others)
            self._llama._ctx.set_n_threads(*wanted)
            self._current_threads = wanted

    def _evaluate(self, tokens: list[int], stop: threading.Event) -> bool:
        """Evaluate the whole prompt into the KV cache, `EVAL_CHUNK` at a time; False if `stop` was set first.

        Starts after the longest prefix already cached. The last token is evaluated here too:
        llama-cpp-python's `generate()` then finds the exact prompt evaluated last and samples
        the first token from its logits at once, instead of evaluating the last token again
        (one forward pass, about 85 ms of a 1.5B model on 2 cores, off every first token). A
        prompt that ends inside what is cached is cut back one token further, so the logits
        `generate()` samples from are always the prompt's own.
        """
        llama = self._llama
        end = len(tokens)
        held = llama.n_tokens
        cached = np.asarray(llama.input_ids[: min(held, end)])
        differs = np.flatnonzero(cached != np.asarray(tokens[: cached.size], dtype=cached.dtype))
        keep = int(differs[0]) if differs.size else cached.size
        if keep == end and held > end:
            keep = end - 1  # the cache runs past this prompt: its last logits belong to a later token
        llama.n_tokens = keep  # eval() drops the cache beyond this
        for start in range(keep, end, EVAL_CHUNK):
            self._check_open()
            if stop.is_set():
                return False
            llama.eval(tokens[start : min(start + EVAL_CHUNK, end)])
        return not stop.is_set()

    def _route(self, context: list[int], request: Request, channel: Channel, stats: _Stats) -> None:
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
        channel.put(stats.stamp(ToolCall(id=f"call_{uuid.uuid4().hex}", name=action, arguments=arguments)))

    def _stream_answer(self, context: list[int], request: Request, channel: Channel, stats: _Stats) -> None:
        """Stream the body of the JSON `text` string, decoded; stop at its closing quote."""
        decoder = routing.JsonStringDecoder()
        with closing(self._sample_counted(context, request, channel, stats)) as pieces:
            for piece in pieces:
                if text := decoder.feed(piece):
                    channel.put(stats.stamp(TextDelta(text)))
                if decoder.done:
                    return
        if text := decoder.finish():
            channel.put(stats.stamp(TextDelta(text)))

    def _sample_counted(
        self, context: list[int], request: Request, channel: Channel, stats: _Stats, grammar: Any = None
    ) -> Generator[str, None, None]:
        with closing(self._sample(context, request, channel, grammar=grammar, limit=request.max_tokens)) as pieces:
            for piece in pieces:
                stats.token()
                yield piece

    def _sample(
        self, context: list[int], request: Request, channel: Channel, *, grammar: Any = None, limit: int
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

    def _prompt_tokens(self, request: Request, prefill: str) -> list[int]:
        """Render and tokenize the prompt, keeping the newest turns that fit the context."""
        rendered = routing.render_messages(request.messages, request.tools)
        budget = self._n_ctx - max(request.max_tokens, _ARGUMENTS_MAX_TOKENS) - _CONTEXT_MARGIN
        memory = request.memory
        fit = self._prompts.build(rendered, prefill, budget, start=memory.start if memory else 0,
                                  open_end=request.open_end)
        if fit.start:
            logger.debug("history too long for the context: %d messages left out", fit.start)
        if memory is not None:
            memory.start = fit.start
        return fit.tokens

    def _tokenize(self, text: str, *, special: bool) -> list[int]:
        # "replace": text that is not valid Unicode (a lone surrogate) must not fail every later turn.
        tokens: list[int] = self._llama.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=special)
        return tokens


class _Stats:
    """Per-request timing for the DEBUG log: prompt size, time to first token, tokens/s.

    The prompt size also goes out on the request's first event (`stamp`).
    """

    def __init__(self, prompt_tokens: int, started: float) -> None:
        self.prompt_tokens = prompt_tokens
        self.started = started
        self.first: float | None = None
        self.count = 0
        self._stamped = False

    def stamp(self, event: E) -> E:
        """The first event of the request carries `prompt_tokens`; later ones go as they are."""
        if self._stamped:
            return event
        self._stamped = True
        return dataclasses.replace(event, prompt_tokens=self.prompt_tokens)

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
