"""Checkpoint layouts: every command that takes a checkpoint calls `load_checkpoint(spec)`, which recognises the
directory's layout from its files (or takes `FORMAT:DIR`) and returns (PolyVLM, Processor); `save_layout` writes one.

Layouts register in `LAYOUTS` (one module each); `detect_layout(dir)` tries them in `ORDER` (most specific first).
"""

from __future__ import annotations

import logging
from pathlib import Path

from polyvlm.models.layouts.base import LAYOUTS, CheckpointLayout, LayoutError, LoadOptions, describe
from polyvlm.utils import hub_path

log = logging.getLogger("polyvlm.layouts")

# detection order: the most specific layouts first (a later one may match the files of an earlier one)
ORDER = ["polyvlm", "parrot", "llava", "hf-llava-onevision", "hf-llava-next", "hf-llava"]


def _ordered() -> list[str]:
    return [n for n in ORDER if n in LAYOUTS] + [n for n in LAYOUTS.names() if n not in ORDER]


def get_layout(name: str) -> CheckpointLayout:
    if name not in LAYOUTS:
        raise LayoutError(f"unknown checkpoint layout '{name}' (known: {', '.join(_ordered())})")
    return LAYOUTS.get(name)()


def known_layouts() -> str:
    """`name: summary` of every layout polyvlm reads, one per line."""
    return "\n".join(f"  {n}: {LAYOUTS.get(n).summary}" for n in _ordered())


def split_spec(spec: str | Path) -> tuple[str | None, Path]:
    """`FORMAT:DIR` -> (FORMAT, DIR); a plain path -> (None, path). A `:` that names no layout is part of the path."""
    s = str(spec)
    head, sep, tail = s.partition(":")
    if sep and head in LAYOUTS and tail:
        return head, Path(tail)
    return None, Path(s)


def detect_layout(path: str | Path) -> str:
    """The name of the first layout (in ORDER) recognising `path`; LayoutError listing them all otherwise."""
    path = Path(path)
    for name in _ordered():
        if path.is_dir() and LAYOUTS.get(name)().detect(path):
            return name
    raise LayoutError(f"{path}: not a polyvlm checkpoint, nor one in another layout polyvlm reads ({describe(path)}).\n"
                      f"polyvlm reads:\n{known_layouts()}\nForce one with FORMAT:DIR (e.g. hf-llava:{path}).")


def resolve(spec: str | Path) -> tuple[CheckpointLayout, Path]:
    """(layout, directory) of `spec` (`FORMAT:DIR` or a directory), without loading anything."""
    fmt, path = split_spec(spec)
    try:
        path = hub_path(path)  # a Hugging Face repo id: its snapshot (cache first; offline: the download command)
    except FileNotFoundError as e:
        raise LayoutError(str(e)) from None
    if not path.is_dir():
        raise LayoutError(f"{path}: no such checkpoint directory" + (f" (given as {spec})" if fmt else ""))
    if fmt is None:
        return get_layout(detect_layout(path)), path
    layout = get_layout(fmt)
    if not layout.detect(path):
        raise LayoutError(f"{path}: not a {fmt} checkpoint ({layout.summary}); {describe(path)}")
    return layout, path


def load_checkpoint(spec: str | Path, device: str = "cpu", *, template: str | None = None, max_length: int = 2048,
                    dtype: str | None = None, cfg=None, vision_tower: str | None = None):
    """Load `spec` (a directory in any layout polyvlm reads, or `FORMAT:DIR`) -> (PolyVLM in eval mode, Processor).

    With `cfg` (a ModelConfig; `model.init_from`), the checkpoint must agree with it and the processor follows
    its template / max_length; the caller switches the model to train mode.
    """
    layout, path = resolve(spec)
    opts = LoadOptions(template=template, max_length=max_length, dtype=dtype, cfg=cfg, vision_tower=vision_tower)
    log.info("loading %s as layout %s", path, layout.name)
    model, processor = layout.load(path, opts)
    return model.to(device).eval(), processor


def writable_layouts() -> list[str]:
    return [n for n in _ordered() if LAYOUTS.get(n).writes]


def save_layout(fmt: str, model, processor, out: str | Path, dtype: str | None = None,
                max_shard_size: str | int = "5GB", extra: dict | None = None) -> Path:
    """Write `model` + `processor` at `out` (atomically) in layout `fmt`."""
    return get_layout(fmt).save(model, processor, Path(out), dtype=dtype, max_shard_size=max_shard_size, extra=extra)


from polyvlm.models.layouts import hf_llava, hf_onevision, llava, native, pandagpt, parrot  # noqa: E402,F401  (register the layouts)

__all__ = ["LAYOUTS", "CheckpointLayout", "LayoutError", "LoadOptions", "detect_layout", "get_layout",
           "load_checkpoint", "resolve", "save_layout", "split_spec", "writable_layouts"]
