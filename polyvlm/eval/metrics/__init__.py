"""The metric registry: name -> Metric (per-sample scores plus a corpus score on a 0-100 scale)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from polyvlm.registry import Registry


@dataclass(frozen=True)
class MetricResult:
    """`per_sample[i]` scores prediction i on the metric's unit scale (accuracy 0/1, CIDEr-D raw);
    `score` is the corpus value reported in tables: 100 x the unit-scale corpus value."""

    per_sample: list[float]
    score: float


# fn(predictions, references) -> MetricResult; references[i] is the list of acceptable answers of sample i.
MetricFn = Callable[[list[str], list[list[str]]], MetricResult]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    corpus: bool = False  # True: the corpus score is not the mean of per-sample scores (BLEU, CIDEr-D, chrF)
    help: str = ""

    def __call__(self, predictions: list[str], references: list[list[str]]) -> MetricResult:
        if len(predictions) != len(references):
            raise ValueError(f"metric {self.name}: {len(predictions)} predictions but {len(references)} reference lists")
        if not predictions:
            return MetricResult([], float("nan"))
        return self.fn(list(predictions), [list(r) for r in references])


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, corpus: bool = False, help: str = "") -> Callable[[MetricFn], MetricFn]:
    """Register `fn` under `name`; the decorated function stays usable on its own."""

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.register(name)(Metric(name, fn, corpus, help))
        return fn

    return deco


def mean_result(per_sample: list[float]) -> MetricResult:
    """A per-sample metric's result: the corpus score is 100 x the mean."""
    return MetricResult(per_sample, 100.0 * sum(per_sample) / len(per_sample) if per_sample else float("nan"))


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


# Importing the modules registers their metrics.
from polyvlm.eval.metrics import caption, text, vqa  # noqa: E402,F401

__all__ = ["METRICS", "Metric", "MetricResult", "get_metric", "mean_result", "register_metric"]
