"""Language identification through py3langid: the languages polyvlm's tasks use are covered (langid.py
lacked Igbo, Yoruba, Hausa...), and a language no identifier covers is reported "unchecked", never passed."""

from __future__ import annotations

import re

import pytest
from test_synth_translate import _source_text, translate

from polyvlm.data import langs

# Pangea's 39 languages (PangeaIns / PangeaBench) less Sundanese, which no packaged identifier knows
COVERED = ("am ar bg bn cs de el en es fa fr ga he hi id ig it ja jv ko mn ms nl no pl pt ro ru si sw ta te th "
           "tr uk ur vi zh ha yo").split()

SENTENCES = {
    "yo": "Mo fẹ́ràn oúnjẹ yìí gan-an ni, ó dùn púpọ̀ ju ti àná lọ.",
    "ig": "Achọrọ m iri nri a n'ihi na ọ na-atọ ezigbo ụtọ karịa nke ụnyaahụ.",
    "ha": "Ina son wannan abincin sosai saboda yana da daɗi fiye da na jiya.",
    "sw": "Soko la matunda mjini Nairobi asubuhi na mapema",
}


def test_the_identifier_covers_the_task_languages():
    assert [lang for lang in COVERED if not langs.identifies(lang)] == []
    assert langs.identifies("zh-Hant") and not langs.identifies("su")


@pytest.mark.parametrize("lang", list(SENTENCES))
def test_low_resource_languages_are_identified(lang):
    assert langs.language_status(SENTENCES[lang], lang) == ("ok", None)
    status, reason = langs.language_status(SENTENCES[lang], "en")
    assert status == "wrong" and f"identified {lang}" in reason


def test_uncovered_language_is_unchecked_not_passed():
    sundanese = "Abdi resep pisan kana kadaharan ieu sabab raosna langkung ti kamari."
    assert langs.language_status(sundanese, "su") == ("unchecked", "no language identifier covers su")
    assert langs.language_status("ok", "de") == ("too_short", None)


def test_translation_into_an_uncovered_language_is_marked_unchecked(image_dir, caplog):
    def reply(req):  # a translation the identifier cannot check: kept, and marked so
        return _source_text(req)

    res, _ = translate(reply, image_dir, languages=["su", "de"], attempts=1)
    assert "no language identifier covers su" in caplog.text
    out = {r["id"]: r for r in res.outputs}
    assert out["t1-su"]["language_check"] == "unchecked"
    assert "t1-de" not in out  # German was checked: the English reply is refused
    code, reason = res.meta["rejections"][0]
    assert code == "wrong_language" and re.search(r"expected language de, identified en", reason)
