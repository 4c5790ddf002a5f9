"""In-process backends for synth: `transformers` (a `polyvlm.infer.Generator`) and `vllm` (vLLM's offline
engine, optional extra), both behind `polyvlm.infer.Batcher`, the batching adapter `polyvlm serve` uses:
concurrent requests are gathered into one `generate` call on a worker thread."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import Any

from polyvlm.infer import Batcher, BatcherError, ChatRequest, Completion, Generator
from polyvlm.infer.codec import to_openai_messages
from polyvlm.synth.backends import Backend, BackendConfig, BackendError


class GeneratorBackend(Backend):
    """A `Generator` behind a `Batcher`: up to `batch_size` concurrent requests per `generate` call, waiting at
    most `max_wait_ms` for company. Image references (paths, data URIs) are decoded off the event loop first."""

    def __init__(self, cfg: BackendConfig, generator: Generator):
        super().__init__(cfg)
        self.generator = generator
        self._batcher: Batcher | None = None

    async def start(self) -> None:
        self._batcher = Batcher(self.generator, self.cfg.batch_size, self.cfg.max_wait_ms,
                                max_queue=1 << 30, arrival_wait_ms=self.cfg.max_wait_ms)

    async def close(self) -> None:
        if self._batcher is not None:
            await asyncio.to_thread(self._batcher.close)
            self._batcher = None

    def _decoded(self, req: ChatRequest) -> ChatRequest:
        """The request with its image references opened as RGB images (what an in-process model takes)."""
        if all(not isinstance(im, str) for im in req.images):
            return req
        import dataclasses

        return dataclasses.replace(req, images=[_open_image(im) if isinstance(im, str) else im for im in req.images])

    async def complete(self, req: ChatRequest) -> str:
        batcher = self._batcher
        if batcher is None:
            raise RuntimeError(f"{type(self).__name__}.complete() before start()")
        t0 = time.perf_counter()
        self.stats.requests += 1
        try:
            with batcher.arriving():  # a forming batch waits for requests whose images are being opened
                ready = await asyncio.to_thread(self._decoded, req) if req.images else req
                future = batcher.enqueue(ready)
            return (await future).text
        except BatcherError as e:
            self.stats.failures += 1
            raise BackendError(f"{self.kind}: {e}", e.code) from None
        except BackendError:
            self.stats.failures += 1
            raise
        finally:
            self.stats.seconds += time.perf_counter() - t0


def _open_image(ref: str) -> Any:
    from PIL import Image

    try:
        if ref.startswith("data:"):
            return Image.open(io.BytesIO(base64.b64decode(ref.split(",", 1)[1]))).convert("RGB")
        return Image.open(ref).convert("RGB")
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot open image {ref[:80]}: {e}", "media_unreadable") from None


class TransformersBackend(GeneratorBackend):
    """A `polyvlm.infer.Generator` in process: `checkpoint` loads one with `polyvlm.load_generator`, or pass
    `generator=` directly (tests, notebooks)."""

    kind = "transformers"

    def __init__(self, cfg: BackendConfig, generator: Any = None):
        if generator is None:
            if not cfg.checkpoint:
                raise ValueError("backend 'transformers': `checkpoint` is required (a polyvlm checkpoint directory)")
            import polyvlm

            load = getattr(polyvlm, "load_generator", None)
            if load is None:
                raise ValueError("backend 'transformers': this polyvlm build has no load_generator()")
            generator = load(cfg.checkpoint, device=cfg.device, dtype=cfg.dtype)
        super().__init__(cfg, generator)

    @property
    def model_id(self) -> str:
        return f"transformers:{self.cfg.model or self.cfg.checkpoint or self.generator.name}"


class VLLMGenerator:
    """vLLM's offline `LLM.chat` engine as a `Generator`: requests go in as OpenAI messages (the one codec),
    grouped by sampling settings; `model` is a local model directory, `extra` goes to `LLM(...)`."""

    modalities = {"image", "audio", "video"}

    def __init__(self, model: str, extra: dict):
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise BackendError(
                "backend 'vllm' needs vLLM installed: pip install 'polyvlm[vllm]' (or use the `openai` backend "
                "against a `vllm serve` process)", "missing_dependency") from None
        self._sampling = SamplingParams
        self.llm = LLM(model=model, **extra)
        self.name = model
        self.max_context = int(getattr(self.llm.llm_engine.model_config, "max_model_len", 0) or 0)

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        raise NotImplementedError("vLLM counts prompt tokens itself")

    def generate(self, requests: list[ChatRequest], on_token: Any = None) -> list[Completion]:
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_new_tokens, r.temperature, r.top_p, tuple(r.stop), r.seed), []).append(i)
        out: list[Completion] = [Completion("", 0, 0, "stop")] * len(requests)
        for (max_tokens, temperature, top_p, stop, seed), idx in groups.items():
            params = self._sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=list(stop),
                                    seed=seed)
            results = self.llm.chat([to_openai_messages(requests[i]) for i in idx], params, use_tqdm=False)
            for i, res in zip(idx, results):
                o = res.outputs[0]
                out[i] = Completion(o.text, len(res.prompt_token_ids or []), len(o.token_ids),
                                    "length" if o.finish_reason == "length" else "stop")
        return out


class VLLMBackend(GeneratorBackend):
    """vLLM's offline engine in process (optional extra `polyvlm[vllm]`); `model` is a local model directory."""

    kind = "vllm"

    def __init__(self, cfg: BackendConfig):
        if not cfg.model:
            raise ValueError("backend 'vllm': `model` is required (a local model directory)")
        super().__init__(cfg, VLLMGenerator(cfg.model, cfg.extra))

    def _decoded(self, req: ChatRequest) -> ChatRequest:
        return req  # vLLM reads image references (data URIs, files) itself
