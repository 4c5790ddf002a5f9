"""Quick start stage 0: pre-train the tiny vision encoder with a direct objective (attribute classification
from its patch features and from its CLS summary), standing in for the pre-trained CLIP/SigLIP a real
pipeline starts from."""

from __future__ import annotations

import logging
import random

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from polyvlm.data.scenes import COLORS, COUNTS, SHAPES, SIDES, draw_scene, random_scene
from polyvlm.models.encoders.vision import VisionEncoder
from polyvlm.train.optim import warmup_cosine

log = logging.getLogger("polyvlm.quickstart")
HEADS = {"color": len(COLORS), "shape": len(SHAPES), "count": len(COUNTS), "side": len(SIDES)}


class AttributeHeads(nn.Module):
    """Features of the layer the connector reads -> logits per attribute [n, classes], from two readings.

    `flat`: the flattened token grid [n, t, d] (each patch's position is its index), which is how count is
    learnt. `summary`: the CLS token [n, d] alone, which must carry every attribute, side included. The
    language model sees the tokens as a sequence and cannot easily decode "left" from token indices (a tiny
    LM stayed at chance on side with patch features only), but it reads a CLS token that states it.
    """

    def __init__(self, tokens: int, width: int):
        super().__init__()
        self.reduce = nn.Linear(width, 16)
        self.flat = nn.ModuleDict({k: nn.Linear(tokens * 16, n) for k, n in HEADS.items()})
        self.summary = nn.ModuleDict({k: nn.Linear(width, n) for k, n in HEADS.items()})

    def forward(self, feats: torch.Tensor, cls: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """feats [n, t, d], cls [n, d] -> {"flat": {attr: [n, k]}, "summary": {attr: [n, k]}}."""
        z = self.reduce(feats).flatten(1)
        return {"flat": {k: h(z) for k, h in self.flat.items()}, "summary": {k: h(cls) for k, h in self.summary.items()}}


def _batch(rng: random.Random, n: int, enc: VisionEncoder) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    scenes = [random_scene(rng) for _ in range(n)]
    pixels = enc.preprocess([draw_scene(s, rng, enc.image_size) for s in scenes])
    labels = {k: torch.tensor([s.labels()[k] for s in scenes]) for k in HEADS}
    return pixels, labels


def pretrain_encoder(enc: VisionEncoder, steps: int = 300, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                     show_progress: bool = True) -> dict[str, float]:
    """Train `enc` in place on both readings; returns held-out accuracy per attribute of the flat heads
    (`color`, ...) and of the CLS heads (`cls_color`, ...)."""
    torch.manual_seed(seed)
    rng = random.Random(seed + 17)
    heads = AttributeHeads(enc.tokens_per_image, enc.hidden_size)
    enc.train().requires_grad_(True)
    opt = torch.optim.AdamW(list(enc.parameters()) + list(heads.parameters()), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps, warm))
    bar = tqdm(range(steps), desc="stage 0 (encoder)", disable=not show_progress, dynamic_ncols=True)
    for _ in bar:
        pixels, labels = _batch(rng, batch_size, enc)
        logits = heads(*enc.forward_with_cls(pixels))
        loss = sum(F.cross_entropy(out[k], labels[k]) for out in logits.values() for k in HEADS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    enc.eval()
    with torch.no_grad():
        pixels, labels = _batch(random.Random(seed + 99), 256, enc)
        logits = heads(*enc.forward_with_cls(pixels))
    acc = {k: float((logits["flat"][k].argmax(-1) == labels[k]).float().mean()) for k in HEADS}
    acc.update({f"cls_{k}": float((logits["summary"][k].argmax(-1) == labels[k]).float().mean()) for k in HEADS})
    log.info("stage 0 encoder accuracy on held-out pictures: %s", {k: round(v, 3) for k, v in acc.items()})
    return acc
