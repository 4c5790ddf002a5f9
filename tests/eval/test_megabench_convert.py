"""polyvlm.eval.metrics.megabench.convert against lmms-eval 0.7.3's copy of MEGA-Bench's shared helpers, in
lmms_eval/tasks/megabench/metrics: parsing/common/utils.py (extract_code_block_content, keep_the_last_answer,
extract_answer_content, extract_answer_at_beginning_of_line, drop_additional_text, _is_multiline_answer,
evaluate_as_string), parsing/common/parsers.py (parse_json, parse_nested_str_list, parse_syllable_ranges),
scoring/common/conversions.py (freeze_structure, cast_to_set, cast_to_dict, str_to_iterable/set/list) and
scoring/common/metrics.py (jaccard_index, set_precision, set_recall, longest_common_prefix)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from megabench_reference import reference

from polyvlm.eval.metrics.megabench import convert

# Response texts as models write them, and the traps of each reader
TEXTS = [
    "", " ", "\n\n", "B", "(B)", "B. Paris", "b) two", "A, C, D", "Answer: B", "answer: 42", "**Answer: 7**",
    "**Answer:** 7", "Answer:\n\n  B\n", "Answer: 3\nAnswer: 4", "I think... answer: x\nAnswer: y", "The answer is 5.",
    "Answer:", "**Answer:**", "Answer:  ", "xAnswer: 1", "Answer: B\n\nBecause the sky is blue.",
    "B\n\nBecause the sky is blue.", "B\nC\n\nexplanation", "first line\nsecond line", "  \n  \nB\n\nwhy",
    '{"a": 1}', '```json\n{"a": 1, "b": [1, 2]}\n```', 'Here:\n```json\n{"a": "x"}\n```\nDone.', '```\n[1, 2, 3]\n```',
    "```python\nprint('hi')\n```", "```\n  /\\\n /  \\\n```", "```\n\n   ##\n  #  #\n\n```\n", "``` ```",
    "```json\n{'a': 'b'}\n```", "{'a': 1, 'b': None, 'c': True}", "{'a': (1, 2)}", '{"a": "{\\"b\\": 1}"}',
    '{"k": "[1, 2]"}', "{\"it's\": 'x'}", "{'name': 'O\\'Brien'}", '{"a": 1} then {"b": 2}', '[1, 2] and {"c": 3}',
    "[[1, 2], [3, 4]]", "[]", "{}", "[{}]", "{[}", "[1, 2", "{'a': [1, 2}", "Answer: {'x': 1}\nmore {'y': 2}",
    "Answer: [1, 2]", "some text [a, b] more", "{\"a\": 1,}", "{\"emoji\": \"😀\", \"é\": \"ü\"}", "{1: 2, 3: 4}",
    "['a', 'b']", "('a', 'b')", "{'a', 'b'}", "1, 2, 3", "a,b , c", "[a, b, c]", "(a, b)", "{a, b}", "'abc'",
    '"quoted"', "None", "42", "-3.5", "True", "1e3", "1j", "[[1], [2]]", "[{'a': 1}]", "{'a'}", "  [1, 2]  ",
    "\t[1]\t", "[1, 2]\n", "Paris, France", "é, ü, 中文", "0x1F", "1_000", "nan", "inf", "[1, 2] extra",
    "\\n", "a\\nb", "{\"a\": \"line\\nbreak\"}", "**Answer: (C)** because", "Answer: ```json\n[1]\n```",
    "Answer: ```\n  x\n y\n```", "{[1]: 2}", "{{1, 2}}", "[{'a': [1, {2}]}]", "{\"a\": {\"b\": {\"c\": [1, {\"d\": 2}]}}}",
]


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """("ok", value with its type) or ("raise", exception type)."""
    try:
        value = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the exception type is part of the rule
        return "raise", type(e)
    return "ok", (type(value), value)


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    return {"utils": reference("parsing.common.utils"), "parsers": reference("parsing.common.parsers"),
            "conv": reference("scoring.common.conversions"), "metrics": reference("scoring.common.metrics")}


@pytest.mark.parametrize("text", TEXTS)
def test_text_readers_match_reference(ref: dict[str, Any], text: str) -> None:
    u = ref["utils"]
    for name in ("keep_the_last_answer", "extract_answer_at_beginning_of_line", "drop_additional_text",
                 "_is_multiline_answer", "evaluate_as_string"):
        assert outcome(getattr(convert, name), text) == outcome(getattr(u, name), text), name
    for ascii_art in (False, True):
        for strip in (False, True):
            assert (outcome(convert.extract_answer_content, text, ascii_art, strip)
                    == outcome(u.extract_answer_content, text, ascii_art, strip)), (ascii_art, strip)
            assert (outcome(convert.extract_code_block_content, text, None, ascii_art, strip)
                    == outcome(u.extract_code_block_content, text, None, ascii_art, strip)), (ascii_art, strip)
    for code_type in ("json", "python"):
        assert (outcome(convert.extract_code_block_content, text, code_type)
                == outcome(u.extract_code_block_content, text, code_type))


@pytest.mark.parametrize("text", TEXTS)
def test_parsers_and_conversions_match_reference(ref: dict[str, Any], text: str) -> None:
    p, c = ref["parsers"], ref["conv"]
    for name in ("parse_json", "parse_nested_str_list", "parse_syllable_ranges"):
        assert outcome(getattr(convert, name), text) == outcome(getattr(p, name), text), name
    for name in ("str_to_set", "str_to_list", "cast_to_set", "cast_to_dict", "freeze_structure"):
        assert outcome(getattr(convert, name), text) == outcome(getattr(c, name), text), name
    assert outcome(convert.str_to_iterable, tuple, text) == outcome(c.str_to_iterable, tuple, text)


OBJECTS = [None, 0, 3, 2.5, True, [], {}, set(), [1, 2, 2], ("a", "b"), {"a", "b"}, {"a": [1, 2], "b": {"c": 3}},
           [[1, 2], [3]], [{"a": 1}], {"x": "[1, 2]"}, {"x": '{"y": "z"}'}, {"x": None}, b"bytes", frozenset({1})]


@pytest.mark.parametrize("obj", OBJECTS, ids=repr)
def test_conversions_of_objects_match_reference(ref: dict[str, Any], obj: Any) -> None:
    c, u = ref["conv"], ref["utils"]
    for name in ("str_to_set", "str_to_list", "cast_to_set", "cast_to_dict", "freeze_structure"):
        assert outcome(getattr(convert, name), obj) == outcome(getattr(c, name), obj), name
    assert outcome(convert.evaluate_as_string, obj) == outcome(u.evaluate_as_string, obj)


PAIRS = [([], []), ([1], []), ([], [1]), ([1, 2], [2, 3]), ("abc", "abd"), ([1, 1, 2], [1]), ([(1, 2)], [(1, 2), 3]),
         (["a", "B"], ["A", "b"]), ([1, 2, 3], [1, 2]), ([1, 2], [1, 2, 3]), ([0, 1], [1, 0]), ([1.0], [1])]


@pytest.mark.parametrize(("pred", "target"), PAIRS)
def test_set_scores_match_reference(ref: dict[str, Any], pred: Any, target: Any) -> None:
    m = ref["metrics"]
    for name in ("jaccard_index", "set_precision", "set_recall", "longest_common_prefix"):
        assert outcome(getattr(convert, name), pred, target) == outcome(getattr(m, name), pred, target), name


def test_hand_worked_values() -> None:
    assert convert.jaccard_index([1, 2], [2, 3]) == pytest.approx(1 / 3)
    assert convert.set_precision([1, 2, 3, 4], [1]) == 0.25
    assert convert.set_recall([1], [1, 2]) == 0.5
    assert convert.jaccard_index([], []) == 1  # an empty union counts as a match
    assert convert.longest_common_prefix([1, 2, 3], [1, 2, 4]) == [1, 2]
    assert convert.str_to_set("[a, b, c]") == {"a", "b", "c"}  # not a literal: split inside the brackets
    assert convert.str_to_list("(1, 2") == []  # unclosed bracket
    assert convert.str_to_list("None") == ""  # the official quirk: "" rather than []
    assert convert.str_to_list("7") == [7]
    assert convert.str_to_set("'ab'") == {"a", "b"}  # a string literal is iterated character by character
    assert convert.str_to_set("[[1], [2]]") == set()  # unhashable items -> empty
    assert convert.cast_to_set({"a": [1]}) == {("a", (1,))}
    assert convert.cast_to_dict('x {"a": {"b": 1}} y') == {"a": {"b": 1}}
    assert convert.cast_to_dict("no json") == "no json"
    assert convert.evaluate_as_string("'B'") == "B" and convert.evaluate_as_string("[1]") == "[1]"
    assert convert.parse_json('Answer: {"a": 1}\n{"b": 2}') == {"a": 1}  # only the Answer: line is read
    assert convert.parse_json('{"a": 1} {"b": 2}') == {"b": 2}  # the last one wins
    assert convert.parse_json('{"a": "{\\"b\\": 1}"}') == {"a": {"b": 1}}  # JSON held in a string is unnested
    assert convert.parse_json("[oops") == [] and convert.parse_json("oops") == {}
    assert convert.parse_syllable_ranges("575 575") == [[5, 5], [7, 7], [5, 5], [0, 0], [5, 5], [7, 7], [5, 5]]
    assert convert.parse_syllable_ranges("[7, 10][11]5") == [[7, 10], [11, 11], [5, 5]]
    assert convert.parse_nested_str_list("[[a, b], [c]]") == [["a", "b"], ["c"]]
    assert convert.drop_additional_text("B\n\nBecause.") == "B"
    assert convert.drop_additional_text("B\nC\n\nwhy") == "B\nC\n\nwhy"


# Unclosed brackets make the recursive pattern backtrack exponentially (over 5 s): regex's 0.1 s timeout fires
SLOW = "[" * 25 + "a" * 30


def test_parse_json_timeout_gives_the_empty_object_like_the_reference(ref: dict[str, Any]) -> None:
    start = time.perf_counter()
    assert convert.parse_json(SLOW) == []
    assert time.perf_counter() - start >= convert.PARSING_TIMEOUT  # the timeout did fire
    assert ref["parsers"].parse_json(SLOW) == []
    assert convert.parse_json("x" + SLOW) == ref["parsers"].parse_json("x" + SLOW) == {}


def test_parse_json_timeout_works_off_the_main_thread() -> None:
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.append(convert.parse_json(SLOW)))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and got == [[]]
