"""The official scorers' rules, quirks included, so scores compare with the papers: Pangea's lmms-eval tasks
(xGQA, MaRVL, MaXM, XM100, CVQA, M3Exam, xMMMU), the MMMU rules lmms-eval copies, and VLMEvalKit's matching."""

from __future__ import annotations

import ast
import random
import re
import unicodedata
from difflib import SequenceMatcher

# ---- xGQA: neulab/Pangea evaluation/lmms-eval/lmms_eval/tasks/xgqa/utils.py (xgqa_process_result) -------------


def xgqa_correct(prediction: str, answer: str) -> bool:
    """Right when the lower-cased gold answer is a substring of the lower-cased prediction ("no" in "not")."""
    return answer.strip().lower() in prediction.strip().lower()


# ---- MaRVL: tasks/marvl/utils.py (marvl_process_result) --------------------------------------------------------


def marvl_reading(prediction: str) -> str:
    """`yes` anywhere -> "true", else `no` anywhere ("I don't know", "not sure") -> "false", else the text."""
    pred = prediction.strip().lower()
    return "true" if "yes" in pred else "false" if "no" in pred else pred


def marvl_correct(prediction: str, target: str) -> bool:
    return target.strip().lower() in marvl_reading(prediction)


# ---- MaXM: tasks/maxm/utils.py (exact_match_with_multiple_references) --------------------------------------------


def maxm_exact(prediction: str, answers: list[str]) -> bool:
    """The raw prediction equals one reference exactly (no case folding, no trimming)."""
    return prediction in answers


# ---- CVQA and M3Exam: tasks/cvqa/utils.py and tasks/m3exam/utils.py (parse_multi_choice_response) -------------


def lmms_choice(response: str, options: list[str], rng: random.Random) -> tuple[str, bool]:
    """(letter, drawn at random). A letter A-D in any case followed by `)`, `.`, `:` or a space (so the "d " of
    "and " reads as D), else any A-D letter anywhere, else the option most similar (ratio > 0.7), else random."""
    response = response.strip()
    m = re.search(r"\(?([A-D])[).:\s]", response, re.IGNORECASE)
    if m:
        return m.group(1).upper(), False
    m = re.search(r"[ABCD]", response, re.IGNORECASE)
    if m:
        return m.group(0).upper(), False
    best, ratio = None, 0.0
    for i, option in enumerate(options):
        content = re.sub(r"^[A-D]\.\s*", "", option).strip()
        r = SequenceMatcher(None, response, content).ratio()
        if r > ratio:
            best, ratio = chr(65 + i), r
    if best is not None and ratio > 0.7:
        return best, False
    return rng.choice(["A", "B", "C", "D"]), True


def m3exam_gold(answer: str) -> str:
    """tasks/m3exam/utils.py standardize_answer: letters stay, digits 1-8 and "(n)" become letters."""
    if answer in "ABCDEFGH":
        return answer
    if answer in "12345678":
        return chr(64 + int(answer))
    m = re.match(r"\(?(\d)\)?", answer)
    return chr(64 + int(m.group(1))) if m else answer


# ---- MMMU rules (xMMMU, mmmu_val): tasks/xmmmu/utils.py, from MMMU-Benchmark/MMMU eval/eval_utils.py -------------


def mmmu_options(raw: str) -> list[str]:
    """The `options` column: a Python list literal in a string (newlines inside it are spaces first)."""
    value = ast.literal_eval(raw.replace("\n", " ")) if isinstance(raw, str) else raw
    return [str(v) for v in value]


def mmmu_choice(response: str, options: list[str], rng: random.Random) -> tuple[str, bool]:
    """(letter, drawn at random): "(B)", then "B " and "B." as words, then option text in a long reply (> 5
    words); several candidates -> the last one; none -> a random letter."""
    choices = [chr(65 + i) for i in range(len(options))]
    index2ans = dict(zip(choices, options))
    for ch in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(ch)
    response = " " + response + " "
    index_ans, brackets, cands = True, False, []
    for c in choices:
        if f"({c})" in response:
            cands.append(c)
            brackets = True
    if not cands:
        cands = [c for c in choices if f"{c} " in response]
    if not cands:
        cands = [c for c in choices if f"{c}." in response]
    if not cands and len(response.split()) > 5:
        cands = [k for k, a in index2ans.items() if a.lower() in response.lower()]
        index_ans = not cands
    if not cands:
        return rng.choice(choices), True
    if len(cands) == 1:
        return cands[0], False
    if index_ans:
        starts = [response.rfind(f"({c})") if brackets else response.rfind(f" {c} ") for c in cands]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in cands]
    return cands[max(range(len(starts)), key=lambda i: (starts[i], -i))], False


def _is_number(s: str) -> bool:
    try:
        float(s.replace(",", ""))
        return True
    except ValueError:
        return False


def mmmu_normalize(s: str) -> list[str | float]:
    s = s.strip()
    if _is_number(s):
        return [round(float(s.replace(",", "")), 2)]
    s = s.lower()
    return [" " + s, s + " "] if len(s) == 1 else [s]


def _numbers(s: str) -> list[str]:
    return (re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", s) + re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", s)
            + re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", s))


