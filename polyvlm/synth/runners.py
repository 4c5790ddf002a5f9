"""Runners that push pending records through a map stage: `local` (asyncio, bounded concurrency) and `ray`
(Ray Data: chunks of records mapped in batches by an actor pool, each actor running its own event loop).

Runners never write files: every outcome goes back to the driver's `on_done` callback, which is the single
writer of result shards, so exactly-once holds however the work was spread.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from polyvlm.data.records import RecordError
from polyvlm.synth.backends import BackendError
from polyvlm.synth.config import (
    RAY_MISSING,
    PipelineConfig,
    PipelineError,
    StageSpec,
    make_backend,
    make_stage,
)
from polyvlm.synth.stages.base import Result, Stage, reject
from polyvlm.synth.templates import PromptError


@dataclass
class WorkItem:
    key: str
    record: dict
    source: str  # where the record came from, for messages: `file.jsonl:12` or `03-judge:<id>`


@dataclass
class Failure:
    """A record the stage could not finish (backend down, an unexpected error): never silently dropped."""

    code: str
    reason: str


Outcome = Result | Failure
OnDone = Callable[[WorkItem, Outcome], None]


async def process_one(stage: Stage, record: dict) -> Outcome:
    try:
        return await stage.process(record)
    except BackendError as e:
        return Failure(e.code, str(e))
    except RecordError as e:
        return reject("invalid_record", str(e))
    except PromptError:
        raise
    except Exception as e:  # noqa: BLE001 - a stage bug on one record must not lose the others
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        return Failure("stage_error", f"{stage.name}: {tb}")


async def run_async(stage: Stage, items: Iterable[WorkItem], on_done: OnDone, concurrency: int) -> None:
    """Process `items` with at most `concurrency` records in flight; `on_done` is called as each finishes."""
    backend = stage.ctx.backend if stage.uses_backend() else None
    if backend is not None:
        await backend.start()
    queue: asyncio.Queue = asyncio.Queue(maxsize=2 * concurrency)

    async def produce() -> None:
        for i, item in enumerate(items):
            await queue.put(item)
            if i % 256 == 255:
                await asyncio.sleep(0)
        for _ in range(concurrency):
            await queue.put(None)

    async def work() -> None:
        while (item := await queue.get()) is not None:
            on_done(item, await process_one(stage, item.record))

    try:
        await asyncio.gather(produce(), *(work() for _ in range(concurrency)))
    finally:
        if backend is not None:
            await backend.close()


class LocalRunner:
    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg

    def run(self, stage: Stage, spec: StageSpec, items: Iterable[WorkItem], on_done: OnDone) -> None:
        asyncio.run(run_async(stage, items, on_done, self.cfg.concurrency))


def outcome_to_json(o: Outcome) -> str:
    if isinstance(o, Failure):
        return json.dumps({"failure": o.code, "reason": o.reason}, ensure_ascii=False)
    return json.dumps({"status": o.status, "outputs": o.outputs, "reason": o.reason, "code": o.code,
                       "meta": o.meta}, ensure_ascii=False)


def outcome_from_json(text: str) -> Outcome:
    d = json.loads(text)
    if "failure" in d:
        return Failure(d["failure"], d["reason"])
    return Result(d["status"], d["outputs"], d["reason"], d["code"], d["meta"])


class _StageActor:
    """One Ray actor: builds its own stage and backend (a model loads once per actor), then maps batches."""

    def __init__(self, spec: StageSpec, cfg: PipelineConfig):
        backend = make_backend(spec.backend, cfg) if spec.backend else None
        self.stage = make_stage(spec, cfg, backend)
        self.concurrency = cfg.concurrency

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        keys = [str(k) for k in batch["key"]]
        records = [json.loads(r) for r in batch["record"]]
        results: list[Outcome | None] = [None] * len(keys)

        def done(item: WorkItem, outcome: Outcome) -> None:
            results[int(item.source)] = outcome

        items = [WorkItem(k, r, str(i)) for i, (k, r) in enumerate(zip(keys, records))]
        asyncio.run(run_async(self.stage, items, done, min(self.concurrency, len(items))))
        return {"key": keys, "outcome": [outcome_to_json(o) for o in results if o is not None]}


def _chunks(items: Iterable[WorkItem], n: int) -> Iterator[list[WorkItem]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


class RayRunner:
    """Ray Data runner: the driver streams pending records in chunks; an actor pool maps them in batches."""

    def __init__(self, cfg: PipelineConfig):
        try:
            import ray  # noqa: F401
            import ray.data  # noqa: F401
        except ImportError:
            raise PipelineError(RAY_MISSING) from None
        self.cfg = cfg

    def _init(self) -> None:
        import ray

        if not ray.is_initialized():
            kw: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
            if self.cfg.ray.address:
                ray.init(address=self.cfg.ray.address, **kw)
            else:
                ray.init(**kw)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def run(self, stage: Stage, spec: StageSpec, items: Iterable[WorkItem], on_done: OnDone) -> None:
        import ray

        self._init()
        r = self.cfg.ray
        for chunk in _chunks(items, r.chunk_size):
            by_key = {it.key: it for it in chunk}
            ds = ray.data.from_items([{"key": it.key, "record": json.dumps(it.record, ensure_ascii=False)}
                                      for it in by_key.values()])
            ds = ds.map_batches(_StageActor, fn_constructor_kwargs={"spec": spec, "cfg": self.cfg},
                                batch_size=r.batch_size, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(size=r.num_actors), num_cpus=r.num_cpus_per_actor)
            for row in ds.iter_rows():
                on_done(by_key[str(row["key"])], outcome_from_json(str(row["outcome"])))


def make_runner(cfg: PipelineConfig) -> LocalRunner | RayRunner:
    return RayRunner(cfg) if cfg.runner == "ray" else LocalRunner(cfg)
