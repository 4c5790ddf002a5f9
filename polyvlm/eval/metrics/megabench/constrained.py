"""MEGA-Bench's constrained_generation: every constraint of eval_context checked on the response, the minimum
score and a per-constraint report (lmms_eval/tasks/megabench/metrics/scoring/constrained_generation.py; the
word-level rules are in constrained_rules.py)."""

from __future__ import annotations

import collections
import itertools
import logging
import re
import signal
import threading
from typing import Any

from polyvlm.eval.metrics.megabench import register
from polyvlm.eval.metrics.megabench.constrained_rules import (
    count_phrase,
    count_syllables,
    is_line_iambic,
    phones_for_word,
    rhyming_part,
)
from polyvlm.eval.metrics.megabench.convert import (
    parse_nested_str_list,
    parse_syllable_ranges,
    str_to_iterable,
)

log = logging.getLogger("polyvlm.eval")
TIMEOUT = 10  # seconds per constraint, as the official; a constraint that runs out scores 0


def parse_constraint(key: str, value: str) -> dict[str, Any]:
    """'contain##position1' + 'cat##2' -> {'contain': 'cat', 'position': 2}: '##'-separated keys (trailing
    digits dropped, lower-cased) paired with '##'-separated values (quotes stripped, digit strings -> int)."""
    keys = [re.sub(r"\d+$", "", k) for k in key.strip().split("##")]
    values: list[Any] = [v.strip().strip('"').strip() for v in value.strip().split("##")]
    values = [int(v) if v.isdigit() else v for v in values]
    if len(keys) != len(values):
        raise ValueError("Mismatch between number of keys and values.")
    return {k.lower(): v for k, v in zip(keys, values)}


def _check_contain(response: str, key: str, value: str) -> int:
    """'contain' / 'contain_only' with optional position, position_only and times."""
    parsed = parse_constraint(key, value)
    response = response.replace("**", "")
    records: dict[tuple, list[tuple[int, int]]] = {}
    if "contain_only" in parsed:
        satisfied = 0
        for group in parse_nested_str_list(parsed["contain_only"]):
            hits = [count_phrase(response, item) for item in group]
            if sum(n for n, _ in hits) > 0:
                satisfied += 1
                records[tuple(group)] = [o for n, occ in hits if n > 0 for o in occ]
        score = 1 if satisfied == 1 else 0
    else:
        items = str_to_iterable(list, parsed["contain"])
        hits = [count_phrase(response, item) for item in items]
        total = sum(n for n, _ in hits)
        if total > 0:
            records[tuple(items)] = [o for n, occ in hits if n > 0 for o in occ]
        score = 1 if total > 0 else 0
    if score > 0:
        occurs = list(records.values())[0]
        if "position_only" in parsed:
            return 1 if len(occurs) == 1 and occurs[0][0] == parsed["position_only"] else 0
        if "position" in parsed:
            score = 1 if parsed["position"] in [sent for sent, _ in occurs] else 0
        if "times" in parsed:
            score = 1 if sum(n for _, n in occurs) == parsed["times"] else 0
    return score


def _check_length(response: str, value: str) -> int:
    """'<N' / '>N' words (\\b\\w+\\b); an unreadable N scores 0, another comparator is an error (the
    official's unbound score, so the whole query scores 0)."""
    try:
        limit = int(value[1:])
    except ValueError:
        log.debug("constrained_generation: wrong length info %r", value)
        return 0
    words = len(re.findall(r"\b\w+\b", response))
    if value[0] == "<":
        return 1 if words < limit else 0
    if value[0] == ">":
        return 1 if words > limit else 0
    raise ValueError(f"constrained_generation: unknown length info {value!r}")


