"""TyDi QA GoldP from google-research-datasets/tydiqa (`secondary_task`, validation), scored per language with the
SQuAD v1.1 evaluation script's rules that GoldP uses (evaluate-v1.1.py: normalize_answer = lower, drop ASCII
punctuation, drop a/an/the, collapse spaces; F1 over whitespace tokens; max over the gold spans)."""

from __future__ import annotations

from pathlib import Path

import pytest
from published_fixtures import tydiqa_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.tasks import SUITES, TaskError, resolve
from polyvlm.eval.tasks.tydiqa import squad_f1_one, squad_normalize

ROWS = [("english-1-1", "The Eiffel Tower is in Paris.", "Where is the Eiffel Tower?", ["Paris", "in Paris"]),
        ("english-2-1", "It opened in 1889.", "When did it open?", ["1889"]),
        ("english-3-1", "Anna Smith wrote it.", "Who wrote it?", ["Anna Smith"]),
        ("japanese-4-1", "首都は東京です。", "日本の首都は？", ["東京"]),
        ("thai-5-1", "เมืองหลวงคือกรุงเทพมหานคร", "เมืองหลวงคืออะไร", ["กรุงเทพมหานคร"]),
        ("arabic-6-1", "عاصمة مصر القاهرة", "ما عاصمة مصر؟", ["القاهرة"])]


def test_squad_rules() -> None:
    assert squad_normalize("The  Eiffel-Tower!") == "eiffeltower"  # "-" is ASCII punctuation: removed, no space
    assert squad_normalize("東京。") == "東京。"  # full-width punctuation is not string.punctuation
    assert squad_f1_one("Anna", "Anna Smith") == pytest.approx(2 / 3)  # P 1, R 1/2


def test_tydiqa_official_f1_per_language_beside_the_robust_reading(tmp_path: Path, data: Path) -> None:  # noqa: F811
    tydiqa_repo(data, ROWS)
    preds = ["The city of Paris.",  # vs "in Paris": P 1/3 ("city of paris"), R 1/2 -> 0.4; vs "Paris": 0.5 -> max 0.5
             "1889",  # EM
             "anna",  # P 1, R 1/2 -> F1 2/3, EM 0
             "東京。",  # one token "東京。" != "東京": F1 0, EM 0 (robust: per-character tokens, 。 dropped -> 1)
             "กรุงเทพ",  # unspaced Thai: one token, no overlap -> 0 (robust: per character, partial)
             "القاهرة."]  # "." is ASCII punctuation -> EM 1
    records = [{"task": "tydiqa", "split": "validation", "row": i, "prediction": p} for i, p in enumerate(preds)]
    t = run(tmp_path, "tydiqa", records)["tasks"]["tydiqa"]
    assert t["official"]["metric"] == "f1"
    assert t["official"]["by_language"] == pytest.approx({"ar": 100.0, "en": 100 * (0.5 + 1 + 2 / 3) / 3,
                                                         "ja": 0.0, "th": 0.0})
    assert t["metrics"]["squad_em"]["by_language"] == pytest.approx({"ar": 100.0, "en": 100 / 3, "ja": 0.0,
                                                                      "th": 0.0})
    assert t["metrics"]["token_f1"]["by_language"]["ja"] == 100.0
    assert 0 < t["metrics"]["token_f1"]["by_language"]["th"] < 100
    rows = samples(tmp_path, "tydiqa")
    assert rows["validation/3"]["official_answer"] == "東京。"
    assert rows["validation/0"]["input"].endswith("Question: Where is the Eiffel Tower?\nAnswer:")
    assert "tydiqa" in SUITES["pangeabench_text"]


def test_tydiqa_rejects_an_id_without_a_language(tmp_path: Path, data: Path) -> None:  # noqa: F811
    tydiqa_repo(data, [("klingon-1-1", "c", "q", ["a"])])
    with pytest.raises(TaskError, match=r"row 0.*'klingon-1-1' does not start with a TyDi QA language"):
        resolve(["tydiqa"])[0][0].samples()
