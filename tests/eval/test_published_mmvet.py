"""MM-Vet as lmms-eval reads and scores it (EvolvingLMMs-Lab/lmms-eval at 3b686384, lmms_eval/tasks/mmvet/):
mmvet.yaml's pre prompt; utils.py mmvet_process_results (f"{MM_VET_PROMPT}\\n{question} | {answer with spaced <AND>
and <OR>} | {pred} |" sent to the grader, its reply's first space-separated piece read as a float in [0, 1]) and
mmvet_aggregate_results (mean x 100); here a scripted grader stands in for GPT-4."""

from __future__ import annotations

from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from mammoth_fixtures import mmvet_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

ROWS = [("What is x in the equation?", "-1<AND>-5", "ocr,math"),
        ("What color is the car?", "red<OR>crimson", "rec"),
        ("Can you explain this meme?", "It mocks the names of Iceland and Greenland.", "rec,know,gen"),
        ("How many apples are there?", "3", "rec,math")]
PREDICTIONS = ["x = -1", "It is crimson.", "A joke about names.", "three"]
GRADES = {"x = -1": "0.5", "It is crimson.": "1.0 The prediction names the colour.",
          "A joke about names.": "Correctness: 0.3",  # the first piece is not a number: unreadable
          "three": "1.5"}  # out of range: unreadable


def scripted(prompt: str) -> str:
    return GRADES[prompt.removesuffix(" |").rsplit(" | ", 1)[1]]


def records() -> list[dict]:
    return [{"task": "mmvet", "split": "test", "row": i, "prediction": p} for i, p in enumerate(PREDICTIONS)]


def test_mmvet_official_grades_from_the_judge(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmvet_repo(data, ROWS)
    with ScriptedJudge(scripted) as judge:
        t = run(tmp_path, "mmvet", records(), "--judge", judge.url)["tasks"]["mmvet"]
    assert t["official"]["metric"] == "gpt_eval_score" and t["official"]["overall"] == pytest.approx(37.5)
    assert t["official"]["note"].startswith("2 grade(s) unreadable")
    # the rule reading: half of "-1 <AND> -5", "crimson" of the <OR>, nothing else
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(37.5)
    sent = next(p for p in judge.prompts if p.endswith(" | x = -1 |"))
    assert sent.startswith("Compare the ground truth and prediction from AI models, to give a correctness score")
    assert sent.endswith("trust issues' is a playful way to suggest that these contradictions can lead to distrust or "
                         "confusion. The humor in this meme is derived from the unexpected contrast between the names "
                         "of the countries and their actual physical characteristics. | 1.0\n\n"
                         "What is x in the equation? | -1 <AND> -5 | x = -1 |")
    rows = samples(tmp_path, "mmvet")
    assert rows["test/1"]["input"] == ("First please perform reasoning, and think step by step to provide best answer "
                                       "to the following question: \n\nWhat color is the car?")
    assert rows["test/0"]["scores"]["official"] == 0.5


def test_mmvet_without_a_judge_reports_only_the_rule_reading(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmvet_repo(data, ROWS)
    t = run(tmp_path, "mmvet", records())["tasks"]["mmvet"]
    assert "official" not in t and t["metrics"]["accuracy"]["overall"] == pytest.approx(37.5)
