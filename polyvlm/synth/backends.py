"""Model backends for synth behind one interface: chat messages with media in, text out.

- `openai`: any OpenAI-compatible server (vLLM, SGLang, `polyvlm serve`) through `polyvlm.infer`'s retrying
  client (requests in flight bounded, exponential back-off with jitter, `Retry-After`, bounded tries, time-outs).
- `transformers`: a local `polyvlm.infer.Generator` in process behind `polyvlm.infer.Batcher`.
- `vllm`: vLLM's offline engine (optional extra `polyvlm[vllm]`), batched the same way.
(the last two are in `local_backends`.) Requests are `polyvlm.infer.ChatRequest`s; messages go out through the
one codec (`polyvlm.infer.codec`).

A backend raises `BackendError` only after its retries are spent; the runner records it as a failure.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from polyvlm.infer import ChatRequest
from polyvlm.infer.client import CallStats, RequestFailed, RetryingClient, RetryPolicy
from polyvlm.infer.codec import MessageError, completion_from_openai, to_openai_body
from polyvlm.registry import Registry

BackendStats = CallStats  # requests, retries, failures, seconds; `minus` and `as_dict` for stage reports


class BackendError(RuntimeError):
    """A request that failed after all retries; `code` is a short reason class (timeout, http_500, ...)."""

    def __init__(self, message: str, code: str = "backend_error"):
        super().__init__(message)
        self.code = code


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

    async def complete(self, req: ChatRequest) -> str:
        raise NotImplementedError


class OpenAIBackend(Backend):
    """`/v1/chat/completions` through `polyvlm.infer.RetryingClient`: `concurrency` requests in flight, time-outs,
    `max_retries` retries with jittered exponential back-off (`backoff` doubling up to `max_backoff`) or the
    server's `Retry-After`. `client: h11` (default, lean) or `httpx` (environment proxies, HTTP/2)."""

    kind = "openai"

    def __init__(self, cfg: BackendConfig):
        super().__init__(cfg)
        if not cfg.model:
            raise ValueError("backend 'openai': `model` is required (the served model name)")
        if cfg.client not in ("h11", "httpx"):
            raise ValueError(f"backend 'openai': client must be h11 or httpx, not {cfg.client!r}")
        self._client: RetryingClient | None = None

    async def start(self) -> None:
        self._client = RetryingClient(
            self.cfg.base_url, concurrency=self.cfg.concurrency, timeout=self.cfg.timeout,
            api_key=os.environ.get(self.cfg.api_key_env, ""), transport=self.cfg.client, stats=self.stats,
            policy=RetryPolicy(self.cfg.max_retries, self.cfg.backoff, self.cfg.max_backoff))
        await self._client.start()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(self, req: ChatRequest) -> str:
        if self._client is None:
            raise RuntimeError("OpenAIBackend.complete() before start()")
        try:
            body = to_openai_body(req, self.cfg.model, **self.cfg.extra)
        except MessageError as e:
            raise BackendError(str(e), e.code) from None
        headers = {"X-Polyvlm-Stage": req.tag} if req.tag else None
        try:
            answer = await self._client.post_json("/chat/completions", body, headers)
        except RequestFailed as e:
            raise BackendError(f"{self.cfg.base_url}: {e}", e.code) from None
        try:
            return completion_from_openai(answer).text
        except MessageError as e:
            self.stats.failures += 1
            raise BackendError(f"{self.cfg.base_url}: {e}", e.code) from None


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
