"""polyvlm.eval.metrics.megabench.strings against lmms-eval 0.7.3's copy of MEGA-Bench's metrics, in
lmms_eval/tasks/megabench/metrics/scoring (each metric's reference file is named in REFERENCE below), called as
metric_type.py's MetricType.match calls them: any exception scores 0."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import FIELD_METRICS, score_field

# metric name -> (reference module under scoring/, class)
REFERENCE = {
    "simple_str_match": ("simple_str_match", "SimpleStrMatch"),
    "exact_str_match": ("exact_str_match", "ExactStrMatch"),
    "code_result_exact_str_match": ("exact_str_match", "CodeResultExactStrMatch"),
    "exact_str_match_case_insensitive": ("exact_str_match_case_insensitive", "ExactStrMatchCaseInsensitive"),
    "dict_exact_str_match_agg_recall": ("dict_exact_match_agg_recall", "DictExactStrMatchAggRecall"),
    "normalized_similarity_damerau_levenshtein": ("normalized_similarity_damerau_levenshtein",
                                                  "NormalizedSimilarityDamerauLevenshtein"),
    "near_str_match": ("near_str_match", "NearStrMatch"),
    "set_equality": ("set_equality", "SetEquality"),
    "set_equality_case_insensitive": ("set_equality", "SetEqualityCaseInsensitive"),
    "str_set_equality_line_break": ("set_equality", "StringSetEqualityLineSplit"),
    "str_set_equality_comma": ("set_equality", "StringSetEqualityCommaSplit"),
    "dict_set_equality_agg_jaccard": ("dict_set_equality_agg_jaccard", "DictSetEqualityAggJaccard"),
    "dict_precision": ("dict_equality", "DictPrecision"),
    "dict_equality": ("dict_equality", "DictEquality"),
    "jaccard_index": ("jaccard", "Jaccard"),
    "jaccard_index_case_insensitive": ("jaccard", "JaccardCaseInsensitive"),
    "dict_jaccard_agg_jaccard": ("dict_jaccard_agg_jaccard", "DictJaccardAggJaccard"),
    "set_precision": ("set_precision", "SetPrecision"),
    "positive_int_match": ("positive_int_match", "PositiveIntMatch"),
    "chess_move_list_jaccard_index": ("chess_jaccard", "ChessMoveJaccard"),
    "longest_common_list_prefix_ratio": ("longest_common_list_prefix_ratio", "LongestCommonListPrefixRatio"),
    "sequence_equality": ("sequence_equality", "SequenceEquality"),
    "sequence_equality_case_insensitive": ("sequence_equality", "SequenceEqualityCaseInsensitive"),
    "sequence_accuracy_case_insensitive": ("sequence_equality", "SequenceAccuracyCaseInsensitive"),
}

# What the parsers hand a metric (mostly strings, sometimes parsed JSON values) and what answers look like
VALUES: list[Any] = [
    None, "", " ", "B", "b", "(B)", "B. Paris", "(b) paris", "Paris", "paris", "Pa-ris.", "The Paris", "a paris",
    "Zürich", "Zurich", "the  Zurich", "ΑΣ Β", "Σ", "中文", "42", "0", "-3", "+5", "4.0", "007", "True", "None", "1e3",
    "forty-two", "[1, 2, 3]", "[1, 2]", "[3, 2, 1]", "(1, 2, 3)", "[]", "[[1, 2], [3]]", "['a', 'B']", "['A', 'b']",
    "[a, b, c]", "a, b, c", "A, B, C", "c, b, a", "a,b", "{'a', 'b'}", "{a, b}", "[('x', 'y')]", "[('X ', 'y_')]",
    "[('x', 1)]", "['Cat Dog', 'bird']", "[1, 'a']", "['1', 'a']", "line one\nline two", "LINE TWO\\nline one",
    "line one", '{"a": "1", "b": "2"}', '{"a": "1"}', '{"b": "2", "a": "1"}', '{"a": [1, 2], "b": [3]}',
    '{"a": [2, 1], "b": [3, 4]}', "{'a': 'x', 'c': 'z'}", '{"a": {"b": 1}}', "{}", "{broken", "```\n42\n```",
    "```\n  x\n y\n```", "```python\nresult\n```", "Nf3, e4!, Qxf7#", "e4, Nf3", "['e4!', 'Nf3']",
    0, 1, 42, -1, 2.5, True, [1, 2], ["a", "b"], ("a",), {"a": "1", "b": "2"}, {"a": [1, 2]}, {"a": None}, {"x", "y"},
]


@pytest.fixture(scope="module")
def reference_matchers() -> dict[str, Any]:
    return {name: getattr(reference(f"scoring.{module}"), cls).match for name, (module, cls) in REFERENCE.items()}


def reference_score(match: Any, response: Any, answer: Any) -> Any:
    """MetricType.match: the metric's value, or 0 for any exception."""
    try:
        return match(response, answer)
    except Exception:  # noqa: BLE001 - the official evaluator's rule
        return 0


