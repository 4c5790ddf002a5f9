"""MEGA-Bench's response parsers, registered in PARSERS under their `response_parse_function` names, and
`parser_for`, the parser megabench/evaluator.py uses for a task (lmms_eval/tasks/megabench/metrics:
response_parse_type.py, parsing/json_parse.py, parsing/answer_str_parse.py, parsing/dummy_parse.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polyvlm.eval.metrics.megabench import PARSERS
from polyvlm.eval.metrics.megabench.convert import (
    drop_additional_text,
    evaluate_as_string,
    extract_answer_content,
    extract_code_block_content,
    parse_json,
)

# the names ResponseParseType knows; "unsupported" (and a task without a parser, None) parse as JSON
PARSE_TYPES = ("json", "answer_string", "ascii_answer_string", "verbatim_answer_string", "dummy", "unsupported")
SINGLE_FIELD = ("answer_string", "ascii_answer_string", "verbatim_answer_string")


@PARSERS.register("json")
def json_parse(response: str, answer_key: str | None = None, **_: Any) -> Any:
    """The response's last JSON object/array (convert.parse_json: {} or [] when none), a dict's string values
    without redundant quotes. The evaluator calls it with the response alone."""
    parsed = parse_json(response)
    if isinstance(parsed, dict):
        for key, val in parsed.items():
            parsed[key] = evaluate_as_string(val)
    return parsed


@PARSERS.register("dummy")
def dummy_parse(response: str, answer_key: str | None = None, **_: Any) -> str:
    """The stripped response."""
    return response.strip()


def answer_text(response: str | None, *, is_ascii_art: bool = False, should_remove_surrounding_whitespace: bool = True,
                is_single_line_ans: bool | None = None) -> str:
    """The answer written in `response` (AnswerStrParse._parse): after its last "Answer:", inside its code block;
    for a single-line answer outside a code block, only a short first paragraph; text starting with { or [ is
    re-serialised from the JSON read in it (kept as written when that reading is empty and the text does not
    contain "{}"/"[]"); other text loses redundant quotes."""
    answer = extract_answer_content("" if response is None else response, is_ascii_art=is_ascii_art,
                                    should_remove_surrounding_whitespace=should_remove_surrounding_whitespace)
    answer, is_code = extract_code_block_content(answer, is_ascii_art=is_ascii_art,
                                                 should_remove_surrounding_whitespace=should_remove_surrounding_whitespace)
    if not is_code and is_single_line_ans and not is_ascii_art:
        answer = drop_additional_text(answer)
    if not answer.startswith(("{", "[")):
        return evaluate_as_string(answer)
    parsed = parse_json(answer)
    if parsed == {} and "{}" not in answer:
        return answer
    if parsed == [] and "[]" not in answer:
        return answer
    return str(parsed)


def _single_field(is_ascii_art: bool, strip: bool) -> Callable[..., dict[str, str]]:
    def parse(response: str | None, answer_key: str, *, global_description: str = "", query_question: str = "",
              is_single_line_ans: bool | None = None) -> dict[str, str]:
        return {answer_key: answer_text(response, is_ascii_art=is_ascii_art, should_remove_surrounding_whitespace=strip,
                                        is_single_line_ans=is_single_line_ans)}

    return parse


answer_string_parse = PARSERS.register("answer_string")(_single_field(False, True))
answer_string_parse.__doc__ = "{answer_key: the answer in `response`} (AnswerStrParse.parse; see answer_text)."
ascii_answer_string_parse = PARSERS.register("ascii_answer_string")(_single_field(True, True))
ascii_answer_string_parse.__doc__ = ("{answer_key: the ascii-art answer} (AsciiAnswerStrParse): the lines' own "
                                     "indentation kept, no first-paragraph cut.")
verbatim_answer_string_parse = PARSERS.register("verbatim_answer_string")(_single_field(True, False))
verbatim_answer_string_parse.__doc__ = ("{answer_key: the answer as written} (VerbatimAnswerStrParse): as ascii art, "
                                        "trailing spaces of the last line kept too.")


def _parse_type(name: str | None) -> str:
    """ResponseParseType.from_string: None -> "unsupported"; other names lower-cased and checked."""
    if name is None:
        return "unsupported"
    if not isinstance(name, str) or name.lower() not in PARSE_TYPES:
        raise ValueError(f"unknown MEGA-Bench response_parse_function {name!r} (known: {', '.join(PARSE_TYPES)})")
    return name.lower()


def parser_for(name: str | None) -> Callable[..., Any]:
    """The parser the official evaluator uses for a task's `response_parse_function` `name` (case-insensitive):
    None and "unsupported" parse as JSON (but the evaluator's raw-text fallback for a failed JSON parse applies
    only to "json"); an unknown name is a ValueError, as in the official code."""
    kind = _parse_type(name)
    return PARSERS.get("json" if kind == "unsupported" else kind)


def is_single_field_parser(name: str | None) -> bool:
    """Whether `name` parses one answer field (called with answer_key and the keyword arguments) rather than the
    whole response (called with the response alone)."""
    return _parse_type(name) in SINGLE_FIELD
