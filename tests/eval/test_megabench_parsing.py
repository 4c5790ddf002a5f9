"""polyvlm.eval.metrics.megabench.parsing and .aggregate against lmms-eval 0.7.3's copy of MEGA-Bench, in
lmms_eval/tasks/megabench/metrics: response_parse_type.py (ResponseParseType: from_string, class_impl,
is_single_field_parser), parsing/json_parse.py, parsing/answer_str_parse.py (AnswerStrParse, AsciiAnswerStrParse,
VerbatimAnswerStrParse), parsing/dummy_parse.py, aggregation_type.py and aggregation/{mean,min,unsupported}_agg.py."""

from __future__ import annotations

from typing import Any

import pytest
from megabench_reference import reference
from test_megabench_convert import TEXTS, outcome

from polyvlm.eval.metrics.megabench import AGGREGATIONS, PARSERS
from polyvlm.eval.metrics.megabench.aggregate import aggregation_for
from polyvlm.eval.metrics.megabench.parsing import is_single_field_parser, parser_for

# Responses as models write them: fenced JSON, trailing explanations, Python literals, answer lines, ascii art
RESPONSES = TEXTS + [
    'Sure! Here is the result:\n```json\n{"answer": "B", "count": 3}\n```\nLet me know if you need more.',
    "```json\n{\n  \"objects\": [\"cat\", \"dog\"],\n  \"total\": \"2\"\n}\n```",
    "{'color': 'red', 'shape': 'circle'}", "{'a': \"'quoted'\"}", '{"a": "\'x\'", "b": "\\"y\\""}',
    "The answer is:\n\nAnswer: (A)\n\nExplanation: the first option fits.", "Answer: A. The tallest building",
    "Answer: 12\n\nThe count includes the hidden one.", "Answer: cat, dog, bird\n\nAll are animals.",
    "Answer: line one\nline two\nline three", "**Answer: Paris**\n\nParis is the capital.",
    "Answer:\n```\n  /\\_/\\\n ( o.o )\n  > ^ <\n```", "```\n   *\n  ***\n *****\n```  \n\n",
    "Answer:\n\n\n   _\n  | |\n  |_|   \n\n\n", "  leading and trailing  \n", "Answer: ['x', 'y', 'z']",
    "Answer: [oops", "Answer: {}", "Answer: {no json}", "Answer: []", "Answer: [] is empty", "Answer: 'B'",
    "Answer: \"Paris\"", "Answer: B\nanswer: C", "Final answer: 42", "\n\nAnswer:\n\nB\n\n", "中文答案：\nAnswer: 北京",
]


@pytest.fixture(scope="module")
def ref_types() -> Any:
    return reference("response_parse_type").ResponseParseType


@pytest.mark.parametrize("response", RESPONSES)
def test_whole_response_parsers_match_reference(ref_types: Any, response: str) -> None:
    for name in ("json", "dummy", "unsupported", None, "JSON"):
        ref = ref_types.from_string(name)
        assert not is_single_field_parser(name) and not ref.is_single_field_parser()
        assert outcome(parser_for(name), response) == outcome(ref.parse, response), name


@pytest.mark.parametrize("response", RESPONSES)
def test_single_field_parsers_match_reference(ref_types: Any, response: str) -> None:
    for name in ("answer_string", "ascii_answer_string", "verbatim_answer_string", "Answer_String"):
        ref = ref_types.from_string(name)
        assert is_single_field_parser(name) and ref.is_single_field_parser()
        for single_line in (None, False, True):
            kw = {"global_description": "task", "query_question": "q", "is_single_line_ans": single_line}
            assert (outcome(parser_for(name), response, "ans", **kw)
                    == outcome(ref.parse, response, "ans", **kw)), (name, single_line)


def test_single_field_parser_takes_a_missing_response(ref_types: Any) -> None:
    ref = ref_types.from_string("answer_string")
    assert parser_for("answer_string")(None, "k") == ref.parse(None, "k") == {"k": ""}


