"""MEGA-Bench's shared conversions (a plain library, registers nothing): reading a response's text (answer lines, code
blocks, JSON and Python literals: parsing/common/utils.py, parsing/common/parsers.py), casting answers to sets, lists
and dicts (scoring/common/conversions.py, without the bbox/point/ascii-image readings) and the set scores
(scoring/common/metrics.py), all in lmms_eval/tasks/megabench/metrics."""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from polyvlm.eval.metrics.megabench import requires

log = logging.getLogger("polyvlm.eval")

# parse_json gives up on the JSON-like pattern after this many seconds (regex's own timeout: it is checked inside the
# matching loop, not by a signal, so it works in any thread) and returns an empty object
PARSING_TIMEOUT = 0.1

# text.  A JSON object or array, brackets balanced through `regex`'s (?R) recursion
_JSON_LIKE = r"(\{(?:[^{}]|(?R))*\}|\[(?:[^{}]|(?R))*\])"
_STRING_LITERAL = r'"(?:\\.|[^"\\])*"'
_DQ, _SQ = "__DOUBLE_QUOTE__", "__SINGLE_QUOTE__"


# ---- reading the response text (parsing/common/utils.py) ----

def extract_code_block_content(response: str, code_type: str | None = None, is_ascii_art: bool = False,
                               should_remove_surrounding_whitespace: bool = True) -> tuple[str, bool]:
    """(content of the first ``` block, True), or (response, False) when there is none. `code_type` ("json")
    matches only that language tag; ascii art keeps the content's own leading spaces (and, with
    `should_remove_surrounding_whitespace=False`, its trailing ones)."""
    if code_type:
        pattern = rf"```{code_type}\s*\n*(.*?)\s*```"
    elif is_ascii_art:
        if not response.strip() or len(response) > 10000:  # blank or very long: trailing whitespace would be slow
            response = response.rstrip()
        if should_remove_surrounding_whitespace:
            pattern = r"```\w*(?:\s*\n+)?(.*?)\s*```"
        else:
            pattern = r"```\w*(?:\s*\n+)?(.*?)(?:\n+\s*)?```"
    else:
        pattern = r"```\w*\s*\n*(.*?)\s*```"
    match = re.search(pattern, response, flags=re.DOTALL)
    if not match:
        return response, False
    return (match.group(1), True) if is_ascii_art else (match.group(1).strip(), True)


def keep_the_last_answer(s: str) -> str:
    """Drop every "Answer:" (after turning "answer:" into "Answer:") but the last one."""
    s = s.replace("answer:", "Answer:")
    last = s.rfind("Answer:")
    if last == -1:
        return s
    return s[:last].replace("Answer:", "") + s[last:]


def extract_answer_content(response: str, is_ascii_art: bool = False,
                           should_remove_surrounding_whitespace: bool = True) -> str:
    """The text after the last "Answer:" (or inside "**Answer: ...**"), else the whole response; stripped, or for
    ascii art with its blank-line runs removed and its trailing whitespace (or only trailing blank lines) cut."""
    response = keep_the_last_answer(response)
    if is_ascii_art:
        match = re.search(r"\*\*?Answer:(.*?)\*\*?|\bAnswer:(.*)", response, re.DOTALL)
    else:
        match = re.search(r"\*\*?Answer:\s*(.*?)\*\*?|\bAnswer:\s*(.*)", response, re.DOTALL)
    if match:
        response = match.group(1) or match.group(2) or ""
    if not is_ascii_art:
        return response.strip()
    response = re.sub(r"^\s*$(\n^\s*$)+", "", response, flags=re.MULTILINE)
    if should_remove_surrounding_whitespace:
        response = response.rstrip()
    else:
        response = re.sub(r"(\n\s*)+$", "", response)
    return re.sub(r"^(\s*\n)+", "", response)


def extract_answer_at_beginning_of_line(response: str) -> str:
    """The rest of the first line that starts with "Answer:" or "**Answer:", stripped; else the stripped response."""
    match = re.search(r"^(?:\*\*Answer:|Answer:)\s*(.+)", response, re.MULTILINE)
    return match.group(1).strip() if match else response.strip()


