"""MEGA-Bench's registries hold every name the official evaluator knows: the values of MetricType
(lmms_eval/tasks/megabench/metrics/metric_type.py), ResponseParseType (response_parse_type.py) and AggregationType
(aggregation_type.py), read from lmms-eval 0.7.3's files without importing them (metric_type.py imports every
metric, nli_entailment among them, which downloads a model); and score_field scores a failing metric 0 as
MetricType.match does, while a missing package stops the run."""

from __future__ import annotations

import ast

import pytest
from megabench_reference import megabench_dir

from polyvlm.eval.metrics.megabench import AGGREGATIONS, FIELD_METRICS, PARSERS, FieldMetric, score_field


def _enum_values(file: str, enum: str) -> set[str]:
    """The string values of `class <enum>(Enum)` in lmms_eval/tasks/megabench/metrics/<file>."""
    tree = ast.parse((megabench_dir() / "metrics" / file).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == enum)
    return {n.value.value for n in cls.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, str)}


def test_every_official_metric_name_is_registered() -> None:
    official = _enum_values("metric_type.py", "MetricType") - {"unsupported"}
    assert len(official) >= 45
    assert official - set(FIELD_METRICS.names()) == set()


def test_every_official_parser_name_is_registered() -> None:
    official = _enum_values("response_parse_type.py", "ResponseParseType") - {"unsupported"}
    assert {"json", "answer_string"} <= official
    assert official - set(PARSERS.names()) == set()


def test_every_official_aggregation_name_is_registered() -> None:
    official = _enum_values("aggregation_type.py", "AggregationType")
    assert official - set(AGGREGATIONS.names()) == set()


def test_a_failing_metric_scores_zero_and_a_missing_package_stops() -> None:
    def broken(response: str, answer: str) -> float:
        raise ValueError("cannot parse")

    def missing(response: str, answer: str) -> float:
        raise ImportError("needs the extra")

    assert score_field(FieldMetric("broken", broken, "pair"), "x", "y") == 0
    with pytest.raises(ImportError, match="needs the extra"):
        score_field(FieldMetric("missing", missing, "pair"), "x", "y")


def test_unknown_names_are_refused_with_the_nearest() -> None:
    with pytest.raises(Exception, match="exact_str_match"):
        FIELD_METRICS.get("exact_str_matc")
