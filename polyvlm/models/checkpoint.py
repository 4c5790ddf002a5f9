"""Checkpoints: safetensors weights + resolved config + HF sub-model configs + tokenizer/processor, written
atomically (temp dir + rename); `load(path)` rebuilds a ready model and processor without the original paths."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from transformers import AutoConfig

from polyvlm.config import Config, config_from_dict
from polyvlm.models.processor import Processor
from polyvlm.models.vlm import PolyVLM, build_model
from polyvlm.utils import atomic_dir

log = logging.getLogger("polyvlm.checkpoint")
WEIGHTS = "model.safetensors"


def save_checkpoint(model: PolyVLM, processor: Processor, cfg: Config, path: str | Path, extra: dict | None = None) -> Path:
    """Write a complete checkpoint directory at `path`; a crash leaves the previous one intact."""
    import yaml

    path = Path(path)
    with atomic_dir(path) as tmp:
        save_model(model, str(tmp / WEIGHTS))
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))
        model.vision.tower.config.to_json_file(str(tmp / "vision_config.json"))
        model.llm.config.to_json_file(str(tmp / "llm_config.json"))
        processor.save(tmp)
        (tmp / "polyvlm.json").write_text(json.dumps({"format": 1, **(extra or {})}, indent=2))
    return path


def is_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return (p / WEIGHTS).is_file() and (p / "config.yaml").is_file() and (p / "processor.json").is_file()


def load(path: str | Path, device: str | torch.device = "cpu") -> tuple[PolyVLM, Processor]:
    """Load a polyvlm checkpoint directory -> (model in eval mode, processor)."""
    import yaml

    path = Path(path)
    if not is_checkpoint(path):
        raise FileNotFoundError(f"{path}: not a polyvlm checkpoint (needs {WEIGHTS}, config.yaml, processor.json)")
    cfg = config_from_dict(yaml.safe_load((path / "config.yaml").read_text()))
    processor = Processor.load(path)
    vision_hf = AutoConfig.from_pretrained(str(path / "vision_config.json"))
    llm_hf = AutoConfig.from_pretrained(str(path / "llm_config.json"))
    model = build_model(cfg.model, len(processor.tokenizer), processor.media_token_ids, vision_hf, llm_hf)
    missing, unexpected = load_model(model, str(path / WEIGHTS), strict=False)
    if missing or unexpected:
        raise ValueError(f"{path / WEIGHTS}: weights do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.to(device).eval()
    return model, processor


def load_weights_into(model: PolyVLM, path: str | Path) -> None:
    """Initialise `model` from another checkpoint's weights (e.g. stage 2 from stage 1); shapes must match."""
    path = Path(path)
    missing, unexpected = load_model(model, str(path / WEIGHTS), strict=False)
    if unexpected:
        raise ValueError(f"{path}: unexpected weights {unexpected[:5]}")
    if missing:
        log.warning("%s: %d tensors not in the checkpoint keep their initialisation (e.g. %s)", path, len(missing), missing[:3])
