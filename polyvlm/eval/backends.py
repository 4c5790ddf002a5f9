"""Where predictions come from: an in-process Generator (batched), an OpenAI-compatible endpoint
(concurrent, retried), or a file of existing predictions. Failures are returned as `Failure`, never as text."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from polyvlm.infer import ChatRequest, Completion, Generator

log = logging.getLogger("polyvlm.eval")


@dataclass
class Failure:
    """A request that produced no answer (HTTP error, timeout, prompt too long, missing prediction)."""

    error: str


Result = Completion | Failure


class Backend(Protocol):
    name: str
    batch_size: int  # requests handed to `generate` at once (the runner saves progress after each call)

    def generate(self, requests: list[ChatRequest]) -> list[Result]: ...


class GeneratorBackend:
    """Batched greedy generation with an in-process `Generator` (left padding and KV cache are its job)."""

    def __init__(self, generator: Generator, batch_size: int = 16):
        if batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        self.generator, self.batch_size = generator, batch_size
        self.name = getattr(generator, "name", "generator")

    def pop_router(self) -> dict[str, tuple[list[float], int]]:
        """A moe model's router distributions since the last call: language -> (summed weights [X], images)."""
        from polyvlm.models.generate import VLMGenerator  # a PolyVLM in process: its `router_stats`

        stats = self.generator.model.router_stats if isinstance(self.generator, VLMGenerator) else None
        if stats is None or not stats.counts:
            return {}
        out = {k: ([float(x) for x in stats.sums[k]], int(stats.counts[k])) for k in sorted(stats.sums)}
        stats.pop()
        return out

    def generate(self, requests: list[ChatRequest]) -> list[Result]:
        out: list[Result] = []
        for i in range(0, len(requests), self.batch_size):
            batch = requests[i:i + self.batch_size]
            try:
                out.extend(self.generator.generate(batch))
            except ValueError:
                # one bad request (e.g. a prompt too long) must not sink its batch: retry one by one
                for req in batch:
                    try:
                        out.extend(self.generator.generate([req]))
                    except ValueError as e:
                        out.append(Failure(f"{type(e).__name__}: {e}"))
        return out


def image_data_url(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def to_openai_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """ChatRequest -> OpenAI chat messages; the images go, as data URLs, into the first user message
    (where its `<image>` placeholders were)."""
    messages: list[dict[str, Any]] = []
    pending = list(request.images)
    for m in request.messages:
        if m["role"] == "user" and pending:
            parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": image_data_url(im)}}
                                           for im in pending]
            parts.append({"type": "text", "text": m["content"].replace("<image>\n", "").replace("<image>", "")})
            messages.append({"role": "user", "content": parts})
            pending = []
        else:
            messages.append({"role": m["role"], "content": m["content"]})
    return messages


class EndpointBackend:
    """Any OpenAI-compatible `/v1/chat/completions` server, `concurrency` requests in flight, transient errors
    (connection, timeout, 429, 5xx) retried with exponential back-off, other errors recorded as failures."""

    def __init__(self, url: str, model: str = "", concurrency: int = 8, retries: int = 3, timeout: float = 120.0,
                 backoff: float = 0.5, api_key: str = ""):
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.base = self.url[: -len("/chat/completions")]
        self.concurrency, self.retries, self.backoff = max(1, concurrency), retries, backoff
        self.batch_size = self.concurrency * 4
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self.model = model or self._first_model()
        self.name = f"{self.model}@{self.base}"

    def _first_model(self) -> str:
        try:
            r = self.client.get(self.base + "/models")
            r.raise_for_status()
            return str(r.json()["data"][0]["id"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            return "default"

    def one(self, request: ChatRequest) -> Result:
        payload: dict[str, Any] = {
            "model": self.model, "messages": to_openai_messages(request), "max_tokens": request.max_new_tokens,
            "temperature": request.temperature, "top_p": request.top_p}
        if request.stop:
            payload["stop"] = request.stop
        if request.seed is not None:
            payload["seed"] = request.seed
        error, asked_wait = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:  # exponential back-off, or longer when the server said when to come back (Retry-After)
                time.sleep(max(self.backoff * 2 ** (attempt - 1), asked_wait))
            try:
                r = self.client.post(self.url, json=payload)
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                error = f"HTTP {r.status_code}: {r.text[:200]}"
                try:
                    asked_wait = min(60.0, float(r.headers.get("retry-after", 0)))
                except ValueError:  # an HTTP date: fall back to the back-off schedule
                    asked_wait = 0.0
                continue
            if r.status_code != 200:
                return Failure(f"HTTP {r.status_code}: {r.text[:200]}")
            try:
                body = r.json()
                choice = body["choices"][0]
                usage = body.get("usage") or {}
                return Completion(text=choice["message"]["content"] or "",
                                  prompt_tokens=int(usage.get("prompt_tokens", 0)),
                                  completion_tokens=int(usage.get("completion_tokens", 0)),
                                  finish_reason=str(choice.get("finish_reason") or "stop"))
            except (ValueError, KeyError, IndexError, TypeError) as e:
                return Failure(f"malformed response ({type(e).__name__}: {e}): {r.text[:200]}")
        return Failure(f"gave up after {self.retries + 1} attempts: {error}")

    def generate(self, requests: list[ChatRequest]) -> list[Result]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self.one, requests))


def read_predictions(path: str | Path) -> dict[str, str]:
    """`--predictions FILE.jsonl`: id -> prediction; records carry `id` or `index` (with `language` when the
    task has one file per language), `prediction`, and optionally `task` (then the key is `task::id`, for
    files that hold the answers of several tasks whose ids collide)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: predictions file not found")
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: malformed JSON: {e.msg}") from None
            if not isinstance(obj, dict) or "prediction" not in obj or not ("id" in obj or "index" in obj):
                raise ValueError(f"{path}:{n}: a prediction record needs 'id' or 'index' and 'prediction'")
            pred = obj["prediction"]
            if isinstance(pred, bool) or not isinstance(pred, (str, int, float)):
                raise ValueError(f"{path}:{n}: 'prediction' must be a string, not {type(pred).__name__} {pred!r}")
            key = str(obj.get("id", obj.get("index")))
            if "id" not in obj and obj.get("language"):
                key = f"{obj['language']}/{key}"
            if obj.get("task"):
                key = f"{obj['task']}::{key}"
            if key in lines:
                raise ValueError(f"{path}:{n}: a second prediction for id {key} (the first is on line {lines[key]})")
            lines[key] = n
            out[key] = str(pred)
    return out
