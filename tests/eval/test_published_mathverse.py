"""MathVerse testmini (vision versions) as lmms-eval reads and scores it: the reply's last 30 words, an LLM's
extraction and an LLM's 0/1 judgement with the official few-shot prompts (here a scripted judge), beside polyvlm's
robust reading; without --judge, the official evaluator's quick_match rule, said so in the results.
Rules from EvolvingLMMs-Lab/lmms-eval at 3b686384: lmms_eval/tasks/mathverse/mathverse_evals.py (eval_results:
trunk_response 30; extract_answer: no call for an empty reply; create_extract_prompt; create_match_prompt with
DEMO_PROMPT_SCORE.format(question=inst["question"], gt, extraction); score_answer: "Judgement:" removed, 0 or 1),
mathverse.yaml (trunk_response: 30, quick_match: false), mathverse_testmini_vision_*.yaml (CaraJ/MathVerse-lmmseval
config testmini_version_split, one split per version, max_new_tokens 1024), utils.py (prompt = query_wo)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from mammoth_fixtures import mathverse_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

MC = "Please directly answer the question and provide the correct option letter, e.g., A, B, C, D."
FILLER = ("Let me double check the reasoning once more to be sure that nothing was missed in the steps above since "
          "geometry problems with several given lengths often hide a subtle trap for careless solvers")
ROWS = {
    "vision_intensive": [
        ("As shown in the figure, AB = 4. Find BC.\nChoices:\nA:2\nB:4\nC:6\nD:8", "C", "multi-choice",
         f"{MC}\nQuestion: As shown in the figure, AB = 4. Find BC.\nChoices:\nA:2\nB:4\nC:6\nD:8"),
        ("Find the angle.\nChoices:\nA:30°\nB:45°\nC:60°\nD:90°", "B", "multi-choice", f"{MC}\nQuestion: Find the angle."),
    ],
    "vision_dominant": [
        ("Find the distance d to one decimal place.", "22.3", "free-form", "Please answer the question. d = ?"),
        ("If f(x) = {x} + 2 and f(x) = 7, find x.", "5", "free-form", "Please answer the question. x = ?"),
    ],
    "vision_only": [
        ("circle O has radius 1.0, find BC.\nChoices:\nA:2\nB:2\u221a{3}\nC:\u221a{3}\nD:2\u221a{2}", "A",
         "multi-choice", "According to the question shown in the image, please directly answer the question."),
        ("Which is right?\nChoices:\nA:1\nB:2\nC:3\nD:4", "D", "multi-choice", "According to the image, answer."),
    ],
}
PREDICTIONS = [
    ("vision_intensive", 0, "The answer is C."),  # extracted C, judged 1; robust C -> 1
    ("vision_intensive", 1, f"The answer is B. {FILLER}"),  # the answer is before the last 30 words: official 0
    ("vision_dominant", 0, "So the distance is about 22.30 m, the answer is 22.3"),  # both 1
    ("vision_dominant", 1, "The answer is 5.0"),  # the scripted judge holds 5.0 != 5: official 0; robust 5.0 == 5 -> 1
    ("vision_only", 0, ""),  # nothing to extract (no extraction asked): "" judged 0
    ("vision_only", 1, "the answer is weird"),  # the judge says neither 0 nor 1: counted, scored 0
]


def scripted(prompt: str) -> str:
    """Extraction: what follows "answer is" in the model response, else null. Judgement: 1 when the extraction is
    the standard answer verbatim; an extraction "weird" gets a reply that is neither 0 nor 1."""
    if prompt.endswith("\nExtracted Answer: "):
        response = prompt.rsplit("Model response: '", 1)[1].rsplit("'\nExtracted Answer: ", 1)[0]
        m = re.search(r"answer is (\S+?)\.?$", response)
        return m.group(1) if m else "null"
    assert prompt.endswith("\nJudgement:"), prompt[-200:]
    gt = re.findall(r"^\[Standard Answer\]: (.*)$", prompt, re.MULTILINE)[-1]
    got = re.findall(r"^\[Model_answer\] : (.*)$", prompt, re.MULTILINE)[-1]
    return "not sure" if got == "weird" else "Judgement: 1" if got == gt else "0"


def records() -> list[dict]:
    return [{"task": "mathverse", "split": s, "row": r, "prediction": p} for s, r, p in PREDICTIONS]


def test_mathverse_official_llm_extraction_and_judgement_beside_the_robust_reading(tmp_path: Path,
                                                                                   data: Path) -> None:  # noqa: F811
    mathverse_repo(data, ROWS)
    with ScriptedJudge(scripted) as judge:
        t = run(tmp_path, "mathverse", records(), "--judge", judge.url)["tasks"]["mathverse"]
    assert t["official"]["metric"] == "gpt_eval_score" and t["headline"] == "official"
    assert t["official"]["overall"] == pytest.approx(100 * 2 / 6)
    assert t["official"]["note"] == "1 judgement(s) neither 0 nor 1, scored 0"
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(100 * 4 / 6)
    assert t["metrics"]["accuracy"]["by_category"] == {"vision_dominant": 100.0, "vision_intensive": 100.0,
                                                       "vision_only": 0.0}
    assert sorted(t["official"]["disagree"]) == ["vision_dominant/1", "vision_intensive/1"]
    # 5 extractions (the empty reply is not sent) and 6 judgements
    extract = [p for p in judge.prompts if p.endswith("\nExtracted Answer: ")]
    score = [p for p in judge.prompts if p.endswith("\nJudgement:")]
    assert len(extract) == 5 and len(score) == 6
    first = next(p for p in extract if "'The answer is C.'" in p)
    assert first.startswith("I am providing you a response from a model to a math problem, termed 'Model Response'.")
    assert first.endswith("\n\n7.\n\nModel response: 'The answer is C.'\nExtracted Answer: ")
    truncated = next(p for p in extract if FILLER[-30:] in p)
    assert "answer is B" not in truncated.rsplit("Model response: '", 1)[1]  # only the last 30 words were sent
    judged = next(p for p in score if "If f(x)" in p)  # the question's braces go in as they are
    assert judged.endswith("[Question]: If f(x) = {x} + 2 and f(x) = 7, find x.\n[Standard Answer]: 5\n"
                           "[Model_answer] : 5.0\nJudgement:")
    assert "[Standard Answer]: C\n[Model_answer] : B:2\u221a{3}\nJudgement: 0" in judged  # the demo's {{3}} -> {3}
    rows = samples(tmp_path, "mathverse")
    assert rows["vision_intensive/1"]["official_answer"] == "null" and rows["vision_only/0"]["official_answer"] == ""
    assert rows["vision_intensive/0"]["input"] == ROWS["vision_intensive"][0][3]
    assert rows["vision_only/0"]["images"] == ["CaraJ/MathVerse-lmmseval split vision_only row 0 column image"]


def test_mathverse_without_a_judge_uses_quick_match_and_says_so(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mathverse_repo(data, ROWS)
    preds = [("vision_intensive", 0, "C"), ("vision_intensive", 1, "C."), ("vision_dominant", 0, "22.3"),
             ("vision_dominant", 1, " 5 "), ("vision_only", 0, "A."), ("vision_only", 1, "Answer: D")]
    t = run(tmp_path, "mathverse", [{"task": "mathverse", "split": s, "row": r, "prediction": p}
                                    for s, r, p in preds])["tasks"]["mathverse"]
    assert t["official"]["overall"] == 50.0  # "C", "22.3" and " 5 " (stripped) equal their answers
    assert t["official"]["note"].startswith("no --judge: quick_match")
    assert t["config"]["max_new_tokens"] == 1024


def test_mathverse_testmini_reads_the_testmini_config_beside_the_version_split(tmp_path: Path,
                                                                              data: Path) -> None:  # noqa: F811
    mathverse_repo(data, ROWS)  # both configs in one repo, as published
    mathverse_repo(data, {"testmini": ROWS["vision_dominant"]}, config="testmini")
    preds = [{"task": "mathverse_testmini", "split": "testmini", "row": 0, "prediction": "22.3"},
             {"task": "mathverse_testmini", "split": "testmini", "row": 1, "prediction": "x = 5"}]
    t = run(tmp_path, "mathverse_testmini", preds)["tasks"]["mathverse_testmini"]
    assert t["n"] == 2 and t["official"]["overall"] == 50.0  # quick_match: "22.3" only
    assert t["metrics"]["accuracy"]["by_category"] == {"Text Dominant": 100.0}  # robust: "x = 5" states 5
