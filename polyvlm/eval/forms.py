"""Per-language forms for languages beyond the ones written in code: answer phrases, yes/no words and the
instructions of polyvlm's own tasks, read once from polyvlm/eval/prompts/language_forms.yaml."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

KEYS = {"answer", "yes_words", "no_words", "own_only", "same_as", "mcq", "vqa", "yesno", "caption"}


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
