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
    return _score_pair((review or "").strip())  # get_eval strips the reply's content


def _score_pair(text: str) -> list[float]:
    """parse_score's reading of a reply (as its caller hands it over): the first line, commas made spaces, split on
    single spaces; exactly two float()-able pieces, else [-1, -1]."""
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


# ---- lmms-eval's LLaVA-Bench-Wilder (lmms_eval/tasks/llava_wilder/utils.py at 3b686384) ------------------------------
def wilder_score_pair(review: str | None) -> list[float]:
    """parse_score: the reply's first line as it came (not stripped: " 9 7" or "9 7 " split into three pieces),
    commas made spaces, split on single spaces; exactly two float()-able pieces, else [-1, -1]. A failed request
    (the official client then returns "") is [-1, -1]."""
    return _score_pair(review or "")


def wilder_ratio(pairs: list[list[float]]) -> float:
    """llava_aggregation: pairs holding -999 are skipped (parse failures are -1 and stay in), then llava_ratio."""
    return llava_ratio([p for p in pairs if -999 not in p])


# ---- lmms-eval's WildVision-Bench (lmms_eval/tasks/wild_vision_bench/utils.py at 3b686384) -------------------------
_WV_PATTERN = re.compile(r"\[\[([AB<>=]+)\]\]")
# wild_vision_process_results' checks, in its order: (substring, final_score, winner, judgement); A is the baseline
WV_OUTCOMES = (("A>B", -1, "model_a", "Worse"), ("A>>B", -2, "model_a", "Worse++"), ("A=B", 0, "tie", "Tie"),
               ("B>A", 1, "model_b", "Better"), ("B>>A", 2, "model_b", "Better++"))
WV_JUDGEMENTS = ("Better", "Better++", "Worse", "Worse++", "Tie", "Unclear")


def wildvision_verdict(reply: str | None) -> tuple[int, str, str]:
    """(final_score, winner, judgement) as wild_vision_process_results reads a reply: get_score's one distinct
    `[[...]]` label, else (none, or several different) the whole reply, searched for "A>B", "A>>B", "A=B", "B>A",
    "B>>A" in that order; nothing found: (0, "tie", "Unclear"). A failed request reads as ""."""
    text = reply or ""
    found = set(_WV_PATTERN.findall(text))
    score = next(iter(found)) if len(found) == 1 else text
    for label, raw, winner, judgement in WV_OUTCOMES:
        if label in score:
            return raw, winner, judgement
    return 0, "tie", "Unclear"


def winner_of(final_score: float) -> str:
    return "model_a" if final_score < 0 else "model_b" if final_score > 0 else "tie"


def elo_win_rate(winners: list[str]) -> float:
    """wild_vision_aggregation_elo_scores for battles of one model (B) against the baseline (A): compute_mle_elo's
    logistic regression on the battles twice over (Y = 1 for A's wins, and for a tie in the first copy only) has
    the closed-form optimum P(A) = (2 wins_A + ties) / 2n, so B's predicted win rate against the baseline is
    (2 wins_B + ties) / 2n, x 100 rounded to 2 places. When Y holds one class only (B, or A, won every battle)
    LogisticRegression raises and the official code falls back to equal ratings: 50.0."""
    n = len(winners)
    a, b = winners.count("model_a"), winners.count("model_b")
    ties = n - a - b
    if n == 0 or 2 * a + ties == 0 or 2 * b + ties == 0:
        return 50.0
    return round((2 * b + ties) / (2 * n) * 100, 2)


def wildvision_metrics(final_scores: list[float], judgements: list[str]) -> dict[str, float]:
    """Every metric of the task's metric_list: raw_scores (mean final score, -2..2), elo_scores, win_rates (share of
    battles B won, x 100) and judgements_* (share of each judgement, x 100)."""
    n = len(final_scores)
    winners = [winner_of(s) for s in final_scores]
    out = {"raw_scores": sum(final_scores) / n if n else math.nan, "elo_scores": elo_win_rate(winners),
           "win_rates": winners.count("model_b") / n * 100 if n else math.nan}
    names = {"Better": "better", "Better++": "better_plus", "Worse": "worse", "Worse++": "worse_plus", "Tie": "tie",
             "Unclear": "unclear"}
    for j in WV_JUDGEMENTS:
        out[f"judgements_{names[j]}"] = judgements.count(j) / n * 100 if n else 0.0
    return out


def strict_verdict(reply: str | None) -> float | None:
    """polyvlm's reading of a pairwise verdict: the `[[...]]` labels that are one of the five the prompt offers must
    all agree; B (the model) much better or better 1.0, a tie 0.5, A better 0.0; none or conflicting: None."""
    found = {v for v in _WV_PATTERN.findall(reply or "") if v in ("A>>B", "A>B", "A=B", "B>A", "B>>A")}
    if len(found) != 1:
        return None
    return {"B>>A": 1.0, "B>A": 1.0, "A=B": 0.5}.get(found.pop(), 0.0)
