"""The one in-process batching adapter (serve, the synth `transformers` and `vllm` backends): requests arriving
together are generated in one `Generator.generate` call on a worker thread.

The event loop only enqueues jobs and awaits futures; tokens and results come back through
`loop.call_soon_threadsafe`, so neither the model nor a slow client ever blocks the loop or other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from polyvlm.infer.request import ChatRequest, Completion, Generator

log = logging.getLogger("polyvlm.infer")


class BatcherError(RuntimeError):
    """A request the batcher could not run. `code`: `overloaded` or `shutting_down` (`status` 503: come back
    later), or `generation_failed` (500: the generator raised on this request alone)."""

    def __init__(self, message: str, code: str, status: int):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


@dataclass
class _Job:
    request: ChatRequest
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    on_token: Callable[[str], None] | None = None
    enqueued: float = field(default_factory=time.monotonic)


def _deliver(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the client's loop is gone (server shutting down)
        pass


def _settle(fut: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if fut.done():  # cancelled: the client went away
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class Batcher:
    """Collects up to `max_batch_size` requests, waiting at most `max_wait_ms` after the first, and runs them.

    `max_batch_size=1` switches batching off (one request per `generate` call, in arrival order).
    """

    def __init__(self, generator: Generator, max_batch_size: int = 8, max_wait_ms: float = 10.0, max_queue: int = 512,
                 arrival_wait_ms: float = 50.0):
        self.generator = generator
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.arrival_wait = max(self.max_wait, arrival_wait_ms / 1000.0)
        self._arriving = 0  # requests received and still being decoded: worth waiting for
        # when the previous batch finished, its size and how long it ran
        self._last_end, self._last_size, self._last_duration = float("-inf"), 0, 0.0
        self._lock = threading.Lock()
        self.max_queue = max_queue
        self.batch_sizes: Counter[int] = Counter()  # batch size -> how many batches ran at that size
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="polyvlm-batcher", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._q.qsize()

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Wrap a request's decoding and `enqueue`: while any is inside, a forming batch may wait up to
        `arrival_wait_ms` for it.

        Without this, clients that all came back at once but whose images are still being decoded would miss
        the batch by a few milliseconds and run in a batch of their own right after.
        """
        with self._lock:
            self._arriving += 1
        try:
            yield
        finally:
            with self._lock:
                self._arriving -= 1

    def enqueue(self, request: ChatRequest, on_token: Callable[[str], None] | None = None) -> asyncio.Future:
        """Queue one request now (call from the event loop); the future resolves to its `Completion`.

        `on_token(delta)` is called on this event loop as text streams in. Cancelling the future drops the
        request if its batch has not started.
        """
        if self._closed:
            raise BatcherError("server is shutting down", "shutting_down", 503)
        if self._q.qsize() >= self.max_queue:
            raise BatcherError(f"server overloaded: {self.max_queue} requests already waiting; retry later",
                               "overloaded", 503)
        loop = asyncio.get_running_loop()
        job = _Job(request, loop, loop.create_future(), on_token)
        self._q.put(job)
        return job.future

    async def submit(self, request: ChatRequest, on_token: Callable[[str], None] | None = None) -> Completion:
        """Queue one request and wait for its completion."""
        return await self.enqueue(request, on_token)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the batch in flight; waiting requests get a 503."""
        if self._closed:
            return
        self._closed = True
        self._q.put(None)
        self._thread.join(timeout)

    # ---- worker thread ----
    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        batch, stop = [first], False
        start = time.monotonic()
        # Right after a batch, its clients are likely on their way back with their next request (evaluation
        # and synthesis clients keep a fixed number in flight): expect them, plus the requests that were already
        # waiting when it ended (another cohort), or the clients split into cohorts that alternate at a fraction
        # of the batch size. A lone client sending one request after another is expected alone: it never waits.
        # How long to wait for them grows with the last batch's run time (a busy CPU slows everyone's return),
        # bounded so that waiting costs at most a fifth of a batch.
        comeback = max(self.arrival_wait, min(0.2 * self._last_duration, 1.0))
        after_batch = start - self._last_end < comeback

        def expected() -> int:
            if not after_batch:
                return 0
            waiting = sum(1 for j in batch if j.enqueued < self._last_end)
            return min(self.max_batch_size, self._last_size + waiting)

        while len(batch) < self.max_batch_size:
            if len(batch) < expected():
                limit = comeback
            elif self._arriving > 0:
                limit = self.arrival_wait
            else:
                limit = self.max_wait
            remaining = start + limit - time.monotonic()
            try:
                # short slices while waiting on arrivals: stop as soon as none is left being decoded
                job = self._q.get(timeout=min(remaining, 0.002)) if remaining > 0 else self._q.get_nowait()
            except queue.Empty:
                if remaining > 0:
                    continue
                break
            if job is None:
                stop = True
                break
            batch.append(job)
        return [j for j in batch if not j.future.cancelled()], stop

    def _run(self) -> None:
        while True:
            first = self._q.get()
            if first is None or self._closed:
                if first is not None:
                    self._fail(first)
                break
            batch, stop = self._collect(first)
            if batch:
                self._run_batch(batch)
            if stop:
                break
        while True:  # fail whatever is still queued
            try:
                job = self._q.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self._fail(job)

    @staticmethod
    def _fail(job: _Job) -> None:
        _deliver(job.loop, _settle, job.future, None, BatcherError("server is shutting down", "shutting_down", 503))

    def _run_batch(self, batch: list[_Job]) -> None:
        # tokens wait here for their event loop; it is woken once for all queued since it last ran, not once
        # per token and stream (each wake-up takes the GIL from the generation)
        pending: dict[asyncio.AbstractEventLoop, list[tuple[Callable[[str], None], str]]] = {}
        lock = threading.Lock()

        def flush(loop: asyncio.AbstractEventLoop) -> None:
            with lock:
                items = pending.pop(loop, [])
            for fn, delta in items:
                try:
                    fn(delta)
                except Exception:  # pragma: no cover - a client callback must not cost the others their tokens
                    log.exception("token callback failed")

        def on_token(i: int, delta: str) -> None:
            job = batch[i]
            if job.on_token is None or not delta:
                return
            with lock:
                items = pending.setdefault(job.loop, [])
                wake = not items
                items.append((job.on_token, delta))
            if wake:
                _deliver(job.loop, flush, job.loop)

        began = time.monotonic()
        try:
            results = self.generator.generate([j.request for j in batch], on_token=on_token)
            if len(results) != len(batch):
                raise RuntimeError(f"generator returned {len(results)} completions for {len(batch)} requests")
        except Exception as e:
            if len(batch) > 1:  # one bad request must not fail the others: retry each alone
                log.warning("batch of %d failed (%s); retrying one by one", len(batch), e)
                for job in batch:
                    self._run_batch([job])
                return
            log.exception("generation failed")
            err = BatcherError(f"generation failed: {type(e).__name__}: {e}", "generation_failed", 500)
            _deliver(batch[0].loop, _settle, batch[0].future, None, err)
            return
        self.batch_sizes[len(batch)] += 1
        # recorded before the results go out: a client that answers at once must count as coming back, not as
        # one that was already waiting when the batch ended (which would make the next batch wait for company)
        self._last_end, self._last_size = time.monotonic(), len(batch)
        self._last_duration = self._last_end - began
        for job, res in zip(batch, results):
            _deliver(job.loop, _settle, job.future, res, None)
