"""polyvlm's own checkpoint layout (`polyvlm`): model.safetensors + config.yaml + processor.json + sub-model configs
(written by `polyvlm train` and `polyvlm export --format polyvlm`; see polyvlm.models.checkpoint)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from polyvlm.models.layouts.base import (
    LAYOUTS,
    VISION_READOUT,
    CheckpointLayout,
    LayoutError,
    LoadOptions,
    adopt_vision_readout,
)
from polyvlm.utils import DTYPES


@LAYOUTS.register("polyvlm")
class NativeLayout(CheckpointLayout):
    name = "polyvlm"
    summary = "polyvlm's own checkpoint (model.safetensors, config.yaml, processor.json; written by `polyvlm train`)"
    writes = True

    def detect(self, path: Path) -> bool:
        from polyvlm.models.checkpoint import is_checkpoint

        return is_checkpoint(path)

    def load(self, path: Path, opts: LoadOptions):
        from polyvlm.models.checkpoint import is_checkpoint, load
        from polyvlm.models.processor import Processor

        if not is_checkpoint(path):
            raise LayoutError(f"{path}: not a polyvlm checkpoint (needs model.safetensors, config.yaml, processor.json)")
        model, processor = load(path)
        if opts.dtype:
            if opts.dtype not in DTYPES:
                raise LayoutError(f"unknown dtype '{opts.dtype}' (known: {', '.join(DTYPES)})")
            model.to(DTYPES[opts.dtype])
            model.cfg.dtype = opts.dtype
        cfg = opts.cfg
        if cfg is None:
            return model, processor
        # model.init_from: the run's config rules template, max_length and media settings; the parts must agree
        if model.cfg.connector != cfg.connector:
            raise LayoutError(f"model.connector '{cfg.connector}' differs from the init_from checkpoint's "
                              f"'{model.cfg.connector}' ({path})")
        from polyvlm.models.factory import media_settings

        adopt_vision_readout(cfg, {k: getattr(model.cfg, k) for k in VISION_READOUT}, path)
        model.cfg = cfg
        processor = Processor(processor.tokenizer, dataclasses.replace(
            processor.config, template=cfg.template, max_length=cfg.max_length, **media_settings(model, cfg)))
        return model, processor

    def save(self, model, processor, out: Path, dtype: str | None = None, max_shard_size: str | int = "5GB",
             extra: dict | None = None) -> Path:
        from polyvlm.config import Config
        from polyvlm.models.checkpoint import save_checkpoint

        if dtype:
            if dtype not in DTYPES:
                raise LayoutError(f"unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
            model.to(DTYPES[dtype])
            model.cfg.dtype = dtype
        return save_checkpoint(model, processor, Config(model=model.cfg), out, extra=extra)
