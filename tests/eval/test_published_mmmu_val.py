"""mmmu_val's official score reads the `answer` column as lmms-eval does (EvolvingLMMs-Lab/lmms-eval
lmms_eval/tasks/mmmu/utils.py at 3b686384 and 80391ce3): mmmu_process_results puts doc["answer"] into the result
unchanged and evaluate_mmmu passes it to eval_multi_choice (gold == letter unless it is a Python list) and eval_open
(normalize_str of the whole gold unless it is a Python list). A list literal stored as text ("['24/7', '3.429']")
is therefore one string: a reply must hold that whole text, while polyvlm's robust score accepts each listed value."""

from __future__ import annotations

from pathlib import Path

from published_fixtures import png, write_split
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)


def _mmmu_rows(root: Path) -> None:
    """lmms-lab/MMMU split validation (`data/validation-*.parquet`): an open question whose answer is a list
    literal string, one with a plain answer, and a multiple-choice one whose answer is a list literal."""
    from datasets import Image as ImageFeature
    from datasets import Value

    features = {"id": Value("string"), "question": Value("string"), "options": Value("string"),
                "answer": Value("string"), "question_type": Value("string"),
                **{f"image_{i}": ImageFeature() for i in range(1, 8)}}
    pictures = {"image_1": {"bytes": png(), "path": None}, **{f"image_{k}": None for k in range(2, 8)}}
    write_split(root, "lmms-lab/MMMU", "validation", [
        {"id": "validation_Math_1", "question": "Ratio in <image 1>?", "options": "[]",
         "answer": "['24/7', '3.429']", "question_type": "open", **pictures},
        {"id": "validation_Math_2", "question": "Area of <image 1>?", "options": "[]", "answer": "12",
         "question_type": "open", **pictures},
        {"id": "validation_Art_3", "question": "Which of <image 1>?", "options": "['x', 'y', 'z']",
         "answer": "['A', 'B']", "question_type": "multiple-choice", **pictures}], features)


def test_mmmu_val_official_keeps_a_list_literal_answer_as_one_string(tmp_path: Path, data: Path) -> None:  # noqa: F811
    _mmmu_rows(data)
    preds = ["The ratio is 3.429",  # reading [3.43]: not the text "['24/7', '3.429']" -> 0; robust 3.43 -> 1
             "The area is 12",  # plain answer: both right
             "A"]  # eval_multi_choice: "['A', 'B']" == "A" is False -> 0; robust: A is listed -> 1
    t = run(tmp_path, "mmmu_val", [{"task": "mmmu_val", "split": "validation", "row": i, "prediction": p}
                                   for i, p in enumerate(preds)])["tasks"]["mmmu_val"]
    assert t["official"]["overall"] == 100 / 3 and t["official"]["random_fallback"] == 0
    assert t["metrics"]["accuracy"]["overall"] == 100.0
    assert sorted(t["official"]["disagree"]) == ["validation/0", "validation/2"]
    rows = samples(tmp_path, "mmmu_val")
    assert rows["validation/2"]["official_answer"] == "A"
