"""AI2D, MMStar and RealWorldQA as lmms-eval reads and scores them (EvolvingLMMs-Lab/lmms-eval at 3b686384), beside
polyvlm's robust reading. Official rules worked out by hand from:
- lmms_eval/tasks/ai2d/ai2d.yaml + utils.py: "A. text" lines then "\\nAnswer with the option's letter from the given
  choices directly."; MultiChoiceRegexFilter "^\\s*([A-Z])\\." else the reply; lmms_eval/api/metrics.py
  exact_match_hf_evaluate with ignore_case and ignore_punctuation (ASCII punctuation deleted); api/task.py strips;
- lmms_eval/tasks/mmstar/utils.py: exact_match (first character, or after "(", "option ", "the answer is "),
  mmstar_aggregate_results (mean over l2 categories of their accuracy); mmstar.yaml post prompt without a full stop;
- lmms_eval/tasks/realworldqa/utils.py: NumberWordsToDigitsFilter (whole reply), MultiChoiceRegexFilter (option
  texts from "X. text" in the question, searched in the reply stripped of punctuation), then exact_match as above."""

from __future__ import annotations

from pathlib import Path

import pytest
from mammoth_fixtures import ai2d_repo, mmstar_repo, realworldqa_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)


def records(task: str, split: str, preds: list[str]) -> list[dict]:
    return [{"task": task, "split": split, "row": i, "prediction": p} for i, p in enumerate(preds)]


def test_ai2d_leading_letter_filter_then_case_and_punctuation_blind_match(tmp_path: Path, data: Path) -> None:  # noqa: F811
    opts = ["cat", "dog", "bird", "fish"]
    ai2d_repo(data, [("Which animal barks?", opts, "1"), ("Which purrs?", opts, "0"), ("Which flies?", opts, "2"),
                     ("Which swims?", opts, "3"), ("Which fetches?", opts, "1")])
    preds = ["B. dog",  # the filter reads B
             "(A)",  # not "X.": kept, but the punctuation goes -> "a" == "a"
             "The answer is C.",  # kept whole: "the answer is c" != "c"; robust C
             " d",  # stripped, lower-cased: right
             "B: dog"]  # "b dog" != "b"; robust B
    t = run(tmp_path, "ai2d", records("ai2d", "test", preds))["tasks"]["ai2d"]
    assert t["official"]["metric"] == "exact_match" and t["official"]["overall"] == 60.0
    assert t["metrics"]["accuracy"]["overall"] == 100.0
    assert sorted(t["official"]["disagree"]) == ["test/2", "test/4"]
    rows = samples(tmp_path, "ai2d")
    assert rows["test/0"]["input"] == ("Which animal barks?\nA. cat\nB. dog\nC. bird\nD. fish\n"
                                       "Answer with the option's letter from the given choices directly.")
    assert rows["test/0"]["target"] == "B"


def test_mmstar_first_character_rule_and_mean_over_l2_categories(tmp_path: Path, data: Path) -> None:  # noqa: F811
    fruit = "Which is red?\nOptions: A: apple, B: sky, C: grass, D: snow"
    count = "How many?\nOptions: A: 1, B: 2, C: 3, D: 4"
    mmstar_repo(data, [(fruit, "A", "coarse perception", "image scene and topic"),
                       (fruit, "B", "coarse perception", "image scene and topic"),
                       (count, "C", "math", "geometry"),
                       ("Is it raining? Please answer yes or no.\nOptions: A: yes, B: no", "B", "math", "geometry"),
                       (count, "D", "math", "geometry")])
    preds = ["A cat sits here",  # first character "a": right (robust: an article, no option named -> unparsed)
             "Answer: B",  # first character "a": wrong; robust B
             "(C) 3",  # after "(": right
             "the answer is b",  # after "the answer is ": right
             ""]  # nothing: wrong
    t = run(tmp_path, "mmstar", records("mmstar", "val", preds))["tasks"]["mmstar"]
    # per l2 category: scene 1/2, geometry 2/3 -> their mean, not 3/5
    assert t["official"]["overall"] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)
    assert t["metrics"]["accuracy"]["overall"] == 60.0
    assert sorted(t["official"]["disagree"]) == ["val/0", "val/1"]
    rows = samples(tmp_path, "mmstar")
    assert rows["val/3"]["input"] == ("Is it raining?\nOptions: A: yes, B: no\n"
                                      "Answer with the option's letter from the given choices directly")


def test_realworldqa_number_words_and_option_text_filters(tmp_path: Path, data: Path) -> None:  # noqa: F811
    arrow = ("Which way is the arrow pointing?\nA. left\nB. right\nC. up\n"
             "Please answer directly with only the letter of the correct option and nothing else.")
    cars = "How many cars are there? Please answer directly with a single word or number."
    light = "What is the light?\nA. bright\nB. dim\nPlease answer directly with only the letter of the correct option."
    realworldqa_repo(data, [(arrow, "B"), (arrow, "A"), (cars, "2"), (cars, "3"), (light, "B")])
    preds = ["It points right.",  # the option text "right" is in the reply -> B
             "A.",  # punctuation removed: "A"
             "Two",  # the whole reply is a number word -> "2"
             "three.",  # not a whole number word ("three." is not looked up): "three" != "3"; robust 3
             "Not bright, dim"]  # the first option text found is "bright" -> A (wrong); robust: ambiguous
    t = run(tmp_path, "realworldqa", records("realworldqa", "test", preds))["tasks"]["realworldqa"]
    assert t["official"]["overall"] == 60.0 and t["metrics"]["accuracy"]["overall"] == 80.0
    assert t["official"]["disagree"] == ["test/3"]
    rows = samples(tmp_path, "realworldqa")
    assert rows["test/0"]["input"] == arrow and rows["test/0"]["official_answer"] == "B"
    assert rows["test/4"]["official_answer"] == "A"


def test_realworldqa_filters_see_the_stripped_reply(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # MAmmoTH-VL ran lmms-eval (its vendored copy, MAmmoTH-VL/MAmmoTH-VL eval/lmms-eval = lmms-eval 7ee8d59a) with
    # --model llava_onevision, whose generate_until (lmms_eval/models/llava_onevision.py) returns response.strip():
    # NumberWordsToDigitsFilter then looks up "two", not "Two\n"
    cars = "How many cars are there? Please answer directly with a single word or number."
    realworldqa_repo(data, [(cars, "2"), (cars, "3")])
    t = run(tmp_path, "realworldqa", records("realworldqa", "test", ["Two\n", " three "]))["tasks"]["realworldqa"]
    assert t["official"]["overall"] == 100.0
    assert [samples(tmp_path, "realworldqa")[f"test/{i}"]["official_answer"] for i in (0, 1)] == ["2", "3"]
