"""Answered in the question's language: py3langid (the maintained langid.py fork) over open-ended predictions,
per language, with the languages it cannot tell reported as unchecked rather than passed."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# Languages the identifier merges or tells apart where a benchmark does not (Norwegian Bokmål, Hebrew's old code);
# XM100's Cusco Quechua (quz, asked for "in Quechua") is a member of the macrolanguage py3langid's `qu` model knows.
_SAME = [{"no", "nb", "nn"}, {"he", "iw"}, {"fil", "tl"}, {"ms", "id"}, {"qu", "quz"}]
MIN_LETTERS = 5  # shorter answers are not identified reliably: counted as too short, not checked


@lru_cache(maxsize=1)
def _identifier() -> Any:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as e:
        raise ImportError("the answered-in-language rate needs py3langid: pip install 'polyvlm[eval]'") from e
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> str:
    return str(_identifier().classify(text)[0])


def covers(language: str) -> bool:
    code = language.split("-")[0].lower()
    labels = set(_identifier().labels)
    return code in labels or any(code in g and labels & g for g in _SAME)


def same(expected: str, found: str) -> bool:
    a, b = expected.split("-")[0].lower(), found.split("-")[0].lower()
    return a == b or any(a in g and b in g for g in _SAME)


def language_rates(predictions: list[str], languages: list[str | None]) -> dict[str, Any]:
    """Per language: the share (x100) of predictions identified as that language among those long enough to
    identify, how many were checked, and which languages the identifier does not cover (`unchecked`)."""
    by: dict[str, list[bool]] = {}
    short: dict[str, int] = {}
    unchecked: set[str] = set()
    for text, lang in zip(predictions, languages):
        if not lang:
            continue
        if not covers(lang):
            unchecked.add(lang)
            continue
        if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
            short[lang] = short.get(lang, 0) + 1
            continue
        by.setdefault(lang, []).append(same(lang, identify(text)))
    return {"rate": {k: 100.0 * sum(v) / len(v) for k, v in sorted(by.items())},
            "checked": {k: len(v) for k, v in sorted(by.items())}, "too_short": dict(sorted(short.items())),
            "unchecked": sorted(unchecked), "identifier": "py3langid"}
