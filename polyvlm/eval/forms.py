"""Per-language forms for languages beyond the ones written in code: answer phrases, yes/no words, option letters
of other scripts and the instructions of polyvlm's own tasks, read once from polyvlm/eval/prompts/language_forms.yaml."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

KEYS = {"answer", "yes_words", "no_words", "own_only", "same_as", "mcq", "vqa", "yesno", "caption", "letters"}


@lru_cache(maxsize=1)
def forms() -> dict[str, dict[str, Any]]:
    """language -> its forms (see the file's header); a key the file does not know is an error naming it."""
    text = resources.files("polyvlm.eval").joinpath("prompts", "language_forms.yaml").read_text(encoding="utf-8")
    table = yaml.safe_load(text)
    for lang, entry in table.items():
        unknown = set(entry) - KEYS
        if unknown:
            raise ValueError(f"language_forms.yaml {lang}: unknown key(s) {sorted(unknown)} (known: {sorted(KEYS)})")
    return table


def extend(table: dict[str, Any], key: str, combine: Callable[[Any, Any], Any] | None = None) -> dict[str, Any]:
    """Add to `table` (language -> form) the languages the file gives `key` for, without replacing the ones in code;
    a language `same_as` another takes that language's form, combined with its own by `combine` when it has one."""
    for lang, entry in forms().items():
        if lang in table:
            continue
        base, own = table.get(entry.get("same_as", "")), entry.get(key)
        if base is None and own is None:
            continue
        table[lang] = own if base is None else base if own is None or combine is None else combine(base, own)
    return table


def sequences_of(table: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The distinct option-label sequences of a forms table's `letters` ({"А": "A", "Б": "B", ...}), one per script
    convention. A label given two places (Hindi क as A, Marathi क as C) is an error naming both languages: a reply
    could not be read."""
    place: dict[str, tuple[str, str]] = {}
    out: list[dict[str, str]] = []
    for lang, entry in table.items():
        letters = entry.get("letters")
        if letters is None:
            continue
        if not isinstance(letters, list) or not all(isinstance(x, str) and x.strip() for x in letters) \
                or len(set(letters)) != len(letters) or len(letters) > 26:
            raise ValueError(f"language_forms.yaml {lang}: letters must be a list of distinct labels, not {letters!r}")
        seq = {x: chr(65 + i) for i, x in enumerate(letters)}
        for x, latin in seq.items():
            if place.setdefault(x, (latin, lang))[0] != latin:
                raise ValueError(f"language_forms.yaml {lang}: letter {x} is {latin} here but "
                                 f"{place[x][0]} in {place[x][1]}")
        if seq not in out:
            out.append(seq)
    return out


def letter_sequences() -> list[dict[str, str]]:
    """The option-label sequences of polyvlm/eval/prompts/language_forms.yaml (see `sequences_of`)."""
    return sequences_of(forms())
