"""FLORES from openlanguagedata/flores_plus's per-language parquet configs, English -> X, scored with sacrebleu's
corpus chrF++ per language (sacrebleu/metrics/chrf.py, CHRF(word_order=2)), checked against sacrebleu itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import sacrebleu
from published_fixtures import flores_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.tasks import SUITES, TaskError, resolve

SENTENCES = {
    "eng_Latn": ["The cat sleeps on the warm roof.", "Water boils at 100 degrees."],
    "deu_Latn": ["Die Katze schläft auf dem warmen Dach.", "Wasser kocht bei 100 Grad."],
    "cmn_Hans": ["猫在温暖的屋顶上睡觉。", "水在100度沸腾。"],
}


def test_flores_chrf_pp_per_language_as_sacrebleu(tmp_path: Path, data: Path) -> None:  # noqa: F811
    flores_repo(data, SENTENCES)
    preds = {("deu_Latn", 0): "  Die Katze schläft auf dem warmen Dach. ",  # stripped: a perfect 100
             ("deu_Latn", 1): "Wasser kocht bei hundert Grad.",  # a number written out: partial credit
             ("cmn_Hans", 0): "猫在温暖的屋顶上睡觉",  # no full stop: characters still match
             ("cmn_Hans", 1): "Water boils at 100 degrees."}  # wrong language: only "100" and "." match
    t = run(tmp_path, "flores", [{"task": "flores", "split": s, "row": r, "prediction": p}
                                 for (s, r), p in preds.items()])["tasks"]["flores"]
    assert t["official"]["metric"] == "chrf++"
    for config, lang in (("deu_Latn", "de"), ("cmn_Hans", "zh")):
        hyps = [preds[(config, i)].strip() for i in range(2)]
        expected = sacrebleu.corpus_chrf(hyps, [SENTENCES[config]], word_order=2).score
        assert t["official"]["by_language"][lang] == pytest.approx(expected, abs=1e-9)
    assert t["official"]["by_language"]["de"] > t["official"]["by_language"]["zh"] > 0
    # chrF++ counts word unigrams and bigrams too: not plain chrF (87.05 here)
    assert t["official"]["by_language"]["de"] != pytest.approx(sacrebleu.corpus_chrf(
        [preds[("deu_Latn", i)].strip() for i in range(2)], [SENTENCES["deu_Latn"]]).score, abs=0.01)
    rows = samples(tmp_path, "flores")
    assert rows["deu_Latn/0"]["scores"]["official"] == 1.0
    # the corpus score pools the statistics: not the mean of the sentence scores (100 and 69.02 -> 84.51)
    sentence_mean = 50 * (rows["deu_Latn/0"]["scores"]["official"] + rows["deu_Latn/1"]["scores"]["official"])
    assert sentence_mean == pytest.approx(84.51, abs=0.01) and t["official"]["by_language"]["de"] == pytest.approx(
        87.33, abs=0.01)
    assert rows["cmn_Hans/1"]["input"] == ("Translate the following sentence from English to Chinese (Simplified). "
                                           "Reply with the translation only.\nWater boils at 100 degrees.")
    assert "flores" in SUITES["pangeabench_text"]
    # translations identified (py3langid) as their target language: the English reply to the Chinese row is not
    assert t["answered_in_language"]["rate"] == {"de": 100.0, "zh": 50.0}


def test_flores_rows_must_align_with_the_english_source(tmp_path: Path, data: Path) -> None:  # noqa: F811
    flores_repo(data, SENTENCES, ids={"deu_Latn": [1, 7]})
    with pytest.raises(TaskError, match=r"deu_Latn.*row 1.*id 7 is not aligned"):
        resolve(["flores"])[0][0].samples()
