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


# import name -> distribution, for packages of GPU-only extras that are not installed on a CPU machine
_NOT_INSTALLED_HERE = {"flash_attn": "flash-attn", "liger_kernel": "liger-kernel", "vllm": "vllm"}
# declared for what they do without being imported by polyvlm's code: uvicorn picks up httptools and uvloop,
# torch.utils.tensorboard needs tensorboard, ray[data]'s import name is ray, sympy's parse_latex (MEGA-Bench's
# latex metrics) loads antlr4-python3-runtime
_USED_WITHOUT_IMPORT = {"httptools", "uvloop", "tensorboard", "antlr4-python3-runtime"}


def _dist(name: str) -> str:
    return re.split(r"[<>=!~;\[ ]", name, maxsplit=1)[0].lower().replace("_", "-")


def _is_requires_call(node) -> bool:
    """`requires("module", ...)`: MEGA-Bench's metrics import their optional packages by name through it."""
    import ast

    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "requires" \
        and bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)


def _third_party_imports(repo_root) -> dict[str, set[str]]:
    """Top-level module -> the distributions providing it, for every absolute import in polyvlm/ (any depth)."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    provided = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in sorted((repo_root / "polyvlm").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else \
                [node.args[0].value] if _is_requires_call(node) else []
            for top in {m.split(".")[0] for m in mods} - set(sys.stdlib_module_names) - {"polyvlm", "__future__"}:
                dists = {_dist(d) for d in provided.get(top, [])} or {_NOT_INSTALLED_HERE.get(top, f"? {top}")}
                found[top] = dists
    return found


def test_every_imported_package_is_declared_and_every_runtime_dependency_is_used(repo_root):
    """pyproject declares each third-party package polyvlm imports (core or an extra; a package that only
    arrives as another's dependency, like starlette under fastapi, is declared too), and each core or extra
    dependency earns its place: polyvlm imports it, or it is one of the few used without an import.
    Test-only references (pycocoevalcap, einops, ImageBind's code) belong to `dev`."""
    project = _project(repo_root)
    runtime = {_dist(r) for r in project["dependencies"]}
    for name, reqs in project["optional-dependencies"].items():
        if name != "dev":
            runtime |= {_dist(r) for r in reqs if not r.startswith("polyvlm[")}
    imports = _third_party_imports(repo_root)
    assert {"torch", "fastapi", "starlette", "rapidfuzz", "langcodes"} <= set(imports)  # the scan sees imports
    undeclared = {top: dists for top, dists in imports.items() if not dists & runtime}
    assert not undeclared, undeclared
    imported = set().union(*imports.values())
    assert runtime - imported - _USED_WITHOUT_IMPORT == set()
