"""The one request type of eval, serve and synth (text messages plus images, audio and videos), the completion it
gets back, and the `Generator` protocol an in-process model implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from polyvlm import media as _media

# the modalities a ChatRequest carries in a field of their own; every other registered modality (thermal, depth,
# imu, one added later) rides in `ChatRequest.extra`. Placeholders are the Modality registry's, read at each use:
# one per input, in the text of the message that carries it (LLaVA / transformers convention)
REQUEST_MODALITIES = ("image", "audio", "video")
PLACEHOLDERS = _media.PLACEHOLDERS


@dataclass(eq=False)
class Video:
    """One video of a request.

    `source`: a file path, a `data:` URI, an http(s) URL or the encoded bytes; the model that runs the request
    samples its frames as its training did (frames at its fps, uniformly capped) and caches them in `frames`.
    `frames`: RGB PIL frames already sampled (then `source` may be None); `fps` is their rate if known.
    """

    source: str | bytes | Path | None = None
    frames: list[Any] | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.source is None and not self.frames:
            raise ValueError("a Video needs a source (path, data URI, URL or bytes) or its frames")


@dataclass
class ChatRequest:
    """One conversation to continue.

    `messages`: [{"role": "system"|"user"|"assistant", "content": str}], where the text carries media
    placeholders (`<image>`, `<audio>`, `<video>`) in the order of `images` / `audios` / `videos`. Media without
    placeholders get them prepended to the first user message (LLaVA convention; `normalize_placeholders`).
    `images`: PIL images (RGB), or references a backend reads itself (a file path, a `data:` URI, a URL).
    `audios`: 1-D float32 numpy waveforms at 16 kHz (shape `(t,)`), or references as for images.
    `videos`: `Video`s (a reference the model samples, or frames already sampled).
    `extra`: inputs of the other registered modalities by name (`{"thermal": [...]}`): references as for images,
    or what the modality's loader decodes.
    `tag`: what the request is for (a synth stage, an eval task); sent to servers as `X-Polyvlm-Stage`.
    `language`: the conversation's language, for statistics only (the moe router per language).
    `verbatim`: the messages' text is sent exactly as written (a `<image>` in it is plain text, such as a judged
    answer quoting one) and the media follow the text of the last user message as content parts (how judges that
    look at the picture are asked); only the OpenAI codec (`polyvlm.infer.codec`) sends such requests.
    """

    messages: list[dict[str, str]]
    images: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)
    videos: list[Video] = field(default_factory=list)
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    language: str | None = None
    tag: str = ""
    extra: dict[str, list[Any]] = field(default_factory=dict)
    verbatim: bool = False

    def __post_init__(self) -> None:
        for m in self.extra:
            if m in REQUEST_MODALITIES:
                raise ValueError(f"ChatRequest.extra['{m}']: {m} inputs go in their own field")
            _media.get_modality(m)  # KeyError naming the known modalities

    def media(self) -> dict[str, list[Any]]:
        """Every registered modality -> its inputs, in placeholder order (empty lists included)."""
        own = {"image": self.images, "audio": self.audios, "video": self.videos}
        return {m.name: own.get(m.name, self.extra.get(m.name, [])) for m in _media.modalities()}


def normalize_placeholders(messages: list[dict[str, str]], counts: dict[str, int]) -> list[dict[str, str]]:
    """Messages whose text has a placeholder for every input: a modality with inputs but no placeholder anywhere
    gets them (`<image>\\n` each) at the front of the first user message (`messages` itself is returned when none
    is missing). Raises ValueError when a modality has placeholders but fewer or more than its inputs."""
    joined = "\0".join(m["content"] for m in messages if isinstance(m.get("content"), str))
    missing = []
    for modality, n in counts.items():
        tag = PLACEHOLDERS[modality]
        found = joined.count(tag) if tag in joined else 0
        if found == 0 and n:
            missing.append((tag, n))
        elif found != n:
            raise ValueError(f"{found} {tag} placeholder(s) but {n} {modality} input(s)")
    if not missing:
        return messages
    out = [dict(m) for m in messages]
    first = next((m for m in out if m["role"] == "user"), None)
    if first is None:
        raise ValueError(f"the request has {missing[0][1]} {missing[0][0]} input(s) but no user message to put them in")
    for tag, n in missing:
        first["content"] = (tag + "\n") * n + first["content"]
    return out


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop string) | "length"


class PromptTooLong(ValueError):
    """The prompt, after media placeholders are expanded, leaves no room to generate."""


class Generator(Protocol):
    """What eval, serve and synth call in process. `polyvlm.load_generator(ckpt)` returns one for a checkpoint."""

    name: str
    modalities: set[str]  # e.g. {"image"} or {"image", "audio", "video"}
    max_context: int

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        """Tokens the prompt takes after placeholder expansion (raises ValueError on bad media counts)."""
        ...

    def generate(
        self, requests: list[ChatRequest], on_token: Callable[[int, str], None] | None = None
    ) -> list[Completion]:
        """Continue every request in one batch. `on_token(i, text_delta)` streams request i's text."""
        ...


def media_fields(media: dict[str, list[Any]]) -> dict[str, Any]:
    """Modality -> inputs (as `ChatRequest.media()` gives them) -> the ChatRequest keyword arguments holding them
    (`images`, `audios`, `videos`, and `extra` for the other modalities): `ChatRequest(msgs, **media_fields(m))`."""
    own = {m + "s": list(v) for m, v in media.items() if m in REQUEST_MODALITIES}
    return {**own, "extra": {m: list(v) for m, v in media.items() if m not in REQUEST_MODALITIES and v}}
