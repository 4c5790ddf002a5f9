"""The reference of the MEGA-Bench parity tests: lmms-eval 0.7.3's copy of MEGA-Bench's metrics
(lmms_eval/tasks/megabench/metrics, the same rules as TIGER-AI-Lab/MEGA-Bench megabench/metrics), installed by
`make install` with --no-deps and imported one module at a time: the package's own __init__ imports every metric,
among them nli_entailment, which downloads deberta-large-mnli when imported."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

import pytest


def megabench_dir() -> Path:
    lmms_eval = pytest.importorskip("lmms_eval", reason="the reference: pip install --no-deps lmms-eval==0.7.3")
    return Path(lmms_eval.__file__).parent / "tasks" / "megabench"


def reference(module: str) -> Any:
    """`reference("scoring.jaccard")` -> lmms-eval's lmms_eval/tasks/megabench/metrics/scoring/jaccard.py, imported
    under its own top-level package name `metrics` (as its evaluator imports it), without the package __init__."""
    root = megabench_dir() / "metrics"
    pkg = sys.modules.get("metrics")
    if pkg is None or list(getattr(pkg, "__path__", [])) != [str(root)]:
        for name in [n for n in sys.modules if n == "metrics" or n.startswith("metrics.")]:
            del sys.modules[name]
        pkg = types.ModuleType("metrics")
        pkg.__path__ = [str(root)]
        sys.modules["metrics"] = pkg
    return importlib.import_module(f"metrics.{module}")
