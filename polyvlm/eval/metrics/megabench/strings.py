"""MEGA-Bench's string, set, dict and sequence field metrics (all called as fn(response, correct_answer)), following
lmms_eval/tasks/megabench/metrics/scoring: simple_str_match.py, exact_str_match.py,
exact_str_match_case_insensitive.py, dict_exact_match_agg_recall.py, normalized_similarity_damerau_levenshtein.py,
near_str_match.py (with common/transformations.py's remove_def_indef_articles), set_equality.py,
dict_set_equality_agg_jaccard.py, dict_equality.py, jaccard.py, dict_jaccard_agg_jaccard.py, set_precision.py,
positive_int_match.py, chess_jaccard.py, longest_common_list_prefix_ratio.py, sequence_equality.py.

An exception raised here is the official scorer's 0 (score_field assigns it): the rules below raise where the
official code raises (an empty target list, a non-string where a string method is called, ...)."""

from __future__ import annotations

import ast
import re
from numbers import Number
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein

from polyvlm.eval.metrics.megabench import register, requires
from polyvlm.eval.metrics.megabench.convert import (
    cast_to_dict,
    cast_to_set,
    extract_code_block_content,
    jaccard_index,
    longest_common_prefix,
    set_precision,
    str_to_list,
    str_to_set,
)

# ---- string matches ----


def parse_single_letter(s: str) -> str:
    """The choice letter of "(A) text", "A. text", "A text" (the first letter when the text starts with one, after
    an optional "("), else `s`."""
    match = re.match(r"^\(?([A-Za-z])\)?(?:\s*\.\s*|\.)?(.*)", s)
    return match.group(1) if match else s


@register("exact_str_match")
def exact_str_match(response: Any, correct_answer: Any) -> int:
    """1 when str(response) == str(correct_answer); for a one-letter answer ("B"), a longer response is first cut
    to its leading choice letter ("(B) Paris" -> "B")."""
    response, correct_answer = str(response), str(correct_answer)
    if len(correct_answer) == 1 and correct_answer.isalpha() and len(response) > 1:
        response = parse_single_letter(response)
    return 1 if response == correct_answer else 0


def _squash(text: str) -> str:
    """Lower case without spaces, hyphens, newlines, tabs and dots."""
    for ch in (" ", "-", "\n", "\t", "."):
        text = text.replace(ch, "")
    return text.lower()


@register("simple_str_match")
def simple_str_match(response: Any, correct_answer: str) -> int:
    """exact_str_match after removing spaces, hyphens, newlines, tabs and dots and lower-casing both."""
    return exact_str_match(_squash(str(response)), _squash(correct_answer))


@register("code_result_exact_str_match")
def code_result_exact_str_match(response: Any, correct_answer: str) -> int:
    """exact_str_match against the content of the answer's code block (its indentation and trailing lines kept)."""
    correct_answer, _ = extract_code_block_content(correct_answer, is_ascii_art=True,
                                                   should_remove_surrounding_whitespace=False)
    return exact_str_match(response, correct_answer)


@register("exact_str_match_case_insensitive")
def exact_str_match_case_insensitive(response: Any, correct_answer: Any) -> int:
    """exact_str_match of the lower-cased strings; 0 for a non-string response (against a string answer)."""
    if not isinstance(response, str) and isinstance(correct_answer, str):
        return 0
    return exact_str_match(response.lower(), correct_answer.lower())


@register("dict_exact_str_match_agg_recall")
def dict_exact_str_match_agg_recall(responses: Any, targets: Any) -> float:
    """The mean over the answer's keys of exact_str_match(response[key], answer[key]) (both read as dicts through
    cast_to_dict); 0 when the response is not a dict."""
    responses, targets = cast_to_dict(responses), cast_to_dict(targets)
    if not isinstance(responses, dict):
        return 0
    scores = [exact_str_match(responses.get(key), answer) for key, answer in targets.items()]
    return sum(scores) / len(scores)


@register("normalized_similarity_damerau_levenshtein")
def normalized_similarity_damerau_levenshtein(response: Any, correct_answer: Any) -> float:
    """rapidfuzz's normalized Damerau-Levenshtein similarity (1 - distance / longer length); 0 for a non-string
    response."""
    if not isinstance(response, str) and isinstance(correct_answer, str):
        return 0
    return DamerauLevenshtein.normalized_similarity(response, correct_answer)


def remove_def_indef_articles(text: str) -> str:
    """`text` without the space-separated words "the" and "a" (any case)."""
    return " ".join(t for t in text.split(" ") if t.lower() not in {"the", "a"})


