"""MMMU-Pro's vision setting as lmms-eval reads and scores it, beside polyvlm's robust reading. Official rules worked
out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/mmmu_pro/mmmu_pro_vision.yaml: dataset MMMU/MMMU_Pro, dataset_name `vision`, split `test`, the
  prompt is the literal "Answer with the option letter from the given choices directly.", metric mmmu_acc;
- lmms_eval/tasks/mmmu_pro/utils.py: mmmu_pro_doc_to_visual sends `image` when the row has no `question`;
  mmmu_pro_process_results keeps the reply as `parsed_pred` for such rows (no MMMU letter parser, no random
  letter); evaluate_mmmu/eval_multi_choice: right only when the string equals `answer`; mmmu_pro_aggregate_results:
  per `subject`, then weighted by subject size (calculate_ins_level_acc);
- lmms_eval/api/task.py ConfigurableTask.process_results: a generate_until reply is stripped first."""

from __future__ import annotations

from pathlib import Path

from mammoth_fixtures import mmmu_pro_vision_repo
from published_fixtures import mmmu_repos
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

TEN = str([f"choice {c}" for c in "ABCDEFGHIJ"])


def test_mmmu_pro_vision_reply_must_be_the_letter_itself(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmmu_repos(data)  # the standard config stays beside the vision one in the repo's README
    gold = ["B", "C", "D", "A", "E", "J", "B", "F"]
    mmmu_pro_vision_repo(data, [(TEN, a, "History" if i < 4 else "Math") for i, a in enumerate(gold)])
    preds = ["B",  # right both ways
             " C\n",  # stripped by api/task.py: right
             "(D)",  # not the letter itself: official 0; robust D
             "The answer is A.",  # official 0; robust A
             "e",  # case matters officially: 0; robust E
             "J.",  # official 0; robust J
             "I cannot tell",  # 0 both, and no random letter is drawn
             "G"]  # wrong both ways
    records = [{"task": "mmmu_pro_vision", "split": "test", "row": i, "prediction": p} for i, p in enumerate(preds)]
    records.append({"task": "mmmu_pro", "split": "test", "row": 0, "prediction": "(J)"})
    res = run(tmp_path, "mmmu_pro_vision,mmmu_pro", records)
    t = res["tasks"]["mmmu_pro_vision"]
    assert t["official"]["metric"] == "mmmu_acc" and t["official"]["overall"] == 25.0
    assert t["official"]["by_category"] == {"History": 50.0, "Math": 0.0}
    assert t["official"]["random_fallback"] == 0
    assert t["metrics"]["accuracy"]["overall"] == 75.0 and t["unparsed"] == 1
    assert sorted(t["official"]["disagree"]) == ["test/2", "test/3", "test/4", "test/5"]
    assert res["tasks"]["mmmu_pro"]["official"]["overall"] == 100.0  # the standard config is still read as before
    rows = samples(tmp_path, "mmmu_pro_vision")
    assert rows["test/0"]["input"] == "Answer with the option letter from the given choices directly."
    assert rows["test/5"]["images"] == ["MMMU/MMMU_Pro split test row 5 column image"]  # rows in shard order
    assert rows["test/3"]["official_answer"] == "The answer is A." and rows["test/3"]["extracted"] == "A"
    assert rows["test/1"]["official_answer"] == "C" and rows["test/1"]["target"] == "C"


def test_mmmu_pro_vision_sends_the_screenshot_alone(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from judge_fakes import ScriptedJudge

    from polyvlm.eval.cli import main as eval_main

    mmmu_pro_vision_repo(data, [(TEN, "B", "Art"), (TEN, "C", "Art")], shards=1)
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "B") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "mmmu_pro_vision", "--output_path", str(out)]) == 0
    assert model.prompts == ["Answer with the option letter from the given choices directly."] * 2
    assert model.pictures == {"Answer with the option letter from the given choices directly.": 1}
    assert model.bodies[0]["max_tokens"] == 256


def test_mmmu_pro_vision_answer_outside_the_options_names_the_row(tmp_path: Path, data: Path) -> None:  # noqa: F811
    import pytest

    from polyvlm.eval.tasks import TaskError, resolve

    mmmu_pro_vision_repo(data, [(str(["x", "y"]), "B", "Art"), (str(["x", "y"]), "C", "Art")], shards=1)
    tasks, _ = resolve(["mmmu_pro_vision"])
    with pytest.raises(TaskError, match=r"MMMU/MMMU_Pro split test row 1: ValueError: answer 'C' is not one of"):
        tasks[0].samples()
