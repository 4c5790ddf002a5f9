"""Training metrics sinks: a run resumed with `train.resume=auto` continues its Weights & Biases run (same id,
`resume="allow"`, as wandb documents for resuming: https://docs.wandb.ai/guides/runs/resuming), tested with a
stand-in `wandb` module that records what `polyvlm train` asks of it."""

from __future__ import annotations

import sys
import types

import pytest

from polyvlm.cli import main
from polyvlm.data.scenes import make_split, write_jsonl
from polyvlm.testing import TINY_RECIPE
from polyvlm.train.state import read_state


class FakeRun:
    def __init__(self, calls: list[dict], kwargs: dict):
        self.kwargs, self.logged, self.finished = kwargs, [], False
        calls.append({"init": kwargs, "run": self})

    def log(self, row: dict, step: int) -> None:
        self.logged.append((step, row))

    def finish(self) -> None:
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
    calls: list[dict] = []
    module = types.ModuleType("wandb")
    module.init = lambda **kw: FakeRun(calls, kw)
    monkeypatch.setitem(sys.modules, "wandb", module)
    return calls


def test_a_resumed_run_continues_its_wandb_run(tmp_path, fake_wandb):
    d = tmp_path / "data"
    data = write_jsonl(make_split(d, 8, seed=2), d / "qa.jsonl")
    out = tmp_path / "run"
    args = ["train", str(TINY_RECIPE), f"data.path={data}", f"train.output_dir={out}", "train.batch_size=2",
            "train.log_every=1", "train.wandb=true", "train.tensorboard=false", "--no-progress"]
    assert main([*args, "train.max_steps=2", "train.save_every=1"]) == 0
    first = fake_wandb[0]
    run_id = first["init"]["id"]
    assert len(run_id) == 8 and first["init"]["resume"] == "allow" and first["init"]["dir"] == str(out)
    assert [s for s, _ in first["run"].logged] == [1, 2] and first["run"].finished
    assert read_state(out / "checkpoint-1")["wandb_id"] == run_id  # the id travels with the resumable checkpoint

    assert main([*args, "train.max_steps=3", "train.resume=auto"]) == 0  # continues from checkpoint-1
    second = fake_wandb[1]
    assert second["init"]["id"] == run_id and second["init"]["resume"] == "allow"
    assert [s for s, _ in second["run"].logged] == [2, 3] and "loss" in second["run"].logged[-1][1]

    assert main([*args, "train.max_steps=1", f"train.output_dir={tmp_path / 'other'}"]) == 0  # a new run: a new id
    assert fake_wandb[2]["init"]["id"] != run_id


def test_wandb_missing_logs_without_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    d = tmp_path / "data"
    data = write_jsonl(make_split(d, 4, seed=2), d / "qa.jsonl")
    with caplog.at_level("WARNING", logger="polyvlm.train"):
        assert main(["train", str(TINY_RECIPE), f"data.path={data}", f"train.output_dir={tmp_path / 'run'}",
                     "train.batch_size=2", "train.max_steps=1", "train.wandb=true", "--no-progress"]) == 0
    assert "wandb is not installed (pip install 'polyvlm[wandb]')" in caplog.text


def test_missing_optional_sinks_name_their_extra(tmp_path, monkeypatch, caplog):
    """A lean install (no tensorboard, no wandb) still logs JSONL and says which extra brings each sink back."""
    from polyvlm.train.logger import MetricsLogger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as when not installed
    monkeypatch.setitem(sys.modules, "wandb", None)
    caplog.set_level("WARNING", logger="polyvlm")
    sink = MetricsLogger(tmp_path, tensorboard=True, wandb=True)
    sink.log(1, {"loss": 1.0})
    assert sink.tb is None and sink.wandb is None
    assert "pip install 'polyvlm[tb]', or train.tensorboard=false" in caplog.text
    assert "pip install 'polyvlm[wandb]'" in caplog.text
    assert (tmp_path / "train_log.jsonl").read_text().startswith('{"step": 1, "loss": 1.0')
    sink.close()
