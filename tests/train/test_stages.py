"""Stage freezing: align trains the connector only; finetune adds the LM, and the encoder at vision_lr."""

from __future__ import annotations

import logging

import pytest

import polyvlm
from polyvlm.train.stages import apply_stage


def _trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_stages(tiny_ckpt, caplog):
    model, _ = polyvlm.load(tiny_ckpt)
    with caplog.at_level(logging.INFO, logger="polyvlm.train"):
        groups = apply_stage(model, "align", 1e-3)
    assert "stage align: trainable" in caplog.text
    assert _trainable(model.connector) == sum(p.numel() for p in model.connector.parameters())
    assert _trainable(model.llm) == 0 and _trainable(model.vision) == 0
    assert [g["name"] for g in groups] == ["connector"]
    groups = apply_stage(model, "finetune", 1e-3)
    assert _trainable(model.llm) > 0 and _trainable(model.vision) == 0
    groups = apply_stage(model, "finetune", 1e-3, vision_lr=2e-6)
    assert _trainable(model.vision) > 0
    assert {g["name"]: g["lr"] for g in groups} == {"connector": 1e-3, "llm": 1e-3, "vision": 2e-6}
    with pytest.raises(ValueError, match="unknown training stage 'pretrain'"):
        apply_stage(model, "pretrain", 1e-3)
