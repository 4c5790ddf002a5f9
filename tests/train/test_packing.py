"""Packing: best-fit bins, and every sample's loss in a packed batch equals its loss alone."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import polyvlm
from polyvlm.data.records import Turn
from polyvlm.train.packing import best_fit
from polyvlm.train.sampler import StepSampler


def test_best_fit_respects_capacity_and_order():
    lengths = [50, 30, 70, 20, 100, 10, 60]
    bins = best_fit(lengths, 100)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 100 for b in bins)
    assert all(b == sorted(b) for b in bins)
    assert len(bins) == 4  # 340 tokens need at least 4 rows of 100


def test_sampler_same_step_samples_for_any_world():
    one = StepSampler(50, batch_size=8, grad_accum=1, world=1, seed=3)
    two = StepSampler(50, batch_size=4, grad_accum=1, world=2, seed=3)
    acc = StepSampler(50, batch_size=2, grad_accum=4, world=1, seed=3)
    for step in (0, 5, 7):
        a = sorted(one.micro_batches(step, 0)[0])
        b = sorted(two.micro_batches(step, 0)[0] + two.micro_batches(step, 1)[0])
        c = sorted(sum(acc.micro_batches(step, 0), []))
        assert a == b == c


def test_varlen_packed_loss_equals_alone(tiny_ckpt):
    """One row, no padding, per-sample causal SDPA: each sample's loss equals its loss alone."""
    import polyvlm.models.varlen as varlen
    from polyvlm.train.packing import collate_varlen

    model, proc = polyvlm.load(tiny_ckpt)
    items = []
    for text, colours in (("<image>\nWhat colour are the shapes?", ["red"]), ("Какого цвета фигуры?", []),
                          ("<image>\n这些图形是什么颜色？", ["blue"])):
        enc = proc.encode([Turn("user", text), Turn("assistant", "красный и синий")], {"image": len(colours)})
        pix = proc.images_to_pixels([Image.new("RGB", (64, 64), c) for c in colours]) if colours else None
        items.append({"input_ids": enc.input_ids, "labels": enc.labels, "pixels": pix, "language": "x"})
    batch = collate_varlen(items)
    assert batch["input_ids"].shape == (1, sum(len(it["input_ids"]) for it in items))
    model.llm.set_attn_implementation(varlen.NAME)
    try:
        with torch.no_grad():
            packed = model(batch["input_ids"], None, batch["pixels"], batch["labels"], batch["position_ids"],
                           batch["attn_kwargs"])
    finally:
        model.llm.set_attn_implementation("sdpa")
    seg = batch["segment_ids"][:, 1:]
    with torch.no_grad():
        for k, it in enumerate(items):
            ids = torch.tensor([it["input_ids"]])
            alone = model(ids, torch.ones_like(ids), it["pixels"], torch.tensor([it["labels"]]))
            assert float(packed.token_loss[seg == k].sum()) == pytest.approx(float(alone.loss_sum), rel=1e-4, abs=1e-4)
