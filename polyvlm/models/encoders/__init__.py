"""Encoder registry: model type -> encoder class (with its `modality`), and `build_encoder` that picks one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from polyvlm.registry import Registry, UnknownName, nearest

ENCODERS: Registry = Registry("encoder")

# the model type assumed for config kwargs without `model_type`, per modality
DEFAULT_TYPE = {"image": "clip_vision_model", "audio": "whisper"}


def encoder_names(modality: str) -> list[str]:
    """Registered encoder names for one modality (e.g. "image" -> clip_vision_model, siglip_vision_model)."""
    return [n for n in ENCODERS.names() if ENCODERS.get(n).modality == modality]


def encoder_type(path: str, config: dict | PretrainedConfig, modality: str) -> str:
    """The registered name for a local HF directory (its config.json), a config object or config kwargs.

    A full checkpoint of a dual-tower model (`clip`, `siglip`) resolves to its registered tower
    (`clip_vision_model`); a type registered for another modality is an error naming both."""
    if path and not Path(path).is_file():
        model_type = getattr(AutoConfig.from_pretrained(path), "model_type", "")
    elif isinstance(config, PretrainedConfig):
        model_type = config.model_type
    else:  # config kwargs; also a single-file checkpoint (ImageBind's .pth), whose type the config names
        model_type = config.get("model_type", DEFAULT_TYPE.get(modality, ""))
    if model_type not in ENCODERS and f"{model_type}_vision_model" in ENCODERS and modality == "image":
        model_type += "_vision_model"
    known = encoder_names(modality)
    if model_type not in known:
        where = f"{path}: " if path else ""
        other = (f" (registered for {ENCODERS.get(model_type).modality})" if model_type in ENCODERS
                 else nearest(model_type, known))
        raise UnknownName(f"{where}unknown {modality} encoder '{model_type}'{other} (known: {', '.join(known)})")
    return model_type


def build_encoder(modality: str, path: str, config: dict | PretrainedConfig, **settings: Any) -> Any:
    """The encoder of `modality` from a local directory or a config, chosen by the registry:
    `ENCODERS.get(type).create(path, config, **settings)` (settings: feature_layer/select for images, pool
    for audio)."""
    return ENCODERS.get(encoder_type(path, config, modality)).create(path, config, **settings)


# registers the image and audio encoders, and imagebind
from polyvlm.models.encoders import audio, imagebind_encoder, vision  # noqa: E402,F401