def mmmu_open_reading(response: str) -> list[str | float]:
    """parse_open_response: the tails after key words ("is ", "answer ", "=" in the last sentence), the numbers
    in them, normalised (numbers as floats rounded to 2 places)."""
    text = response.strip().strip(".").lower()
    subs = re.split(r"\.\s(?=[A-Z])|\n", text)
    keys: list[str] = []
    for i, sub in enumerate(subs):
        indicators = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
        if i == len(subs) - 1:
            indicators.append("=")
        shortest = None
        for ind in indicators:
            if ind in sub:
                tail = sub.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in [":", ",", ".", "!", "?", ";", "'"]:
            keys.append(shortest)
    keys = keys or [text]
    preds: list[str] = list(keys)
    for k in keys:
        preds.extend(_numbers(k))
    out: list[str | float] = []
    for p in preds:
        out.extend(mmmu_normalize(p))
    return list(dict.fromkeys(out))


def mmmu_open_correct(reading: list[str | float], answer: str | list[str]) -> bool:
    golds: list[str | float] = []
    for a in answer if isinstance(answer, list) else [answer]:
        golds.extend(mmmu_normalize(a))
    for p in reading:
        if isinstance(p, str):
            if any(isinstance(g, str) and g in p for g in golds):
                return True
        elif p in golds:
            return True
    return False


def mmmu_answer(raw: str) -> str | list[str]:
    """The `answer` column: a letter, a value, or a list literal of accepted values."""
    if isinstance(raw, str) and raw.startswith("["):
        try:
            value = ast.literal_eval(raw)
            if isinstance(value, list):
                return [str(v) for v in value]
        except (ValueError, SyntaxError):
            pass
    return raw


# ---- VLMEvalKit multiple choice: vlmeval/utils/matching_util.py (can_infer) at commit aca64dbb (2025-04),
# the matching of the Parrot-era releases; with no judge model (`exact_matching`) an unread answer scores 0.


def vlmeval_can_infer(answer: str, choices: dict[str, str]) -> str | None:
    """An option letter standing alone after `.()[],:;!*#{}` become spaces (so "答案：B" is one word and is not
    read), else the one option whose lower-cased text is in the answer; "Z" for the listed refusals."""
    answer = str(answer)
    if "Failed to obtain answer via API" in answer:
        return None
    for refusal in ("Sorry, I can't help with images of people yet.", "I can't process this file.",
                    "I'm sorry, but without the image provided", "Cannot determine the answer"):
        if refusal in answer:
            return "Z"
    mod = answer
    for c in ".()[],:;!*#{}":
        mod = mod.replace(c, " ")
    splits = [x.strip() for x in mod.split()]
    count = sum(c in splits for c in choices)
    if count == 1:
        return next(c for c in choices if c in splits)
    if count == 0 and sum(c in splits for c in ("Z", "")) == 1:
        return "Z"
    low = answer.lower()
    cands = [k for k, v in choices.items() if str(v).lower() in low]
    return cands[0] if len(cands) == 1 else None


# ---- COCO caption tokenisation (pycocoevalcap PTBTokenizer: Stanford PTB, lower-cased, punctuation dropped) ------

# pycocoevalcap drops these tokens; its bracket names are upper case while the tokens are lower-cased, so the
# brackets survive as "-lrb-" etc. (a quirk of the official tokenisation, kept)
_PTB_DROP = {"''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"}
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_ABBREVIATION = re.compile(r"^(?:[^\W\d_]\.)+$")
_CLITIC = re.compile(r"(?i)^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_EDGE = "\"'`([{)]}.,!?;:$£€¥#%"  # split off the ends of a word (currency signs and % are tokens of their own)


def ptb_tokenize(text: str) -> list[str]:
    """Words as pycocoevalcap's PTB tokenisation leaves them: lower case, split at spaces with punctuation split
    off the ends and clitics ("n't", "'s") split, punctuation tokens dropped. Scripts without spaces stay one
    token per run of characters (the official XM100 Chinese CIDEr quirk)."""
    text = unicodedata.normalize("NFC", text).lower().replace("\n", " ")
    # non-ASCII punctuation ("。", "，", "！") is a token of its own anywhere; corner brackets are untokenizable
    # for the PTB lexer and vanish
    text = "".join(" " if ch in "「」『』" else f" {ch} " if ord(ch) > 127 and unicodedata.category(ch)[0] == "P"
                   else ch for ch in text)
    out: list[str] = []
    for chunk in text.split():
        head: list[str] = []
        tail: list[str] = []
        while chunk and chunk[0] in _EDGE:
            head.append(chunk[0])
            chunk = chunk[1:]
        while chunk and chunk[-1] in _EDGE:
            if chunk.endswith("..."):
                tail.insert(0, "...")
                chunk = chunk[:-3]
                continue
            if chunk[-1] == "." and _ABBREVIATION.match(chunk):  # "u.s.", "e.g.", "p.m." keep their period
                break
            tail.insert(0, chunk[-1])
            chunk = chunk[:-1]
        words = [chunk] if chunk else []
        m = _CLITIC.match(chunk) if chunk else None
        if m:
            words = [m.group(1), m.group(2)]
        out.extend(head + words + tail)
    out = [_BRACKETS.get(t, t) for t in out]
    return [t for t in out if t not in _PTB_DROP and t not in "\"'`.,!?;:"]
