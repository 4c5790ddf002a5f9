"""BLINK as lmms-eval reads and scores it (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/blink/, added in fcd18a73 and
read at 75571cfe): _default_template_yaml's pre prompt "Note: You only need to respond with {letters} ..." before
the row's `prompt`; utils.py _extract_answer_letter (the first letter after any "(" or space, any case) against
answer.strip("()"); blink.yaml's aggregate_metric_list without weight_by_size: the plain mean of the subtasks."""

from __future__ import annotations

from pathlib import Path

import pytest
from mammoth_fixtures import blink_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

COUNT = "How many blue floaters are there?\nSelect from the following choices.\n(A) 2\n(B) 3\n(C) 4\n(D) 5"
JIGSAW = "Which image completes the first one?\nSelect from the following choices.\n(A) the second image\n(B) the third image"


def test_blink_first_letter_rule_and_mean_over_subtasks(tmp_path: Path, data: Path) -> None:  # noqa: F811
    blink_repo(data, {"Counting": [(["2", "3", "4", "5"], "(B)", COUNT, 1), (["2", "3", "4", "5"], "(A)", COUNT, 1)],
                      "Jigsaw": [(["the second image", "the third image"], "(B)", JIGSAW, 3)]})
    preds = [("Counting", 0, "(B)"), ("Counting", 1, "The answer is A"),  # read as T: wrong; robust A
             ("Jigsaw", 0, "b")]  # any case
    t = run(tmp_path, "blink", [{"task": "blink", "split": s, "row": r, "prediction": p} for s, r, p in preds]
            )["tasks"]["blink"]
    assert t["official"]["metric"] == "blink_acc"
    assert t["official"]["overall"] == pytest.approx(100 * (1 / 2 + 1) / 2)  # not the pooled 2/3
    assert t["metrics"]["accuracy"]["overall"] == 100.0 and t["official"]["disagree"] == ["Counting/1"]
    rows = samples(tmp_path, "blink")
    assert rows["Counting/0"]["input"] == ("Note: You only need to respond with A, B, C, D without providing any "
                                           "additional information.\n" + COUNT)
    assert rows["Jigsaw/0"]["input"].startswith("Note: You only need to respond with A, B without")
    assert len(rows["Jigsaw/0"]["images"]) == 3 and rows["Counting/1"]["official_answer"] == "T"
