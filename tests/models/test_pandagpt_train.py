"""The pandagpt recipes' model through the generic trainer: a tiny ImageBind (`imagebind` encoder from the
registry, centre-cropped images) + pool1 + the pandagpt template + LoRA trains, saves and reloads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from polyvlm.config import load_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = yaml.safe_load((RECIPES / "tiny.yaml").read_text())["model"]


@pytest.mark.slow
def test_stage2_recipe_trains_with_tiny_imagebind(tmp_path):
    from polyvlm.data.scenes import make_split, write_jsonl
    from polyvlm.models.checkpoint import load
    from polyvlm.models.encoders.imagebind_encoder import ImageBindEncoder
    from polyvlm.train.loop import train

    data = write_jsonl(make_split(tmp_path / "d", 6, seed=3), tmp_path / "d" / "qa.jsonl")
    over = ["model.vision=", "model.vision_config={model_type: imagebind, variant: tiny, out_dim: 24}", "model.llm=",
            f"model.llm_config={TINY['llm_config']}", "model.tokenizer=builtin:tiny", "model.init_from=",
            "model.dtype=float32", f"data.path={data}", f"data.image_root={data.parent}",
            f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.batch_size=2", "train.nproc=1",
            "train.dtype=fp32", "train.save_every=0", "train.tensorboard=false", "train.device=cpu"]
    cfg = load_config(RECIPES / "pandagpt_stage2.yaml", over)
    res = train(cfg, show_progress=False)
    assert len(res.history) == 2 and all(math.isfinite(h["loss"]) for h in res.history)
    model, processor = load(res.checkpoint)
    assert isinstance(model.vision, ImageBindEncoder)
    assert processor.config.image_resize == "crop" and processor.config.tokens_per_media["image"] == 1
    assert processor.template.name == "pandagpt"
    enc = processor.encode(*_conv(), add_generation_prompt=True)
    assert enc.input_ids.count(processor.media_token_ids["image"]) == 1
    from PIL import Image

    pixels = processor.images_to_pixels([Image.new("RGB", (300, 200), (200, 10, 10))])
    with torch.no_grad():
        out = model(torch.tensor([enc.input_ids]), pixels=pixels)
    assert out.logits.shape[:2] == (1, len(enc.input_ids))


def _conv():
    from polyvlm.data.records import Turn

    return [Turn("user", "<image>\nWhat colour is it?")], {"image": 1}
