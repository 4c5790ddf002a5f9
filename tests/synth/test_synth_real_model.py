"""End to end with the real tiny model: the `openai` backend against a `polyvlm serve` process on loopback,
and the `transformers` backend over `polyvlm.load_generator` in process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from synth_helpers import conv, write_jsonl

from polyvlm.synth.cli import main as synth_main
from polyvlm.synth.store import iter_results

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _records(tmp_path: Path) -> Path:
    recs = [conv(f"s{i}", f"What color is shape {i}?", "Red.", image="red.png") for i in range(4)]
    recs.append(conv("chart", "What does the bar chart show?", "Sales.", image="blue.png"))
    return write_jsonl(tmp_path / "seed.jsonl", recs)


def _stages(tmp_path: Path) -> list[dict]:
    """Short custom templates: the tiny model has a 256-token context (the built-in prompts are longer)."""
    short = {"categorize": "Kind: $question", "rewrite": "Ask: $question", "judge": "Rate: $conversation"}
    for name, user in short.items():
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}-tiny\nversion: '1'\nuser: '{user}'\n")
    return [{"stage": "categorize", "backend": "m", "mode": "rules_then_model", "max_tokens": 6,
             "prompt": str(tmp_path / "categorize.yaml")},
            {"stage": "rewrite", "backend": "m", "max_tokens": 12, "attempts": 1, "prompt": str(tmp_path / "rewrite.yaml")},
            {"stage": "judge", "backend": "m", "max_tokens": 8, "attempts": 1, "prompt": str(tmp_path / "judge.yaml")}]


def _check_every_record_accounted(out: Path, n: int) -> None:
    for stage_dir in sorted((out / "stages").iterdir()):
        results = list(iter_results(stage_dir / "map"))
        assert all(r["status"] in ("ok", "rejected") for r in results)
        assert all(r["reason"] for r in results if r["status"] == "rejected")
        if stage_dir.name.startswith(("00-", "01-")):
            assert len(results) == n
    assert (out / "report.md").is_file()


def test_synth_against_polyvlm_serve_process(tmp_path, image_dir, tiny_ckpt, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "POLYVLM_API_KEY"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "polyvlm", "serve", str(tiny_ckpt), "--port", str(port),
                             "--max-batch-size", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "polyvlm serve did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        p = tmp_path / "pipe.yaml"
        p.write_text(yaml.safe_dump({
            "input": str(_records(tmp_path)), "output": str(tmp_path / "out"), "image_root": str(image_dir),
            "concurrency": 4, "progress": False, "on_failure": "stop",
            "backends": {"m": {"type": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": tiny_ckpt.name,
                               "timeout": 120, "concurrency": 4}},
            "stages": _stages(tmp_path)}))
        assert synth_main([str(p)]) == 0, capsys.readouterr().err
    finally:
        proc.terminate()
        proc.wait(20)
    rows = json.loads((tmp_path / "out" / "report.json").read_text())["stages"]
    assert rows[0]["in"] == 5 and rows[0]["failed"] == 0 and rows[1]["in"] == 5
    assert rows[1]["backend"]["requests"] == 5 and rows[1]["backend"]["failures"] == 0
    _check_every_record_accounted(tmp_path / "out", 5)


def test_synth_with_in_process_transformers_backend(tmp_path, image_dir, tiny_ckpt, capsys):
    """`type: transformers` loads the checkpoint with `polyvlm.load_generator` and batches the requests."""
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump({
        "input": str(_records(tmp_path)), "output": str(tmp_path / "out"), "image_root": str(image_dir),
        "concurrency": 4, "progress": False,
        "backends": {"m": {"type": "transformers", "checkpoint": str(tiny_ckpt), "batch_size": 4, "max_wait_ms": 20}},
        "stages": _stages(tmp_path)}))
    assert synth_main([str(p)]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    assert summary["stages"][1]["backend"]["requests"] == 5 and summary["stages"][1]["failed"] == 0
    assert summary["stages"][1]["backend"]["failures"] == 0
    _check_every_record_accounted(tmp_path / "out", 5)
