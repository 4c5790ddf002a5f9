"""MVBench as lmms-eval reads and scores it, beside polyvlm's robust reading, from the repo's `video` branch layout.
Official rules worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/mvbench/_default_template_yaml: OpenGVLab/MVBench, revision `video`, cache_dir mvbench_video,
  max_new_tokens 16; mvbench_<task>.yaml: dataset_name <task>, test_split train, post_prompt
  "Only give the best option.\\n"; mvbench.yaml: the 20 tasks, no aggregate;
- lmms_eval/tasks/mvbench/utils.py: DATA_LIST (each task's video folder), mvbench_doc_to_visual
  (<cache>/<folder>/<video>), mvbench_doc_to_text ("Question:" + question + "\\nOption:\\n" + "(A) ...\\n" lines +
  post_prompt), mvbench_process_results (the letter of the first candidate equal to `answer`), mcq_acc (process():
  "X. text" is X, else the VQA punctuation rules, lower-case, the first lone a-e letter, else the text),
  mvbench_aggregate_results (correct over non-empty replies); lmms_eval/api/task.py strips the reply first."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import mvbench_repo

OPTS = ["one", "two", "three", "four"]


def q(video: str, answer: str, question: str = "What happened after the person took the cup?") -> dict:
    return {"video": video, "question": question, "candidates": OPTS, "answer": answer}


def test_mvbench_mcq_acc_rules_empty_replies_left_out_and_mean_over_tasks(tmp_path: Path, data: Path) -> None:  # noqa: F811
    golds = ["two", "three", "two", "three", "one", "two"]
    mvbench_repo(data, {"action_sequence": [q(f"S{i}.mp4", a) for i, a in enumerate(golds)],
                        "fine_grained_action": [q("m0.mp4", "three"), q("m1.mp4", "four"), q("m2.mp4", "one")]})
    seq = ["(B) two",  # B
           "The answer is C.",  # the first lone letter: c
           "A dog runs, so the answer is B.",  # the article "a" comes first: A; robust B
           "I'd say C",  # "d" of "I'd" stands alone after the apostrophe: D; robust C
           "  ",  # empty once stripped: left out of the official accuracy, wrong for the robust one
           "b"]  # lower-case is fine: B
    fga = ["C. three",  # "X. text": C
           "I don't know",  # no lone a-e: the text itself, wrong
           "E"]  # a letter no option has: wrong both ways
    records = [{"task": "mvbench", "split": "action_sequence", "row": i, "prediction": p} for i, p in enumerate(seq)]
    records += [{"task": "mvbench", "split": "fine_grained_action", "row": i, "prediction": p} for i, p in enumerate(fga)]
    t = run(tmp_path, "mvbench", records)["tasks"]["mvbench"]
    o = t["official"]
    assert o["metric"] == "mvbench_accuracy"
    assert o["by_category"] == pytest.approx({"action_sequence": 60.0, "fine_grained_action": 100 / 3})
    assert o["overall"] == pytest.approx((60.0 + 100 / 3) / 2)  # the tasks' mean, not 4 of 8 answered
    assert o["note"] == "1 empty reply left out of the accuracy, as lmms-eval does"
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(600 / 9) and t["unparsed"] == 3
    assert sorted(o["disagree"]) == ["action_sequence/2", "action_sequence/3"]
    rows = samples(tmp_path, "mvbench")
    assert [rows[f"action_sequence/{i}"]["official_answer"] for i in range(6)] == ["B", "C", "A", "D", "", "B"]
    assert rows["fine_grained_action/1"]["official_answer"] == "i don't know"
    assert rows["action_sequence/0"]["input"] == ("Question:What happened after the person took the cup?\nOption:\n"
                                                  "(A) one\n(B) two\n(C) three\n(D) four\nOnly give the best option.\n")
    assert rows["action_sequence/0"]["target"] == "B" and rows["fine_grained_action/2"]["target"] == "A"
    assert rows["fine_grained_action/2"]["video"] == [f"{data}/OpenGVLab/MVBench/Moments_in_Time_Raw/videos/m2.mp4"]


def test_mvbench_videos_from_their_source_folders_reach_the_endpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from judge_fakes import ScriptedJudge

    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main
    from polyvlm.eval.tasks import listing

    mvbench_repo(data, {"moving_count": [q("video_10000.mp4", "two", "How many cubes move?")],
                        "episodic_reasoning": [q("castle_s01e01_seg02_clip_00.mkv", "one", "Why does he leave?")]},
                 levels={"video_10000.mp4": 50, "castle_s01e01_seg02_clip_00.mkv": 210})
    info = {r["task"]: r for r in listing()}["mvbench"]
    assert info["download"] == ("huggingface-cli download --repo-type dataset OpenGVLab/MVBench --revision video "
                                "--local-dir $POLYVLM_EVAL_DATA/OpenGVLab/MVBench") and info["data"] == "local"
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "(B) two") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "mvbench", "--output_path", str(out)]) == 0
    levels = {"How many cubes move?": 50, "Why does he leave?": 210}
    assert len(model.bodies) == 2
    for body, prompt in zip(model.bodies, model.prompts):
        content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        (url,) = [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))
        level = levels[prompt.split("Question:")[1].split("\n")[0]]
        assert abs(frames[0].getpixel((8, 8))[0] - level) <= 3
    res = __import__("json").loads((out / "results.json").read_text())["tasks"]["mvbench"]
    assert res["official"]["by_category"] == {"episodic_reasoning": 0.0, "moving_count": 100.0}
    assert res["n"] == 2  # the 18 tasks this copy lacks are skipped, the two it has are run


def test_mvbench_missing_video_names_the_row_and_the_folder(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    mvbench_repo(data, {"action_sequence": [q("S0.mp4", "two"), q("gone.mp4", "one")]}, skip_videos=("gone.mp4",))
    tasks, _ = resolve(["mvbench"])
    with pytest.raises(TaskError, match=r"(?s)1 of 2 videos are not here \(first: OpenGVLab/MVBench split action_sequence "
                                        r"row 1, star/Charades_segment/gone.mp4\).*--revision video"):
        tasks[0].samples()
