"""Dynamic batching under load through the server: concurrent clients all succeed, batches form, and a stalled
client blocks nobody (the batcher itself is tested in tests/infer/test_infer_batching.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
from serve_fakes import FakeGenerator
from serve_helpers import data_uri, live_server, png_bytes

from polyvlm.serve.app import create_app
from polyvlm.serve.config import ServeConfig

COLORS = {"red": (230, 10, 10), "green": (10, 230, 10), "blue": (10, 10, 230)}


async def _load(url: str, n_requests: int, n_clients: int) -> list[tuple[int, str, str]]:
    """n_clients concurrent workers send n_requests image requests; returns (status, expected, answer)."""
    jobs: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n_requests):
        jobs.put_nowait(i)
    results = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not jobs.empty():
            i = jobs.get_nowait()
            color = list(COLORS)[i % 3]
            body = {"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": data_uri(png_bytes(COLORS[color], (16, 16)))}},
                {"type": "text", "text": f"request {i}"}]}], "temperature": 0, "stream": i % 2 == 0}
            if body["stream"]:
                text = ""
                async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data: {"):
                            text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                results.append((r.status_code, f"echo: request {i} | images=1 audios=0 turns=1 | {color}-16x16 ", text))
            else:
                r = await client.post("/v1/chat/completions", json=body)
                text = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else r.text
                results.append((r.status_code, f"echo: request {i} | images=1 audios=0 turns=1 | {color}-16x16 ", text))

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(n_clients)))
    return results


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_clients_all_succeed(batching):
    gen = FakeGenerator(batch_sleep=0.02)
    app = create_app(gen, ServeConfig(max_batch_size=8, batch_wait_ms=5, no_batching=not batching))
    with live_server(app) as url:
        results = asyncio.run(_load(url, n_requests=48, n_clients=12))
    app.state.batcher.close()
    assert len(results) == 48
    assert all(status == 200 for status, _, _ in results)
    assert all(got == want for _, want, got in results)  # every client got its own answer
    assert sum(gen.batch_sizes) == 48
    if batching:
        assert max(gen.batch_sizes) > 1 and max(gen.batch_sizes) <= 8
        assert len(gen.batch_sizes) < 48
    else:
        assert set(gen.batch_sizes) == {1}


def test_stalled_streaming_client_blocks_nobody():
    gen = FakeGenerator(batch_sleep=0.0, max_context=200_000)
    app = create_app(gen, ServeConfig(max_batch_size=4, batch_wait_ms=1, default_max_tokens=100_000))
    words = 40_000  # ~9 MB of SSE events: far more than the socket buffers hold
    body = json.dumps({"messages": [{"role": "user", "content": " ".join(["w"] * words)}], "stream": True}).encode()
    with live_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 20
        while not gen.batch_sizes and time.monotonic() < deadline:  # its generation has run
            time.sleep(0.01)
        time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=10) as c:  # others are served while it does not read
            for i in range(5):
                r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": f"q{i}"}], "stream": i % 2 == 1})
                assert r.status_code == 200 and f"q{i}" in r.text
        received = bytearray()
        stalled.settimeout(20)
        while chunk := stalled.recv(1 << 20):  # read to the end now
            received += chunk
        stalled.close()
    app.state.batcher.close()
    assert b"data: [DONE]" in received[-100:]
    # every token arrived: tokens queued while the client did not read go out merged into fewer events
    assert received.count(b"w ") == words and received.count(b"data: ") < words
