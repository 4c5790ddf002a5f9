"""Model backends for synth behind one interface: chat messages with media in, text out.

- `openai`: any OpenAI-compatible server (vLLM, SGLang, `polyvlm serve`) over async httpx, with a limit on
  requests in flight, retries with exponential back-off and jitter on time-outs / 429 / 5xx, and time-outs.
- `transformers`: a local `polyvlm.infer.Generator` in process; concurrent requests are gathered into batches.
- `vllm`: vLLM's offline engine (optional extra `polyvlm[vllm]`), batched the same way.
(the last two are in `local_backends`.)

A backend raises `BackendError` only after its retries are spent; the runner records it as a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from polyvlm.data.formats import bytes_to_data_uri
from polyvlm.registry import Registry

IMAGE_TOKEN = "<image>"
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class BackendError(RuntimeError):
    """A request that failed after all retries; `code` is a short reason class (timeout, http_500, ...)."""

    def __init__(self, message: str, code: str = "backend_error"):
        super().__init__(message)
        self.code = code


@dataclass
class SynthRequest:
    """One chat request. `messages` text carries `<image>` placeholders in the order of `images`.

    `images`: absolute file paths or `data:` URIs. `tag`: the stage name (sent as `X-Polyvlm-Stage`).
    """

    messages: list[dict[str, str]]
    images: list[str] = field(default_factory=list)
    max_tokens: int = 512
    temperature: float = 0.0
    tag: str = ""


@dataclass
class BackendConfig:
    type: str = "openai"
    model: str = ""
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 32
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 20.0
    client: str = "h11"  # openai: h11 (lean, default) or httpx
    checkpoint: str = ""
    device: str = "auto"  # transformers: the values of --device (auto, cpu, cuda, cuda:N, mps)
    dtype: str = "auto"  # transformers: the values of --dtype (auto, bf16, fp16, fp32)
    batch_size: int = 8
    max_wait_ms: float = 20.0
    extra: dict = field(default_factory=dict)


@dataclass
class BackendStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    seconds: float = 0.0

    def minus(self, other: BackendStats) -> BackendStats:
        """The requests made since `other` was snapshotted (backends are shared between stages)."""
        return BackendStats(self.requests - other.requests, self.retries - other.retries,
                            self.failures - other.failures, self.seconds - other.seconds)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "retries": self.retries, "failures": self.failures,
                "mean_latency_s": round(self.seconds / self.requests, 4) if self.requests else 0.0}


class Backend:
    """Base class: `await start()`, `await complete(request) -> str` many times, `await close()`."""

    kind: ClassVar[str] = ""

    def __init__(self, cfg: BackendConfig):
        self.cfg = cfg
        self.stats = BackendStats()

    @property
    def model_id(self) -> str:
        """Enters result keys: a different model means different results."""
        return f"{self.kind}:{self.cfg.model or self.cfg.checkpoint}"

    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    async def complete(self, req: SynthRequest) -> str:
        raise NotImplementedError


def _image_uri(ref: str) -> str:
    if ref.startswith("data:"):
        return ref
    try:
        return bytes_to_data_uri(Path(ref).read_bytes())
    except OSError as e:
        raise BackendError(f"cannot read image {ref}: {e.strerror}", "media_unreadable") from None


def to_openai_messages(req: SynthRequest) -> list[dict[str, Any]]:
    """Messages with `<image>` placeholders -> OpenAI content parts with `image_url` data URIs in order.

    Images beyond the placeholders are put before the text of the first user message (LLaVA convention).
    """
    images = list(req.images)
    out: list[dict[str, Any]] = []
    for msg in req.messages:
        text = msg["content"]
        if not images or IMAGE_TOKEN not in text:
            out.append({"role": msg["role"], "content": text})
            continue
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(text.split(IMAGE_TOKEN)):
            if i > 0 and images:
                parts.append({"type": "image_url", "image_url": {"url": _image_uri(images.pop(0))}})
            if chunk.strip():
                parts.append({"type": "text", "text": chunk.strip("\n")})
        out.append({"role": msg["role"], "content": parts})
    if images:
        first = next((m for m in out if m["role"] == "user"), None)
        if first is None:
            raise BackendError("request has images but no user message", "bad_request")
        content = first["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        first["content"] = [{"type": "image_url", "image_url": {"url": _image_uri(p)}} for p in images] + parts
    return out


class OpenAIBackend(Backend):
    """Async client of `/v1/chat/completions` with bounded concurrency, retries and time-outs.

    `client: h11` (default) uses `polyvlm.synth.http.H11Pool`; `client: httpx` uses httpx (environment
    proxies, HTTP/2), one single-connection client per slot because httpcore's shared pool spends
    O(connections x waiting requests) CPU per request.
    """

    kind = "openai"

    def __init__(self, cfg: BackendConfig):
        super().__init__(cfg)
        if not cfg.model:
            raise ValueError("backend 'openai': `model` is required (the served model name)")
        if cfg.client not in ("h11", "httpx"):
            raise ValueError(f"backend 'openai': client must be h11 or httpx, not {cfg.client!r}")
        self._pool: Any = None
        self._idle: asyncio.Queue | None = None
        self._clients: list[Any] = []

    async def start(self) -> None:
        key = os.environ.get(self.cfg.api_key_env, "") or "EMPTY"
        n = max(1, self.cfg.concurrency)
        if self.cfg.client == "h11":
            from polyvlm.synth.http import H11Pool

            self._pool = H11Pool(self.cfg.base_url, n, self.cfg.timeout, {"Authorization": f"Bearer {key}"})
            return
        import httpx

        tls = ssl.create_default_context()  # loaded once and shared: ~70 ms per client otherwise
        self._idle = asyncio.Queue()
        for _ in range(n):
            client = httpx.AsyncClient(
                base_url=self.cfg.base_url.rstrip("/"), timeout=httpx.Timeout(self.cfg.timeout),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1), verify=tls,
                headers={"Authorization": f"Bearer {key}"})
            self._clients.append(client)
            self._idle.put_nowait(client)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        for client in self._clients:
            await client.aclose()
        self._clients, self._idle = [], None

    async def _post(self, payload: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One HTTP exchange; raises BackendError(code=timeout|connection) on transport failure."""
        if self._pool is not None:
            from polyvlm.synth.http import HTTPError

            try:
                return await self._pool.post("/chat/completions", payload, headers)
            except HTTPError as e:
                raise BackendError(f"{self.cfg.base_url}: {e}", e.code) from None
        import httpx

        if self._idle is None:
            raise RuntimeError("OpenAIBackend.complete() before start()")
        client = await self._idle.get()
        try:
            resp = await client.post("/chat/completions", content=payload, headers=headers)
            return resp.status_code, resp.content
        except httpx.TimeoutException:
            raise BackendError(f"{self.cfg.base_url}: timed out after {self.cfg.timeout}s", "timeout") from None
        except httpx.TransportError as e:
            raise BackendError(f"{self.cfg.base_url}: {type(e).__name__}: {e}", "connection") from None
        finally:
            self._idle.put_nowait(client)

    def _delay(self, attempt: int) -> float:
        base = min(self.cfg.max_backoff, self.cfg.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)

    async def complete(self, req: SynthRequest) -> str:
        if self._pool is None and self._idle is None:
            raise RuntimeError("OpenAIBackend.complete() before start()")
        body = {"model": self.cfg.model, "messages": to_openai_messages(req), "max_tokens": req.max_tokens,
                "temperature": req.temperature, **self.cfg.extra}
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", **({"X-Polyvlm-Stage": req.tag} if req.tag else {})}
        last = BackendError("no attempt made")
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self._delay(attempt - 1))
            t0 = time.perf_counter()
            try:
                status, data = await self._post(payload, headers)
            except BackendError as e:
                last = e
                continue
            finally:
                self.stats.requests += 1
                self.stats.seconds += time.perf_counter() - t0
            text = data.decode("utf-8", "replace")
            if status != 200:
                last = BackendError(f"{self.cfg.base_url}: HTTP {status}: {text[:200]}", f"http_{status}")
                if status in RETRY_STATUS:
                    continue
                break
            try:
                return str(json.loads(text)["choices"][0]["message"]["content"] or "")
            except (ValueError, KeyError, IndexError, TypeError):
                last = BackendError(f"{self.cfg.base_url}: response is not a chat completion: {text[:200]}",
                                    "bad_response")
                break
        self.stats.failures += 1
        raise last


# type name -> class; the in-process ones live in `local_backends` (torch, optional vLLM): imported on first use
BACKENDS: Registry[type[Backend]] = Registry("backend type")
BACKENDS.register("openai")(OpenAIBackend)
BACKENDS.register_lazy("transformers", "polyvlm.synth.local_backends:TransformersBackend")
BACKENDS.register_lazy("vllm", "polyvlm.synth.local_backends:VLLMBackend")


def build_backend(cfg: BackendConfig, **kw: Any) -> Backend:
    """Make a backend by its registered type name; an unknown name is an error listing the known ones."""
    return BACKENDS.get(cfg.type)(cfg, **kw)


_THINK = re.compile(r"<think>.*?</think>", re.S)


def strip_reasoning(text: str) -> str:
    """Drop `<think>...</think>` blocks some open models emit before the answer."""
    return _THINK.sub("", text).strip()
