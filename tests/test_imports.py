"""The package's import rules (DESIGN.md "Layout"), checked from every `import` in polyvlm, function-local ones too.

models and data import nothing from train, eval, serve, synth, quickstart or the CLI; eval, serve and synth
import nothing from train; nothing imports quickstart except the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "polyvlm"
CLI = {"polyvlm.cli", "polyvlm.__main__"}  # the CLI: one entry point (+ `python -m polyvlm`)
CLI_MODULES = CLI | {"polyvlm.config_cli", "polyvlm.export_cli", "polyvlm.lora_cli"}

# package (first component under polyvlm) -> module prefixes it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models": ("polyvlm.train", "polyvlm.eval", "polyvlm.serve", "polyvlm.synth", "polyvlm.quickstart",
               *CLI_MODULES),
    "data": ("polyvlm.train", "polyvlm.eval", "polyvlm.serve", "polyvlm.synth", "polyvlm.quickstart",
             *CLI_MODULES),
    "eval": ("polyvlm.train",),
    "serve": ("polyvlm.train",),
    "synth": ("polyvlm.train",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import statement in `path`, at any depth; relative imports resolved,
    `from a import b` also yields `a.b` (b may be a submodule)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):  # importlib.import_module("polyvlm.x")
            out.append((node.lineno, node.args[0].value))
    return out


def matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        mod = module_name(path)
        top = mod.split(".")[1] if "." in mod else ""
        seen: set[int] = set()
        for line, imp in imported_modules(path):
            if line in seen:  # one report per statement
                continue
            rules = FORBIDDEN.get(top, ())
            hit = next((p for p in rules if matches(imp, p)), None)
            if hit is None and matches(imp, "polyvlm.quickstart") and top != "quickstart" and mod not in CLI:
                hit = "polyvlm.quickstart"
            if hit:
                seen.add(line)
                bad.append(f"{path.relative_to(PKG.parent)}:{line}: {mod} imports {imp} (rule: no {hit})")
    return bad


def test_package_follows_the_import_rules():
    assert violations() == []


def _write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_checker_sees_function_local_relative_and_dynamic_imports(tmp_path, monkeypatch):
    """The checker itself can fail: a fake package breaking each rule in each import style is reported."""
    pkg = tmp_path / "polyvlm"
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    _write(pkg, "__init__.py", "")
    _write(pkg, "cli.py", "from polyvlm.quickstart import run\n")  # allowed: the CLI
    _write(pkg, "models/__init__.py", "")
    _write(pkg, "models/a.py", "def f():\n    from polyvlm.train.loop import train\n")
    _write(pkg, "data/b.py", "from ..serve import app\n")
    _write(pkg, "serve/c.py", "import polyvlm.train\n")
    _write(pkg, "synth/__init__.py", "import importlib\nm = importlib.import_module('polyvlm.train.optim')\n")
    _write(pkg, "utils.py", "from polyvlm import quickstart\n")
    _write(pkg, "eval/ok.py", "from polyvlm.models import vlm\nfrom polyvlm.trainer_like import x\n")
    found = violations()
    assert [f.split(":")[0] for f in found] == [
        "polyvlm/data/b.py", "polyvlm/models/a.py", "polyvlm/serve/c.py", "polyvlm/synth/__init__.py",
        "polyvlm/utils.py"]
    assert "polyvlm.serve (rule: no polyvlm.serve)" in found[0]
    assert "polyvlm/models/a.py:2:" in found[1]


@pytest.mark.parametrize("rel, level_import, expected", [
    ("models/encoders/x.py", "from ..vlm import PolyVLM", "polyvlm.models.vlm"),
    ("models/__init__.py", "from .vlm import PolyVLM", "polyvlm.models.vlm"),
    ("data/x.py", "from . import records", "polyvlm.data.records"),
])
def test_relative_imports_resolve(tmp_path, monkeypatch, rel, level_import, expected):
    pkg = tmp_path / "polyvlm"
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    path = _write(pkg, rel, level_import + "\n")
    assert expected in [m for _, m in imported_modules(path)]


def private_imports() -> list[str]:
    """`from lib import _name` / `lib._name` imports of another package's private names (issue 19: datasketch's
    `_optimal_param`, safetensors' `_remove_duplicate_names`): they change without notice between releases."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and not node.level and not (node.module or "").startswith("polyvlm"):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                parts = [p for p in (node.module or "").split(".") if p.startswith("_") and not p.startswith("__")]
                if names or parts:
                    bad.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: from {node.module} import "
                               f"{', '.join(a.name for a in node.names)}")
    return bad


def test_no_private_names_of_other_packages_are_imported(tmp_path, monkeypatch):
    assert private_imports() == []
    pkg = tmp_path / "polyvlm"  # the check itself can fail
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    _write(pkg, "models/lora.py", "from safetensors.torch import _remove_duplicate_names\nfrom polyvlm._x import y\n")
    _write(pkg, "synth/x.py", "from datasketch.lsh import _optimal_param\nfrom torch.nn import Linear\n")
    assert [f.split(" ")[0] for f in private_imports()] == ["polyvlm/models/lora.py:1:", "polyvlm/synth/x.py:1:"]
