"""Integration with the real tiny model: `polyvlm eval --model` on the quickstart task; batch 1 and batch 16
give identical greedy predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_fakes import tiny_checkpoint

from polyvlm.eval.cli import main as eval_main
from polyvlm.eval.tasks.quickstart import quickstart_available

pytestmark = pytest.mark.skipif(not quickstart_available(), reason="polyvlm.data.scenes is not available")


@pytest.mark.slow
def test_quickstart_batch_invariance_with_tiny_model(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    outs = {}
    for bs in (1, 16):
        out = tmp_path / f"bs{bs}"
        args = ["--model", str(ckpt), "--tasks", "quickstart", "--batch-size", str(bs), "--limit", "18",
                "--max-new-tokens", "6", "--out", str(out)]
        assert eval_main(args) == 0
        outs[bs] = [json.loads(x) for x in (out / "samples_quickstart.jsonl").read_text(encoding="utf-8").splitlines()]
        res = json.loads((out / "results.json").read_text())
        t = res["tasks"]["quickstart"]
        assert t["n"] == 18 and t["failed"] == 0 and t["throughput"]["samples_per_s"] > 0
    assert [r["prediction"] for r in outs[1]] == [r["prediction"] for r in outs[16]]
    assert len({r["language"] for r in outs[1]}) >= 2
    # greedy text of a random-init model runs to the length limit and differs between pictures, so a padding
    # or cache bug at batch 16 would change it (empty or identical answers would make this check vacuous)
    assert all(r["prediction"] for r in outs[1]) and len({r["prediction"] for r in outs[1]}) > 1
