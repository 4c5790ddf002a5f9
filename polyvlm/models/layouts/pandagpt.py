"""PandaGPT's released checkpoints (`pandagpt`, yxuansu/PandaGPT): a directory holding the delta
`pytorch_model.pt` (llama_proj + LoRA, fp16, read with weights_only), applied on a Vicuna directory and
ImageBind's `imagebind_huge.pth`, which are found in this order:

1. `pandagpt.json` next to the delta: {"llm": DIR, "imagebind": FILE, "imagebind_arch": {...},
   "max_tgt_len": 400} (paths relative to the delta directory or absolute);
2. $POLYVLM_PANDAGPT_LLM and $POLYVLM_PANDAGPT_IMAGEBIND (the ImageBind file also from the loader's
   `vision_tower` option, `--vision-tower`);
3. PandaGPT's own tree: DELTA = pretrained_ckpt/pandagpt_ckpt/{7b,13b} -> pretrained_ckpt/vicuna_ckpt/{7b,13b}_v0
   and pretrained_ckpt/imagebind_ckpt/imagebind_huge.pth (pretrained_ckpt/README.md).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from polyvlm.models.layouts.base import LAYOUTS, CheckpointLayout, LayoutError, LoadOptions

log = logging.getLogger("polyvlm.layouts.pandagpt")
DELTA = "pytorch_model.pt"
SIDECAR = "pandagpt.json"
ENV_LLM, ENV_IMAGEBIND = "POLYVLM_PANDAGPT_LLM", "POLYVLM_PANDAGPT_IMAGEBIND"


def _sidecar(path: Path) -> dict:
    f = path / SIDECAR
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LayoutError(f"{f}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise LayoutError(f"{f}: expected a JSON object with llm / imagebind paths")
    return data


def locate(path: Path, opts: LoadOptions) -> tuple[Path, Path, dict]:
    """(Vicuna directory, ImageBind file, ImageBind architecture kwargs) for the delta directory `path`;
    a `max_tgt_len` of pandagpt.json is read by `load`."""
    side = _sidecar(path)
    rel = lambda p: (path / p) if p and not Path(p).is_absolute() else (Path(p) if p else None)  # noqa: E731
    llm = rel(side.get("llm")) or (Path(os.environ[ENV_LLM]) if os.environ.get(ENV_LLM) else None)
    ib = rel(side.get("imagebind")) or (Path(opts.vision_tower) if opts.vision_tower else None) or (
        Path(os.environ[ENV_IMAGEBIND]) if os.environ.get(ENV_IMAGEBIND) else None)
    root = path.parent.parent  # pretrained_ckpt/ in PandaGPT's tree
    if llm is None and path.parent.name == "pandagpt_ckpt":
        llm = root / "vicuna_ckpt" / f"{path.name}_v0"
    if ib is None and path.parent.name == "pandagpt_ckpt":
        ib = root / "imagebind_ckpt" / "imagebind_huge.pth"
    if llm is None or ib is None:
        raise LayoutError(f"{path}: a PandaGPT delta needs its Vicuna directory and imagebind_huge.pth: write "
                          f"{SIDECAR} ({{\"llm\": ..., \"imagebind\": ...}}) next to {DELTA}, or set ${ENV_LLM} and "
                          f"${ENV_IMAGEBIND}")
    if not llm.is_dir():
        raise LayoutError(f"{path}: Vicuna directory '{llm}' does not exist")
    if not ib.is_file():
        raise LayoutError(f"{path}: ImageBind checkpoint '{ib}' does not exist")
    return llm, ib, dict(side.get("imagebind_arch") or {})


@LAYOUTS.register("pandagpt")
class PandaGPTLayout(CheckpointLayout):
    name = "pandagpt"
    summary = (f"PandaGPT delta (yxuansu/PandaGPT: a directory with {DELTA}, llama_proj + LoRA) on a Vicuna directory "
               f"and imagebind_huge.pth ({SIDECAR} or ${ENV_LLM} / ${ENV_IMAGEBIND})")

    def detect(self, path: Path) -> bool:
        return (path / DELTA).is_file() and not (path / "config.json").is_file()

    def load(self, path: Path, opts: LoadOptions):
        from polyvlm.models import pandagpt
        from polyvlm.utils import DTYPES

        llm, ib, arch = locate(path, opts)
        if opts.template not in (None, "pandagpt"):
            log.warning("%s: PandaGPT was trained with its own prompt; using template %s as asked", path, opts.template)
        cfg = pandagpt.model_config(str(llm), str(ib), arch, opts.max_length,
                                    template=opts.template or "pandagpt", dtype=opts.dtype or "float32")
        if opts.dtype and opts.dtype not in DTYPES:
            raise LayoutError(f"unknown dtype '{opts.dtype}' (known: {', '.join(DTYPES)})")
        from polyvlm.models.factory import build

        try:
            model, processor = build(cfg)
        except (ValueError, FileNotFoundError) as e:  # the ImageBind file does not fit its architecture
            raise LayoutError(f"{path}: {e}") from None
        try:
            pandagpt.load_delta(model, path / DELTA)
        except (ValueError, FileNotFoundError) as e:
            raise LayoutError(str(e)) from None
        model.to(DTYPES[cfg.dtype])
        tgt = _sidecar(path).get("max_tgt_len")
        if tgt is not None:
            if not isinstance(tgt, int) or tgt < 1:
                raise LayoutError(f"{path / SIDECAR}: max_tgt_len must be a positive integer, got {tgt!r}")
            pandagpt.set_max_tgt_len(model, processor, tgt)
        if opts.cfg is not None and opts.cfg.connector != "pool1":
            raise LayoutError(f"model.connector '{opts.cfg.connector}' differs from PandaGPT's pool1 ({path})")
        log.info("read PandaGPT delta %s on %s and %s", path / DELTA, llm, ib)
        return model, processor
