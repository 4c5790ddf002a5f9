"""Answered in the question's language: the share of open-ended predictions identified (polyvlm.data.langs,
py3langid) as their question's language, per language, with the languages it cannot tell reported as unchecked
rather than passed."""

from __future__ import annotations

from typing import Any

from polyvlm.data.langs import language_status

MIN_LETTERS = 5  # shorter answers are not identified reliably: counted as too short, not checked


def language_rates(predictions: list[str], languages: list[str | None]) -> dict[str, Any]:
    """Per language: the share (x100) of predictions identified as that language among those long enough to
    identify, how many were checked, and which languages the identifier does not cover (`unchecked`)."""
    by: dict[str, list[bool]] = {}
    short: dict[str, int] = {}
    unchecked: set[str] = set()
    for text, lang in zip(predictions, languages):
        if not lang:
            continue
        status, _ = language_status(text, lang, MIN_LETTERS)
        if status == "unchecked":
            unchecked.add(lang)
        elif status == "too_short":
            short[lang] = short.get(lang, 0) + 1
        else:
            by.setdefault(lang, []).append(status == "ok")
    return {"rate": {k: 100.0 * sum(v) / len(v) for k, v in sorted(by.items())},
            "checked": {k: len(v) for k, v in sorted(by.items())}, "too_short": dict(sorted(short.items())),
            "unchecked": sorted(unchecked), "identifier": "py3langid"}
