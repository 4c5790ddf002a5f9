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


def load_generator(path: str | Path, device: str = "cpu") -> VLMGenerator:
    """A checkpoint behind the `polyvlm.infer.Generator` interface (what eval, serve and synth call)."""
    from polyvlm.models.generate import VLMGenerator
    from polyvlm.models.layouts import split_spec

    model, processor = load(path, device)
    return VLMGenerator(model, processor, name=split_spec(path)[1].name)
