"""The checkpoint-layout interface (`CheckpointLayout`), the LAYOUTS registry and `LayoutError`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyvlm.registry import Registry

if TYPE_CHECKING:
    from polyvlm.config import ModelConfig
    from polyvlm.models.processor import Processor
    from polyvlm.models.vlm import PolyVLM

LAYOUTS: Registry = Registry("checkpoint layout")
log = logging.getLogger("polyvlm.models")

# How the checkpoint's vision encoder feeds its connector: the weights were trained with these, so a run starting
# from the checkpoint (`model.init_from`) takes them from it rather than from a recipe written for a fresh build.
VISION_READOUT = ("vision_feature_layer", "vision_select")


class LayoutError(ValueError):
    """A checkpoint cannot be read or written in a layout; the message names the file, key and reason."""


@dataclass
class LoadOptions:
    """What a command may tell a layout beyond the directory.

    `template`: polyvlm chat template (None: the layout's own or the one detected); `max_length`: the
    processor's; `dtype`: weights' dtype (None: float32); `cfg`: the ModelConfig of a run starting from the
    checkpoint (`model.init_from`), which must agree with it; `vision_tower`: local directory of a vision tower
    the checkpoint names by hub id (else $POLYVLM_VISION_TOWER).
    """

    template: str | None = None
    max_length: int = 2048
    dtype: str | None = None
    cfg: ModelConfig | None = None
    vision_tower: str | None = None


class CheckpointLayout:
    """One on-disk layout. `detect(dir)` says whether `dir` is in it (from its files only, cheaply);
    `load(dir, opts)` -> (PolyVLM in eval mode, Processor); `save(model, processor, dir)` when polyvlm writes it."""

    name = ""
    summary = ""  # one line for error messages and --help: what it is, how it is recognised
    writes = False

    def detect(self, path: Path) -> bool:
        raise NotImplementedError

    def load(self, path: Path, opts: LoadOptions) -> tuple[PolyVLM, Processor]:
        raise NotImplementedError

    def save(self, model: PolyVLM, processor: Processor, out: Path, dtype: str | None = None,
             max_shard_size: str | int = "5GB", extra: dict[str, Any] | None = None) -> Path:
        raise LayoutError(f"polyvlm reads the {self.name} layout but does not write it")


def adopt_vision_readout(cfg: ModelConfig, have: dict[str, Any], path: Path | str) -> None:
    """`model.init_from`: set `cfg`'s VISION_READOUT keys (in place, so the run saves what it trains) to the
    checkpoint's values `have`, logging each one the config had differently."""
    for key in VISION_READOUT:
        if key in have and getattr(cfg, key) != have[key]:
            log.info("model.init_from %s: the checkpoint reads its vision encoder with model.%s=%r; using it "
                     "(the config said %r)", path, key, have[key], getattr(cfg, key))
            setattr(cfg, key, have[key])


def read_config_json(path: Path) -> dict | None:
    """`path/config.json` as a dict; None when absent or not a JSON object (detect must never raise)."""
    f = path / "config.json"
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    return data if isinstance(data, dict) else None


def describe(path: Path) -> str:
    """What a directory holds, for the error when no layout recognises it."""
    if not path.exists():
        return "it does not exist"
    if not path.is_dir():
        return "it is a file, not a directory"
    names = sorted(p.name for p in path.iterdir())
    shown = ", ".join(names[:12]) + (f" (+{len(names) - 12} more)" if len(names) > 12 else "")
    found = f"files: {shown or 'none'}"
    cfg = read_config_json(path)
    if cfg is not None:
        mm = sorted(k for k in cfg if k.startswith("mm_"))
        found += (f"; config.json model_type {cfg.get('model_type')!r}, architectures {cfg.get('architectures')!r}"
                  + (f", mm_* keys {mm[:6]}" if mm else ", no mm_* keys"))
    elif (path / "config.json").is_file():
        found += "; config.json is not a JSON object"
    else:
        found += "; no config.json"
    return found
