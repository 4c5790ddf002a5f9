"""Dynamic batching under load: concurrent clients all succeed, batches form, and a stalled client blocks nobody."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
from serve_fakes import FakeGenerator
from serve_helpers import data_uri, live_server, png_bytes

from polyvlm.infer import ChatRequest
from polyvlm.serve.app import create_app
from polyvlm.serve.batcher import Batcher
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError

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


def _req(tag: str) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": tag}], max_new_tokens=4)


def test_batcher_respects_max_batch_size_and_wait():
    gen = FakeGenerator(batch_sleep=0.05)
    batcher = Batcher(gen, max_batch_size=3, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(batcher.submit(_req(f"r{i}")) for i in range(7)))

    out = asyncio.run(main())
    batcher.close()
    assert [c.text.split()[1] for c in out] == [f"r{i}" for i in range(7)]
    assert gen.batch_sizes == [3, 3, 1]
    assert batcher.batch_sizes == {3: 2, 1: 1}


def test_batcher_streams_tokens_per_request():
    gen = FakeGenerator(batch_sleep=0.0)
    batcher = Batcher(gen, max_batch_size=4, max_wait_ms=20)

    async def main():
        streams: dict[str, list[str]] = {"a": [], "b": []}
        done = await asyncio.gather(*(batcher.submit(_req(k), on_token=streams[k].append) for k in streams))
        return streams, done

    streams, done = asyncio.run(main())
    batcher.close()
    assert gen.batch_sizes == [2]
    for (k, deltas), c in zip(streams.items(), done):
        assert "".join(deltas) == c.text and c.text.startswith(f"echo: {k} ")


def test_batcher_overload_and_shutdown():
    gen = FakeGenerator(batch_sleep=0.3)
    batcher = Batcher(gen, max_batch_size=1, max_wait_ms=0, max_queue=2)

    async def main():
        tasks = [asyncio.ensure_future(batcher.submit(_req("r0")))]
        await asyncio.sleep(0.05)  # r0 is generating
        tasks += [asyncio.ensure_future(batcher.submit(_req(f"r{i}"))) for i in (1, 2)]
        await asyncio.sleep(0.01)  # r1 and r2 wait
        with pytest.raises(APIError) as e:
            await batcher.submit(_req("one too many"))
        assert e.value.status == 503 and e.value.code == "overloaded"
        await asyncio.to_thread(batcher.close)
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, *rest = asyncio.run(main())
    assert first.text.startswith("echo: r0")
    assert all(isinstance(r, APIError) and r.status == 503 for r in rest)


def test_cancelled_request_is_skipped():
    gen = FakeGenerator(batch_sleep=0.2)
    batcher = Batcher(gen, max_batch_size=1, max_wait_ms=0)

    async def main():
        first = asyncio.ensure_future(batcher.submit(_req("keep")))
        gone = asyncio.ensure_future(batcher.submit(_req("gone")))
        await asyncio.sleep(0.05)
        gone.cancel()  # its client disconnected while it waited
        return await first

    assert asyncio.run(main()).text.startswith("echo: keep")
    batcher.close()
    assert [r.messages[0]["content"] for r in gen.requests] == ["keep"]


def test_batch_waits_for_requests_still_being_decoded():
    """An arrival wait far longer than the test's timeout: the batch can only run because the batcher starts it
    the moment the last request being decoded is queued, not when the wait expires."""
    gen = FakeGenerator(batch_sleep=0.0)
    batcher = Batcher(gen, max_batch_size=8, max_wait_ms=1, arrival_wait_ms=600_000)
    events: list[str] = []

    async def late(tag: str):
        with batcher.arriving():  # received, decoding its media for a while, then queued
            await asyncio.sleep(0.3)
            events.append("late queued")
            future = batcher.enqueue(_req(tag))
        return await future

    async def main():
        early = asyncio.ensure_future(batcher.submit(_req("early")))
        early.add_done_callback(lambda _: events.append("early answered"))
        return await asyncio.wait_for(asyncio.gather(early, late("late")), timeout=60)

    asyncio.run(main())
    batcher.close()
    assert gen.batch_sizes == [2]  # joined ...
    assert events == ["late queued", "early answered"]  # ... and "early" was held for it, not answered alone


def test_lone_sequential_client_never_waits_for_company():
    """With an arrival wait far beyond the test's timeout, a lone client sending one request after another
    is only served if the batcher never expects company for it."""
    gen = FakeGenerator(batch_sleep=0.0)
    batcher = Batcher(gen, max_batch_size=8, max_wait_ms=1, arrival_wait_ms=600_000)

    async def main():
        for i in range(5):  # one request after another, like `polyvlm eval --concurrency 1`
            await asyncio.wait_for(batcher.submit(_req(f"r{i}")), timeout=60)

    asyncio.run(main())
    batcher.close()
    assert gen.batch_sizes == [1] * 5


def test_returning_clients_rejoin_one_batch_even_when_slow_to_come_back():
    """Clients that take longer than the arrival wait to send their next request (a busy CPU) still form
    full batches: the wait for them grows with the last batch's run time."""
    gen = FakeGenerator(batch_sleep=1.0)
    batcher = Batcher(gen, max_batch_size=8, max_wait_ms=5, arrival_wait_ms=20)

    async def client(k: int):
        for i in range(3):
            await batcher.submit(_req(f"c{k}-{i}"))
            await asyncio.sleep(0.01 + 0.02 * k)  # staggered, up to 7x arrival_wait_ms; < a fifth of a batch

    async def main():
        await asyncio.gather(*(client(k) for k in range(8)))

    asyncio.run(main())
    batcher.close()
    assert gen.batch_sizes == [8, 8, 8]
