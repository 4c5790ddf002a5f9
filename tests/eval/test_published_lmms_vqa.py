"""ChartQA, DocVQA and InfographicVQA as lmms-eval reads and scores them (EvolvingLMMs-Lab/lmms-eval at 3b686384),
beside polyvlm's robust scores. Official rules worked out by hand from:
- lmms_eval/tasks/chartqa/utils.py relaxed_correctness: float() of both (a trailing % is /100); a number within 5%
  of a non-zero target, else lower-cased strings equal; chartqa.yaml: "\\nAnswer the question with a single word.";
- lmms_eval/api/metrics.py anls: distance of the normalised texts over the longer raw length, 1 - the least
  distance over the row's answers, below 0.5 -> 0 (0.5 stays); lmms_eval/api/task.py process_results hands anls every
  answer at once (`if self.multiple_target and metric != "anls"`, since b5c99bc2 "[Fix] ... anls agg", Nov 2024, in
  v0.3.0 and at 75571cfe): the best answer's ANLS, not 1.0 for any answer within the threshold (the rule at
  3b686384); lmms_eval/api/task.py strips generate_until results first;
- lmms_eval/tasks/docvqa/_default_template_docvqa_yaml and infovqa/_default_template_infovqa_yaml: lmms-lab/DocVQA
  configs DocVQA and InfographicVQA, split validation, "\\nAnswer the question using a single word or phrase."."""

from __future__ import annotations

from pathlib import Path

import pytest
from mammoth_fixtures import chartqa_repo, docvqa_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.tasks.docvqa import lmms_anls


def test_chartqa_relaxed_correctness_quirks(tmp_path: Path, data: Path) -> None:  # noqa: F811
    chartqa_repo(data, [("human_test", "What is the peak?", "12"), ("human_test", "Lowest value?", "0"),
                        ("human_test", "Total?", "1000"), ("human_test", "Is it rising?", "Yes"),
                        ("augmented_test", "Share of A?", "45"), ("augmented_test", "Which country?", "Brazil"),
                        ("augmented_test", "Value in 2010?", "17")])
    preds = ["12.5",  # 4.2% off: both right
             "0.0",  # a zero target is compared as text: official 0; robust 0 == 0
             "1,000",  # float() refuses the comma: text "1,000" != "1000"; robust 1000
             "yes",  # lower-cased text: both right
             "45%",  # read as 0.45: both wrong
             "Brazil.",  # the full stop stays: official 0; robust normalised
             " 17 "]  # stripped first: both right
    t = run(tmp_path, "chartqa", [{"task": "chartqa", "split": "test", "row": i, "prediction": p}
                                  for i, p in enumerate(preds)])["tasks"]["chartqa"]
    assert t["official"]["metric"] == "relaxed_overall"
    assert t["official"]["overall"] == pytest.approx(100 * 3 / 7)
    assert t["metrics"]["relaxed_accuracy"]["overall"] == pytest.approx(100 * 6 / 7)
    assert sorted(t["official"]["disagree"]) == ["test/1", "test/2", "test/5"]
    assert t["metrics"]["relaxed_accuracy"]["by_category"] == {"augmented_test": pytest.approx(200 / 3),
                                                               "human_test": 100.0}
    rows = samples(tmp_path, "chartqa")
    assert rows["test/0"]["input"] == "What is the peak?\nAnswer the question with a single word."
    assert t["config"]["max_new_tokens"] == 16


def test_lmms_anls_counts_raw_lengths_and_keeps_one_half() -> None:
    assert lmms_anls("abcd", "abxy") == 0.5  # 1 - 2/4 is not below 0.5
    assert lmms_anls("ab      ", "xy") == pytest.approx(0.75)  # distance 2 over the raw length 8
    assert lmms_anls("Paris", "  paris ") == 1.0
    assert lmms_anls("x", "") == 0.0


def test_docvqa_val_scores_a_row_by_its_best_answer_anls(tmp_path: Path, data: Path) -> None:  # noqa: F811
    docvqa_repo(data, "DocVQA", [("What is the code?", ["abcd"]),
                                 ("Which university?", ["University of Texas", "UT"]),
                                 ("Which city?", ["Paris"]), ("What item?", ["ab      "]), ("Page?", ["x"])])
    preds = ["abxy", "university of texas at austin", "London", "xy", ""]
    t = run(tmp_path, "docvqa_val", [{"task": "docvqa_val", "split": "validation", "row": i, "prediction": p}
                                     for i, p in enumerate(preds)])["tasks"]["docvqa_val"]
    # official: 0.5 (kept), 19/29 (the best of the two answers), 0, 0.75 (raw length 8), 0: graded, not 1.0 per row
    assert t["official"]["metric"] == "anls"
    assert t["official"]["overall"] == pytest.approx(100 * (0.5 + 19 / 29 + 0.75) / 5)
    # robust ANLS: 0.5 is not below the threshold only officially; 1 - 10/29; the spaces do not count
    assert t["metrics"]["anls"]["overall"] == pytest.approx(100 * (19 / 29) / 5)
    rows = samples(tmp_path, "docvqa_val")
    assert rows["validation/0"]["input"] == "What is the code?\nAnswer the question using a single word or phrase."
    assert rows["validation/1"]["scores"]["official"] == pytest.approx(19 / 29)


def test_infovqa_val_reads_the_infographicvqa_config(tmp_path: Path, data: Path) -> None:  # noqa: F811
    docvqa_repo(data, "DocVQA", [("Unused?", ["no"])])  # the other config of the same repo
    docvqa_repo(data, "InfographicVQA", [("How many?", ["25", "twenty five"]), ("Which year?", ["2019"])])
    t = run(tmp_path, "infovqa_val", [{"task": "infovqa_val", "split": "validation", "row": 0, "prediction": "25%"},
                                      {"task": "infovqa_val", "split": "validation", "row": 1, "prediction": "2018"}]
            )["tasks"]["infovqa_val"]
    # "25%": 1 - 1/3 against "25" (the better answer); "2018": 1 - 1/4; neither lifted to 1.0
    assert t["official"]["overall"] == pytest.approx(100 * (2 / 3 + 3 / 4) / 2) and t["n"] == 2
    assert t["metrics"]["anls"]["overall"] == pytest.approx(100 * (2 / 3 + 3 / 4) / 2)
