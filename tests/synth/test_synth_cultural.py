"""Pangea's cultural pipeline: media_filter (size, aspect, alt-text, pHash duplicates), score, recaption."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from PIL import Image
from synth_helpers import ScriptBackend

from polyvlm.synth.fake_server import SENTENCES
from polyvlm.synth.stages.base import StageContext
from polyvlm.synth.stages.cultural import (
    MediaFilter,
    MediaFilterParams,
    Recaption,
    RecaptionParams,
    Score,
    ScoreParams,
)
from polyvlm.synth.templates import load_prompt


def _noise(path, w, h, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8)).resize((w, h)).save(path)


def test_media_filter_checks_and_phash_duplicates(tmp_path):
    _noise(tmp_path / "ok.png", 400, 300, 0)
    _noise(tmp_path / "ok_copy.jpg", 400, 300, 0)  # same picture, other file and format
    _noise(tmp_path / "other.png", 400, 300, 1)
    _noise(tmp_path / "small.png", 200, 300, 2)
    _noise(tmp_path / "wide.png", 1600, 400, 3)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    recs = [
        {"id": "ok", "image": "ok.png", "alt_text": "Street market in Nairobi with fresh mangoes", "language": "en"},
        {"id": "copy", "image": "ok_copy.jpg", "alt_text": "Mangoes at a market stall in Kenya today"},
        {"id": "other", "image": "other.png", "alt_text": "Soko la matunda mjini Nairobi asubuhi na mapema"},
        {"id": "small", "image": "small.png", "alt_text": "A small picture of something"},
        {"id": "wide", "image": "wide.png", "alt_text": "A panorama of the coast"},
        {"id": "short", "image": "ok.png", "alt_text": "img"},
        {"id": "broken", "image": "broken.png", "alt_text": "Broken file here"},
    ]
    stage = MediaFilter(MediaFilterParams(), StageContext(tmp_path))
    stage.warm()
    results = {r["id"]: asyncio.run(stage.process(r)) for r in recs}
    assert {k: v.code for k, v in results.items() if v.status != "ok"} == {
        "small": "image_size", "wide": "aspect_ratio", "short": "alt_text_length", "broken": "media_unreadable"}
    assert results["other"].outputs[0]["language"] == "sw"  # identified from the alt-text
    passed = [r.outputs[0] for r in results.values() if r.status == "ok"]
    kept, dropped = [], []
    stage.reduce(lambda: iter(passed), kept.append, lambda r, c, why: dropped.append((r["id"], c)))
    assert len(kept) == 2 and "other" in {r["id"] for r in kept}
    assert len(dropped) == 1 and dropped[0][1] == "phash_duplicate" and dropped[0][0] in ("ok", "copy")


def test_score_and_recaption(image_dir):
    rec = {"id": "p1", "image": "red.png", "alt_text": "Soko la matunda mjini Nairobi asubuhi", "language": "sw"}
    score = Score(ScoreParams(min_score=3), StageContext(image_dir, ScriptBackend(
        lambda r: '{"informativeness": 4, "topic": "market", "country": "Kenya"}'), load_prompt("score")))
    res = asyncio.run(score.process(rec))
    assert res.status == "ok" and res.outputs[0]["country"] == "Kenya" and res.outputs[0]["informativeness"] == 4
    low = Score(ScoreParams(min_score=3), StageContext(image_dir, ScriptBackend(
        lambda r: '{"informativeness": 1, "topic": "logo", "country": "none"}'), load_prompt("score")))
    assert asyncio.run(low.process(rec)).code == "low_informativeness"

    sw = SENTENCES["sw"]
    reply = {"caption_prompt": "Eleza picha hii kwa undani.", "caption": sw,
             "pairs": [{"question": "Watu wanafanya nini?", "answer": sw}]}
    backend = ScriptBackend(lambda r: json.dumps(reply, ensure_ascii=False))
    stage = Recaption(RecaptionParams(n=1), StageContext(image_dir, backend, load_prompt("recaption")))
    stage.warm()
    res = asyncio.run(stage.process(res.outputs[0]))
    out = res.outputs[0]
    assert res.status == "ok" and out["id"] == "p1-cap" and out["language"] == "sw" and out["image"] == "red.png"
    assert out["conversations"][0]["value"].startswith("<image>\n") and len(out["conversations"]) == 4
    prompt = backend.requests[0].messages[-1]["content"]
    assert "Swahili" in prompt and "Kenya" in prompt and "market" in prompt and backend.requests[0].images
    english = ScriptBackend(lambda r: json.dumps({**reply, "caption": SENTENCES["en"]}))
    stage = Recaption(RecaptionParams(n=1), StageContext(image_dir, english, load_prompt("recaption")))
    res = asyncio.run(stage.process(rec))
    assert res.status == "rejected" and res.code == "wrong_language" and "identified en" in res.reason


def test_recaption_checks_quechua_through_the_shared_identifier(image_dir):
    """A record in Cusco Quechua (`quz`, as XM100 writes it): py3langid's `qu` model checks its caption (the
    identifier the eval metrics use), so it is neither passed unchecked nor refused; an English caption is refused."""
    rec = {"id": "q1", "image": "red.png", "alt_text": "Huk qhari tiyanapi tiyachkan.", "language": "quz"}

    def recaption(caption):
        reply = {"caption_prompt": "Willay.", "caption": caption, "pairs": []}
        backend = ScriptBackend(lambda r: json.dumps(reply, ensure_ascii=False))
        return asyncio.run(Recaption(RecaptionParams(n=0), StageContext(image_dir, backend, load_prompt("recaption")))
                           .process(rec))

    res = recaption("Huk qhari tiyanapi tiyachkan wasi ukhupi.")
    assert res.status == "ok" and "language_check" not in res.outputs[0]
    res = recaption(SENTENCES["en"])
    assert res.status == "rejected" and res.code == "wrong_language" and "expected language quz, identified en" in res.reason
