"""Test and benchmark helpers: a tiny random-init checkpoint built offline in a second or two."""

from __future__ import annotations

from pathlib import Path

import torch

from polyvlm.config import load_config
from polyvlm.models import factory
from polyvlm.models.checkpoint import is_checkpoint, save_checkpoint

TINY_RECIPE = Path(__file__).resolve().parent / "quickstart" / "tiny.yaml"


def make_tiny_checkpoint(path: str | Path, seed: int = 0, overrides: list[str] | None = None) -> Path:
    """Build the tiny quick start model (CLIP-config ViT 64px, mlp2x_gelu, 2-layer Qwen2, builtin:tiny
    tokenizer) with a fixed seed and save it at `path` (reused when already there). Returns `path`."""
    path = Path(path)
    if is_checkpoint(path) and not overrides:
        return path
    torch.manual_seed(seed)
    cfg = load_config(TINY_RECIPE, overrides)
    model, processor = factory.build(cfg.model)
    save_checkpoint(model, processor, cfg, path)
    return path
