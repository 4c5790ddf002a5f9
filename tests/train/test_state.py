"""Resumable state: the optimizer saved by parameter name loads into a fresh optimizer (any process count
reads the same full state), a mismatched optimizer is refused, incomplete checkpoints are never resumed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from polyvlm.train.optim import build_optimizer
from polyvlm.train.state import (
    checkpoints,
    latest_checkpoint,
    load_state,
    optimizer_state,
    rng_state,
    rotate,
    save_state,
)


def _model_opt(seed: int = 0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    m[0].requires_grad_(False)
    groups = [{"params": list(m[1].parameters()), "lr": 1e-2, "name": "head", "weight_decay": 0.0, "initial_lr": 1e-2}]
    return m, *build_optimizer(groups, 10, 0.2, 0.0)


def _step(m, opt, sched):
    m(torch.randn(5, 3)).pow(2).sum().backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def test_state_round_trip_continues_identically(tmp_path):
    m, opt, sched = _model_opt()
    for _ in range(3):
        _step(m, opt, sched)
    (tmp_path / "ck").mkdir()
    osd = optimizer_state(m, opt, sharded=False)
    assert set(osd["state"]) == {"1.weight", "1.bias"}  # keyed by name, not by position
    save_state(tmp_path / "ck", 3, osd, sched, [rng_state()], {"global_batch": 8})
    m2, opt2, sched2 = _model_opt(seed=1)
    m2.load_state_dict(m.state_dict())
    assert load_state(tmp_path / "ck", m2, opt2, sched2)["global_batch"] == 8
    a = torch.randn(1)  # the RNG continues where it was saved
    torch.manual_seed(123)
    load_state(tmp_path / "ck", m2, opt2, sched2)
    assert torch.equal(torch.randn(1), a)
    torch.manual_seed(7)
    _step(m, opt, sched)
    torch.manual_seed(7)
    _step(m2, opt2, sched2)
    assert sched.get_last_lr() == sched2.get_last_lr()
    for p, q in zip(m.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_other_parameters_are_refused(tmp_path):
    m, opt, sched = _model_opt()
    _step(m, opt, sched)
    (tmp_path / "ck").mkdir()
    save_state(tmp_path / "ck", 1, optimizer_state(m, opt, False), sched, [rng_state()])
    m[0].requires_grad_(True)
    groups = [{"params": [p for p in m.parameters()], "lr": 1e-2, "weight_decay": 0.0, "initial_lr": 1e-2}]
    opt2, sched2 = build_optimizer(groups, 10, 0.0, 0.0)
    with pytest.raises(ValueError, match="optimizer holds other parameters than this run trains"):
        load_state(tmp_path / "ck", m, opt2, sched2)


def test_incomplete_checkpoints_are_ignored_and_rotated(tmp_path):
    for step in (2, 4, 6):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"x")
        (d / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-8").mkdir()  # no trainer state: never complete
    (tmp_path / ".checkpoint-10.abc.tmp").mkdir()  # a writer killed mid-write
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-6"
    rotate(tmp_path, keep_last=2)
    assert [s for s, _ in checkpoints(tmp_path)] == [4, 6]
    assert not (tmp_path / ".checkpoint-10.abc.tmp").exists()