def test_parsers_hand_worked() -> None:
    text = 'Here:\n```json\n{"a": "\'B\'", "b": [1, 2]}\n```\nDone.'
    assert parser_for("json")(text) == {"a": "B", "b": [1, 2]}
    assert parser_for(None)("no json here") == {} and parser_for("json")("[broken") == []
    single = parser_for("answer_string")
    assert single("Answer: (A)\n\nBecause ...", "x", is_single_line_ans=True) == {"x": "(A)"}
    assert single("Answer: (A)\n\nBecause ...", "x", is_single_line_ans=False) == {"x": "(A)\n\nBecause ..."}
    assert single("Answer: {'k': 'v'}", "x") == {"x": "{'k': 'v'}"}
    assert single("Answer: {no json}", "x") == {"x": "{no json}"}
    assert parser_for("ascii_answer_string")("```\n  /\\\n /  \\  \n```", "x") == {"x": "  /\\\n /  \\"}
    assert parser_for("verbatim_answer_string")("```\n  /\\\n /  \\  \n```", "x") == {"x": "  /\\\n /  \\  "}
    assert parser_for("dummy")("  raw \n") == "raw"
    assert set(PARSERS.names()) == {"json", "answer_string", "ascii_answer_string", "verbatim_answer_string", "dummy"}


@pytest.mark.parametrize("name", ["xml", "", "answer string", 3])
def test_unknown_parser_is_a_clear_error(ref_types: Any, name: Any) -> None:
    with pytest.raises(ValueError, match="response_parse_function"):
        parser_for(name)
    with pytest.raises(ValueError, match="response_parse_function"):
        is_single_field_parser(name)
    with pytest.raises((ValueError, AttributeError)):
        ref_types.from_string(name)


SCORES = [
    ({}, {}), ({"a": 1}, {"a": 1}), ({"a": 1, "b": 0}, {"a": 1, "b": 1}), ({"a": 1, "b": 0}, {"a": 3, "b": 1}),
    ({"a": -1, "b": 0.5}, {"a": 1, "b": 2}), ({"a": -1}, {"a": 1}), ({"a": -1, "b": -0.5}, {"a": 1, "b": 1}),
    ({"a": 0.25, "b": 0.75, "c": 0}, {"a": 1, "b": 1, "c": 2}), ({"a": 1}, {}), ({"a": 0.5, "b": 1}, {"a": 0, "b": 0}),
    ({"a": True, "b": 0}, {"a": 1, "b": 1}), ({"a": None}, {"a": 1}), ({"x": 0.3}, {"x": 0.5, "y": 2}),
]


@pytest.mark.parametrize(("scores", "weights"), SCORES)
def test_aggregations_match_reference(scores: dict[str, Any], weights: dict[str, Any]) -> None:
    types = reference("aggregation_type").AggregationType
    for name in ("mean", "min", "unsupported", None, "MEAN"):
        ours, ref = outcome(aggregation_for(name), scores, weights), outcome(types.from_string(name).aggregate,
                                                                              scores, weights)
        if ours[0] == "ok" and ref[0] == "ok":
            assert ours[1][1] == pytest.approx(ref[1][1], abs=1e-9), name
        else:
            assert ours == ref, name


def test_aggregations_hand_worked() -> None:
    assert aggregation_for("mean")({"a": 1, "b": 0, "c": -1}, {"a": 3, "b": 1, "c": 5}) == 0.75
    assert aggregation_for("min")({"a": 0.4, "b": 0.9, "c": -1}, {}) == 0.4
    assert aggregation_for("mean")({"a": -1}, {"a": 1}) == -1
    assert aggregation_for(None)({"a": 1}, {"a": 1}) == -1
    assert set(AGGREGATIONS.names()) == {"mean", "min", "unsupported"}
    with pytest.raises(ValueError, match="aggregation"):
        aggregation_for("median")
