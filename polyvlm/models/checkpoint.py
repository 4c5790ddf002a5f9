"""Checkpoints: safetensors weights + resolved config + HF sub-model configs + tokenizer/processor, written
atomically (temp dir + rename); `load(path)` rebuilds a ready model and processor without the original paths."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from transformers import AutoConfig

from polyvlm.atomic import respect_umask, save_safetensors
from polyvlm.config import Config, config_from_dict
from polyvlm.models.lora import ADAPTER_DIR, has_lora, load_adapter, save_split
from polyvlm.models.processor import Processor
from polyvlm.models.vlm import PolyVLM, build_model
from polyvlm.utils import atomic_dir

log = logging.getLogger("polyvlm.checkpoint")
WEIGHTS = "model.safetensors"


def save_checkpoint(model: PolyVLM, processor: Processor, cfg: Config, path: str | Path, extra: dict | None = None,
                    write_extra: Callable[[Path], None] | None = None,
                    state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a complete checkpoint directory at `path`; a crash leaves the previous one intact.

    `write_extra(tmp_dir)` adds files (e.g. optimizer state) inside the same atomic write. `state_dict`
    (a full state dict gathered from sharded training) is written instead of the model's own tensors.
    """
    import yaml

    path = Path(path)
    with atomic_dir(path) as tmp:
        if has_lora(model):  # base weights as usual; adapters apart, in peft's format (polyvlm merge-lora)
            save_split(model, tmp, WEIGHTS, state_dict)
        elif state_dict is not None:
            save_safetensors({k: v.contiguous() for k, v in state_dict.items()}, tmp / WEIGHTS)
        else:
            save_model(model, str(tmp / WEIGHTS))
            respect_umask(tmp / WEIGHTS)
        if model.audio is not None:
            model.audio.config.to_json_file(str(tmp / "audio_config.json"))
        routing = model.router_stats.mean()
        if routing:  # mean moe router distribution per language seen since the model was built
            (tmp / "router_stats.json").write_text(json.dumps(routing, indent=2, ensure_ascii=False))
            log.info("%s: moe router mean expert weights per language: %s", path.name, "; ".join(
                f"{lang} [{' '.join(f'{w:.3f}' for w in dist)}]" for lang, dist in sorted(routing.items())))
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))
        model.vision.tower.config.to_json_file(str(tmp / "vision_config.json"))
        model.llm.config.to_json_file(str(tmp / "llm_config.json"))
        processor.save(tmp)
        (tmp / "polyvlm.json").write_text(json.dumps({"format": 1, **(extra or {})}, indent=2))
        if write_extra is not None:
            write_extra(tmp)
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
    audio_hf = None
    if (path / "audio_config.json").is_file():
        from transformers import WhisperConfig

        audio_hf = WhisperConfig.from_json_file(str(path / "audio_config.json"))
    model = build_model(cfg.model, len(processor.tokenizer), processor.media_token_ids, vision_hf, llm_hf, audio_hf)
    missing, unexpected = load_model(model, str(path / WEIGHTS), strict=False)
    if missing or unexpected:
        raise ValueError(f"{path / WEIGHTS}: weights do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    if (path / ADAPTER_DIR).is_dir():
        load_adapter(model, path)
    model.to(device).eval()
    return model, processor


def load_weights_into(model: PolyVLM, path: str | Path) -> None:
    """Initialise `model` from another checkpoint's weights (e.g. stage 2 from stage 1); shapes must match."""
    path = Path(path)
    if has_lora(model):
        from polyvlm.models.lora import load_split_into

        load_split_into(model, path, WEIGHTS)
        return
    missing, unexpected = load_model(model, str(path / WEIGHTS), strict=False)
    if unexpected:
        raise ValueError(f"{path}: unexpected weights {unexpected[:5]}")
    if missing:
        log.warning("%s: %d tensors not in the checkpoint keep their initialisation (e.g. %s)", path, len(missing), missing[:3])
