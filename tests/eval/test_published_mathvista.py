"""MathVista testmini as lmms-eval reads and scores it (EvolvingLMMs-Lab/lmms-eval at 3b686384,
lmms_eval/tasks/mathvista/): the format-prompt query (mathvista_evals.py create_one_query, shot_type format-prompt of
mathvista_testmini_format.yaml), extract_answer's rules before the LLM (empty reply, a reply that is a choice,
int()/float() of the reply), the LLM extraction with DEMO_PROMPT + query + reply (create_test_prompt),
normalize_extracted_answer (a letter or "(X)" -> its choice, else the nearest choice by edit distance; int(float());
round(float(), precision) with the dataset's float64 precision, which round() refuses -> None) and safe_equal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from mammoth_fixtures import mathvista_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

MC_HINT = "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
ROWS = [
    {"question": "What fraction is blue?", "choices": ["3/11", "8/11", "6/11", "3/5"], "answer": "8/11",
     "question_type": "multi_choice", "answer_type": "text",
     "query": f"{MC_HINT}\nQuestion: What fraction is blue?\nChoices:\n(A) 3/11\n(B) 8/11\n(C) 6/11\n(D) 3/5"},
    {"question": "Largest city?", "choices": ["tokyo", "hong kong", "shanghai"], "answer": "tokyo",
     "question_type": "multi_choice", "answer_type": "text", "query": f"{MC_HINT}\nQuestion: Largest city?"},
    {"question": "How long is it?", "unit": "cm", "answer": "14", "question_type": "free_form",
     "answer_type": "integer", "query": "Hint: integer.\nQuestion: How long is it? (Unit: cm)"},
    {"question": "How many birds?", "answer": "3", "question_type": "free_form", "answer_type": "integer",
     "query": "Hint: integer.\nQuestion: How many birds?"},
    {"question": "Fraction of females?", "precision": 1.0, "answer": "0.6", "question_type": "free_form",
     "answer_type": "float", "query": "Hint: one decimal.\nQuestion: Fraction of females?"},
    {"question": "Peak between which years?", "answer": "[2007, 2008]", "question_type": "free_form",
     "answer_type": "list", "query": "Hint: a Python list.\nQuestion: Peak between which years?"},
]
PREDICTIONS = ["B",  # not a choice's text: the LLM extracts B -> "8/11" (both right)
               "",  # nothing to extract: "" is nearest to "tokyo" (5 edits) -> official right; robust unparsed
               "14",  # int() reads it, no LLM
               "There are 3 birds.",  # the LLM extracts 3
               "0.6",  # float() reads it, but round(0.6, 1.0) fails: None -> official 0; robust 0.6
               "The peak is between 2007 and 2008."]  # the LLM writes the list; robust reads text: 0


def scripted(prompt: str) -> str:
    assert prompt.endswith("\n\nExtracted answer: ")
    response = prompt.rsplit("\n\n", 2)[1]
    if "between 2007 and 2008" in response:
        return "[2007, 2008]"
    numbers = re.findall(r"\d+", response)
    return numbers[-1] if numbers else response


def records(preds: list[str]) -> list[dict]:
    return [{"task": "mathvista_testmini", "split": "testmini", "row": i, "prediction": p} for i, p in enumerate(preds)]


def test_mathvista_official_rules_llm_extraction_and_normalisation(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mathvista_repo(data, ROWS)
    with ScriptedJudge(scripted) as judge:
        t = run(tmp_path, "mathvista_testmini", records(PREDICTIONS), "--judge", judge.url)["tasks"]["mathvista_testmini"]
    assert t["official"]["overall"] == pytest.approx(100 * 5 / 6) and "note" not in t["official"]
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(100 * 4 / 6)
    assert sorted(t["official"]["disagree"]) == ["testmini/1", "testmini/4", "testmini/5"]
    assert len(judge.prompts) == 3  # rows 0, 3 and 5; the others are read by rules
    first = next(p for p in judge.prompts if p.endswith("\n\nB\n\nExtracted answer: "))  # sent concurrently
    assert first.startswith("Please read the following example. Then extract the answer from the model response")
    assert first.endswith(f"Extracted answer: B\n\n{ROWS[0]['query']}\n\nB\n\nExtracted answer: ")
    rows = samples(tmp_path, "mathvista_testmini")
    assert rows["testmini/0"]["input"] == ("What fraction is blue?\nA. 3/11\nB. 8/11\nC. 6/11\nD. 3/5\n"
                                           "Answer with the option's letter from the given choices directly.")
    assert rows["testmini/2"]["input"] == "How long is it? (Unit: cm)\nAnswer the question using a single integer number."
    assert rows["testmini/4"]["input"].endswith("using a single floating-point number with one decimal place.")
    assert rows["testmini/1"]["official_answer"] == "tokyo" and rows["testmini/4"]["official_answer"] is None
    assert rows["testmini/0"]["images"] == ["AI4Math/MathVista split testmini row 0 column decoded_image"]


def test_mathvista_without_a_judge_uses_quick_extract_and_says_so(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mathvista_repo(data, ROWS)
    preds = ['The answer is "8/11".', "hong kong", "14", "There are 3 birds.", "0.6", "[2007, 2008]"]
    t = run(tmp_path, "mathvista_testmini", records(preds))["tasks"]["mathvista_testmini"]
    # quick_extract reads 8/11; "hong kong" is a choice (wrong); "There are 3 birds." cannot be int(): 0; the list
    # is taken whole and equals the answer
    assert t["official"]["overall"] == pytest.approx(100 * 3 / 6)
    assert t["official"]["note"].startswith("no --judge: 2 repl(ies) not read by a rule")
