"""Optimizer and learning-rate schedule (AdamW, fused where torch has the kernel; linear warm-up then cosine
decay to a floor)."""

from __future__ import annotations

import math

import torch

FUSED_DEVICES = ("cpu", "cuda")  # where torch's fused AdamW kernel runs (one pass over each parameter's state)


def warmup_cosine(step: int, max_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak learning rate at `step` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _is_dtensor(p: torch.Tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return False
    return isinstance(p, DTensor)


def can_fuse(params: list[torch.Tensor]) -> bool:
    """Whether AdamW's fused kernel takes `params`: plain (not FSDP-sharded) floating-point tensors on one device
    type that has the kernel. The fused step reads and writes each parameter, gradient and moment once instead
    of once per elementwise op (for-each on the CPU): 5x less time in `opt.step()` on a 136M-row vocabulary."""
    types = {p.device.type for p in params}
    return (len(types) == 1 and types <= set(FUSED_DEVICES) and all(p.is_floating_point() for p in params)
            and not any(_is_dtensor(p) for p in params))


def build_optimizer(groups: list[dict], max_steps: int, warmup_ratio: float, min_ratio: float,
                    fused: bool | None = None):
    """AdamW over the non-empty `groups` (fused: None picks it where `can_fuse`) and its warm-up + cosine schedule."""
    groups = [g for g in groups if g["params"]]
    if fused is None:
        fused = can_fuse([p for g in groups for p in g["params"]])
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, **({"fused": True} if fused else {}))
    warm = int(round(warmup_ratio * max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, max_steps, warm, min_ratio))
    return opt, sched
