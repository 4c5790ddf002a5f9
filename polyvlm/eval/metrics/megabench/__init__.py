"""MEGA-Bench's scoring rules (TIGER-AI-Lab/MEGA-Bench megabench/metrics, as lmms-eval 0.7.3 ships them in
lmms_eval/tasks/megabench/metrics): response parsers, field metrics and query aggregations, each registered under the
name a task's `metric_info` uses, and `score_field`, which calls a field metric as megabench/evaluator.py does."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polyvlm.registry import Registry

log = logging.getLogger("polyvlm.eval")

# How evaluator.py `_evaluate_field` calls a metric (MetricType.match):
#   "pair":    fn(response_obj.get(field, ""), evaluate_as_string(correct_answer[field])) -> float
#   "context": fn(response_obj.get(field), eval_context) -> float            (symbolic_planning_test, program_judge)
#   "object":  fn(response_obj, eval_context) -> (float, info)               (constrained_generation)
#   "context_info": fn(response_obj.get(field), eval_context) -> (float, info)   (xml_norm_point_in_bbox)
#   "judge":   scored by the task through `--judge` (gpt_4o_as_judge, ascii_art_gpt4o_judge)
CALLS = ("pair", "context", "object", "context_info", "judge")


@dataclass(frozen=True)
class FieldMetric:
    name: str
    fn: Callable[..., Any]
    call: str = "pair"


FIELD_METRICS: Registry[FieldMetric] = Registry("MEGA-Bench metric")
# fn(response: str, answer_key: str | None = None, *, global_description, query_question, is_single_line_ans) -> Any
PARSERS: Registry[Callable[..., Any]] = Registry("MEGA-Bench response parser")
# fn(field_scores: dict[str, float], field_weights: dict[str, float]) -> float  (-1: no valid field score)
AGGREGATIONS: Registry[Callable[[dict[str, float], dict[str, float]], float]] = Registry("MEGA-Bench aggregation")

EXTRA_HINT = "pip install 'polyvlm[megabench]'"


def register(name: str, call: str = "pair") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a field metric under its metric_info name; the decorated function stays usable on its own."""
    if call not in CALLS:
        raise ValueError(f"MEGA-Bench metric {name}: call must be one of {CALLS}, not {call!r}")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        FIELD_METRICS.register(name)(FieldMetric(name, fn, call))
        return fn

    return deco


def requires(module: str, metric: str) -> Any:
    """Import an optional dependency of one metric, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"MEGA-Bench metric {metric} needs the package that provides '{module}': "
                          f"{EXTRA_HINT}") from e


def score_field(metric: FieldMetric, *args: Any) -> Any:
    """Call `metric` as MetricType.match does: any exception scores 0 (logged), as the official evaluator scores it."""
    try:
        return metric.fn(*args)
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001 - the official scorer turns every metric error into a 0
        log.debug("MEGA-Bench metric %s: %s: %s -> 0, as the official scorer assigns", metric.name,
                  type(e).__name__, e)
        return 0


# the modules that register entries (each owns one group of the official metrics)
_MODULES = ("parsing", "aggregate", "strings", "numeric", "geometry", "latex", "geo", "text", "constrained",
            "planning", "program", "judges")
for _m in _MODULES:
    importlib.import_module(f"{__name__}.{_m}")
