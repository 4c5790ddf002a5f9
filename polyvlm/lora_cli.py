"""`polyvlm merge-lora CKPT --out DIR`: fold a stage-`lora` checkpoint's adapters into the LM weights and
write a plain checkpoint (serve it, export it, or continue training from it without peft)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def merge_checkpoint(ckpt: str | Path, out: str | Path) -> Path:
    """Load `ckpt` (base weights + adapter/), merge, save a complete checkpoint at `out` (atomically)."""
    import yaml

    from polyvlm.config import config_from_dict
    from polyvlm.models.checkpoint import save_checkpoint
    from polyvlm.models.layouts import load_checkpoint, resolve
    from polyvlm.models.lora import ADAPTER_DIR, merge

    layout, path = resolve(ckpt)
    if layout.name == "pandagpt":  # a released delta: its LoRA on Vicuna, merged like ours
        from polyvlm.config import Config

        model, processor = load_checkpoint(ckpt)
        merge(model)
        return save_checkpoint(model, processor, Config(model=model.cfg), out, {"merged_lora_from": str(ckpt)})
    ckpt = path
    if layout.name != "polyvlm":
        raise ValueError(f"{ckpt}: a {layout.name} checkpoint has no polyvlm LoRA adapters ({ADAPTER_DIR}/); only "
                         "checkpoints written by `polyvlm train` with train.stage=lora can be merged")
    if not (ckpt / ADAPTER_DIR).is_dir():
        raise ValueError(f"{ckpt}: has no LoRA adapters ({ADAPTER_DIR}/); nothing to merge")
    model, processor = load_checkpoint(f"polyvlm:{ckpt}")
    cfg = config_from_dict(yaml.safe_load((ckpt / "config.yaml").read_text(encoding="utf-8")))
    merge(model)
    return save_checkpoint(model, processor, cfg, out, {"merged_lora_from": str(ckpt)})


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="polyvlm merge-lora", description=__doc__)
    p.add_argument("checkpoint", help="a checkpoint written by stage lora (has an adapter/ directory), polyvlm:DIR, or a PandaGPT delta (pandagpt:DIR)")
    p.add_argument("--out", required=True, help="directory of the merged checkpoint")
    args = p.parse_args(argv)
    try:
        out = merge_checkpoint(args.checkpoint, args.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"polyvlm merge-lora: {e}", file=sys.stderr)
        return 1
    print(f"merged checkpoint: {out}")
    return 0
