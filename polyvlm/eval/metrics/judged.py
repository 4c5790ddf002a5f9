"""The official readings of PangeaBench's judged chat benchmarks: LLaVA-Bench's score pair, its wrong-language rule
(langdetect) and its ratio aggregation (M-LlavaBench), and Prometheus' absolute 1-5 verdict (xChatBench)."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

FAILED = [-1.0, -1.0]  # what llava_process_results records when anything goes wrong (and still averages)


def llava_score_pair(review: str | None) -> list[float]:
    """(reference, answer) scores from the judge's first line as multilingual-llava-bench/utils.py parse_score
    reads it: commas become spaces, then the line split on single spaces must give exactly two numbers
    ("8,6" -> [8, 6], but "8, 6" -> three pieces -> [-1, -1]); a failed request or empty reply is [-1, -1]."""
    text = (review or "").strip()  # get_eval strips the reply's content
    pieces = text.split("\n")[0].replace(",", " ").split(" ")
    if len(pieces) != 2:
        return list(FAILED)
    try:
        return [float(pieces[0]), float(pieces[1])]
    except ValueError:
        return list(FAILED)


@lru_cache(maxsize=1)
def _langdetect() -> Any:
    try:
        from langdetect import DetectorFactory, detect
    except ImportError as e:
        raise ImportError("M-LlavaBench's official score detects languages with langdetect, as its scorer does: "
                          "pip install 'polyvlm[eval]'") from e
    DetectorFactory.seed = 0  # the scorer leaves langdetect unseeded (a draw per call); seeded, runs repeat
    return detect


def detect_language(text: str) -> str | None:
    """langdetect's code for `text` (`zh-cn`, `en`, ...), None where it raises (no letters: "", "42")."""
    from langdetect.lang_detect_exception import LangDetectException

    try:
        return str(_langdetect()(text))
    except LangDetectException:
        return None


def llava_official_pair(review: str | None, reference: str, answer: str, question: str) -> tuple[list[float], str]:
    """One M-LlavaBench sample as llava_process_results scores it -> ([reference score, answer score], answer
    language). An answer whose detected language is neither the reference's nor the question's gets
    min(0, score); when langdetect raises on any of the three texts the whole sample becomes [-1, -1]."""
    scores = llava_score_pair(review)
    langs = [detect_language(t) for t in (reference, answer, question)]
    if any(x is None for x in langs):
        return list(FAILED), ""
    ref_lang, ans_lang, q_lang = langs
    if ans_lang != ref_lang and ans_lang != q_lang:
        scores[1] = min(0.0, scores[1])
    return scores, str(ans_lang)


def llava_ratio(pairs: list[list[float]]) -> float:
    """llava_aggregation: the column means of the pairs (failures' -1s included), each rounded to 3 places, then
    answer / reference x 100 rounded to 1 place; NaN where the scorer gets None (no pairs, a zero reference)."""
    import numpy as np

    if not pairs:
        return math.nan
    ref, ans = (round(x, 3) for x in np.asarray(pairs, dtype=float).mean(0).tolist())
    return round(ans / ref * 100, 1) if ref else math.nan


# prometheus_eval/parser.py _parse_output_absolute: a marker, an integer, an optional "/5" or "out of 5", and
# nothing after it but white space (the verdict closes the reply); 1-5 only.
_MARKER = r"(?:\[RESULT\]|\[SCORE\]|Score:?|Result:?|\[Result\]:?|score\s+of)"
_VERDICT = re.compile(_MARKER + r"\s*(?:\(|\[|\s)*(\d+)(?:(?:\)|\]|\s|$)|(?:/\s*5|\s*out\s*of\s*5))?(?:\s*$)",
                      re.IGNORECASE)


def prometheus_score(reply: str | None) -> int | None:
    """The 1-5 score Prometheus' absolute-grading parser reads from a judge reply, None when it reads none."""
    if not reply:
        return None
    m = _VERDICT.search(reply)
    if m is None:
        return None
    score = int(m.group(1))
    return score if 1 <= score <= 5 else None


_STRICT = re.compile(r"\[RESULT\]\s*([1-5])\s*$")


def strict_result(reply: str | None) -> int | None:
    """polyvlm's reading: exactly one `[RESULT] N` (the format the judge prompt asks for), closing the reply."""
    if not reply or reply.count("[RESULT]") != 1:
        return None
    m = _STRICT.search(reply.strip())
    return int(m.group(1)) if m else None