def _check_acrostic(response: str, key: str, value: str) -> int:
    """Line i starts with letter i of `value` (acrostic_alliteration: every word of it does); a space in
    `value` asks for an empty line; the line count must equal len(value)."""
    lines = response.replace("**", "").strip().lower().split("\n")
    if len(lines) != len(value):
        return 0
    every_word = "acrostic_alliteration" in key
    for line, letter in zip(lines, value.lower()):
        line = line.strip()
        if letter == " ":
            if line != "":
                return 0
        elif not line or not (all(w[0] == letter for w in line.split(" ")) if every_word else line[0] == letter):
            return 0
    return 1


def _poem_lines(response: str) -> list[str]:
    """Lower-cased lines with punctuation dropped, hyphens and dashes as spaces, '(a)' scheme tags removed."""
    text = response.strip()
    for ch in ".,!?:;\"":
        text = text.replace(ch, "")
    text = text.replace("-", " ").replace("—", " ")
    text = re.sub(r" *\(\w\) *(?=\n|$)", "", text)
    return text.lower().split("\n")


def _check_rhymes(lines: list[str], scheme: str) -> int:
    """Lines with one letter share a rhyming part; lines with different letters share none."""
    if len(lines) != len(scheme):
        return 0
    last_words = [line.split()[-1] if line != "" else "" for line in lines]
    by_letter: dict[str, set[str]] = collections.defaultdict(set)
    for letter, word in zip(scheme, last_words):
        if letter == " ":
            if word != "":
                return 0
        else:
            by_letter[letter].add(word)
    parts: dict[str, set[str]] = {}
    for letter, words in by_letter.items():
        common = set.intersection(*[{rhyming_part(p) for p in phones_for_word(w)} for w in words])
        if not common:
            return 0
        parts[letter] = common
    return 0 if any(parts[a] & parts[b] for a, b in itertools.combinations(parts, 2)) else 1


def _check_poem(response: str, key: str, value: str) -> int:
    lines = _poem_lines(response)
    if key == "syllables":
        ranges = parse_syllable_ranges(value)
        if len(lines) != len(ranges):
            return 0
        try:
            ok = all(any(lo <= n <= hi for n in count_syllables(line)) for line, (lo, hi) in zip(lines, ranges))
        except IndexError:
            ok = False
        return 1 if ok else 0
    if key == "rhyming_scheme":
        return _check_rhymes(lines, value)
    if key == "poetry_meter":
        return 1 if all(is_line_iambic(line) for line in lines) else 0
    log.debug("constrained_generation: unknown constraint type %r", key)
    return 0


def check_constraint(response: Any, key: str, value: str) -> int:
    """Score one constraint (key as in eval_context, e.g. 'length', 'contain##times', 'rhyming_scheme')."""
    if value.strip() == "":
        return 1  # a placeholder constraint
    if "contain" in key:
        return _check_contain(response, key, value)
    if "length" in key:
        return _check_length(response, value)
    if "acrostic" in key:
        return _check_acrostic(response, key, value)
    return _check_poem(response, key, value)


class _Deadline:
    """SIGALRM after `seconds` in the main thread (the official's timer); no limit in other threads, where
    signals cannot be set."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.armed = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")

    def __enter__(self) -> None:
        if self.armed:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.alarm(self.seconds)

    def __exit__(self, *exc: Any) -> None:
        if self.armed:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, self.previous)

    @staticmethod
    def _expire(signum: int, frame: Any) -> None:
        raise TimeoutError


@register("constrained_generation", call="object")
def constrained_generation(response: Any, constraints: dict[str, str]) -> tuple[int, str]:
    """(min over constraints of their 0/1 scores, 'key: score' joined by tabs). `response` is what the
    evaluator passes (the parsed response object); `constraints` is eval_context {key: value}. A constraint
    that runs past TIMEOUT seconds scores 0; other errors propagate (the official scorer's 0 for the query)."""
    results: dict[str, int] = {}
    for key, value in constraints.items():
        try:
            with _Deadline(TIMEOUT):
                results[key] = check_constraint(response, key, value)
        except TimeoutError:
            log.debug("constrained_generation: timeout on constraint %s", key)
            results[key] = 0
    info = "\t".join(f"{k}: {v}" for k, v in results.items())
    return min(results.values()), info
