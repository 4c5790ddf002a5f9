"""OCRBench and SEED-Bench (image) as lmms-eval reads and scores them (EvolvingLMMs-Lab/lmms-eval at 3b686384),
beside polyvlm's robust reading. Official rules worked out by hand from:
- lmms_eval/tasks/ocrbench/utils.py ocrbench_process_results (the reply lower-cased; a gold answer as a substring;
  HME100k: spaces removed and the answer's case kept) and ocrbench_aggregate_accuracy (hits / 1000);
- lmms_eval/tasks/seedbench/utils.py seed_doc_to_text ("A. choice_a" ... then "\\nAnswer with the option's letter
  from the given choices directly."), seed_process_result (the first character of a longer reply) and
  seed_aggregation_result (lower-cased comparison); seedbench.yaml's seed_image metric."""

from __future__ import annotations

from pathlib import Path

import pytest
from mammoth_fixtures import ocrbench_repo, seedbench_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)


def records(task: str, rows: list[int], preds: list[str]) -> list[dict]:
    return [{"task": task, "split": "test", "row": r, "prediction": p} for r, p in zip(rows, preds)]


def test_ocrbench_substring_rule_case_kept_for_formulas_and_score_over_1000(tmp_path: Path, data: Path) -> None:  # noqa: F811
    ocrbench_repo(data, [
        ("IIIT5K", "what is written in the image?", "Regular Text Recognition", ["Coffee"]),
        ("HME100k", "Please write out the expression of the formula in the image using LaTeX format.",
         "Handwritten Mathematical Expression Recognition", ["X ^ { 2 }"]),
        ("docVQA", "What is the date?", "Doc-oriented VQA", ["12 May 2020", "12/05/2020"]),
        ("ESTVQA", "What is the shop name?", "Scene Text-centric VQA", ["ＡＢＣ Mart"]),
        ("SROIE", "What is the total?", "Key Information Extraction", ["9.00"])])
    preds = ["The word is COFFEE.",  # "coffee" inside the lower-cased reply
             "X^{2}",  # the reply is lower-cased, the formula answer is not: "X^{2}" not in "x^{2}"; robust right
             "12/05/2020",  # the second answer
             "ABC Mart",  # full-width answer vs ASCII reply: official no; robust (NFKC) right
             ""]
    t = run(tmp_path, "ocrbench", records("ocrbench", list(range(5)), preds))["tasks"]["ocrbench"]
    assert t["official"]["metric"] == "ocrbench_accuracy"
    assert t["official"]["overall"] == pytest.approx(100 * 2 / 1000)  # two hits out of the benchmark's 1000
    assert t["metrics"]["accuracy"]["overall"] == 80.0
    assert sorted(t["official"]["disagree"]) == ["test/1", "test/3"]
    rows = samples(tmp_path, "ocrbench")
    assert rows["test/0"]["input"] == "what is written in the image?"
    assert rows["test/1"]["category"] == "Handwritten Mathematical Expression Recognition"


def test_seedbench_image_first_character_rule(tmp_path: Path, data: Path) -> None:  # noqa: F811
    abcd = ["cat", "dog", "bird", "fish"]
    seedbench_repo(data, [("image", "What animal is shown?", abcd, "B", 1),
                          ("image", "What is it chasing?", abcd, "C", 1),
                          ("video", "What happens next?", abcd, "A", 3),
                          ("image", "Which one is furry?", abcd, "A", 1),
                          ("image", "What swims?", abcd, "D", 1)])
    preds = ["B", "The answer is C",  # first character "T": wrong; robust C
             "a.",  # first character "a": right
             "(D)"]  # "(": wrong; robust D
    t = run(tmp_path, "seedbench", records("seedbench", [0, 1, 3, 4], preds))["tasks"]["seedbench"]
    assert t["n"] == 4  # the video question (row 2) is not asked
    assert t["official"]["metric"] == "seed_image" and t["official"]["overall"] == 50.0
    assert t["metrics"]["accuracy"]["overall"] == 100.0
    assert sorted(t["official"]["disagree"]) == ["test/1", "test/4"]
    rows = samples(tmp_path, "seedbench")
    assert rows["test/3"]["input"] == ("Which one is furry?\nA. cat\nB. dog\nC. bird\nD. fish\n"
                                       "Answer with the option's letter from the given choices directly.")
    assert rows["test/0"]["images"] == ["lmms-lab/SEED-Bench split test row 0 column image[0]"]


def test_seedbench_video_rows_with_their_frames(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """seedbench.yaml's seed_video: the video rows only, each with every frame of its `image` list (seed_doc_to_visual
    passes them all, in order), scored by the same first-character rule; image rows are not asked."""
    abcd = ["run", "jump", "sit", "swim"]
    seedbench_repo(data, [("image", "What animal is shown?", abcd, "B", 1),
                          ("video", "What happens next?", abcd, "A", 3),
                          ("video", "What did he do first?", abcd, "C", 4)])
    t = run(tmp_path, "seedbench_video", records("seedbench_video", [1, 2], ["A", "The man sat (C)"]))["tasks"]
    t = t["seedbench_video"]
    assert t["n"] == 2 and t["official"]["metric"] == "seed_video"
    assert t["official"]["overall"] == 50.0  # "T" is not "C"
    assert t["metrics"]["accuracy"]["overall"] == 100.0
    rows = samples(tmp_path, "seedbench_video")
    assert rows["test/1"]["images"] == [f"lmms-lab/SEED-Bench split test row 1 column image[{k}]" for k in range(3)]
    assert len(rows["test/2"]["images"]) == 4
    assert rows["test/2"]["input"] == ("What did he do first?\nA. run\nB. jump\nC. sit\nD. swim\n"
                                       "Answer with the option's letter from the given choices directly.")
