"""MEGA-Bench's query-score aggregations, registered in AGGREGATIONS under their `aggregation.function` names, and
`aggregation_for`, the one megabench/evaluator.py uses for a task (lmms_eval/tasks/megabench/metrics:
aggregation_type.py, aggregation/mean_agg.py, aggregation/min_agg.py, aggregation/unsupported_agg.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from polyvlm.eval.metrics.megabench import AGGREGATIONS

AGGREGATION_TYPES = ("mean", "min", "unsupported")


@AGGREGATIONS.register("mean")
def mean(scores: dict[str, float], weights: dict[str, float]) -> float:
    """The weighted mean (np.average) of the field scores >= 0, each weighted by weights[field] (a field without a
    weight is a KeyError, as in the official code); -1 when no field has a valid score."""
    valid = {field: s for field, s in scores.items() if s >= 0}
    if not valid:
        return -1
    return float(np.average(list(valid.values()), weights=[weights[field] for field in valid]))


@AGGREGATIONS.register("min")
def minimum(scores: dict[str, float], weights: dict[str, float]) -> float:
    """The lowest field score >= 0 (weights unused); -1 when no field has a valid score."""
    valid = [s for s in scores.values() if s >= 0]
    return min(valid) if valid else -1


@AGGREGATIONS.register("unsupported")
def unsupported(scores: dict[str, float], weights: dict[str, float]) -> float:
    """-1 always: a task without an aggregation scores no query."""
    return -1


def aggregation_for(name: str | None) -> Callable[[dict[str, float], dict[str, float]], float]:
    """The aggregation the official evaluator uses for a task's `aggregation.function` `name` (case-insensitive):
    None -> "unsupported" (every query -1); an unknown name is a ValueError, as AggregationType.from_string's."""
    if name is None:
        return AGGREGATIONS.get("unsupported")
    if not isinstance(name, str) or name.lower() not in AGGREGATION_TYPES:
        raise ValueError(f"unknown MEGA-Bench aggregation function {name!r} (known: {', '.join(AGGREGATION_TYPES)})")
    return AGGREGATIONS.get(name.lower())
