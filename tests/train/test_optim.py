"""The optimizer: fused AdamW where torch has the kernel takes the same steps as the per-parameter AdamW, and
its state is interchangeable with it (a run resumed across the switch continues)."""

from __future__ import annotations

import torch
from torch import nn

from polyvlm.train.optim import build_optimizer, can_fuse
from polyvlm.train.state import load_state, optimizer_state, rng_state, save_state


def _groups(m: nn.Module) -> list[dict]:
    # two groups with their own learning rate and weight decay, as `apply_stage` makes them
    return [{"params": list(m[0].parameters()), "lr": 1e-2, "weight_decay": 0.1, "initial_lr": 1e-2},
            {"params": list(m[1].parameters()), "lr": 3e-3, "weight_decay": 0.0, "initial_lr": 3e-3}]


def _run(fused: bool, steps: int, state: dict | None = None) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 50))
    opt, sched = build_optimizer(_groups(m), 10, 0.2, 0.1, fused=fused)
    if state is not None:  # through polyvlm's checkpoint files, as `train.resume` reads them
        m.load_state_dict(state["model"])
        save_state(state["dir"], 3, state["opt"], state["sched"], [rng_state()])
        load_state(state["dir"], m, opt, sched)
    g = torch.Generator().manual_seed(0 if state is None else 1)
    for _ in range(steps):
        ids = torch.randint(0, 50, (4, 6), generator=g)
        nn.functional.cross_entropy(m(ids).flatten(0, 1), ids.roll(1, 1).flatten()).backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return m, opt, sched


def test_fused_adamw_is_picked_on_the_cpu_and_steps_like_the_loop():
    m, _, _ = _run(fused=False, steps=0)
    assert can_fuse(list(m.parameters()))
    assert not can_fuse([torch.zeros(2, dtype=torch.long)])  # integer tensors have no fused step
    assert build_optimizer(_groups(m), 10, 0.0, 0.0)[0].defaults["fused"] is True
    fused, _, _ = _run(fused=True, steps=6)
    plain, _, _ = _run(fused=False, steps=6)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(fused[1].weight, _run(fused=True, steps=0)[0][1].weight)  # it did train


def test_state_moves_between_fused_and_plain(tmp_path):
    m, opt, sched = _run(fused=False, steps=3)
    (tmp_path / "ck").mkdir()
    state = {"model": m.state_dict(), "opt": optimizer_state(m, opt, sharded=False), "sched": sched, "dir": tmp_path / "ck"}
    resumed, opt2, _ = _run(fused=True, steps=3, state=state)
    assert opt2.param_groups[0]["fused"] is True  # the run's choice, not the saved one
    assert opt2.state[opt2.param_groups[0]["params"][0]]["step"] == 6  # 3 saved + 3 resumed
    again, _, _ = _run(fused=False, steps=3, state=state)
    for p, q in zip(resumed.parameters(), again.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
