"""The README's evaluation commands, run as written (from a scratch folder with `tests/` linked in; the endpoint
URL points at a loopback OpenAI-compatible server, `runs/tiny/final` is a tiny checkpoint)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from eval_fakes import FakeServer, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def readme_eval_commands() -> list[str]:
    """The shell commands of the first bash block in the README's evaluation section (continuations joined)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Evaluation (`polyvlm eval`)"):]
    section = section[: section.find("\n## ", 5) if "\n## " in section[5:] else len(section)]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the evaluation section shows its commands in a bash block"
    commands, current = [], ""
    for line in block.group(1).splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    return proc


def scratch(tmp_path: Path) -> Path:
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    return tmp_path


def test_readme_predictions_example_gives_what_it_claims(tmp_path: Path) -> None:
    cwd = scratch(tmp_path)
    commands = readme_eval_commands()
    steps = [c for c in commands if c.startswith("printf") or "--predictions" in c]
    assert len(steps) == 2, commands
    for command in steps:
        shell(command, cwd)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claimed = float(re.search(r"# -> accuracy ([\d.]+)", readme).group(1))  # type: ignore[union-attr]
    out = re.search(r"--out (\S+)", steps[1]).group(1)  # type: ignore[union-attr]
    task = json.loads((cwd / out / "results.json").read_text())["tasks"]["circular_en"]
    assert task["metrics"]["accuracy"]["overall"] == claimed == 50.0
    assert task["unparsed"] == 0 and task["failed"] == 0  # full-width, Cyrillic and Arabic answers all read
    rows = [json.loads(x) for x in (cwd / out / "samples_circular_en.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sum(r["scores"]["accuracy"] for r in rows) == 5  # "five of six copies are right"


@pytest.mark.slow
def test_readme_model_torchrun_and_endpoint_commands(tmp_path: Path) -> None:
    cwd = scratch(tmp_path)
    tiny_checkpoint(cwd / "runs" / "tiny" / "final")
    commands = readme_eval_commands()
    model = next(c for c in commands if c.startswith("polyvlm eval --model"))
    dp = next(c for c in commands if c.startswith("torchrun"))
    api = next(c for c in commands if "--endpoint" in c)
    shell(model, cwd)
    shell(dp, cwd)
    one = json.loads((cwd / "runs/eval_tiny/results.json").read_text())
    two = json.loads((cwd / "runs/eval_dp/results.json").read_text())
    assert one["tasks"]["quickstart"]["n"] == 48 and one["tasks"]["mmmb"]["n"] == 18 and two["world_size"] == 2
    assert one["settings"]["batch_size"] == 16 and one["model"] == "runs/tiny/final"
    assert two["tasks"]["quickstart"]["metrics"] == one["tasks"]["quickstart"]["metrics"]
    a = (cwd / "runs/eval_tiny/samples_quickstart.jsonl").read_text(encoding="utf-8")
    assert a == (cwd / "runs/eval_dp/samples_quickstart.jsonl").read_text(encoding="utf-8")
    predictions = [json.loads(x)["prediction"] for x in a.splitlines()]
    assert len(set(predictions)) > 1 and all(predictions)  # a real model's varied text, not empty strings
    with FakeServer() as server:
        shell(api.replace("http://localhost:8000/v1", server.url), cwd)
    res = json.loads((cwd / "runs/eval_api/results.json").read_text())
    assert res["tasks"]["mmmb"]["metrics"]["accuracy"]["overall"] == 100.0 and res["tasks"]["vqa"]["failed"] == 0
    assert res["model"] == f"fake-model@{server.url}"
    for out in ("eval_tiny", "eval_dp", "eval_api"):
        assert {"results.json", "results.md", "results.png"} <= {p.name for p in (cwd / "runs" / out).iterdir()}
