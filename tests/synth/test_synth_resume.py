"""SIGKILL a real `polyvlm synth` process mid-stage (twice), resume, and get exactly the outputs of an
uninterrupted run: nothing lost, nothing duplicated, no result computed twice."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from synth_helpers import conv, read_final, write_jsonl

from polyvlm.synth.config import pipeline_from_dict
from polyvlm.synth.pipeline import Pipeline
from polyvlm.synth.store import iter_jsonl, shard_paths

ROOT = Path(__file__).resolve().parents[2]


def _lines(out: Path, stage_prefix: str) -> int:
    return sum(len(p.read_bytes().splitlines()) for d in (out / "stages").glob(f"{stage_prefix}-*")
               for p in shard_paths(d / "map"))


def _kill_when(proc: subprocess.Popen, out: Path, stage_prefix: str, at_least: int, limit: float = 60) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc.poll() is not None:
            raise AssertionError(f"synth ended (rc={proc.returncode}) before it could be killed: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if (out / "stages").is_dir() and _lines(out, stage_prefix) >= at_least:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("timed out waiting for progress")


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_exactly_once(tmp_path, image_dir, fake_server):
    server = fake_server(delay=0.03)
    n = 100
    recs = [conv(f"s{i}", f"What is shown in picture {i}?", f"Object {i}.", image="red.png") for i in range(n)]
    seed = write_jsonl(tmp_path / "seed.jsonl", recs)

    def cfg(out: str) -> dict:
        return {"input": str(seed), "output": str(tmp_path / out), "image_root": str(image_dir), "concurrency": 4,
                "progress": False, "shard_size": 25,
                "backends": {"m": {"type": "openai", "base_url": server.url, "model": "fake"}},
                "stages": [{"stage": "categorize"}, {"stage": "rewrite", "backend": "m"},
                           {"stage": "judge", "backend": "m", "threshold": 2}, {"stage": "dedup"}]}

    reference = Pipeline(pipeline_from_dict(cfg("ref"))).run()
    ref_requests = server.requests
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump(cfg("out")))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "polyvlm", "synth", str(p), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, out, "01-rewrite", 30)  # killed inside rewrite
    proc = subprocess.Popen([*cmd, "--resume"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, out, "02-judge", 25)  # killed inside judge
    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    got, want = read_final(out), read_final(tmp_path / "ref")
    assert len(got) == reference["final_records"] > 0
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, want))
    for stage in ("01-rewrite", "02-judge"):
        keys = collections.Counter(obj["key"] for d in (out / "stages").glob(f"{stage}-*")
                                   for sp in shard_paths(d / "map") for _, obj in iter_jsonl(sp))
        assert len(keys) == (n if stage == "01-rewrite" else n) and set(keys.values()) == {1}
    # every model call of the killed runs was needed once: at most one in-flight batch per kill is redone
    assert server.requests - ref_requests <= 2 * n + 2 * 4
    attempts = [json.loads(x) for d in (out / "stages").glob("01-rewrite-*")
                for x in (d / "attempts.jsonl").read_text().splitlines()]
    assert len(attempts) == 1 and attempts[0]["already_done"] >= 30  # the killed attempt wrote no stats line