@register("near_str_match")
def near_str_match(response: Any, correct_answer: Any, threshold: float = 0.9) -> float:
    """The normalized Damerau-Levenshtein similarity of the two texts without articles, transliterated to ASCII
    (unidecode) and lower-cased, when it reaches `threshold`, else 0; 0 for non-strings."""
    if not isinstance(response, str) or not isinstance(correct_answer, str):
        return 0
    unidecode = requires("unidecode", "near_str_match")

    def approximate(text: str) -> str:
        return unidecode.unidecode(remove_def_indef_articles(text)).lower()

    return DamerauLevenshtein.normalized_similarity(approximate(response), approximate(correct_answer),
                                                    score_cutoff=threshold)


@register("positive_int_match")
def positive_int_match(response: Any, correct_answer: Any) -> int:
    """1 when both read as the same int (Python literals); -1 when both are <= 0 (the field is not scored); 0 for
    an unreadable or non-int response or an empty answer. An answer that is not an int literal raises."""
    try:
        response_obj = ast.literal_eval(response)
    except (SyntaxError, ValueError):
        return 0
    if not correct_answer:
        return 0
    answer_obj = ast.literal_eval(correct_answer)
    if not isinstance(answer_obj, int):
        raise AssertionError(f"positive_int_match: the answer {correct_answer!r} is not an int")
    if not isinstance(response_obj, int):
        return 0
    if answer_obj <= 0 and response_obj <= 0:
        return -1
    return 1 if response_obj == answer_obj else 0


# ---- dicts ----


@register("dict_equality")
def dict_equality(responses: Any, targets: Any) -> int:
    """1 when the response and the answer, read through cast_to_dict, are equal; 0 when the response is no dict."""
    responses, targets = cast_to_dict(responses), cast_to_dict(targets)
    if not isinstance(responses, dict):
        return 0
    return 1 if responses == targets else 0


@register("dict_precision")
def dict_precision(responses: Any, targets: Any) -> float:
    """The share of the response's keys present in the answer with an exact_str_match value; 0 for an empty or
    non-dict response."""
    responses, targets = cast_to_dict(responses), cast_to_dict(targets)
    if not isinstance(responses, dict) or len(responses) == 0:
        return 0
    matched = sum(1 for key, val in responses.items() if key in targets and exact_str_match(val, targets[key]))
    return matched / len(responses)


def _dict_agg(metric: Any, responses: Any, targets: Any) -> float:
    """The mean of metric(response[key], answer[key]) over the union of both dicts' keys (a missing key -> [])."""
    responses, targets = cast_to_dict(responses), cast_to_dict(targets)
    if not isinstance(responses, dict):
        return 0
    keys = set(responses) | set(targets)
    total = 0
    for key in keys:
        total += metric(responses.get(key, []), targets.get(key, []))
    return total / len(keys)


@register("dict_set_equality_agg_jaccard")
def dict_set_equality_agg_jaccard(responses: Any, targets: Any) -> float:
    """The mean of set_equality over the union of the keys of the response and answer dicts."""
    return _dict_agg(set_equality, responses, targets)


@register("dict_jaccard_agg_jaccard")
def dict_jaccard_agg_jaccard(responses: Any, targets: Any) -> float:
    """The mean of jaccard_index (the metric) over the union of the keys of the response and answer dicts."""
    return _dict_agg(jaccard_index_metric, responses, targets)


# ---- sets ----


@register("set_equality")
def set_equality(responses: Any, targets: Any) -> int:
    """1 when cast_to_set gives the same set for both."""
    return 1 if cast_to_set(responses) == cast_to_set(targets) else 0


@register("set_equality_case_insensitive")
def set_equality_case_insensitive(responses: Any, targets: Any) -> int:
    """set_equality of the upper-cased items; 0 when an item is not a string."""
    try:
        responses = {text.upper() for text in cast_to_set(responses)}
        targets = {text.upper() for text in cast_to_set(targets)}
    except AttributeError:
        return 0
    return 1 if responses == targets else 0


def _lower_items(items: Any) -> set:
    return {item.lower() if isinstance(item, str) else item for item in items}


@register("str_set_equality_line_break")
def str_set_equality_line_break(responses: Any, targets: Any) -> int:
    """1 when both texts have the same set of lower-cased lines (a written "\\n" counts as a line break)."""
    if "\\n" in targets:
        targets = targets.replace("\\n", "\n")
    if "\\n" in responses:
        responses = responses.replace("\\n", "\n")
    return 1 if _lower_items(set(responses.split("\n"))) == _lower_items(set(targets.split("\n"))) else 0


