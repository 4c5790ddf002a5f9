"""Packaging papercuts a new user hit: the license metadata installs without setuptools' deprecation box, `make demo`
installs the extras later README commands need, every extra the README names exists, and what the README's
commands write into the checkout (`exports/`, `preds.jsonl`, `runs/`) is ignored by git."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import warnings

import pytest


def _project(repo_root) -> dict:
    return tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_license_metadata_raises_no_setuptools_deprecation(repo_root, monkeypatch):
    """setuptools deprecates `license = {text = ...}` (a TOML table) and prints a warning box on every install;
    an SPDX expression string (PEP 639) is read without one, by the setuptools the build requires."""
    pytest.importorskip("setuptools", minversion="77")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(repo_root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), "pyproject.toml")
    assert not [str(w.message) for w in caught if "license" in str(w.message).lower()]
    assert dist.metadata.license_expression == _project(repo_root)["license"] == "Apache-2.0"
    build = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    assert "setuptools>=77" in build  # older setuptools refuse a string license


def _extras(project: dict, name: str) -> set[str]:
    """The extras `name` pulls in, followed through `polyvlm[...]` self-references."""
    seen, todo = set(), [name]
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for req in project["optional-dependencies"][extra]:
            m = re.match(r"polyvlm\[([^\]]+)\]", req)
            todo += [e.strip() for e in m.group(1).split(",") if e.strip() not in seen] if m else []
    return seen


def test_make_demo_installs_the_extras_later_readme_commands_need(repo_root):
    """README: `polyvlm serve ... --ui` needs `ui` (gradio), `polyvlm synth ... runner=ray` needs `ray`; `make demo`
    runs after the install rule, which installs `.[dev]`, and dev pulls in every CPU extra."""
    project = _project(repo_root)
    assert {"serve", "synth", "eval", "tb", "wandb", "ui", "ray", "vllm", "flash", "all"} <= set(project["optional-dependencies"])
    makefile = (repo_root / "Makefile").read_text(encoding="utf-8")
    base = re.search(r"^\$\(BASE\):.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "pip install -q -e '.[dev]'" in base
    assert re.search(r"^demo: \$\(BASE\)$", makefile, re.M)
    installed = _extras(project, "dev")
    assert {"ui", "ray", "synth", "eval", "serve", "tb", "wandb"} <= installed, installed
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    assert "--ui" in readme and "runner=ray" in readme


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_what_readme_commands_write_is_ignored_by_git(repo_root):
    if subprocess.run(["git", "rev-parse"], cwd=repo_root, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    paths = ["exports/quickstart-llava/config.json", "preds.jsonl", "runs/tiny/final/model.safetensors"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=repo_root, capture_output=True, text=True)
    assert r.stdout.split() == paths, r.stdout
