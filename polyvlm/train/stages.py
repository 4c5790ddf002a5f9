"""Training stages: which parameters train (align, finetune, lora), applied by one function that logs it."""

from __future__ import annotations

import logging

from torch import nn

log = logging.getLogger("polyvlm.train")
STAGES = ("align", "finetune", "lora")


def _count(module: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in module.parameters())
    train = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return train, total


def apply_stage(model: nn.Module, stage: str, lr: float, vision_lr: float = 0.0, weight_decay: float = 0.0) -> list[dict]:
    """Freeze/unfreeze the model's parts for `stage` and return optimizer parameter groups.

    align: connector only (encoder and LM frozen; a moe connector's mixture is bypassed and frozen).
    finetune: connector + LM, and the vision encoder at `vision_lr` when it is above 0. lora: connector +
    peft LoRA adapters on the LM (`model.lora_*`). The audio connector and the anyres newline embedding
    train with the connector.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown training stage '{stage}' (known: {', '.join(STAGES)})")
    model.requires_grad_(False)
    model.connector.requires_grad_(True)
    model.connector.set_active(stage != "align")
    conn = [p for p in model.connector.parameters() if p.requires_grad]
    if model.audio_connector is not None:
        model.audio_connector.requires_grad_(True)
        conn += list(model.audio_connector.parameters())
    if getattr(model, "image_newline", None) is not None:
        model.image_newline.requires_grad_(True)
        conn.append(model.image_newline)
    groups = [{"params": conn, "lr": lr, "name": "connector"}]
    if stage == "lora":
        from polyvlm.models.lora import apply_lora

        groups.append({"params": apply_lora(model), "lr": lr, "name": "lora"})
    if stage == "finetune":
        model.llm.requires_grad_(True)
        groups.append({"params": list(model.llm.parameters()), "lr": lr, "name": "llm"})
        if vision_lr > 0:
            model.vision.requires_grad_(True)
            groups.append({"params": list(model.vision.parameters()), "lr": vision_lr, "name": "vision"})
    for g in groups:
        g["weight_decay"] = weight_decay
        g["initial_lr"] = g["lr"]
    parts = [("vision", model.vision), ("connector", model.connector), ("llm", model.llm)]
    desc = ", ".join(f"{n} {t:,}/{a:,}" for n, (t, a) in ((n, _count(m)) for n, m in parts))
    t, a = _count(model)
    log.info("stage %s: trainable %s of %s parameters (%.1f%%) [%s]", stage, f"{t:,}", f"{a:,}", 100 * t / max(a, 1), desc)
    return groups
