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


SCORED_BY = {"references": "predictions against reference answers",
             "task": "the task, from the answer it extracts (option letter, yes/no) against its target",
             "judge": "an LLM judge through a judge task (polyvlm eval --judge URL)"}


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    corpus: bool = False  # True: the corpus score is not the mean of per-sample scores (BLEU, CIDEr-D, chrF)
    help: str = ""
    scored_by: str = "references"  # a key of SCORED_BY: only "references" metrics are called on their own

    def __call__(self, predictions: list[str], references: list[list[str]]) -> MetricResult:
        if self.scored_by != "references":
            raise ValueError(f"metric {self.name} is scored by {SCORED_BY[self.scored_by]}, "
                             "not from predictions and references alone")
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


def _scored_elsewhere(predictions: list[str], references: list[list[str]]) -> MetricResult:
    raise AssertionError("Metric.__call__ refuses metrics scored by their task or a judge")


# Metrics a task scores itself (`Task.sample_scores`), registered so that every metric name a task or YAML may use
# is in METRICS with its help (`polyvlm eval --list-metrics`-style listings, the README's list).
for _name, _by, _help in (
    ("accuracy", "task", "MCQ and yes/no: the extracted option letter or yes/no equals the target (CircularEval: "
                         "every rotation of a question right)"),
    ("judge_rubric", "judge", "an LLM judge's 1-5 rubric score, reported as (mean - 1) / 4 x 100 (xChatBench style)"),
    ("judge_relative", "judge", "an LLM judge's answer score over its reference-answer score x 100 (LLaVA-Bench)"),
    ("judge_winrate", "judge", "an LLM judge's pairwise verdict against a reference model's answer (WildVision)"),
):
    METRICS.register(_name)(Metric(_name, _scored_elsewhere, help=_help, scored_by=_by))


def mean_result(per_sample: list[float]) -> MetricResult:
    """A per-sample metric's result: the corpus score is 100 x the mean."""
    return MetricResult(per_sample, 100.0 * sum(per_sample) / len(per_sample) if per_sample else float("nan"))


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


# Importing the modules registers their metrics.
from polyvlm.eval.metrics import caption, text, vqa  # noqa: E402,F401

__all__ = ["METRICS", "SCORED_BY", "Metric", "MetricResult", "get_metric", "mean_result", "register_metric"]