@register("str_set_equality_comma")
def str_set_equality_comma(responses: Any, targets: Any) -> int:
    """1 when str_to_set gives the same set of (lower-cased) items for both."""
    return 1 if _lower_items(str_to_set(responses)) == _lower_items(str_to_set(targets)) else 0


@register("jaccard_index")
def jaccard_index_metric(responses: Any, targets: Any) -> float:
    """The Jaccard index of the two sets read by cast_to_set (1 for two empty ones); 0 for a None response."""
    if responses is None:
        return 0
    return jaccard_index(cast_to_set(responses), cast_to_set(targets))


def _lower_squash(text: str) -> str:
    """Lower-cased first (Greek final sigma depends on the neighbours), then without spaces, hyphens, newlines,
    tabs, underscores and dots."""
    text = text.lower()
    for ch in (" ", "-", "\n", "\t", "_", "."):
        text = text.replace(ch, "")
    return text


@register("jaccard_index_case_insensitive")
def jaccard_index_case_insensitive(responses: Any, targets: Any) -> float:
    """jaccard_index of lower-cased items when the answer's (first) item is a string; of tuples of squashed
    strings (lower case, no spaces, hyphens, newlines, tabs, underscores, dots) when it is a tuple (0 when a
    response item cannot be squashed); 0 for other answers. An empty answer raises."""
    if responses is None:
        return 0
    responses, targets = cast_to_set(responses), cast_to_set(targets)
    first = list(targets)[0]
    if isinstance(first, str):
        new_responses = {item.lower() if isinstance(item, str) else str(item).lower() for item in responses}
        new_targets = {item.lower() for item in targets}
    elif isinstance(first, tuple):
        try:
            new_responses = {tuple(_lower_squash(item) for item in res) for res in responses}
        except Exception:  # noqa: BLE001 - any malformed response item scores 0, as in the official code
            return 0
        new_targets = {tuple(_lower_squash(item) for item in tgt) for tgt in targets}
    else:
        return 0
    return jaccard_index(new_responses, new_targets)


@register("set_precision")
def set_precision_metric(responses: Any, targets: Any) -> float:
    """|response & answer| / |response| over the sets read by cast_to_set (1 for an empty response); 0 for None."""
    if responses is None:
        return 0
    return set_precision(cast_to_set(responses), cast_to_set(targets))


def chess_moves(move_sequence: Any) -> set:
    """The set of SAN moves written in `move_sequence` (str_to_set), without a trailing "!" then "#"."""
    return {move.removesuffix("!").removesuffix("#") for move in str_to_set(move_sequence)}


@register("chess_move_list_jaccard_index")
def chess_move_list_jaccard_index(responses: Any, targets: Any) -> float:
    """jaccard_index of the two sets of chess moves; 0 for a None response."""
    if responses is None:
        return 0
    return jaccard_index(chess_moves(responses), chess_moves(targets))


# ---- sequences ----


@register("longest_common_list_prefix_ratio")
def longest_common_list_prefix_ratio(responses: Any, targets: Any) -> float:
    """The length of the common prefix of the two lists read by str_to_list, over the answer's length."""
    responses, targets = str_to_list(responses), str_to_list(targets)
    return len(longest_common_prefix(responses, targets)) / len(targets)


@register("sequence_equality")
def sequence_equality(responses: Any, targets: Any) -> int:
    """1 when str_to_list reads the same list from both (a non-string response is read from its str())."""
    return 1 if str_to_list(str(responses)) == str_to_list(targets) else 0


@register("sequence_equality_case_insensitive")
def sequence_equality_case_insensitive(responses: Any, targets: Any) -> int:
    """sequence_equality of the lower-cased items (non-string response items become their str(), unlowered)."""
    responses, targets = str_to_list(str(responses)), str_to_list(targets)
    responses = [item.lower() if isinstance(item, str) else str(item) for item in responses]
    return 1 if responses == [item.lower() for item in targets] else 0


@register("sequence_accuracy_case_insensitive")
def sequence_accuracy_case_insensitive(responses: Any, targets: Any) -> float:
    """The share of positions where the two lists read by str_to_list agree (strings case-insensitively, numbers
    by value); 0 when their lengths differ."""
    responses, targets = str_to_list(responses), str_to_list(targets)
    if len(targets) != len(responses):
        return 0
    correct = 0
    for res, tgt in zip(responses, targets):
        if isinstance(tgt, str):
            correct += res.lower() == tgt.lower()
        elif isinstance(tgt, Number) and isinstance(res, Number):
            correct += res == tgt
    return correct / len(targets)
