"""Fakes for the infer tests: an echoing Generator that sleeps per batch and streams word by word."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from polyvlm.infer import ChatRequest, Completion


class EchoGenerator:
    """Follows the Generator protocol: the reply is `echo: <last user text> ` word by word; each `generate` call
    sleeps `batch_sleep` once, whatever the batch size (what batching saves), and records the batch size."""

    name = "echo"
    modalities = {"image"}
    max_context = 4096

    def __init__(self, batch_sleep: float = 0.0):
        self.batch_sleep = batch_sleep
        self.batch_sizes: list[int] = []
        self.requests: list[ChatRequest] = []
        self._lock = threading.Lock()

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        return sum(len(m["content"].split()) for m in request.messages)

    def generate(self, requests: list[ChatRequest], on_token: Callable[[int, str], None] | None = None) -> list[Completion]:
        with self._lock:
            self.batch_sizes.append(len(requests))
            self.requests.extend(requests)
        if any("FAIL" in r.messages[-1]["content"] for r in requests):
            raise RuntimeError("asked to fail")
        time.sleep(self.batch_sleep)
        out = []
        for i, r in enumerate(requests):
            words = ["echo:", *r.messages[-1]["content"].split()]
            for w in words:
                if on_token:
                    on_token(i, w + " ")
            out.append(Completion(" ".join(words) + " ", self.count_prompt_tokens(r), len(words), "stop"))
        return out
