"""MMMLU read from openai/MMMLU's per-locale CSVs and scored as lm-evaluation-harness' `openai-mmmlu` tasks do
(lm_eval/tasks/openai-mmmlu/default/_default_template_yaml, _generate_configs.py, default/utils.py): log-likelihood
of the letters on a checkpoint, a generated letter from an endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_fakes import tiny_checkpoint
from published_fixtures import mmmlu_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.backends import GeneratorBackend
from polyvlm.eval.loglik import choice_logliks
from polyvlm.eval.runner import evaluate
from polyvlm.eval.tasks import SUITES, resolve

LOCALES = {
    "AR_XY": [("  ما هو ناتج ٢ + ٢؟ ", ["٣", "٤", "٥", "٦"], "B", "elementary_mathematics"),
              ("ما هي عاصمة فرنسا؟", ["برلين", "مدريد", "باريس", "روما"], "C", "high_school_geography")],
    "SW_KE": [("Ni nini 3 x 3?", ["6", "9", "12", "3"], "B", "college_mathematics_test.csv_sw-KE.csv"),
              ("Swali lisilo na somo", ["a", "b", "c", "d"], "A", "not_a_subject")],  # lm-eval drops this row
    "ZH_CN": [("水的化学式是什么？", ["H2O", "CO2", "O2", "NaCl"], "A", "high_school_chemistry")],
}


def test_mmmlu_reads_the_locale_csvs_as_lm_eval(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmmlu_repo(data, LOCALES)
    task = resolve(["mmmlu"])[0][0]
    got = {s.id: s for s in task.samples()}
    assert sorted(got) == ["AR_XY/0", "AR_XY/1", "SW_KE/0", "ZH_CN/0"]  # SW_KE row 1: not one of the 57 subjects
    ar = got["AR_XY/0"]
    assert ar.language == "ar" and ar.target == "B" and ar.category == "elementary_mathematics"
    # description (_generate_configs.py) + doc_to_text with Question.strip()
    assert ar.extra["context"] == ("The following are multiple choice questions (with answers) about elementary "
                                   "mathematics (Arabic).\n\nما هو ناتج ٢ + ٢؟\nA. ٣\nB. ٤\nC. ٥\nD. ٦\nAnswer:")
    assert got["SW_KE/0"].category == "college_mathematics"  # utils.py strips "_test.csv..." from Subject
    assert "college mathematics (Swahili)" in got["SW_KE/0"].extra["context"]
    assert "mmmlu" in SUITES["pangeabench_text"]


def test_mmmlu_loglikelihood_on_a_checkpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    import polyvlm

    mmmlu_repo(data, LOCALES)
    generator = polyvlm.load_generator(str(tiny_checkpoint(tmp_path / "ckpt")))
    tasks, _ = resolve(["mmmlu"])
    res = evaluate(tasks, tmp_path / "out", backend=GeneratorBackend(generator, 2))
    assert res is not None
    t = res["tasks"]["mmmlu"]
    assert t["scored_by"].startswith("loglikelihood") and t["official"]["metric"] == "acc"
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "samples_mmmlu.jsonl").read_text().splitlines())}
    llm, tok = generator.model.llm, generator.processor.tokenizer
    accs = []
    for s in tasks[0].samples():
        lls = json.loads(rows[s.id]["prediction"])
        assert lls == pytest.approx(choice_logliks(llm, tok, s.extra["context"], ["A", "B", "C", "D"]), abs=1e-5)
        acc = float(max(range(4), key=lambda i: (lls[i], -i)) == "ABCD".index(s.target))
        accs.append(acc)
        # lm-eval's acc_norm divides by len(choice) = 1 character: the same as acc for letter choices
        assert rows[s.id]["scores"]["acc_norm"] == acc
    assert t["official"]["overall"] == pytest.approx(100 * sum(accs) / len(accs))


def test_mmmlu_from_an_endpoint_is_read_from_the_reply(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmmlu_repo(data, LOCALES)
    records = [{"task": "mmmlu", "split": "AR_XY", "row": 0, "prediction": "B"},
               {"task": "mmmlu", "split": "AR_XY", "row": 1, "prediction": "The answer is D"},
               {"task": "mmmlu", "split": "SW_KE", "row": 0, "prediction": "Jibu: B"},
               {"task": "mmmlu", "split": "ZH_CN", "row": 0, "prediction": "答案是A"}]
    t = run(tmp_path, "mmmlu", records)["tasks"]["mmmlu"]
    assert t["scored_by"].startswith("generation") and "official" not in t
    assert t["metrics"]["accuracy"]["by_language"] == {"ar": 50.0, "sw": 100.0, "zh": 100.0}
    assert samples(tmp_path, "mmmlu")["ZH_CN/0"]["input"].startswith("水的化学式是什么？\nA. H2O")
