"""A deterministic fake Generator for the serve tests: it echoes the prompt, describes media, and sleeps per batch."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import numpy as np

from polyvlm.infer import ChatRequest, Completion, PromptTooLong

IMAGE_TOKENS, AUDIO_TOKENS = 10, 5


def color_name(im) -> str:
    """The dominant channel of an RGB image's mean colour."""
    mean = np.asarray(im, dtype=np.float32).reshape(-1, 3).mean(0)
    if mean.max() - mean.min() < 30:
        return "gray"
    return ("red", "green", "blue")[int(mean.argmax())]


class FakeGenerator:
    """Follows the Generator protocol. Reply words: `echo: <last user words> | images=N audios=M | <media facts>`.

    Every `<image>` costs IMAGE_TOKENS prompt tokens and every `<audio>` AUDIO_TOKENS, like placeholder expansion.
    With temperature > 0 it appends words drawn from a RNG seeded with `seed` (so seeds are observable).
    Each `generate` call sleeps `batch_sleep` seconds once, whatever the batch size (what batching saves).
    """

    def __init__(self, name: str = "fake-vlm", modalities: set[str] | None = None, max_context: int = 256,
                 batch_sleep: float = 0.05, token_sleep: float = 0.0, fail_on: str | None = None):
        self.name = name
        self.modalities = {"image", "audio"} if modalities is None else modalities
        self.max_context = max_context
        self.batch_sleep, self.token_sleep, self.fail_on = batch_sleep, token_sleep, fail_on
        self.batch_sizes: list[int] = []
        self.requests: list[ChatRequest] = []
        self._lock = threading.Lock()

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        text = " ".join(m["content"] for m in request.messages)
        n_img, n_aud = text.count("<image>"), text.count("<audio>")
        if n_img != len(request.images) or n_aud != len(request.audios):
            raise ValueError(f"{n_img} <image> for {len(request.images)} images, {n_aud} <audio> for {len(request.audios)} audios")
        words = len(text.replace("<image>", " ").replace("<audio>", " ").split())
        return words + 4 * len(request.messages) + IMAGE_TOKENS * n_img + AUDIO_TOKENS * n_aud

    def _words(self, r: ChatRequest) -> list[str]:
        last = next(m["content"] for m in reversed(r.messages) if m["role"] == "user")
        words = ["echo:", *last.replace("<image>", " ").replace("<audio>", " ").split(), "|",
                 f"images={len(r.images)}", f"audios={len(r.audios)}", f"turns={len(r.messages)}", "|"]
        words += [f"{color_name(im)}-{im.size[0]}x{im.size[1]}" for im in r.images]
        words += [f"audio-{len(a) / 16000:.2f}s" for a in r.audios]
        if r.temperature > 0:
            rng = random.Random(r.seed)
            words += [f"w{rng.randrange(1000)}" for _ in range(3)]
        return words

    def generate(self, requests: list[ChatRequest], on_token: Callable[[int, str], None] | None = None) -> list[Completion]:
        with self._lock:
            self.batch_sizes.append(len(requests))
            self.requests.extend(requests)
        for r in requests:
            n = self.count_prompt_tokens(r)
            if n + 1 > self.max_context:
                raise PromptTooLong(f"prompt takes {n} tokens; the context is {self.max_context}")
            if self.fail_on and any(self.fail_on in m["content"] for m in r.messages):
                raise RuntimeError(f"fake failure on {self.fail_on!r}")
        time.sleep(self.batch_sleep)
        plans = [[w + " " for w in self._words(r)][: r.max_new_tokens] for r in requests]
        texts = [""] * len(requests)
        done = [False] * len(requests)
        for step in range(max((len(p) for p in plans), default=0)):  # interleaved, like one batched decode
            if self.token_sleep:
                time.sleep(self.token_sleep)
            for i, plan in enumerate(plans):
                if done[i] or step >= len(plan):
                    continue
                texts[i] += plan[step]
                if on_token:
                    on_token(i, plan[step])  # streams stop strings too: the server must hold them back
                if any(s in texts[i] for s in requests[i].stop):
                    done[i] = True
        out = []
        for i, r in enumerate(requests):
            text, finish = texts[i], "stop"
            cuts = [text.find(s) for s in r.stop if s in text]
            if cuts:
                text = text[: min(cuts)]
            elif len(plans[i]) == r.max_new_tokens and len(self._words(r)) > r.max_new_tokens:
                finish = "length"
            out.append(Completion(text, self.count_prompt_tokens(r),
                                  len(plans[i]), finish))
        return out
