"""polyvlm: train, evaluate and serve multilingual multimodal assistants. Top-level loaders live here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from polyvlm.models.generate import VLMGenerator


HF_PREFIX = "hf-llava:"


def load(path: str | Path, device: str = "cpu", **options: Any) -> tuple[Any, Any]:
    """Load a checkpoint directory in any layout polyvlm reads (its own, transformers Llava / LLaVA-NeXT, ...),
    or `FORMAT:DIR` forcing one (e.g. `hf-llava:DIR`) -> (PolyVLM in eval mode, Processor).

    `options` go to `polyvlm.models.layouts.load_checkpoint` (template, max_length, dtype, vision_tower)."""
    from polyvlm.models.layouts import load_checkpoint

    return load_checkpoint(path, device, **options)


def load_generator(path: str | Path, device: Any = "cpu", dtype: Any = None,
                   max_model_len: int | None = None) -> VLMGenerator:
    """A checkpoint behind the `polyvlm.infer.Generator` interface (what eval, serve and synth call).

    `device`: a torch device or a `--device` value (auto, cpu, cuda, cuda:N, mps); `dtype`: a torch dtype or a
    `--dtype` value (auto, bf16, fp16, fp32; None keeps the checkpoint's loader default, fp32);
    `max_model_len`: the context (prompt + answer tokens), at most the LM's position limit."""
    import torch

    from polyvlm.models.generate import VLMGenerator
    from polyvlm.models.layouts import split_spec
    from polyvlm.utils import dtype_name, resolve_device, resolve_dtype

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if dtype is not None and not isinstance(dtype, torch.dtype):
        dtype = resolve_dtype(dtype, dev)
    model, processor = load(path, dev, dtype=None if dtype is None else dtype_name(dtype))
    gen = VLMGenerator(model, processor, name=split_spec(path)[1].name)
    if max_model_len is not None:
        limit = getattr(model.llm.config, "max_position_embeddings", None)
        if max_model_len < 2:
            raise ValueError(f"max_model_len must be at least 2 tokens, got {max_model_len}")
        if limit is not None and max_model_len > limit:
            raise ValueError(f"max_model_len {max_model_len} exceeds the language model's max_position_embeddings {limit}")
        gen.max_context = max_model_len
    return gen
