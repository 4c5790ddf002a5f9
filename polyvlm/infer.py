"""The inference interface shared by eval, serve and synth: chat requests with media in, completions out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ChatRequest:
    """One conversation to continue.

    `messages`: [{"role": "system"|"user"|"assistant", "content": str}], where the text carries media
    placeholders (`<image>`, `<audio>`) in the order of `images` / `audios`. A user message whose media
    has no placeholder gets them prepended (LLaVA convention) by `normalize_placeholders`.
    `images`: PIL images (RGB). `audios`: 1-D float32 numpy waveforms at 16 kHz.
    """

    messages: list[dict[str, str]]
    images: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    language: str | None = None  # the conversation's language, for statistics (moe router per language) only


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop string) | "length"


class PromptTooLong(ValueError):
    """The prompt, after media placeholders are expanded, leaves no room to generate."""


class Generator(Protocol):
    """What eval, serve and synth call. `polyvlm.load_generator(ckpt)` returns one for a checkpoint."""

    name: str
    modalities: set[str]  # e.g. {"image"} or {"image", "audio"}
    max_context: int

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        """Tokens the prompt takes after placeholder expansion (raises ValueError on bad media counts)."""
        ...

    def generate(
        self, requests: list[ChatRequest], on_token: Callable[[int, str], None] | None = None
    ) -> list[Completion]:
        """Continue every request in one batch. `on_token(i, text_delta)` streams request i's text."""
        ...
