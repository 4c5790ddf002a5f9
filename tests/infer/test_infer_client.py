"""The retrying client (polyvlm/infer/client.py) against a loopback OpenAI-compatible server: Retry-After honoured,
jittered back-off within its bounds, a bounded number of tries, final 4xx not retried, time-outs and refused
connections retried, on both transports.

Which statuses are retried follows openai-python `src/openai/_base_client.py` (`_should_retry`: 408, 409, 429,
>= 500); `Retry-After` as seconds or an HTTP date is RFC 9110 section 10.2.3, `retry-after-ms` is the OpenAI
client's extension read by the same function.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from email.utils import formatdate

import pytest

from polyvlm.infer import CallStats, RequestFailed, RetryingClient, RetryPolicy, parse_retry_after, run_sync
from polyvlm.synth.fake_server import FakeOpenAIServer, Reply

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture()
def server():
    servers = []

    def start(responder) -> FakeOpenAIServer:
        s = FakeOpenAIServer(responder).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def _post(url: str, policy: RetryPolicy, transport: str = "h11", timeout: float = 5.0, body=BODY, **kw):
    async def go():
        async with RetryingClient(url, policy=policy, transport=transport, timeout=timeout, **kw) as client:
            try:
                return await client.post_json("/chat/completions", body), client.stats
            except RequestFailed as e:
                return e, client.stats
    return asyncio.run(go())


def _script(*replies: Reply | str):
    """A responder answering the n-th request with replies[n] (the last one from then on); records arrival times."""
    times: list[float] = []
    lock = threading.Lock()

    def respond(body, stage, n):
        with lock:
            times.append(time.monotonic())
        return replies[min(n, len(replies) - 1)]
    return respond, times


@pytest.mark.parametrize("transport", ["h11", "httpx"])
def test_retry_after_is_honoured(server, transport):
    respond, times = _script(Reply(429, "slow down", headers={"Retry-After": "1"}), "done")
    s = server(respond)
    answer, stats = _post(s.url, RetryPolicy(max_retries=2, backoff=0.01), transport)
    assert answer["choices"][0]["message"]["content"] == "done"
    assert len(times) == 2 and times[1] - times[0] >= 0.95  # the server's 1 s, not the 0.01 s back-off
    assert (stats.requests, stats.retries, stats.failures) == (2, 1, 0)


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = time.time()
    assert parse_retry_after({"retry-after": formatdate(now + 30, usegmt=True)}, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": formatdate(now - 30, usegmt=True)}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None
    policy = RetryPolicy(backoff=0.5, max_retry_after=60)
    assert policy.delay(0, retry_after=2.0) == 2.0 and policy.delay(3, retry_after=600.0) == 60.0


def test_jitter_stays_within_bounds():
    policy = RetryPolicy(max_retries=8, backoff=0.5, max_backoff=4.0)
    rng = random.Random(0)
    for retry in range(8):
        base = min(4.0, 0.5 * 2**retry)
        draws = [policy.delay(retry, rng=rng) for _ in range(200)]
        assert all(base / 2 <= d <= base for d in draws)
        assert max(draws) - min(draws) > base / 4  # really jittered, not a fixed schedule


def test_jittered_waits_between_real_tries(server, monkeypatch):
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        if seconds:  # the fake server (same module object) sleeps 0 s before answering
            waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("polyvlm.infer.client.asyncio.sleep", sleep)
    respond, times = _script(Reply(503, "busy"))
    s = server(respond)
    err, stats = _post(s.url, RetryPolicy(max_retries=5, backoff=0.1, max_backoff=0.4))
    assert len(waits) == 5 and len(times) == 6
    for n, w in enumerate(waits):
        base = min(0.4, 0.1 * 2**n)
        assert base / 2 <= w <= base


def test_tries_are_bounded(server):
    respond, times = _script(Reply(503, "down"))
    s = server(respond)
    err, stats = _post(s.url, RetryPolicy(max_retries=3, backoff=0.001))
    assert isinstance(err, RequestFailed) and len(times) == 4 == err.attempts
    assert err.code == "http_503" and err.status == 503 and str(err).startswith("gave up after 4 attempts: HTTP 503")
    assert (stats.requests, stats.retries, stats.failures) == (4, 3, 1)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_final_4xx_is_not_retried(server, status):
    respond, times = _script(Reply(status, "no"))
    s = server(respond)
    err, stats = _post(s.url, RetryPolicy(max_retries=3, backoff=0.001))
    assert isinstance(err, RequestFailed) and err.code == f"http_{status}" and str(err).startswith(f"HTTP {status}")
    assert len(times) == 1 and err.attempts == 1 and stats.failures == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 504])
def test_transient_statuses_are_retried(server, status):
    respond, times = _script(Reply(status, "again"), "ok")
    s = server(respond)
    answer, _ = _post(s.url, RetryPolicy(max_retries=1, backoff=0.001))
    assert answer["choices"][0]["message"]["content"] == "ok" and len(times) == 2


@pytest.mark.parametrize("transport", ["h11", "httpx"])
def test_timeouts_and_refused_connections(server, transport):
    respond, times = _script(Reply(delay=2.0), "late but fine")
    s = server(respond)
    answer, stats = _post(s.url, RetryPolicy(max_retries=1, backoff=0.001), transport, timeout=0.3)
    assert answer["choices"][0]["message"]["content"] == "late but fine" and stats.retries == 1
    err, _ = _post("http://127.0.0.1:9/v1", RetryPolicy(max_retries=1, backoff=0.001), transport)
    assert isinstance(err, RequestFailed) and err.code == "connection" and "127.0.0.1:9" in str(err)
    assert str(err).startswith("gave up after 2 attempts")


def test_concurrency_bound_and_shared_stats(server):
    in_flight = [0, 0]
    lock = threading.Lock()

    def respond(body, stage, n):
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.05)  # the fake server's loop is blocked: requests queue on its side
        with lock:
            in_flight[0] -= 1
        return "ok"

    s = server(respond)
    stats = CallStats()

    async def go():
        async with RetryingClient(s.url, concurrency=3, stats=stats) as client:
            return await asyncio.gather(*(client.post_json("/chat/completions", BODY) for _ in range(9)))

    assert len(asyncio.run(go())) == 9 and stats.requests == 9 and s.requests == 9
    assert stats.minus(CallStats(requests=4)).as_dict()["requests"] == 5


def test_run_sync_inside_a_running_loop():
    async def inner():
        await asyncio.sleep(0)
        return 42

    async def outer():
        return run_sync(inner())  # e.g. an eval backend called from async code

    assert run_sync(inner()) == 42 and asyncio.run(outer()) == 42
