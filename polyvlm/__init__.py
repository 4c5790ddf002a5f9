"""polyvlm: train, evaluate and serve multilingual multimodal assistants. Top-level loaders live here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from polyvlm.models.generate import VLMGenerator


HF_PREFIX = "hf-llava:"


def load(path: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """Load a polyvlm checkpoint directory, or `hf-llava:DIR` (a Hugging Face Llava or LLaVA-NeXT directory,
    e.g. one written by `polyvlm export`) -> (PolyVLM in eval mode, Processor)."""
    if str(path).startswith(HF_PREFIX):
        from polyvlm.models.hf_import import import_hf_llava

        model, processor = import_hf_llava(str(path)[len(HF_PREFIX):])
        return model.to(device).eval(), processor
    from polyvlm.models.checkpoint import load as _load

    return _load(path, device)


def load_generator(path: str | Path, device: str = "cpu") -> VLMGenerator:
    """A checkpoint behind the `polyvlm.infer.Generator` interface (what eval, serve and synth call)."""
    from polyvlm.models.generate import VLMGenerator

    model, processor = load(path, device)
    return VLMGenerator(model, processor, name=Path(str(path).removeprefix(HF_PREFIX)).name)
