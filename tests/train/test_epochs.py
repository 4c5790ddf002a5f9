"""`train.epochs`: the run takes ceil(epochs x examples / global batch) steps in place of `train.max_steps`, its
learning-rate schedule ends with it, every sample is seen once per pass, the progress bar and the log show the
epoch, and a run resumed in the middle of an epoch ends where an uninterrupted one does."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from polyvlm.cli import main
from polyvlm.config import load_config
from polyvlm.data.scenes import make_split, write_jsonl
from polyvlm.testing import TINY_RECIPE
from polyvlm.train.loop import train
from polyvlm.train.sampler import StepSampler, steps_for_epochs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenes")
    return write_jsonl(make_split(d, 10, seed=4), d / "qa.jsonl")


def _cfg(out, data, *extra):
    return load_config(TINY_RECIPE, [f"data.path={data}", f"train.output_dir={out}", "train.batch_size=2",
                                     "train.log_every=1", "train.warmup_ratio=0", *extra])


def test_steps_for_epochs_covers_every_pass():
    assert steps_for_epochs(1, 10, 2) == 5 and steps_for_epochs(2, 10, 4) == 5 and steps_for_epochs(0.5, 10, 2) == 3
    assert steps_for_epochs(3, 9, 3) == 9 and steps_for_epochs(0.01, 10, 2) == 1
    sampler = StepSampler(10, batch_size=2, grad_accum=2, seed=5)  # 4 a step: 2 passes end inside step 5
    seen = Counter(i for s in range(steps_for_epochs(2, 10, 4)) for i in sampler.step_samples(s))
    assert set(seen) == set(range(10)) and min(seen.values()) >= 2  # each sample in both passes; 0 samples dropped
    first_pass = [i for t in range(2) for i in sampler.step_samples(t)] + sampler.step_samples(2)[:2]
    assert sorted(first_pass) == list(range(10))  # a pass is a permutation: no sample twice before all were seen
    with pytest.raises(ValueError, match="train.epochs must be > 0"):
        steps_for_epochs(-1, 10, 2)


def test_epochs_set_the_run_length_and_the_schedule(tmp_path, data, caplog, capsys):
    """train.epochs=2 on 10 examples at 2 a step: 10 steps (train.max_steps=3 not used, logged); the cosine schedule
    spans those 10 steps; each row carries its epoch, and the progress bar shows the pass it is in."""
    with caplog.at_level(logging.INFO, logger="polyvlm.train"):
        res = train(_cfg(tmp_path / "run", data, "train.epochs=2", "train.max_steps=3"), show_progress=True)
    bar = capsys.readouterr().err
    assert "finetune epoch 1/2" in bar and "finetune epoch 2/2" in bar and "10/10" in bar and "epoch=2.00 loss=" in bar
    assert "train.epochs=2: 10 examples, 2 a step -> 10 steps (train.max_steps=3 not used)" in caplog.text
    assert [h["step"] for h in res.history] == list(range(1, 11))
    assert [h["epoch"] for h in res.history] == [round(0.2 * k, 4) for k in range(1, 11)]
    lrs = [h["lr"] for h in res.history]
    assert lrs[0] == pytest.approx(1e-3) and lrs[5] == pytest.approx(0.5e-3) and 0 < lrs[-1] < 0.03e-3
    rows = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 10 and rows[-1]["epoch"] == 2.0


def test_resume_in_the_middle_of_an_epoch_ends_like_an_uninterrupted_run(tmp_path, data, monkeypatch):
    """train.epochs=1.5 (8 steps of 2): killed after step 3 (checkpoint-3, mid first pass), resumed with
    train.resume=auto through `polyvlm train`, the final weights equal those of one uninterrupted run."""
    whole = train(_cfg(tmp_path / "whole", data, "train.epochs=1.5"), show_progress=False)
    assert len(whole.history) == 8
    part = _cfg(tmp_path / "part", data, "train.epochs=1.5", "train.save_every=3")
    import polyvlm.train.loop as loop

    calls, real = {"n": 0}, loop._step

    def crash_after_3(run, micro, stats):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the process dies during step 4
        return real(run, micro, stats)

    monkeypatch.setattr(loop, "_step", crash_after_3)
    with pytest.raises(KeyboardInterrupt):
        train(part, show_progress=False)
    monkeypatch.setattr(loop, "_step", real)
    assert (tmp_path / "part" / "checkpoint-3").is_dir() and not (tmp_path / "part" / "final").exists()
    args = [f"data.path={data}", f"train.output_dir={tmp_path / 'part'}", "train.batch_size=2", "train.log_every=1",
            "train.warmup_ratio=0", "train.epochs=1.5", "train.save_every=3", "train.resume=auto"]
    assert main(["train", str(TINY_RECIPE), *args, "--no-progress"]) == 0
    a = load_file(str(whole.checkpoint / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (tmp_path / "part" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9)) and rows[2]["epoch"] == 0.6 and rows[-1]["epoch"] == 1.6
