"""Short-answer metrics and the script-aware tokeniser: exact match, relaxed accuracy, ANLS, MGSM final number."""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import Levenshtein

from polyvlm.eval.metrics import MetricResult, mean_result, register_metric

# Scripts written without spaces between words: each character is one token (Chinese, Japanese kana,
# Thai, Lao, Khmer, Myanmar). Korean separates words with spaces, so Hangul stays word-level.
_UNSPACED = (
    (0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x2FA1F),
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1780, 0x17FF), (0x1000, 0x109F),
)


def is_unspaced(ch: str) -> bool:
    """True for characters of scripts that do not put spaces between words."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _UNSPACED)


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split `text` into word tokens: punctuation and symbols are dropped, Chinese/Japanese/Thai characters
    become one token each (a combining mark stays with its base character), other scripts split on spaces.
    NFKC first, so full-width Latin letters and digits tokenise like ASCII."""
    text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.lower()
    tokens: list[str] = []
    word: list[str] = []

    def flush() -> None:
        if word:
            tokens.append("".join(word))
            word.clear()

    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "M":  # combining mark: belongs to the character before it
            if tokens and not word and is_unspaced(tokens[-1][-1]):
                tokens[-1] += ch
            else:
                word.append(ch)
        elif is_unspaced(ch):
            flush()
            tokens.append(ch)
        elif cat[0] in "PSZC" and ch not in "'’":
            flush()
        else:
            word.append(ch)
    flush()
    return [t.strip("'’") for t in tokens if t.strip("'’")]


# Punctuation and spaces of every script up to CJK punctuation (full-width forms become ASCII under NFKC).
_PUNCT_STRIP = "".join(chr(c) for c in range(0x20, 0x3100) if unicodedata.category(chr(c))[0] in "PZ")


def normalize_answer(text: str) -> str:
    """Light normalisation for short answers: NFKC, lower case, spaces collapsed, surrounding punctuation
    (any script, e.g. `。` or `؟`) stripped."""
    text = unicodedata.normalize("NFKC", text).lower().strip()
    return re.sub(r"\s+", " ", text).strip(_PUNCT_STRIP)


@register_metric("exact_match", help="normalised prediction equals any reference (NFKC, case, punctuation)")
def exact_match(predictions: list[str], references: list[list[str]]) -> MetricResult:
    return mean_result([float(any(normalize_answer(p) == normalize_answer(r) for r in refs))
                        for p, refs in zip(predictions, references)])


_NUMBER = re.compile(r"[-+−]?\d[\d,]*(?:\.\d+)?|[-+−]?\.\d+")


def parse_number(text: str) -> float | None:
    """The value of `text` if it is one number (thousands commas, a trailing `%` read as /100), else None."""
    t = unicodedata.normalize("NFKC", text).strip().rstrip(".").replace("−", "-")
    pct = t.endswith("%")
    t = t.rstrip("%").strip().replace(",", "")
    try:
        value = float(t)
    except ValueError:
        return None
    return value / 100 if pct else value


def relaxed_match(pred: str, ref: str, tolerance: float = 0.05) -> bool:
    """ChartQA relaxed correctness: numbers within `tolerance` relative error, other answers exactly."""
    p, r = parse_number(pred), parse_number(ref)
    if p is not None and r is not None:
        return p == r if r == 0 else abs(p - r) / abs(r) <= tolerance
    return normalize_answer(pred) == normalize_answer(ref)


@register_metric("relaxed_accuracy", help="ChartQA: numbers within 5% relative error, text exactly")
def relaxed_accuracy(predictions: list[str], references: list[list[str]]) -> MetricResult:
    return mean_result([float(any(relaxed_match(p, r) for r in refs)) for p, refs in zip(predictions, references)])


def anls_one(pred: str, refs: list[str], threshold: float = 0.5) -> float:
    """Average Normalized Levenshtein Similarity of one answer (DocVQA): the best over references of
    1 - NL when the normalised distance NL is below `threshold`, else 0."""
    p = " ".join(pred.lower().split())
    best = 0.0
    for ref in refs:
        r = " ".join(ref.lower().split())
        if not p and not r:
            return 1.0
        nl = Levenshtein.distance(p, r) / max(len(p), len(r))  # insert, delete, substitute: 1 each
        best = max(best, 1.0 - nl if nl < threshold else 0.0)
    return best


@register_metric("anls", help="Average Normalized Levenshtein Similarity, threshold 0.5 (DocVQA)")
def anls(predictions: list[str], references: list[list[str]]) -> MetricResult:
    return mean_result([anls_one(p, refs) for p, refs in zip(predictions, references)])


def final_number(text: str) -> float | None:
    """The last number written in `text` (digits of any script, thousands separators, decimals), or None."""
    t = unicodedata.normalize("NFKC", text).replace("−", "-").replace("٫", ".").replace("٬", ",")
    found = _NUMBER.findall(t)
    if not found:
        return None
    raw = found[-1].replace(",", "").rstrip(".")
    try:
        return float("".join(str(unicodedata.decimal(c)) if c.isdigit() else c for c in raw))
    except ValueError:
        return None


@register_metric("mgsm", help="MGSM: the last number in the prediction equals the reference number")
def mgsm(predictions: list[str], references: list[list[str]]) -> MetricResult:
    scores = []
    for p, refs in zip(predictions, references):
        got = final_number(p)
        scores.append(float(got is not None and any(final_number(r) is not None and abs(got - final_number(r)) < 1e-6
                                                    for r in refs)))
    return mean_result(scores)
