"""LLM judges through any OpenAI-compatible endpoint: cached replies, strict parsing of their verdicts."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from polyvlm.eval.backends import EndpointBackend, Failure
from polyvlm.eval.extract import Extraction
from polyvlm.infer import ChatRequest

if TYPE_CHECKING:
    from polyvlm.eval.tasks.base import Sample

def prompt_file(name_or_path: str) -> str:
    """A judge prompt: a path, or the name of one shipped in polyvlm/eval/prompts."""
    p = Path(name_or_path)
    if p.suffix and p.is_file():
        return p.read_text(encoding="utf-8")
    res = resources.files("polyvlm.eval").joinpath("prompts", f"{name_or_path}.txt")
    if not res.is_file():
        raise ValueError(f"judge prompt '{name_or_path}' is neither a file nor a shipped prompt")
    return res.read_text(encoding="utf-8")


class JudgeClient:
    """Asks a judge model; every reply is cached in `cache_path` (JSONL keyed by a hash of model and prompt),
    so re-scoring never asks twice. A failed request is not cached."""

    def __init__(self, backend: EndpointBackend, cache_path: str | Path, max_tokens: int = 512):
        self.backend, self.cache_path, self.max_tokens = backend, Path(cache_path), max_tokens
        self.cache: dict[str, str] = {}
        self._lock = threading.Lock()
        if self.cache_path.is_file():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    obj = json.loads(line)
                    self.cache[obj["key"]] = obj["reply"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut by an interrupted run

    def _key(self, prompt: str, settings: str = "") -> str:
        return hashlib.sha256(f"{self.backend.model}\n{settings}{prompt}".encode()).hexdigest()

    def ask(self, prompts: list[str], system: str = "", temperature: float = 0.0, top_p: float = 1.0,
            max_tokens: int | None = None, attempt: int = 0,
            images: list[str | None] | None = None) -> list[str | None]:
        """The judge's reply to each prompt (None when the request failed). `system`, `temperature`, `top_p` and
        `max_tokens` are sent as given (an official scorer's settings); `attempt` > 0 asks again for a reply
        already cached (a scorer that re-asks when it cannot parse a verdict). `images[i]`, when given, is a
        picture (a `data:` URI) sent after prompt i's text as an `image_url` part, as judges that look at the
        image are asked (lmms-eval's llava_wilder, wild_vision_bench); it is part of the cache key."""
        settings = "" if not (system or temperature or top_p != 1.0 or max_tokens or attempt) else \
            json.dumps([system, temperature, top_p, max_tokens, attempt]) + "\n"
        pictures = images or [None] * len(prompts)
        if len(pictures) != len(prompts):
            raise ValueError(f"judge: {len(pictures)} images for {len(prompts)} prompts")
        keys = [self._key(p, settings + (f"image {hashlib.sha256(im.encode()).hexdigest()}\n" if im else ""))
                for p, im in zip(prompts, pictures)]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            head = [{"role": "system", "content": system}] if system else []
            # verbatim: the prompt goes as written (an answer quoting `<image>` stays text), the picture after it
            reqs = [ChatRequest(messages=[*head, {"role": "user", "content": prompts[i]}],
                                images=[pictures[i]] if pictures[i] else [], verbatim=True,
                                max_new_tokens=max_tokens or self.max_tokens, temperature=temperature, top_p=top_p)
                    for i in todo]
            results = self.backend.generate(reqs)
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.cache_path, "a", encoding="utf-8") as fh:
                for i, res in zip(todo, results):
                    if isinstance(res, Failure):
                        continue
                    self.cache[keys[i]] = res.text
                    fh.write(json.dumps({"key": keys[i], "reply": res.text}, ensure_ascii=False) + "\n")
        return [self.cache.get(k) for k in keys]


_SCORE_LINE = re.compile(r"^\s*Score:\s*([1-5])\s*$", re.MULTILINE)
_PAIR_LINE = re.compile(r"^\s*(10|[1-9](?:\.\d+)?)\s+(10|[1-9](?:\.\d+)?)\s*$")


def parse_rubric(reply: str | None) -> float | None:
    """The 1-5 score of a reply that ends with exactly one `Score: N` line; anything else is None."""
    if reply is None:
        return None
    found = _SCORE_LINE.findall(reply)
    return float(found[0]) if len(found) == 1 else None


def parse_pair(reply: str | None) -> tuple[float, float] | None:
    """(reference score, answer score) from a first line `X Y` with both in 1..10; anything else is None."""
    if not reply or not reply.strip():
        return None
    m = _PAIR_LINE.match(reply.strip().splitlines()[0])
    return (float(m.group(1)), float(m.group(2))) if m else None


def judge_choice(client: JudgeClient, samples: list[Sample], predictions: list[str]) -> list[Extraction]:
    """Ask the judge which option each unresolved MCQ reply chose; `Z` or an unclear reply stays unparsed."""
    template = prompt_file("judge_mcq")
    replies = client.ask([template.format(question=s.prompt, answer=p) for s, p in zip(samples, predictions)])
    out = []
    for s, r in zip(samples, replies):
        letter = (r or "").strip().strip(".").upper()
        out.append(Extraction(letter, "judge") if letter in s.options else Extraction(None, "judge_unparsed"))
    return out
