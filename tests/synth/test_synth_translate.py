"""translate: protected spans, and the checks catching a wrong language, a lost <image>, a changed number."""

from __future__ import annotations

import asyncio
import re

from synth_helpers import ScriptBackend, conv

from polyvlm.synth import textcheck
from polyvlm.synth.fake_server import SENTENCES, fake_translation
from polyvlm.synth.stages.base import StageContext
from polyvlm.synth.stages.translate import Translate, TranslateParams
from polyvlm.synth.templates import load_prompt

SRC = conv("t1", "How many apples are on the table? Options:\nA. 3\nB. 12\nSee https://example.org/fruit.",
           "There are 12 apples. The answer is B.")


def _source_text(req) -> str:
    return re.search(r"<text>\n(.*)\n</text>", req.messages[-1]["content"], re.S).group(1)


def translate(fn, image_dir, **params):
    backend = ScriptBackend(fn)
    p = TranslateParams(**{"languages": ["de"], "attempts": 2, **params})
    stage = Translate(p, StageContext(image_dir, backend, load_prompt("translate")))
    stage.warm()
    return asyncio.run(stage.process(SRC)), backend


def test_mask_roundtrip_and_numbers():
    text = "<image>\nSee `x = 1` and https://a.org/b?c=2.\nA. 1,000\n(B) 3.5"
    masked, spans = textcheck.mask(text)
    assert "<image>" not in masked and "https://" not in masked and "⟦0⟧" in masked
    assert textcheck.unmask(masked, spans) == (text, None)
    assert textcheck.unmask(masked.replace("⟦0⟧", ""), spans)[1] == "lost protected span '<image>'"
    assert textcheck.numbers("1,000 and ٣") == textcheck.numbers("1.000 y 3")


def test_good_translation_kept_with_placeholders_numbers_urls(image_dir):
    res, backend = translate(lambda r: fake_translation(_source_text(r), "de"), image_dir)
    assert res.status == "ok" and res.meta["translated"] == 1
    orig, de = res.outputs
    assert orig["id"] == "t1" and de["id"] == "t1-de" and de["language"] == "de" and de["translated_from"] == "en"
    user = de["conversations"][0]["value"]
    assert user.startswith("<image>") and "https://example.org/fruit" in user and "A." in user
    assert textcheck.numbers(user) == textcheck.numbers(SRC["conversations"][0]["value"])
    assert "Das Bild" in user
    assert "German" in backend.requests[0].messages[-1]["content"]


def test_wrong_language_rejected_with_reason(image_dir):
    res, backend = translate(lambda r: fake_translation(_source_text(r), "es"), image_dir)
    assert res.status == "rejected" and res.code == "wrong_language"
    assert "expected language de, identified es" in res.reason
    assert len(backend.requests) == 4  # 2 turns x 2 attempts


def test_lost_image_placeholder_rejected(image_dir):
    res, _ = translate(lambda r: fake_translation(_source_text(r).replace("⟦0⟧", ""), "de"), image_dir)
    assert res.status == "rejected" and res.code == "lost_placeholder" and "<image>" in res.reason


def test_changed_number_rejected(image_dir):
    res, _ = translate(lambda r: fake_translation(_source_text(r), "de").replace("12", "13"), image_dir)
    assert res.status == "rejected" and res.code == "number_changed" and "lost ['12']" in res.reason


def test_length_ratio_and_retry_then_success(image_dir):
    calls = []

    def flaky(req):
        calls.append(req.temperature)
        src = _source_text(req)
        return "⟦0⟧ kurz" if len(calls) == 1 else fake_translation(src, "de")

    res, _ = translate(flaky, image_dir, languages=["de"])
    assert res.status == "ok" and calls[0] == 0.0 and 0.3 in calls[1:]  # the retry samples
    res, _ = translate(lambda r: fake_translation(_source_text(r), "de") + " " + SENTENCES["de"] * 20, image_dir)
    assert res.status == "rejected" and res.code == "length_ratio"


def test_partial_languages_and_same_language_skipped(image_dir):
    def by_target(req):
        target = "de" if "German" in req.messages[-1]["content"] else "sw"
        src = _source_text(req)
        return fake_translation(src, "en" if target == "sw" else "de")  # Swahili comes back in English

    res, _ = translate(by_target, image_dir, languages=["de", "sw", "en"], keep_original=False)
    assert res.status == "ok" and [o["language"] for o in res.outputs] == ["de"]
    assert res.meta["rejections"][0][0] == "wrong_language"
    assert SENTENCES["sw"]  # the canned table has the languages the demo uses
