"""Training stages (a registry: align, finetune, lora): which parameters train, applied by one function that logs it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from polyvlm.registry import Registry

log = logging.getLogger("polyvlm.train")


@dataclass(frozen=True)
class TrainStage:
    """What a stage trains beyond the connector: `mixture` switches the connector's stage-dependent parts on
    (`Connector.set_active`: moe's experts and router); `groups(model, lr, vision_lr)` unfreezes more parts and
    returns their optimizer parameter groups."""

    mixture: bool
    groups: Callable[[nn.Module, float, float], list[dict]]


def _finetune(model: nn.Module, lr: float, vision_lr: float) -> list[dict]:
    model.llm.requires_grad_(True)
    groups = [{"params": list(model.llm.parameters()), "lr": lr, "name": "llm"}]
    if vision_lr > 0:
        model.vision.requires_grad_(True)
        groups.append({"params": list(model.vision.parameters()), "lr": vision_lr, "name": "vision"})
    return groups


def _lora(model: nn.Module, lr: float, vision_lr: float) -> list[dict]:
    from polyvlm.models.lora import apply_lora

    return [{"params": apply_lora(model), "lr": lr, "name": "lora"}]


STAGES: Registry[TrainStage] = Registry("training stage")
STAGES.register("align")(TrainStage(mixture=False, groups=lambda model, lr, vision_lr: []))
STAGES.register("finetune")(TrainStage(mixture=True, groups=_finetune))
STAGES.register("lora")(TrainStage(mixture=True, groups=_lora))


def _count(module: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in module.parameters())
    train = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return train, total


def apply_stage(model: nn.Module, stage: str, lr: float, vision_lr: float = 0.0, weight_decay: float = 0.0) -> list[dict]:
    """Freeze/unfreeze the model's parts for `stage` and return optimizer parameter groups.

    align: connector only (encoder and LM frozen; a moe connector's mixture is bypassed and frozen).
    finetune: connector + LM, and the vision encoder at `vision_lr` when it is above 0. lora: connector +
    peft LoRA adapters on the LM (`model.lora_*`). The audio connector, the connectors of `model.encoders` and the
    anyres newline embedding train with the connector.
    """
    spec = STAGES.get(stage)
    model.requires_grad_(False)
    model.connector.requires_grad_(True)
    model.connector.set_active(spec.mixture)
    conn = [p for p in model.connector.parameters() if p.requires_grad]
    if model.audio_connector is not None:
        model.audio_connector.requires_grad_(True)
        conn += list(model.audio_connector.parameters())
    model.encoder_connectors.requires_grad_(True)  # those of the modalities `model.encoders` adds
    conn += list(model.encoder_connectors.parameters())
    if getattr(model, "image_newline", None) is not None:
        model.image_newline.requires_grad_(True)
        conn.append(model.image_newline)
    groups = [{"params": conn, "lr": lr, "name": "connector"}, *spec.groups(model, lr, vision_lr)]
    for g in groups:
        g["weight_decay"] = weight_decay
        g["initial_lr"] = g["lr"]
    parts = [("vision", model.vision), ("connector", model.connector), ("llm", model.llm)]
    desc = ", ".join(f"{n} {t:,}/{a:,}" for n, (t, a) in ((n, _count(m)) for n, m in parts))
    t, a = _count(model)
    log.info("stage %s: trainable %s of %s parameters (%.1f%%) [%s]", stage, f"{t:,}", f"{a:,}", 100 * t / max(a, 1), desc)
    return groups
