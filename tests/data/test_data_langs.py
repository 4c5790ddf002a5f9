"""Language tag normalisation to BCP-47."""

from __future__ import annotations

import pytest

from polyvlm.data.langs import normalize_language


@pytest.mark.parametrize(("raw", "tag"), [
    ("zh_simplified", "zh-Hans"), ("urdu", "ur"), ("zh", "zh"), ("en", "en"), ("EN", "en"), ("pt_BR", "pt-BR"),
    ("zh-tw", "zh-TW"), ("Chinese_Traditional", "zh-Hant"), ("eng", "en"), ("iw", "he"), ("no", "no"),
    ("sr-latn-rs", "sr-Latn-RS"), ("fil", "fil"), ("Japanese", "ja"),
    # FLORES-200 codes (language_Script) name individual languages: their macrolanguage and default script go
    ("swh_Latn", "sw"), ("arb_Arab", "ar"), ("zsm_Latn", "ms"), ("pes_Arab", "fa"), ("zho_Hans", "zh-Hans"),
    ("npi_Deva", "ne"), ("swh", "sw"), ("arb", "ar"), ("cmn", "zh"), ("tgl", "fil"), ("tl", "fil"),
])
def test_normalised(raw: str, tag: str) -> None:
    assert normalize_language(raw) == (tag, None)


@pytest.mark.parametrize(("raw", "tag", "code"), [
    ("kr", "kr", "language_ambiguous"), ("jp", None, "language_ambiguous"), (None, None, "language_missing"),
    ("  ", None, "language_missing"), ("xx", "xx", "language_unknown"), ("english (US)", None, "language_invalid"),
    (3, None, "language_invalid"), ("simplified", None, "language_invalid"), ("sh", None, "language_ambiguous"),
    ("xyz", "xyz", "language_unknown"),
])
def test_flagged(raw: object, tag: str | None, code: str) -> None:
    got, problem = normalize_language(raw)  # type: ignore[arg-type]
    assert got == tag and problem is not None and problem.code == code and str(problem)