def test_every_metric_is_registered_as_a_pair_metric() -> None:
    for name in REFERENCE:
        assert FIELD_METRICS.get(name).call == "pair", name


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_metric_matches_reference(reference_matchers: dict[str, Any], name: str) -> None:
    ours, ref = FIELD_METRICS.get(name), reference_matchers[name]
    for response, answer in itertools.product(VALUES, VALUES):
        got, want = score_field(ours, response, answer), reference_score(ref, response, answer)
        assert got == pytest.approx(want, abs=1e-9), (name, response, answer, got, want)


HAND_WORKED = [
    ("exact_str_match", "(B) Paris", "B", 1), ("exact_str_match", "b", "B", 0), ("exact_str_match", 42, "42", 1),
    ("simple_str_match", "Pa-ris.", "paris", 1), ("exact_str_match_case_insensitive", "PARIS", "paris", 1),
    ("exact_str_match_case_insensitive", 3, "3", 0), ("code_result_exact_str_match", "  x", "```\n  x\n```", 1),
    ("dict_exact_str_match_agg_recall", '{"a": "1", "b": "3"}', '{"a": "1", "b": "2"}', 0.5),
    ("dict_exact_str_match_agg_recall", "no dict", '{"a": "1"}', 0),
    ("normalized_similarity_damerau_levenshtein", "abcd", "abdc", 0.75),
    ("near_str_match", "The Zürich", "zurich", 1.0), ("near_str_match", "Zurch", "Zurich", 0),  # 5/6 < 0.9
    ("set_equality", "[1, 2, 2]", "(2, 1)", 1), ("set_equality_case_insensitive", "a, B", "['A', 'b']", 1),
    ("str_set_equality_line_break", "b\\na", "A\nB", 1), ("str_set_equality_comma", "x, Y", "y,x", 1),
    ("dict_set_equality_agg_jaccard", '{"a": [1, 2], "b": [3]}', '{"a": [2, 1], "b": [4]}', 0.5),
    ("dict_precision", '{"a": "1", "b": "2", "c": "9"}', '{"a": "1", "b": "2"}', pytest.approx(2 / 3)),
    ("dict_equality", '{"a": "1"}', "{'a': '1'}", 1), ("jaccard_index", "[1, 2]", "[2, 3]", pytest.approx(1 / 3)),
    ("jaccard_index", None, "[1]", 0), ("jaccard_index_case_insensitive", "['A', 'c']", "['a', 'b']",
                                        pytest.approx(1 / 3)),
    ("jaccard_index_case_insensitive", "[('X ', 'y_')]", "[('x', 'y')]", 1),
    ("jaccard_index_case_insensitive", "[1]", "[]", 0),  # an empty answer raises: 0
    ("dict_jaccard_agg_jaccard", '{"a": [1, 2]}', '{"a": [2], "b": [1]}', 0.25),
    ("set_precision", "[1, 2, 3, 4]", "[1]", 0.25), ("positive_int_match", "3", "3", 1),
    ("positive_int_match", "0", "-2", -1), ("positive_int_match", "three", "3", 0), ("positive_int_match", "3", "x", 0),
    ("chess_move_list_jaccard_index", "Nf3, e4!", "e4, Qxf7#", pytest.approx(1 / 3)),
    ("longest_common_list_prefix_ratio", "[1, 2, 4]", "[1, 2, 3, 5]", 0.5),
    ("sequence_equality", "[1, 2]", "[1, 2]", 1), ("sequence_equality", "[2, 1]", "[1, 2]", 0),
    ("sequence_equality_case_insensitive", "['A', 'b']", "['a', 'B']", 1),
    ("sequence_accuracy_case_insensitive", "['A', 2, 'x']", "['a', 2.0, 'y']", pytest.approx(2 / 3)),
    ("sequence_accuracy_case_insensitive", "[]", "[]", 0),  # 0 / 0 raises: 0
]


@pytest.mark.parametrize(("name", "response", "answer", "want"), HAND_WORKED)
def test_hand_worked_values(name: str, response: Any, answer: Any, want: Any) -> None:
    assert score_field(FIELD_METRICS.get(name), response, answer) == want
