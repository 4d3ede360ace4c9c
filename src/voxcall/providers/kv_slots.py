"""KV-cache slots: several llama.cpp contexts on one loaded model, one per recent conversation.

A context holds one conversation's KV cache. With a single context, two calls that take
turns on the model evict each other: each reply re-reads the other call's whole prompt
(a 300-token history takes seconds on 2 cores), and the prefill made while one user was
talking is gone once the other call's reply has run. A context is small next to the
weights, which every context shares (about 115 MB for Qwen2.5 1.5B at 4096 tokens, made
in about 60 ms), so each recent owner (a call's session) keeps one of its own, and the
least recently used one is handed over when all are taken. A slot handed over keeps
its tokens: a new call with the same system prompt still starts from that prefix. A
request of no session (`Anonymous`: the model host's, a warm-up) goes to the slot whose
tokens share the longest prefix with its prompt, as llama.cpp's own server picks slots.

llama-cpp-python's `Llama` has one context. `KvSlots.use(owner)` swaps a context, and the
token bookkeeping that belongs to it (`_ctx`, `input_ids`, `n_tokens`, `_requires_eval`),
in and out of it. Only between generations, on the model's one worker thread, so one
generation at a time still has the cores to itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Anonymous", "KvSlots", "SlotTable"]


class Anonymous:
    """The owner of a request of no session: its slot is chosen by its prompt."""

    __slots__ = ()


class SlotTable:
    """Which owner holds which of `size` slots: its own while it lasts, else a free one, else the least recently used."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one slot")
        self._owners: OrderedDict[Hashable, int] = OrderedDict()  # least recently used first
        self._free = list(range(size))

    def assign(self, owner: Hashable) -> int:
        """The slot for `owner`'s next request (and it becomes the most recently used)."""
        if (slot := self._owners.get(owner)) is not None:
            self._owners.move_to_end(owner)
            return slot
        slot = self._free.pop(0) if self._free else self._owners.popitem(last=False)[1]
        self._owners[owner] = slot
        return slot

    def touch(self, slot: int) -> None:
        """`slot` was just used (by a request of no owner): whoever holds it is the most recently used."""
        for owner, held in self._owners.items():
            if held == slot:
                self._owners.move_to_end(owner)
                return

    def release(self, owner: Hashable) -> None:
        """`owner` is gone (its call ended): its slot is free, first in line for the next newcomer."""
        if (slot := self._owners.pop(owner, None)) is not None:
            self._free.insert(0, slot)


@dataclass(slots=True)
class _Slot:
    ctx: Any
    input_ids: np.ndarray
    n_tokens: int = 0
    requires_eval: bool = True


class KvSlots:
    """The contexts of one `Llama`; `use(owner)` makes `owner`'s the one the `Llama` runs on."""

    def __init__(self, llama: Any, count: int, new_context: Callable[[], Any]) -> None:
        self._llama = llama
        self._table = SlotTable(count)
        self._lock = threading.Lock()  # `release` comes from the event loop, `use` from the worker thread
        own = _Slot(llama._ctx, llama.input_ids, llama.n_tokens, True)
        self._slots = [own] + [_Slot(new_context(), np.zeros_like(llama.input_ids)) for _ in range(count - 1)]
        self._active = 0

    @property
    def count(self) -> int:
        return len(self._slots)

    def use(self, owner: Hashable, tokens: list[int]) -> bool:
        """Switch the `Llama` to the slot for `owner`'s prompt `tokens`; True if it was another slot before."""
        with self._lock:
            if isinstance(owner, Anonymous):
                slot = self._closest(tokens)
                self._table.touch(slot)
            else:
                slot = self._table.assign(owner)
        if slot == self._active:
            return False
        llama, old, new = self._llama, self._slots[self._active], self._slots[slot]
        old.ctx, old.input_ids, old.n_tokens, old.requires_eval = (
            llama._ctx, llama.input_ids, llama.n_tokens, llama._requires_eval)
        llama._ctx, llama.input_ids, llama.n_tokens, llama._requires_eval = (
            new.ctx, new.input_ids, new.n_tokens, new.requires_eval)
        self._active = slot
        return True

    def release(self, owner: Hashable) -> None:
        """`owner` is gone: its slot goes to the next newcomer. Any thread."""
        with self._lock:
            self._table.release(owner)

    def _closest(self, tokens: list[int]) -> int:
        """The slot whose cached tokens share the longest prefix with `tokens` (the active one on a tie)."""
        wanted = np.asarray(tokens, dtype=np.intc)
        best, longest = self._active, -1
        for index in [self._active, *(i for i in range(len(self._slots)) if i != self._active)]:
            slot = self._slots[index]
            ids, count = (self._llama.input_ids, self._llama.n_tokens) if index == self._active else \
                (slot.input_ids, slot.n_tokens)
            size = min(count, wanted.size)
            differs = np.flatnonzero(ids[:size] != wanted[:size])
            shared = int(differs[0]) if differs.size else size
            if shared > longest:
                best, longest = index, shared
        return best

    def close(self) -> None:
        """Give the `Llama` its own context back and free the others (the `Llama` frees its own)."""
        with self._lock:
            self._table = SlotTable(len(self._slots))
        self.use(object(), [])  # slot 0 is the first free one again
        for slot in self._slots[1:]:
            slot.ctx.close()