def _is_multiline_answer(text: str) -> bool:
    """True when the first non-blank line is followed by a non-blank line (False for blank text)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip():
            return not (i + 1 < len(lines) and lines[i + 1].strip() == "")
    return False


def drop_additional_text(result: str) -> str:
    """Keep only the first paragraph when it looks like a short answer ("B", "B.", "(B)", "a, b") and the answer is
    a single line followed by a blank line (the explanation after it is dropped)."""
    first_paragraph = result.split("\n\n")[0].strip()
    short_answer = re.search(
        r"^(?:(?:[a-zA-Z0-9_-]+)(?:,\s*[a-zA-Z0-9_-]+)*|(?:[a-zA-Z0-9_-]+)\.|\((?:[a-zA-Z0-9_-]+)\)$)",
        first_paragraph)
    if short_answer and first_paragraph.strip() != "" and not _is_multiline_answer(result):
        return first_paragraph
    return result


def evaluate_as_string(s: Any) -> Any:
    """`s` without its redundant quotes when it is a Python string literal ("'abc'" -> "abc"); anything else
    (other literals, non-strings, unparsable text) unchanged; "" when evaluating it runs out of memory."""
    try:
        evaluated = ast.literal_eval(s)
    except (ValueError, SyntaxError):
        return s
    except MemoryError:
        return ""
    return evaluated if isinstance(evaluated, str) else s


# ---- JSON and literal readers (parsing/common/parsers.py) ----

def _unnest_json_strings(candidate: str, regex: Any) -> str:
    """Replace each string literal of `candidate` that holds a JSON object or array by that JSON, re-serialised."""
    candidate = candidate.replace('\\"', _DQ).replace("\\'", _SQ)
    for literal in regex.findall(_STRING_LITERAL, candidate):
        inner = literal[1:-1].replace(_DQ, '"').replace(_SQ, "'")
        try:
            parsed = json.loads(inner)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, (dict, list)):
            candidate = candidate.replace(literal, json.dumps(parsed))
    return candidate.replace(_DQ, '\\"').replace(_SQ, "\\'")


def _read_candidate(candidate: str) -> list[Any]:
    """Every reading of one JSON-like candidate, in order: as JSON (else with single quotes at word edges turned
    double), then as a Python literal (else with its escaped quotes' backslashes doubled). A candidate can give
    two readings; the caller keeps the last one found in the response."""
    found: list[Any] = []
    try:
        found.append(json.loads(candidate))
    except json.JSONDecodeError:
        try:
            found.append(json.loads(re.sub(r"(?<!\w)\'|\'(?!\w)", '"', candidate)))
        except json.JSONDecodeError:
            pass
    try:
        found.append(ast.literal_eval(candidate))
        return found
    except (SyntaxError, ValueError):
        pass
    try:
        found.append(ast.literal_eval(candidate.replace('\\"', '\\\\"').replace("\\'", "\\\\'")))
    except (SyntaxError, ValueError):
        pass
    return found


def parse_json(response: str) -> Any:
    """The last JSON object/array (or Python dict/list literal) in `response`, read after its "Answer:" line and
    inside its ```json block; nested JSON held in strings is unnested. Nothing readable, or the bracket pattern
    running over PARSING_TIMEOUT seconds: [] when the text starts with "[", else {}. A Python literal that cannot
    be built ("{[1]: 2}": unhashable key) raises TypeError, as the official parser does."""
    regex = requires("regex", "parse_json")
    text = extract_answer_at_beginning_of_line(response)
    text, _ = extract_code_block_content(text, "json")
    empty: Any = [] if text.startswith("[") else {}
    try:
        candidates = regex.findall(_JSON_LIKE, text, timeout=PARSING_TIMEOUT)
    except TimeoutError:
        return empty
    readings = [r for c in candidates for r in _read_candidate(_unnest_json_strings(c, regex))]
    return readings[-1] if readings else empty


def parse_nested_str_list(input_string: str) -> Any:
    """'[[a, b], [c]]' -> [['a', 'b'], ['c']]: every word quoted, then read as a Python literal; the input
    unchanged when that fails."""
    quoted = re.sub(r"(\w+)", r'"\1"', input_string)
    try:
        return ast.literal_eval(quoted)
    except (ValueError, SyntaxError) as e:
        log.debug("MEGA-Bench parse_nested_str_list: %r is not a nested list (%s)", input_string, e)
        return input_string


def parse_syllable_ranges(input_str: str) -> list[list[int]]:
    """Syllable counts as intervals: '[7,10][5,7]' -> [[7, 10], [5, 7]]; a bare digit d -> [d, d]; a space ->
    [0, 0] ('575 575' gives seven intervals); '[11]5' -> [[11, 11], [5, 5]]."""

    def interval(chunk: str) -> list[int]:
        chunk = chunk.strip("[]")
        if "," in chunk:
            start, end = map(int, chunk.split(","))
            return [start, end]
        if chunk == " ":
            return [0, 0]
        return [int(chunk), int(chunk)]

    return [interval(c) for c in re.findall(r"(?:\[\d+(?:,\s*\d+)?\]|\d| )", input_str.strip())]


# ---- casting answers (scoring/common/conversions.py) ----

def freeze_structure(obj: Any) -> Any:
    """A hashable copy: dicts -> frozensets of (key, frozen value), lists/tuples -> tuples, sets -> frozensets
    (their items as they are); other values unchanged."""
    if isinstance(obj, dict):
        return frozenset((k, freeze_structure(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return tuple(freeze_structure(item) for item in obj)
    if isinstance(obj, set):
        return frozenset(obj)
    return obj


def str_to_iterable(func: Callable[..., Any], iterable_str: Any) -> Any:
    """`func` (set, list, ...) of the items written in `iterable_str`: read as a Python literal (a number x -> [x];
    None -> "" rather than func()), else split on commas inside its (), [] or {} brackets. func() for non-strings,
    blank text, an opening bracket without its closing one, or items `func` cannot take (unhashable for a set)."""
    if not isinstance(iterable_str, str):
        return func()
    iterable_str = iterable_str.strip(" ")
    if not iterable_str:
        return func()
    closing = {"(": ")", "{": "}", "[": "]"}.get(iterable_str[0])
    if closing is not None and not iterable_str.endswith(closing):
        return func()
    try:
        value = ast.literal_eval(iterable_str)
        if value is None:
            return ""
        if isinstance(value, (int, float)):
            value = [value]
        return func(value)
    except (SyntaxError, ValueError):
        if closing is not None:
            iterable_str = iterable_str[1:-1]
        return func([item.strip() for item in iterable_str.split(",")])
    except TypeError:
        return func()


def str_to_set(iterable_str: Any) -> Any:
    """`str_to_iterable(set, iterable_str)`."""
    return str_to_iterable(set, iterable_str)


def str_to_list(iterable_str: Any) -> Any:
    """`str_to_iterable(list, iterable_str)`."""
    return str_to_iterable(list, iterable_str)


def cast_to_set(obj: Any) -> Any:
    """A set of `obj`'s frozen items (a dict gives its (key, value) pairs); strings go through `str_to_set`."""
    obj = freeze_structure(obj)
    if isinstance(obj, (frozenset, set, tuple)):
        return set(obj)
    return str_to_set(obj)


def cast_to_dict(obj: Any) -> Any:
    """Dicts recursively; a string -> what parse_json reads from it when that is non-empty (a dict, or a list!),
    else the string itself; other values unchanged."""
    if isinstance(obj, dict):
        return {key: cast_to_dict(val) for key, val in obj.items()}
    if isinstance(obj, str):
        return parse_json(obj) or obj
    return obj


# ---- set scores (scoring/common/metrics.py) ----

def set_relevance_score(denominator_fn: Callable[[set, set], int], predicted: Iterable, target: Iterable) -> float:
    """|pred & target| / denominator_fn(pred, target) over the sets of both; 1 when the denominator is 0."""
    pred, tget = set(predicted), set(target)
    denominator = denominator_fn(pred, tget)
    if not denominator:
        return 1
    return len(pred & tget) / denominator


def jaccard_index(predicted: Iterable, target: Iterable) -> float:
    """|pred & target| / |pred | target| (1 for two empty sets)."""
    return set_relevance_score(lambda p, t: len(p | t), predicted, target)


def set_precision(predicted: Iterable, target: Iterable) -> float:
    """|pred & target| / |pred| (1 for an empty prediction)."""
    return set_relevance_score(lambda p, _: len(p), predicted, target)


def set_recall(predicted: Iterable, target: Iterable) -> float:
    """|pred & target| / |target| (1 for an empty target)."""
    return set_relevance_score(lambda _, t: len(t), predicted, target)


def longest_common_prefix(list1: list, list2: list) -> list:
    """The longest prefix of `list1` equal item by item to `list2`'s."""
    first_difference = next((i for i, (a, b) in enumerate(zip(list1, list2)) if a != b), min(len(list1), len(list2)))
    return list1[:first_difference]
