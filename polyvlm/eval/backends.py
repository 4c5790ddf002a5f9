"""Where predictions come from: an in-process Generator (batched), an OpenAI-compatible endpoint
(concurrent, retried), or a file of existing predictions. Failures are returned as `Failure`, never as text."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

import httpx

from polyvlm.infer import ChatRequest, Completion, Generator
from polyvlm.infer.client import CallStats, RequestFailed, RetryingClient, RetryPolicy, run_sync
from polyvlm.infer.codec import MessageError, completion_from_openai, to_openai_body

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


class EndpointBackend:
    """Any OpenAI-compatible `/v1/chat/completions` server through the one retrying client of `polyvlm.infer`:
    `concurrency` requests in flight, transient errors (connection, time-out, 408/409/429, 5xx) retried `retries`
    times with jittered exponential back-off or the server's `Retry-After`, other errors recorded as failures."""

    def __init__(self, url: str, model: str = "", concurrency: int = 8, retries: int = 3, timeout: float = 120.0,
                 backoff: float = 0.5, api_key: str = ""):
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.base = self.url[: -len("/chat/completions")]
        self.concurrency, self.timeout, self.api_key = max(1, concurrency), timeout, api_key
        self.policy = RetryPolicy(max_retries=retries, backoff=backoff)
        self.stats = CallStats()
        self.batch_size = self.concurrency * 4
        self.model = model or self._first_model()
        self.name = f"{self.model}@{self.base}"

    def _first_model(self) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            r = httpx.get(self.base + "/models", timeout=self.timeout, headers=headers)
            r.raise_for_status()
            return str(r.json()["data"][0]["id"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            return "default"

    async def _one(self, client: RetryingClient, request: ChatRequest) -> Result:
        try:
            body = to_openai_body(request, self.model)
        except MessageError as e:
            return Failure(f"bad request: {e}")
        try:
            return completion_from_openai(await client.post_json("/chat/completions", body))
        except (RequestFailed, MessageError) as e:
            return Failure(str(e))

    async def _all(self, requests: list[ChatRequest]) -> list[Result]:
        async with RetryingClient(self.base, concurrency=self.concurrency, timeout=self.timeout, api_key=self.api_key,
                                  policy=self.policy, stats=self.stats) as client:
            return list(await asyncio.gather(*(self._one(client, r) for r in requests)))

    def generate(self, requests: list[ChatRequest]) -> list[Result]:
        return run_sync(self._all(requests))


