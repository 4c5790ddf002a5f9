"""Language identification (polyvlm.data.langs, py3langid): the one identifier the eval metrics and the synth
stages share, with the union of the equivalences they kept apart before, and "unchecked" where py3langid has no
model (py3langid/langid.py's 140 codes; Sundanese and Maori are not among them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from polyvlm.data.langs import SAME_LANGUAGE, identifies, language_status, same_language

PKG = Path(__file__).resolve().parents[2] / "polyvlm"


def test_py3langid_is_wrapped_once() -> None:
    users = set()
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "py3langid" for n in names):
                users.add(str(path.relative_to(PKG.parent)))
    assert users == {"polyvlm/data/langs.py"}


@pytest.mark.parametrize(("expected", "found"), [
    ("no", "da"), ("nb", "no"), ("hr", "sr"), ("bs", "hr"), ("id", "ms"), ("yue", "zh"), ("zh-Hant", "wuu"),
    ("arz", "ar"), ("ar", "ary"), ("fil", "tl"), ("tl", "fil"), ("iw", "he"), ("he", "he"), ("quz", "qu"),
    ("urdu", "ur"), ("zh_simplified", "zh"),
])
def test_identifications_that_count_as_the_expected_language(expected: str, found: str) -> None:
    assert same_language(expected, found)


@pytest.mark.parametrize(("expected", "found"), [("no", "sv"), ("zh", "ja"), ("ms", "jv"), ("ar", "fa"), ("qu", "es")])
def test_other_languages_do_not(expected: str, found: str) -> None:
    assert not same_language(expected, found)


def test_groups_are_disjoint_and_uncovered_languages_are_unchecked() -> None:
    assert sum(len(g) for g in SAME_LANGUAGE) == len(set().union(*SAME_LANGUAGE))
    assert all(identifies(x) for x in ("nb", "iw", "fil", "quz", "sh", "zh-Hant", "urdu", "swahili"))
    assert language_status("Abdi resep pisan kana kadaharan ieu.", "su") == \
        ("unchecked", "no language identifier covers su")
    assert language_status("He kurī e oma ana i te one.", "mi")[0] == "unchecked"
    assert language_status("ok", "de") == ("too_short", None) and language_status("ok", "de", 2)[0] == "wrong"
