"""The batching adapter (polyvlm/infer/batching.py): batch size and wait bounds, token streaming per request,
overload and shutdown refusals, cancelled requests skipped, waiting for requests still being decoded, returning
clients rejoining one batch, and a failing request not sinking its batch."""

from __future__ import annotations

import asyncio

import pytest
from infer_fakes import EchoGenerator

from polyvlm.infer import Batcher, BatcherError, ChatRequest


def _req(tag: str) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": tag}], max_new_tokens=4)


def test_batcher_respects_max_batch_size_and_wait():
    gen = EchoGenerator(batch_sleep=0.05)
    batcher = Batcher(gen, max_batch_size=3, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(batcher.submit(_req(f"r{i}")) for i in range(7)))

    out = asyncio.run(main())
    batcher.close()
    assert [c.text.split()[1] for c in out] == [f"r{i}" for i in range(7)]
    assert gen.batch_sizes == [3, 3, 1]
    assert batcher.batch_sizes == {3: 2, 1: 1}


def test_batcher_streams_tokens_per_request():
    gen = EchoGenerator(batch_sleep=0.0)
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
    gen = EchoGenerator(batch_sleep=0.3)
    batcher = Batcher(gen, max_batch_size=1, max_wait_ms=0, max_queue=2)

    async def main():
        tasks = [asyncio.ensure_future(batcher.submit(_req("r0")))]
        await asyncio.sleep(0.05)  # r0 is generating
        tasks += [asyncio.ensure_future(batcher.submit(_req(f"r{i}"))) for i in (1, 2)]
        await asyncio.sleep(0.01)  # r1 and r2 wait
        with pytest.raises(BatcherError) as e:
            await batcher.submit(_req("one too many"))
        assert e.value.status == 503 and e.value.code == "overloaded"
        await asyncio.to_thread(batcher.close)
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, *rest = asyncio.run(main())
    assert first.text.startswith("echo: r0")
    assert all(isinstance(r, BatcherError) and r.status == 503 for r in rest)


def test_cancelled_request_is_skipped():
    gen = EchoGenerator(batch_sleep=0.2)
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
    gen = EchoGenerator(batch_sleep=0.0)
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
    gen = EchoGenerator(batch_sleep=0.0)
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
    gen = EchoGenerator(batch_sleep=1.0)
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


def test_failing_request_does_not_sink_its_batch():
    gen = EchoGenerator()
    batcher = Batcher(gen, max_batch_size=4, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(batcher.submit(_req(t)) for t in ("a", "FAIL", "b")), return_exceptions=True)

    a, failed, b = asyncio.run(main())
    batcher.close()
    assert a.text == "echo: a " and b.text == "echo: b "
    assert isinstance(failed, BatcherError) and failed.status == 500 and failed.code == "generation_failed"
    assert gen.batch_sizes[0] == 3 and sorted(gen.batch_sizes[1:]) == [1, 1, 1]  # retried one by one
