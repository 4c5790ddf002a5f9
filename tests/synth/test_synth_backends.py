"""Backends: openai against a loopback fake server (HTTP 500s, hangs, bad requests), the batched transformers
backend over a Generator, and the clear error of the vllm backend when vLLM is missing."""

from __future__ import annotations

import asyncio
import importlib.util
import threading

import pytest

from polyvlm.infer import ChatRequest, Completion
from polyvlm.synth.backends import BackendConfig, BackendError, OpenAIBackend, build_backend
from polyvlm.synth.fake_server import Reply
from polyvlm.synth.local_backends import TransformersBackend, VLLMBackend


def _run(backend, requests):
    async def go():
        await backend.start()
        try:
            return await asyncio.gather(*(backend.complete(r) for r in requests), return_exceptions=True)
        finally:
            await backend.close()
    return asyncio.run(go())


def _cfg(url, **kw):
    return BackendConfig(base_url=url, model="m", backoff=0.01, max_backoff=0.05, **kw)


@pytest.mark.parametrize("client", ["h11", "httpx"])
def test_openai_retries_500s_and_timeouts(fake_server, client):
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def flaky(body, stage, n):
        text = body["messages"][0]["content"]
        with lock:
            seen[text] = seen.get(text, 0) + 1
            k = seen[text]
        i = int(text.split()[-1])
        if i % 3 == 0 and k == 1:
            return Reply(500, "overloaded")
        if i % 5 == 0 and k == 1:
            return Reply(delay=2.0)  # longer than the client time-out
        return f"answer {i}"

    server = fake_server(flaky)
    backend = OpenAIBackend(_cfg(server.url, timeout=0.5, concurrency=8, client=client))
    out = _run(backend, [ChatRequest([{"role": "user", "content": f"q {i}"}], tag="judge") for i in range(30)])
    assert out == [f"answer {i}" for i in range(30)]
    assert backend.stats.retries == 10 + 6 - 2  # multiples of 3 (10) and of 5 (6), 0 and 15 counted once
    assert server.by_stage["judge"] == 30 + backend.stats.retries and server.statuses[500] == 10


def test_openai_gives_up_with_reason(fake_server):
    server = fake_server(lambda body, stage, n: Reply(503, "down") if "down" in str(body) else Reply(400, "bad"))
    backend = OpenAIBackend(_cfg(server.url, max_retries=2))
    down, bad = _run(backend, [ChatRequest([{"role": "user", "content": "down"}]),
                               ChatRequest([{"role": "user", "content": "x"}])])
    assert isinstance(down, BackendError) and down.code == "http_503" and "HTTP 503" in str(down)
    assert isinstance(bad, BackendError) and bad.code == "http_400"  # not retried
    assert server.requests == 3 + 1 and backend.stats.failures == 2
    dead = OpenAIBackend(_cfg("http://127.0.0.1:9", max_retries=1))
    (err,) = _run(dead, [ChatRequest([{"role": "user", "content": "x"}])])
    assert isinstance(err, BackendError) and err.code == "connection" and "127.0.0.1:9" in str(err)


def test_openai_sends_images_as_parts_in_placeholder_order(fake_server, image_dir):
    bodies = []
    server = fake_server(lambda body, stage, n: bodies.append(body) or "ok")
    backend = OpenAIBackend(_cfg(server.url))
    req = ChatRequest([{"role": "system", "content": "sys"},
                       {"role": "user", "content": "first <image> then <image> end"}],
                      images=[str(image_dir / "red.png"), str(image_dir / "blue.png")])
    assert _run(backend, [req]) == ["ok"]
    parts = bodies[0]["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url", "text"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1]["image_url"]["url"] != parts[3]["image_url"]["url"]
    assert bodies[0]["messages"][0] == {"role": "system", "content": "sys"}


class FakeGenerator:
    name = "fake-gen"
    modalities = {"image"}
    max_context = 512

    def __init__(self):
        self.batches: list[int] = []

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        return 1

    def generate(self, requests, on_token=None):
        self.batches.append(len(requests))
        return [Completion(f"{r.messages[-1]['content']}|{len(r.images)}", 1, 1, "stop") for r in requests]


def test_transformers_backend_batches_generator(image_dir):
    gen = FakeGenerator()
    backend = TransformersBackend(BackendConfig(type="transformers", batch_size=4, max_wait_ms=50), generator=gen)
    reqs = [ChatRequest([{"role": "user", "content": f"<image>\nq{i}"}], images=[str(image_dir / "red.png")])
            for i in range(10)]
    assert _run(backend, reqs) == [f"<image>\nq{i}|1" for i in range(10)]
    assert sum(gen.batches) == 10 and max(gen.batches) == 4 and len(gen.batches) <= 4
    assert backend.model_id == "transformers:fake-gen"


def test_unknown_and_missing_backends_fail_clearly():
    with pytest.raises(ValueError, match="unknown backend type 'openia'"):
        build_backend(BackendConfig(type="openia"))
    with pytest.raises(ValueError, match="`model` is required"):
        OpenAIBackend(BackendConfig())
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(BackendError, match=r"pip install 'polyvlm\[vllm\]'"):
            VLLMBackend(BackendConfig(type="vllm", model="x"))
