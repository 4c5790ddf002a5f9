"""Data-parallel evaluation: 2 CPU processes under torchrun (gloo) give the single-process results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eval_fakes import ASSETS, FakeGenerator

from polyvlm.eval.backends import GeneratorBackend
from polyvlm.eval.runner import evaluate
from polyvlm.eval.tasks import resolve

SCRIPT = """
import os, sys
sys.path.insert(0, {tests!r})
from eval_fakes import FakeGenerator
from polyvlm.eval.backends import GeneratorBackend
from polyvlm.eval.runner import evaluate
from polyvlm.eval.tasks import resolve
import polyvlm.eval.runner as runner
from tqdm import tqdm


class Bar(tqdm):  # what the progress bar shows when it closes: done / total
    def close(self):
        if not self.disable:
            print("bar", self.desc, self.n, self.total, flush=True)
        super().close()


runner.tqdm = Bar
tasks, suites = resolve({entries!r})
gen = FakeGenerator()
evaluate(tasks, {out!r}, backend=GeneratorBackend(gen, 4), suites=suites)
print("rank", os.environ["RANK"], "asked", sum(gen.batches), flush=True)
"""


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path) -> None:
    entries = [str(ASSETS / "mmmb"), str(ASSETS / "vqa.jsonl")]
    one = evaluate(resolve(entries)[0], tmp_path / "one", backend=GeneratorBackend(FakeGenerator(), 4))
    assert one is not None
    script = tmp_path / "dp.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), entries=entries, out=str(tmp_path / "two")))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script)], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    asked = sorted(int(line.split()[-1]) for line in proc.stdout.splitlines() if line.startswith("rank"))
    assert asked == [11, 11]  # 22 samples split evenly over the two ranks
    # rank 0 alone draws the bar, counting every rank's samples: n of n samples, not the n / 2 it answered itself
    bars = {line.split()[1]: line.split()[2:] for line in proc.stdout.splitlines() if line.startswith("bar")}
    assert bars == {name: [str(one["tasks"][name]["n"])] * 2 for name in ("mmmb", "vqa")}, proc.stdout
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["world_size"] == 2
    for name in ("mmmb", "vqa"):
        assert two["tasks"][name]["metrics"] == json.loads(json.dumps(one["tasks"][name]["metrics"]))
        a = (tmp_path / "one" / f"samples_{name}.jsonl").read_text(encoding="utf-8")
        assert a == (tmp_path / "two" / f"samples_{name}.jsonl").read_text(encoding="utf-8")
