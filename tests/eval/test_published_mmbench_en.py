"""MMBench-EN dev as lmms-eval reads and scores it (EvolvingLMMs-Lab/lmms-eval at 3b686384,
lmms_eval/tasks/mmbench/): en_utils.py mmbench_doc_to_text ("{hint} {question} There are several options:\\nA. ..."
then "\\n" + the post prompt that itself opens with "\\n"); mmbench_evals.py can_infer_option (one letter A-E as a
word, not "A" among more than three words; or "(C).", "B." ... shapes), can_infer_text (one option text inside),
extract_answer_from_item (build_prompt sent to the LLM, its reply read with can_infer) and, when nothing reads,
rd.randint over "ABCDE" after rd.seed(2680) in eval_result, rows taken in `index` order."""

from __future__ import annotations

import random
from pathlib import Path

from judge_fakes import ScriptedJudge
from mammoth_fixtures import mmbench_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

ANIMALS = ["cat", "dog", "bird", "fish"]
ROWS = [{"index": 5, "question": "What animal is this?", "answer": "B", "options": ANIMALS},
        {"index": 2, "question": "Which animal is it?", "hint": "Look closely.", "answer": "C", "options": ANIMALS},
        {"index": 9, "question": "What swims?", "answer": "D", "options": ANIMALS},
        {"index": 1, "question": "What purrs?", "answer": "A", "options": ANIMALS},
        {"index": 7, "question": "What flies?", "answer": "C", "options": ANIMALS}]
PREDICTIONS = ["B",  # a lone letter
               "The answer is (C).",  # the "(C)." shape
               "I think it swims",  # nothing read: the judge says D
               "Neither",  # the judge says E: wrong
               "bird or fish"]  # two option texts: the judge cannot decide either -> a random letter


def scripted(prompt: str) -> str:
    if not prompt.endswith("Your output: "):  # polyvlm's own judge_mcq question for the robust reading
        return "Z"
    answer = prompt.rsplit("Answer: ", 1)[1]
    return {"I think it swims\nYour output: ": "D", "Neither\nYour output: ": "E"}.get(answer, "I cannot decide")


def records(preds: list[str]) -> list[dict]:
    return [{"task": "mmbench_en_dev", "split": "dev", "row": i, "prediction": p} for i, p in enumerate(preds)]


def test_mmbench_rules_then_the_judge_then_a_seeded_letter(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmbench_repo(data, ROWS)
    with ScriptedJudge(scripted) as judge:
        t = run(tmp_path, "mmbench_en_dev", records(PREDICTIONS), "--judge", judge.url)["tasks"]["mmbench_en_dev"]
    drawn = "ABCDE"[random.Random(2680).randint(0, 4)]
    assert t["official"]["random_fallback"] == 1
    assert t["official"]["overall"] == 100 * (3 + (drawn == "C")) / 5
    official = [p for p in judge.prompts if p.endswith("Your output: ")]
    assert len(official) == 3
    assert next(p for p in official if "What swims" in p).endswith("Question: What swims??\nOptions: There are several options: \nA. cat\nB. dog\n"
                                     "C. bird\nD. fish\n\nAnswer: I think it swims\nYour output: ")
    rows = samples(tmp_path, "mmbench_en_dev")
    assert rows["dev/1"]["input"] == ("Look closely. Which animal is it? There are several options:\nA. cat\nB. dog\n"
                                      "C. bird\nD. fish\n\nAnswer with the option's letter from the given choices directly.")
    assert rows["dev/3"]["official_answer"] == "E" and rows["dev/4"]["random_fallback"] is True


def test_mmbench_without_a_judge_draws_in_index_order_and_says_so(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmbench_repo(data, ROWS)
    t = run(tmp_path, "mmbench_en_dev", records(PREDICTIONS))["tasks"]["mmbench_en_dev"]
    draws = random.Random(2680)
    by_index = {i: "ABCDE"[draws.randint(0, 4)] for i in (1, 7, 9)}  # rows 3, 4, 2 in index order
    rows = samples(tmp_path, "mmbench_en_dev")
    assert [rows[f"dev/{r}"]["official_answer"] for r in (3, 4, 2)] == [by_index[1], by_index[7], by_index[9]]
    assert t["official"]["random_fallback"] == 3 and t["official"]["note"].startswith("no --judge")
    right = 2 + (by_index[9] == "D") + (by_index[1] == "A") + (by_index[7] == "C")
    assert t["official"]["overall"] == 100 * right / 5


def test_mmbench_circular_eval_over_rotated_copies(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # MMBench's dev set holds each question's rotated copies (index + k * 1e6); mmbench_evals.py eval_result scores
    # the questions (index < 1e6) in index order with eval_sub_data: every copy read by can_infer first, 0 at the
    # first wrong one (nothing drawn); then the unread copies one by one (the API, else rd.randint over "ABCDE"),
    # 0 at the first wrong; the overall is the mean over questions
    rows = [{"index": 1_000_001, "question": "Q1", "answer": "D", "options": ["dog", "bird", "fish", "cat"]},
            {"index": 1, "question": "Q1", "answer": "A", "options": ["cat", "dog", "bird", "fish"]},
            {"index": 2_000_001, "question": "Q1", "answer": "C", "options": ["bird", "fish", "cat", "dog"]},
            {"index": 2, "question": "Q2", "answer": "B", "options": ["cat", "dog"]},
            {"index": 1_000_002, "question": "Q2", "answer": "A", "options": ["dog", "cat"]},
            {"index": 4, "question": "Q4", "answer": "A", "options": ["red", "blue"]},
            {"index": 1_000_004, "question": "Q4", "answer": "B", "options": ["blue", "red"]},
            {"index": 3, "question": "Q3", "answer": "A", "options": ["sun", "moon"]},
            {"index": 1_000_003, "question": "Q3", "answer": "B", "options": ["moon", "sun"]},
            {"index": 5, "question": "Q5", "answer": "A", "options": ["up", "down"]},
            {"index": 1_000_005, "question": "Q5", "answer": "B", "options": ["down", "up"]}]
    preds = {0: "D", 1: "A", 2: "C",  # Q1: every copy right -> 1
             3: "B", 4: "B",  # Q2: the copy is wrong -> 0
             5: "no idea", 6: "B",  # Q4: the copy is right, the main row unread -> the first letter drawn
             7: "hmm", 8: "A",  # Q3: the copy read by rule is wrong -> 0 before any draw
             9: "A"}  # Q5: its copy has no prediction (a failure): left out of both scores
    mmbench_repo(data, rows)
    t = run(tmp_path, "mmbench_en_dev", [{"task": "mmbench_en_dev", "split": "dev", "row": r, "prediction": p}
                                         for r, p in preds.items()])["tasks"]["mmbench_en_dev"]
    drawn = "ABCDE"[random.Random(2680).randint(0, 4)]  # the first draw goes to Q4, not Q3 (index 3 < 4)
    assert t["n"] == 5 and t["failed"] == 1
    assert t["official"]["random_fallback"] == 1
    assert t["official"]["overall"] == 100 * (1 + (drawn == "A")) / 4
    assert t["metrics"]["accuracy"]["overall"] == 25.0  # robust CircularEval: Q1 only
    out = samples(tmp_path, "mmbench_en_dev")
    assert out["dev/5"]["official_answer"] == drawn and out["dev/5"]["random_fallback"] is True
    assert out["dev/7"]["official_answer"] is None and "random_fallback" not in out["dev/7"]
