"""The README's export and import commands and its transformers snippet, run as written from a scratch folder
(`runs/quickstart/stage2/final` is a tiny checkpoint there; training commands get overrides appended that make
them two steps on eight samples: later `key=value` overrides win)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from export_helpers import read_json, square_image

ROOT = Path(__file__).resolve().parents[2]


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Export and import"):]
    return section[: section.find("\n## ", 5)]


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", readme_section(), re.DOTALL)


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_readme_export_commands_run_as_written(tmp_path):
    from polyvlm.quickstart.run import BASE_OVERRIDES  # the quick start's settings (vision_select=full)
    from polyvlm.testing import make_tiny_checkpoint

    make_tiny_checkpoint(tmp_path / "runs/quickstart/stage2/final", overrides=list(BASE_OVERRIDES))
    images = tmp_path / "runs/quickstart/eval/images"
    images.mkdir(parents=True)
    square_image(64, seed=9).save(images / "eval_1234_en_0000.png")
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    (bash,) = readme_blocks("bash")
    commands = [c for c in bash.splitlines() if c.strip() and not c.startswith("#")]
    assert len(commands) == 10, commands
    answers = []
    for command in commands:
        if command.startswith("polyvlm train"):
            command += " data.path=builtin:scenes:qa:8 train.batch_size=2 train.max_steps=2 --no-progress"
        out = shell(command, tmp_path).stdout
        if command.startswith("polyvlm chat"):
            answers.append(out.strip())
        if command.startswith("polyvlm export") and "hf-llava:" not in command:
            written = re.search(r"--out (\S+)", command).group(1)
            assert read_json(tmp_path / written / "config.json")["architectures"][0].endswith("ForConditionalGeneration")
    assert read_json(tmp_path / "exports/tiny-llava-next/config.json")["model_type"] == "llava_next"
    assert read_json(tmp_path / "exports/tiny-llava-onevision/config.json")["model_type"] == "llava_onevision"
    (snippet,) = readme_blocks("python")
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    # the snippet prints what `polyvlm chat` answers for the same image and question
    assert shell(f"{sys.executable} {script}", tmp_path).stdout.strip() == answers[0] == answers[1]
