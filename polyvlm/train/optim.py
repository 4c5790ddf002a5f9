"""Optimizer and learning-rate schedule (AdamW; linear warm-up then cosine decay to a floor)."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, max_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak learning rate at `step` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(groups: list[dict], max_steps: int, warmup_ratio: float, min_ratio: float):
    opt = torch.optim.AdamW([g for g in groups if g["params"]], betas=(0.9, 0.999), eps=1e-8)
    warm = int(round(warmup_ratio * max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, max_steps, warm, min_ratio))
    return opt, sched
