"""In-process backends for synth: `transformers` (a `polyvlm.infer.Generator`) and `vllm` (vLLM's offline
engine, optional extra), both fed by `BatchingBackend`, which gathers concurrent requests into batches."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import Any

from polyvlm.synth.backends import Backend, BackendConfig, BackendError, SynthRequest, to_openai_messages


class BatchingBackend(Backend):
    """Gathers concurrent `complete` calls into batches of up to `batch_size` (waiting `max_wait_ms` for
    more) and runs `_generate_batch` in a worker thread, one batch at a time."""

    def __init__(self, cfg: BackendConfig):
        super().__init__(cfg)
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    def _generate_batch(self, reqs: list[SynthRequest]) -> list[str]:
        raise NotImplementedError

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def complete(self, req: SynthRequest) -> str:
        if self._queue is None:
            raise RuntimeError(f"{type(self).__name__}.complete() before start()")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((req, fut))
        return await fut

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + self.cfg.max_wait_ms / 1000
            while len(batch) < self.cfg.batch_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            t0 = time.perf_counter()
            try:
                texts = await asyncio.to_thread(self._generate_batch, [r for r, _ in batch])
                err = None
            except Exception as e:  # noqa: BLE001 - every failure is reported per request
                texts, err = [], e
            self.stats.requests += len(batch)
            self.stats.seconds += (time.perf_counter() - t0) * len(batch)
            for i, (_, fut) in enumerate(batch):
                if fut.done():
                    continue
                if err is not None:
                    self.stats.failures += 1
                    code = err.code if isinstance(err, BackendError) else "generate_error"
                    fut.set_exception(BackendError(f"{self.kind}: {type(err).__name__}: {err}", code))
                else:
                    fut.set_result(texts[i])


def _open_image(ref: str) -> Any:
    from PIL import Image

    try:
        if ref.startswith("data:"):
            return Image.open(io.BytesIO(base64.b64decode(ref.split(",", 1)[1]))).convert("RGB")
        return Image.open(ref).convert("RGB")
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot open image {ref[:80]}: {e}", "media_unreadable") from None


class TransformersBackend(BatchingBackend):
    """A `polyvlm.infer.Generator` in process: `checkpoint` loads one with `polyvlm.load_generator`, or pass
    `generator=` directly (tests, notebooks)."""

    kind = "transformers"

    def __init__(self, cfg: BackendConfig, generator: Any = None):
        super().__init__(cfg)
        if generator is None:
            if not cfg.checkpoint:
                raise ValueError("backend 'transformers': `checkpoint` is required (a polyvlm checkpoint directory)")
            import polyvlm

            load = getattr(polyvlm, "load_generator", None)
            if load is None:
                raise ValueError("backend 'transformers': this polyvlm build has no load_generator()")
            generator = load(cfg.checkpoint, device=cfg.device, dtype=cfg.dtype)
        self.generator = generator

    @property
    def model_id(self) -> str:
        return f"transformers:{self.cfg.model or self.cfg.checkpoint or self.generator.name}"

    def _generate_batch(self, reqs: list[SynthRequest]) -> list[str]:
        from polyvlm.infer import ChatRequest

        chats = [ChatRequest(messages=r.messages, images=[_open_image(p) for p in r.images],
                             max_new_tokens=r.max_tokens, temperature=r.temperature) for r in reqs]
        return [c.text for c in self.generator.generate(chats)]


class VLLMBackend(BatchingBackend):
    """vLLM's offline `LLM.chat` engine; `model` is a local model directory, `extra` goes to `LLM(...)`."""

    kind = "vllm"

    def __init__(self, cfg: BackendConfig):
        super().__init__(cfg)
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise BackendError(
                "backend 'vllm' needs vLLM installed: pip install 'polyvlm[vllm]' (or use the `openai` backend "
                "against a `vllm serve` process)", "missing_dependency") from None
        if not cfg.model:
            raise ValueError("backend 'vllm': `model` is required (a local model directory)")
        self._sampling = SamplingParams
        self.llm = LLM(model=cfg.model, **cfg.extra)

    def _generate_batch(self, reqs: list[SynthRequest]) -> list[str]:
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(reqs):
            groups.setdefault((r.max_tokens, r.temperature), []).append(i)
        out = [""] * len(reqs)
        for (max_tokens, temperature), idx in groups.items():
            params = self._sampling(max_tokens=max_tokens, temperature=temperature)
            results = self.llm.chat([to_openai_messages(reqs[i]) for i in idx], params, use_tqdm=False)
            for i, res in zip(idx, results):
                out[i] = res.outputs[0].text
        return out
