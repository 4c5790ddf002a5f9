"""Packing: best-fit bins, and every sample's loss in a packed batch equals its loss alone."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import polyvlm
from polyvlm.data.records import Turn
from polyvlm.train.packing import best_fit, collate_packed
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


def test_packed_loss_equals_alone(tiny_ckpt):
    model, proc = polyvlm.load(tiny_ckpt)
    convs = [
        ([Turn("user", "<image>\nWhat colour are the shapes?"), Turn("assistant", "red")], ["red"]),
        ([Turn("user", "Какого цвета фигуры? Скажите подробно"), Turn("assistant", "синий и зелёный")], []),
        ([Turn("user", "<image>\n这些图形是什么颜色？"), Turn("assistant", "红色")], ["blue"]),
    ]
    items = []
    for turns, colours in convs:
        enc = proc.encode(turns, {"image": len(colours)})
        pix = proc.images_to_pixels([Image.new("RGB", (64, 64), c) for c in colours]) if colours else None
        items.append({"input_ids": enc.input_ids, "labels": enc.labels, "pixels": pix, "language": "x"})
    batch = collate_packed(items, capacity=1024, pad_id=proc.pad_id)
    assert batch["input_ids"].shape[0] == 1  # all three share one row
    with torch.no_grad():
        packed = model(batch["input_ids"], None, batch["pixels"], batch["labels"], batch["position_ids"])
        seg = batch["segment_ids"][:, 1:]
        for k, it in enumerate(items):
            ids = torch.tensor([it["input_ids"]])
            alone = model(ids, torch.ones_like(ids), it["pixels"], torch.tensor([it["labels"]]))
            in_pack = packed.token_loss[seg == k].sum()
            assert float(in_pack) == pytest.approx(float(alone.loss_sum), rel=1e-4, abs=1e-4)
