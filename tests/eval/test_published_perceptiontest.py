"""Perception Test (multiple-choice validation) as lmms-eval reads and scores it, beside polyvlm's robust reading, from
the repo's layout. Official rules worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/perceptiontest/val/_default_template_yaml: lmms-lab/PerceptionTest_Val, cache_dir perceptiontest_val;
  perceptiontest_mc.yaml: dataset_name mc_question_val, test_split validation, metric `accuracy`;
- lmms_eval/tasks/perceptiontest/val/utils.py: perceptiontest_val_doc_to_visual (<cache>/videos/<video_name>.mp4, else
  .MP4), perceptiontest_val_doc_to_text (question, "\\nA. " first option, "\\nB. " second, "\\nC. " every further one,
  then "\\nAnswer with the option's letter from the given choices directly."),
  perceptiontest_val_process_results_mc (re.search(r"\\b([A-D])\\b") on the stripped reply, A-D -> 0-3, else -1; right
  when it equals int(answer_id)), perceptiontest_val_aggregate_accuracy (right / every question)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import perceptiontest_repo

OPTS = ["the ball", "the cup", "the box"]


def q(video: str, answer: int, area: str, options: list[str] = OPTS, question: str = "What is hidden?") -> dict:
    return {"video_name": video, "question": question, "options": options, "answer_id": answer, "area": area}


def test_perceptiontest_val_mc_lone_capital_rule_and_accuracy(tmp_path: Path, data: Path) -> None:  # noqa: F811
    rows = [q("video_0", 0, "memory"), q("video_1", 1, "memory"), q("video_2", 1, "memory"), q("video_3", 2, "memory"),
            q("video_4", 2, "physics"), q("video_5", 1, "physics"), q("video_6", 1, "physics"),
            q("video_7", 3, "physics", ["w", "x", "y", "z"])]
    perceptiontest_repo(data, rows, {"videos_chunked_01.zip": [f"video_{i}.mp4" for i in range(5)],
                                     "videos_chunked_02.zip": [f"video_{i}.mp4" for i in range(5, 8)]})
    preds = ["A",  # right
             "A dog pushes it, then B",  # the article is the first lone capital: A, wrong
             "b",  # capitals only: nothing (-1), wrong; robust B
             "D",  # index 3: no such option, wrong both ways
             "(C) the box",  # right
             "BC",  # no lone letter: nothing, wrong
             "The answer is B.",  # right
             "D"]  # a fourth option (labelled "C." in the prompt) is index 3: right
    records = [{"task": "perceptiontest_val_mc", "split": "validation", "row": i, "prediction": p}
               for i, p in enumerate(preds)]
    t = run(tmp_path, "perceptiontest_val_mc", records)["tasks"]["perceptiontest_val_mc"]
    o = t["official"]
    assert o["metric"] == "accuracy" and o["random_fallback"] == 0
    assert o["overall"] == 50.0 and o["by_category"] == {"memory": 25.0, "physics": 75.0}
    got = samples(tmp_path, "perceptiontest_val_mc")
    assert [got[f"validation/{i}"]["official_answer"] for i in range(8)] == ["A", "A", "", "D", "C", "", "B", "D"]
    assert [got[f"validation/{i}"]["scores"]["official"] for i in range(8)] == [1, 0, 0, 0, 1, 0, 1, 1]
    # robust: "then B" and "b" are B; "D" (no fourth option) and "BC" are unread
    assert t["metrics"]["accuracy"]["overall"] == 75.0 and t["unparsed"] == 2
    assert o["disagree"] == ["validation/1", "validation/2"] and got["validation/2"]["extracted"] == "B"
    assert got["validation/0"]["input"] == ("What is hidden?\nA. the ball\nB. the cup\nC. the box\nAnswer with the "
                                            "option's letter from the given choices directly.")
    assert got["validation/7"]["input"].startswith("What is hidden?\nA. w\nB. x\nC. y\nC. z\n")
    assert got["validation/6"]["video"] == [f"{data}/lmms-lab/PerceptionTest_Val/videos_chunked_02.zip:videos/video_6.mp4"]


def test_perceptiontest_val_mc_videos_reach_the_endpoint_and_the_download_skips_audio(
        tmp_path: Path, data: Path) -> None:  # noqa: F811
    import base64

    from judge_fakes import ScriptedJudge

    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main
    from polyvlm.eval.tasks import listing

    perceptiontest_repo(data, [q("video_10", 1, "semantics", question="Which moves?"),
                               q("video_11", 0, "memory", question="What was first?")],
                        {"videos_chunked_01.zip": ["video_10.mp4"], "videos_chunked_02.zip": ["video_11.MP4"]},
                        levels={"video_10": 60, "video_11": 190})
    info = {r["task"]: r for r in listing()}["perceptiontest_val_mc"]
    assert info["download"] == ("huggingface-cli download --repo-type dataset lmms-lab/PerceptionTest_Val --exclude "
                                "valid_audios.zip --local-dir $POLYVLM_EVAL_DATA/lmms-lab/PerceptionTest_Val")
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "B") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "perceptiontest_val_mc", "--output_path", str(out)]) == 0
    levels = {"Which moves?": 60, "What was first?": 190}
    for body, prompt in zip(model.bodies, model.prompts):
        content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        (url,) = [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))
        assert abs(frames[0].getpixel((8, 8))[0] - levels[prompt.split("\n")[0]]) <= 3
    assert len(model.bodies) == 2
    res = json.loads((out / "results.json").read_text())["tasks"]["perceptiontest_val_mc"]
    assert res["official"]["by_category"] == {"memory": 0.0, "semantics": 100.0}


def test_perceptiontest_val_mc_missing_video_and_bad_answer_are_named(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    perceptiontest_repo(data, [q("video_0", 0, "memory"), q("video_9", 1, "memory")],
                        {"videos_chunked_01.zip": ["video_0.mp4"]})
    tasks, _ = resolve(["perceptiontest_val_mc"])
    with pytest.raises(TaskError, match=r"(?s)1 of 2 videos are not here \(first: lmms-lab/PerceptionTest_Val split "
                                        r"validation row 1, videos/video_9.mp4 or videos/video_9.MP4\).*--exclude"):
        tasks[0].samples()
    perceptiontest_repo(data, [q("video_0", 3, "memory")], {})
    tasks, _ = resolve(["perceptiontest_val_mc"])
    with pytest.raises(TaskError, match=r"row 0: ValueError: answer_id 3 is not the index of one of the 3 options"):
        tasks[0].samples()
