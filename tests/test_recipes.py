"""Seed recipes: each carries its launch command and the published settings of its system, and each trains
two steps when its models are swapped for tiny ones (same connector, stage, template, anyres, audio, LoRA)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from polyvlm.config import load_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SEEDS = sorted(p for p in RECIPES.glob("*.yaml") if p.stem != "tiny")
TINY = yaml.safe_load((RECIPES / "tiny.yaml").read_text())["model"]
WHISPER = {"model_type": "whisper", "d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2,
           "encoder_ffn_dim": 64, "num_mel_bins": 16, "max_source_positions": 25}

# (recipe, key, value): settings published for each system
PUBLISHED = [
    ("llava15_pretrain", "train.lr", 1e-3), ("llava15_pretrain", "global_batch", 256), ("llava15_pretrain", "train.stage", "align"),
    ("llava15_finetune", "train.lr", 2e-5), ("llava15_finetune", "global_batch", 128), ("llava15_finetune", "model.max_length", 2048),
    ("mammothvl_pretrain", "train.lr", 1e-3), ("mammothvl_pretrain", "model.vision", "checkpoints/hf/siglip-so400m-patch14-384"),
    ("mammothvl_si_finetune", "train.lr", 1e-5), ("mammothvl_si_finetune", "train.vision_lr", 2e-6),
    ("mammothvl_si_finetune", "model.max_length", 8192), ("mammothvl_si_finetune", "model.image_aspect_ratio", "anyres_max_4"),
    ("mammothvl_si_finetune", "model.image_grid_pinpoints", "(1x1),...,(6x6)"),
    ("mammothvl_ov_finetune", "model.frames_upbound", 32), ("mammothvl_ov_finetune", "model.max_length", 16384),
    ("mammothvl_ov_finetune", "model.llm", "checkpoints/hf/Qwen2.5-7B-Instruct"),
    ("parrot_pretrain", "train.lr", 1e-3), ("parrot_pretrain", "global_batch", 256), ("parrot_pretrain", "model.moe_experts", 6),
    ("parrot_finetune", "train.lr", 2e-5), ("parrot_finetune", "global_batch", 128), ("parrot_finetune", "model.max_length", 2048),
    ("parrot_finetune", "model.connector", "moe"), ("parrot_finetune", "model.llm", "checkpoints/hf/Qwen1.5-7B-Chat"),
    ("pandagpt_lora", "model.lora_r", 32), ("pandagpt_lora", "model.lora_alpha", 32), ("pandagpt_lora", "model.lora_dropout", 0.1),
    ("pandagpt_lora", "model.lora_targets", ["q_proj", "k_proj", "v_proj", "o_proj"]), ("pandagpt_lora", "train.lr", 5e-4),
    ("pandagpt_lora", "global_batch", 64), ("pandagpt_lora", "model.max_length", 1024), ("pandagpt_lora", "model.connector", "pool1"),
    ("pandagpt_lora", "model.template", "pandagpt"), ("pandagpt_lora", "model.vision_config", {"model_type": "imagebind", "variant": "huge"}),
    ("pandagpt_stage1", "train.lr", 5e-4), ("pandagpt_stage1", "global_batch", 256), ("pandagpt_stage1", "model.max_length", 128),
    ("pandagpt_stage2", "global_batch", 64), ("pandagpt_stage2", "model.max_length", 512), ("pandagpt_stage2", "model.lora_r", 32),
    ("pandagpt_stage2", "model.lora_dropout", 0.1), ("pandagpt_stage2", "model.connector", "pool1"),
    ("pangea_finetune", "train.lr", 2e-5), ("pangea_finetune", "train.vision_lr", 2e-6),
    ("pangea_finetune", "model.image_aspect_ratio", "anyres"), ("pangea_finetune", "model.llm", "checkpoints/hf/Qwen2-7B-Instruct"),
]


def _get(cfg, key: str):
    if key == "global_batch":
        return cfg.train.batch_size * cfg.train.grad_accum * cfg.train.nproc
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def test_every_recipe_has_a_launch_header():
    assert len(SEEDS) >= 9
    for path in SEEDS:
        head = [line for line in path.read_text().splitlines() if line.startswith("#")]
        assert any(f"polyvlm train recipes/{path.name}" in line for line in head), path.name
        load_config(path)  # every key is known and typed


@pytest.mark.parametrize("name,key,value", PUBLISHED)
def test_published_settings(name, key, value):
    got = _get(load_config(RECIPES / f"{name}.yaml"), key)
    assert got == (pytest.approx(value) if isinstance(value, float) else value)


def tiny_overrides(path: Path, data: Path, out: Path) -> list[str]:
    """Swap the recipe's pretrained models for tiny random ones and run two steps on `data`."""
    cfg = load_config(path)
    o = ["model.vision=", f"model.vision_config={TINY['vision_config']}", "model.llm=",
         f"model.llm_config={TINY['llm_config']}", "model.tokenizer=builtin:tiny", "model.init_from=", "model.dtype=float32",
         f"model.max_length={min(cfg.model.max_length, 512)}", "model.moe_intermediate=64",
         f"data.path={data}", f"data.image_root={data.parent}", f"train.output_dir={out}", "train.max_steps=2",
         "train.batch_size=2", "train.grad_accum=1", "train.nproc=1", "train.dtype=fp32", "train.save_every=0",
         "train.tensorboard=false", "train.device=cpu"]
    if cfg.model.audio:
        o += ["model.audio=", f"model.audio_config={WHISPER}"]
    if isinstance(cfg.model.image_grid_pinpoints, list) and cfg.model.image_grid_pinpoints:
        o.append("model.image_grid_pinpoints=(1x1),...,(2x2)")  # the published pixel grids assume 336 px tiles
    return o


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from polyvlm.data.scenes import make_split, write_jsonl

    d = tmp_path_factory.mktemp("recipe_data")
    return write_jsonl(make_split(d, 8, seed=4), d / "qa.jsonl")


@pytest.mark.slow
@pytest.mark.parametrize("path", SEEDS, ids=[p.stem for p in SEEDS])
def test_recipe_trains_two_steps_on_tiny_models(path, scenes, tmp_path):
    from polyvlm.train.loop import train

    cfg = load_config(path, tiny_overrides(path, scenes, tmp_path / "run"))
    res = train(cfg, show_progress=False)
    assert len(res.history) == 2 and all(math.isfinite(h["loss"]) for h in res.history)
    assert (res.checkpoint / "model.safetensors").is_file()
    if cfg.train.stage == "lora":
        assert (res.checkpoint / "adapter").is_dir()
