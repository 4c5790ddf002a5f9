"""MLVU dev as lmms-eval read and scored it in December 2024, beside polyvlm's robust reading, from the repo's layout.
Official rules worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/mlvu/mlvu.yaml: dataset_path sy1998/temp (now sy1998/MLVU_dev), cache_dir mlvu, test_split test,
  max_new_tokens 16, metric mlvu_perception_score;
- lmms_eval/tasks/mlvu/utils.py: mlvu_doc_to_visual (<cache>/<video_name>), mlvu_doc_to_text ("" + "\\n" + question +
  "\\nOnly give the best option.\\n" + "\\n" + "Best option: ("), extract_characters_regex (the Video-MME copy: prefixes
  deleted, two of them fused by a missing comma; nothing for more than 10 words without A-D; else the first capital
  A-D), mlvu_process_results / mlvu_aggregate_results (pred == answer; 100 x correct / answered over every question;
  TASK_TYPES the only task types); lmms_eval/api/task.py strips the reply first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import mlvu_repo

QUESTION = "How many times does the man jump?\n(A) 2\n(B) 3\n(C) 4\n(D) 5"


def q(video: str, answer: str, task_type: str, question: str = QUESTION) -> dict:
    return {"video_name": video, "question": question, "answer": answer, "task_type": task_type}


def test_mlvu_dev_reading_and_accuracy_over_all_questions(tmp_path: Path, data: Path) -> None:  # noqa: F811
    rows = [q("count/c0.mp4", "B", "AC"), q("count/c1.mp4", "C", "AC"), q("count/c2.mp4", "B", "AC"),
            q("count/c3.mp4", "A", "AC"), q("plotQA/p0.mp4", "C", "PQA"), q("plotQA/p1.mp4", "B", "PQA")]
    mlvu_repo(data, rows, {"action_count.zip": [f"count/c{i}.mp4" for i in range(4)],
                           "video_part_1.zip": ["plotQA/p0.mp4", "plotQA/p1.mp4"]})
    preds = ["B) 3",  # right
             "Definitely C",  # the first capital A-D is the D of "Definitely": wrong; robust C
             "b",  # no capital: nothing, wrong; robust B
             "The answer is A",  # prefix deleted: A, right
             "Best answer: C",  # "Best answer:" is never deleted (fused with "Best option:"): B of "Best", wrong
             "the man jumps three times in total during the whole long clip"]  # 12 words, no A-D: nothing, wrong
    records = [{"task": "mlvu_dev", "split": "test", "row": i, "prediction": p} for i, p in enumerate(preds)]
    t = run(tmp_path, "mlvu_dev", records)["tasks"]["mlvu_dev"]
    o = t["official"]
    assert o["metric"] == "mlvu_perception_score" and o["random_fallback"] == 0
    assert o["overall"] == pytest.approx(100 / 3)  # 2 of 6 questions, not the task types' mean (25)
    assert o["by_category"] == {"AC": 50.0, "PQA": 0.0}
    got = samples(tmp_path, "mlvu_dev")
    assert [got[f"test/{i}"]["official_answer"] for i in range(6)] == ["B", "D", "", "A", "B", ""]
    # robust: "Definitely C", "b" and "Best answer: C" are read as meant; the long reply stays unread
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(500 / 6) and t["unparsed"] == 1
    assert o["disagree"] == ["test/1", "test/2", "test/4"]
    assert got["test/0"]["input"] == ("\nHow many times does the man jump?\n(A) 2\n(B) 3\n(C) 4\n(D) 5\n"
                                      "Only give the best option.\n\nBest option: (")
    assert got["test/5"]["video"] == [f"{data}/sy1998/MLVU_dev/video_part_1.zip:plotQA/p1.mp4"]


def test_mlvu_dev_videos_reach_the_endpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    import base64

    from judge_fakes import ScriptedJudge

    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main

    mlvu_repo(data, [q("ego/e0.mp4", "A", "ER", "Where is the key?\n(A) desk\n(B) bag"),
                     q("order/o0.mp4", "B", "AO", "Which order?\n(A) x, y\n(B) y, x")],
              {"video_part_2.zip": ["ego/e0.mp4", "order/o0.mp4"]}, levels={"ego/e0.mp4": 30, "order/o0.mp4": 220})
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "A) desk") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "mlvu_dev", "--output_path", str(out)]) == 0
    levels = {"Where is the key?": 30, "Which order?": 220}
    assert len(model.bodies) == 2
    for body, prompt in zip(model.bodies, model.prompts):
        content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        (url,) = [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))
        assert abs(frames[0].getpixel((8, 8))[0] - levels[prompt.split("\n")[1]]) <= 3
    res = json.loads((out / "results.json").read_text())["tasks"]["mlvu_dev"]
    assert res["official"]["by_category"] == {"AO": 0.0, "ER": 100.0}


def test_mlvu_dev_unknown_task_type_and_missing_video_are_named(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    mlvu_repo(data, [q("count/c0.mp4", "B", "AC"), q("count/gone.mp4", "B", "AC")],
              {"action_count.zip": ["count/c0.mp4"]})
    tasks, _ = resolve(["mlvu_dev"])
    with pytest.raises(TaskError, match=r"(?s)1 of 2 videos are not here \(first: sy1998/MLVU_dev split test row 1, "
                                        r"count/gone.mp4\).*huggingface-cli download --repo-type dataset sy1998/MLVU_dev"):
        tasks[0].samples()
    mlvu_repo(data, [q("count/c0.mp4", "B", "SQA")], {})
    tasks, _ = resolve(["mlvu_dev"])
    with pytest.raises(TaskError, match=r"row 0: ValueError: task_type 'SQA' is none of TR, AR"):
        tasks[0].samples()
