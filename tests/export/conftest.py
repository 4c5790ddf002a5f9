"""Fixtures for export/import tests: the tiny checkpoint loaded, its hf-llava export, images, tiny HF parts."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny(tiny_ckpt):
    """(PolyVLM, Processor) of the shared tiny checkpoint (CLIP 64px, mlp2x_gelu, Qwen2, chatml)."""
    from polyvlm.models.checkpoint import load

    return load(tiny_ckpt)


@pytest.fixture(scope="session")
def exported(tiny, tmp_path_factory) -> Path:
    from polyvlm.models.export import export_hf_llava

    model, processor = tiny
    return export_hf_llava(model, processor, tmp_path_factory.mktemp("export") / "llava")


@pytest.fixture(scope="session")
def hf_loaded(exported):
    """(LlavaForConditionalGeneration, processor) loaded by transformers from the export."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    return LlavaForConditionalGeneration.from_pretrained(str(exported)).eval(), AutoProcessor.from_pretrained(str(exported))
