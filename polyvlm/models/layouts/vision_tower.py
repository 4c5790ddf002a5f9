"""The vision tower of an original LLaVA-family checkpoint: `mm_vision_tower` (a hub id, a folder inside the
checkpoint holding the tower's config, or a local path) resolved to a local directory, and its config read the
way the original code builds the tower (LLaVA-NeXT llava/model/multimodal_encoder/{builder,clip_encoder,
siglip_encoder}.py: CLIP keeps every layer and takes `mm_vision_select_layer`; SigLIP drops its last layer and
head and takes the last remaining hidden state, before the post-layernorm)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import CLIPVisionConfig, PretrainedConfig, SiglipVisionConfig

from polyvlm.models.layouts.base import LayoutError

ENV = "POLYVLM_VISION_TOWER"
HINT = (f"download it (e.g. `hf download {{name}} --local-dir DIR`) and pass --vision-tower DIR, or set "
        f"{ENV}=DIR (or {ENV}={{name}}=DIR,other/id=DIR2)")


@dataclass
class Tower:
    """A resolved tower: its directory, family (clip / siglip), HF vision config as the checkpoint uses it,
    the hidden layer polyvlm reads and whether CLS goes to the LM."""

    directory: Path
    family: str
    config: PretrainedConfig
    feature_layer: int
    select: str


def _from_env(name: str, given: str | None) -> Path | None:
    for spec in (given, os.environ.get(ENV)):
        if not spec:
            continue
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        if len(entries) == 1 and "=" not in entries[0]:
            return Path(entries[0])
        for e in entries:
            key, sep, value = e.partition("=")
            if sep and key == name:
                return Path(value)
    return None


def resolve_tower_dir(ckpt: Path, name: str, given: str | None) -> Path:
    """The local directory of tower `name`: --vision-tower / $POLYVLM_VISION_TOWER, a folder of that name inside
    the checkpoint, or `name` itself when it is a local directory."""
    explicit = _from_env(name, given)
    if given and explicit is not None and not explicit.is_dir():
        raise LayoutError(f"--vision-tower {given}: no such directory")
    for cand in (explicit if given else None, ckpt / name, Path(name), explicit):
        if cand is not None and cand.is_dir() and (cand / "config.json").is_file():
            return cand
    what = "a path that does not exist here" if Path(name).is_absolute() else "a hub id"
    raise LayoutError(f"{ckpt / 'config.json'}: mm_vision_tower '{name}' is {what} and no local copy was given; "
                      + HINT.format(name=name))


def read_tower(ckpt: Path, raw: dict, given: str | None) -> Tower:
    """The tower of the checkpoint whose config.json is `raw`."""
    name = raw.get("mm_vision_tower") or raw.get("vision_tower")
    if not isinstance(name, str) or not name:
        raise LayoutError(f"{ckpt / 'config.json'}: no mm_vision_tower (which vision tower the model uses)")
    d = resolve_tower_dir(ckpt, name, given)
    try:
        data = json.loads((d / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LayoutError(f"{d / 'config.json'}: not valid JSON: {e}") from None
    mt = data.get("model_type", "")
    vision = data.get("vision_config", data) if mt in ("clip", "siglip") else data
    if mt in ("clip", "clip_vision_model"):
        family, cfg = "clip", CLIPVisionConfig(**{k: v for k, v in vision.items() if k != "model_type"})
    elif mt in ("siglip", "siglip_vision_model"):
        family, cfg = "siglip", SiglipVisionConfig(**{k: v for k, v in vision.items() if k != "model_type"})
    else:
        raise LayoutError(f"{d / 'config.json'}: vision tower '{name}' has model_type '{mt}'; polyvlm reads CLIP and "
                          "SigLIP towers (clip, clip_vision_model, siglip, siglip_vision_model)")
    sel = raw.get("mm_vision_select_feature", "patch")
    if family == "siglip":  # siglip_encoder.py: `del layers[-1:]`, head = Identity, hidden_states[-1]
        cfg.num_hidden_layers -= 1
        cfg.vision_use_head = False
        return Tower(d, family, cfg, -1, "patch")
    if sel not in ("patch", "cls_patch"):
        raise LayoutError(f"{ckpt / 'config.json'}: mm_vision_select_feature '{sel}' is not 'patch' or 'cls_patch' "
                          "(polyvlm reads one hidden layer, with or without CLS)")
    layer = raw.get("mm_vision_select_layer", -2)
    if not isinstance(layer, int):
        raise LayoutError(f"{ckpt / 'config.json'}: mm_vision_select_layer {layer!r} is not one layer index")
    return Tower(d, family, cfg, layer, "patch" if sel == "patch" else "full")


def tower_image_settings(tower: Tower) -> dict:
    """image_mean / image_std from the tower's preprocessor_config.json, if it has one."""
    f = tower.directory / "preprocessor_config.json"
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LayoutError(f"{f}: not valid JSON: {e}") from None
    return {k: tuple(data[k]) for k in ("image_mean", "image_std") if isinstance(data, dict) and data.get(k)}
