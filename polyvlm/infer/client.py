"""The one retrying HTTP client of OpenAI-compatible servers (eval `--endpoint`, the synth `openai` backend, LLM
judges): a bounded number of requests in flight, bounded tries, exponential back-off with jitter, `Retry-After`.

Which failures are retried follows the OpenAI Python client (openai-python `_base_client.py`,
`_should_retry`): time-outs, connection errors, 408, 409, 429 and every 5xx (plus 425 Too Early, RFC 8470); any
other status is final. A server's `Retry-After` (seconds or an HTTP date) or `retry-after-ms` replaces the
back-off for that wait, capped at `max_retry_after`.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 409, 425, 429})


@dataclass
class RetryPolicy:
    """`max_retries` retries after the first try (so at most `max_retries + 1` tries). The n-th retry (n = 0, 1,
    ...) waits `min(max_backoff, backoff * 2**n)` scaled by a uniform factor in [0.5, 1] ("equal jitter", so that
    clients which failed together do not come back together), unless the server said how long to wait."""

    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {self.max_retries}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must be >= 0")

    @staticmethod
    def retryable(status: int) -> bool:
        return status in RETRY_STATUS or status >= 500

    def delay(self, retry: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 = the first retry)."""
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after)
        base = min(self.max_backoff, self.backoff * 2**retry)
        return base * (0.5 + (rng or random).random() / 2)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a server asked to wait: `retry-after-ms`, else `Retry-After` as seconds or as an HTTP date
    (RFC 9110 10.2.3); None when absent or unreadable. Header names are lower case."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RequestFailed(Exception):
    """A request that got no usable answer. `code`: `timeout`, `connection`, `http_<status>` or `bad_response`;
    `status`: the last HTTP status (0 without one); `attempts`: how many tries were made."""

    def __init__(self, message: str, code: str, status: int = 0, attempts: int = 1):
        super().__init__(message)
        self.code, self.status, self.attempts = code, status, attempts


@dataclass
class CallStats:
    """Counters of a client: HTTP attempts, retries among them, requests that failed for good, seconds spent."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    seconds: float = 0.0

    def minus(self, other: CallStats) -> CallStats:
        """The calls made since `other` was snapshotted (a client shared between users)."""
        return CallStats(self.requests - other.requests, self.retries - other.retries,
                         self.failures - other.failures, self.seconds - other.seconds)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "retries": self.retries, "failures": self.failures,
                "mean_latency_s": round(self.seconds / self.requests, 4) if self.requests else 0.0}


class RetryingClient:
    """POSTs JSON to one OpenAI-compatible base URL (`.../v1`) with at most `concurrency` requests in flight.

    `transport="h11"` (default) uses the lean keep-alive pool of `polyvlm.infer.h11pool`; `"httpx"` uses httpx
    (proxies from the environment, HTTP/2), one single-connection client per slot because httpcore's shared
    pool spends O(connections x waiting requests) CPU per request. Use as `async with client:` or call
    `start()` / `close()` on the event loop that makes the requests.
    """

    def __init__(self, base_url: str, *, concurrency: int = 8, timeout: float = 120.0, api_key: str = "",
                 policy: RetryPolicy | None = None, transport: str = "h11", stats: CallStats | None = None,
                 seed: int | None = None):
        if transport not in ("h11", "httpx"):
            raise ValueError(f"transport must be h11 or httpx, not {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.concurrency, self.timeout, self.transport = max(1, concurrency), timeout, transport
        self.policy = policy or RetryPolicy()
        self.stats = stats if stats is not None else CallStats()
        self.headers = {"Authorization": f"Bearer {api_key or 'EMPTY'}"}
        self._rng = random.Random(seed)
        self._pool: Any = None
        self._idle: asyncio.Queue | None = None
        self._clients: list[Any] = []

    async def __aenter__(self) -> RetryingClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self.transport == "h11":
            from polyvlm.infer.h11pool import H11Pool

            self._pool = H11Pool(self.base_url, self.concurrency, self.timeout, self.headers)
            return
        import httpx

        tls = ssl.create_default_context()  # loaded once and shared: ~70 ms per client otherwise
        self._idle = asyncio.Queue()
        for _ in range(self.concurrency):
            client = httpx.AsyncClient(
                base_url=self.base_url, timeout=httpx.Timeout(self.timeout), verify=tls, headers=self.headers,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
            self._clients.append(client)
            self._idle.put_nowait(client)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        for client in self._clients:
            await client.aclose()
        self._clients, self._idle = [], None

    async def _send(self, path: str, payload: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One HTTP exchange; raises RequestFailed(code=timeout|connection) on transport failure."""
        if self._pool is not None:
            from polyvlm.infer.h11pool import HTTPError

            try:
                return await self._pool.post(path, payload, headers)
            except HTTPError as e:
                raise RequestFailed(f"{self.base_url}: {e}", e.code) from None
        import httpx

        if self._idle is None:
            raise RuntimeError("RetryingClient used before start()")
        client = await self._idle.get()
        try:
            resp = await client.post(path, content=payload, headers=headers)
            return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content
        except httpx.TimeoutException:
            raise RequestFailed(f"{self.base_url}: timed out after {self.timeout}s", "timeout") from None
        except httpx.TransportError as e:
            raise RequestFailed(f"{self.base_url}: {type(e).__name__}: {e}", "connection") from None
        finally:
            self._idle.put_nowait(client)

    async def post_json(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        """POST `body` as JSON to `base_url + path` and return the decoded JSON answer of a 200, retrying what
        the policy retries. Raises RequestFailed when a status is final, the answer is not JSON, or the tries
        are spent (then the message says `gave up after N attempts`)."""
        if self._pool is None and self._idle is None:
            raise RuntimeError("RetryingClient used before start()")
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        head = {"Content-Type": "application/json", **(headers or {})}
        tries = self.policy.max_retries + 1
        last: RequestFailed | None = None
        asked: float | None = None
        for attempt in range(tries):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.policy.delay(attempt - 1, asked, self._rng))
            t0 = time.perf_counter()
            try:
                status, got, data = await self._send(path, payload, head)
            except RequestFailed as e:
                last, asked = e, None
                continue
            finally:
                self.stats.requests += 1
                self.stats.seconds += time.perf_counter() - t0
            if status == 200:
                try:
                    return json.loads(data)
                except ValueError:
                    self.stats.failures += 1
                    raise RequestFailed(f"{self.base_url}: the answer is not JSON: {data[:200]!r}", "bad_response",
                                        status, attempt + 1) from None
            last = RequestFailed(f"HTTP {status}: {data.decode('utf-8', 'replace')[:200]}", f"http_{status}", status,
                                 attempt + 1)
            if not self.policy.retryable(status):
                self.stats.failures += 1
                raise last
            asked = parse_retry_after(got)
        self.stats.failures += 1
        assert last is not None
        raise RequestFailed(f"gave up after {tries} attempts: {last}", last.code, last.status, tries)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from synchronous code, also when this thread already runs an event loop
    (then on a fresh loop in a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="polyvlm-run-sync")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
