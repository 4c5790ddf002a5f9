"""Packing: every sample's loss in a packed row equals its loss alone; the step sampler deals the same samples
to any number of processes, and groups micro-batches by modality and length."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import polyvlm
from polyvlm.data.records import Turn
from polyvlm.train.sampler import StepSampler


def test_sampler_same_step_samples_for_any_world():
    one = StepSampler(50, batch_size=8, grad_accum=1, world=1, seed=3)
    two = StepSampler(50, batch_size=4, grad_accum=1, world=2, seed=3)
    acc = StepSampler(50, batch_size=2, grad_accum=4, world=1, seed=3)
    for step in (0, 5, 7):
        a = sorted(one.micro_batches(step, 0)[0])
        b = sorted(two.micro_batches(step, 0)[0] + two.micro_batches(step, 1)[0])
        c = sorted(sum(acc.micro_batches(step, 0), []))
        assert a == b == c


def test_sampler_groups_by_modality_and_length():
    """LLaVA's modality-length grouping: a step's samples sorted by (has image, length) before being dealt out,
    so micro-batches are modality-pure where the counts allow and hold neighbours in length."""
    n = 64
    keys = [(i % 3 != 0, (i * 37) % 101) for i in range(n)]  # a third text-only, lengths spread
    s = StepSampler(n, batch_size=4, grad_accum=4, world=2, seed=5, group_by=keys)
    plain = StepSampler(n, batch_size=4, grad_accum=4, world=2, seed=5)
    for step in range(3):
        mbs = [mb for r in range(2) for mb in s.micro_batches(step, r)]
        assert sorted(sum(mbs, [])) == sorted(plain.step_samples(step))  # same samples, other micro-batches
        mixed = sum(len({keys[i][0] for i in mb}) > 1 for mb in mbs)
        assert mixed <= 1  # one boundary between the text-only and the image samples
        spread = sum(max(keys[i][1] for i in mb) - min(keys[i][1] for i in mb) for mb in mbs)
        spread_plain = sum(max(keys[i][1] for i in mb) - min(keys[i][1] for i in mb)
                           for r in range(2) for mb in plain.micro_batches(step, r))
        assert spread < spread_plain / 2


def test_varlen_packed_loss_equals_alone(tiny_ckpt):
    """One row, no padding, per-sample causal SDPA: each sample's loss equals its loss alone."""
    import polyvlm.models.varlen as varlen
    from polyvlm.train.batch import collate

    model, proc = polyvlm.load(tiny_ckpt)
    items = []
    for text, colours in (("<image>\nWhat colour are the shapes?", ["red"]), ("Какого цвета фигуры?", []),
                          ("<image>\n这些图形是什么颜色？", ["blue"])):
        turns = [Turn("user", text), Turn("assistant", "красный и синий")]
        items.append(proc.process(turns, {"image": [Image.new("RGB", (64, 64), c) for c in colours]}, "x"))
    batch = collate(items, packing=True)
    lengths = [len(it.input_ids) for it in items]
    assert batch.input_ids.shape == (1, sum(lengths)) and batch.attention_mask is None
    assert batch.attn_kwargs["cu_seq_lens_q"].tolist() == [0, lengths[0], lengths[0] + lengths[1], sum(lengths)]
    assert batch.position_ids[0, lengths[0]] == 0 and batch.position_ids[0, -1] == lengths[2] - 1
    assert batch.media.n_images == 2 and batch.languages == ["x"] * 3
    assert model.llm.config._attn_implementation == "sdpa"  # "alone" below runs the plain SDPA CPU path
    model.llm.set_attn_implementation(varlen.NAME)
    try:
        with torch.no_grad():
            packed = model(**batch.model_inputs())
    finally:
        model.llm.set_attn_implementation("sdpa")
    seg = batch.segment_ids[:, 1:]
    with torch.no_grad():
        for k, it in enumerate(items):
            ids = torch.tensor([it.input_ids])
            alone = model(ids, torch.ones_like(ids), it.media, torch.tensor([it.labels]))
            assert float(packed.token_loss[seg == k].sum()) == pytest.approx(float(alone.loss_sum), rel=1e-5, abs=1e-5)
            assert int((batch.labels[:, 1:][seg == k] != -100).sum()) == int(alone.n_tokens)
