"""NExT-QA (multiple choice, test) as lmms-eval reads and scores it, beside polyvlm's robust reading, from the repo's
layout. Official rules worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/nextqa/_default_template_yaml: lmms-lab/NExTQA, cache_dir nextqa; nextqa_mc_test.yaml: dataset_name MC,
  test_split test, metric exact_match (mean), no lmms_eval_specific_kwargs (so no post_prompt);
- lmms_eval/tasks/nextqa/utils.py: nextqa_doc_to_visual (get_video(<cache>/NExTVideo, video)), nextqa_doc_to_text_mc
  (stripped question, then "A. <a0>" ... "E. <a4>", joined by newlines), get_multi_choice_info, parse_multi_choice_response
  (MMMU's: "(X)" candidates, else "X ", else "X.", else option text when over 5 words; several -> np.argmax of the
  last places; none -> random.choice), nextqa_mc_process_results (parsed == OPTIONS[answer]);
- lmms_eval/tasks/_task_utils/video_loader.py: get_video tries <video>.mp4, <video>.MP4, <video>.mp4;
- lmms_eval/api/task.py: the reply is stripped; lmms-eval seeds `random` with 0, so the first draw over A-E is D."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import nextqa_repo

ANSWERS = ["pick up the toy", "run away", "sit down", "look at the dog", "clap hands"]


def q(video: int, answer: int, qtype: str, question: str = " why did the boy bend down? ") -> dict:
    return {"video": video, "question": question, "answer": answer, "type": qtype, "answers": ANSWERS}


def test_nextqa_mc_test_mmmu_reading_random_draw_and_exact_match(tmp_path: Path, data: Path) -> None:  # noqa: F811
    rows = [q(4010069381, 2, "CW"), q(4010069382, 1, "CW"), q(4010069383, 0, "CW"),
            q(4010069384, 2, "TN"), q(4010069385, 3, "TN"), q(4010069386, 0, "TN")]
    nextqa_repo(data, rows, [f"{r['video']}.mp4" for r in rows])
    preds = ["C",  # right
             "(B) run away, not (D)",  # bracketed B and D: the last one, D: wrong
             "A. pick up the toy",  # no "A " but "A.": right
             "he wants to sit down on the floor now",  # 9 words, no letter: the text "sit down" -> C: right
             "I don't know",  # nothing, 3 words: random -> D (first draw) = gold: right by chance
             "E"]  # wrong
    records = [{"task": "nextqa_mc_test", "split": "test", "row": i, "prediction": p} for i, p in enumerate(preds)]
    t = run(tmp_path, "nextqa_mc_test", records)["tasks"]["nextqa_mc_test"]
    o = t["official"]
    assert o["metric"] == "exact_match" and o["random_fallback"] == 1
    assert o["overall"] == pytest.approx(400 / 6) and o["by_category"] == pytest.approx({"CW": 200 / 3, "TN": 200 / 3})
    got = samples(tmp_path, "nextqa_mc_test")
    assert [got[f"test/{i}"]["official_answer"] for i in range(6)] == ["C", "D", "A", "C", "D", "E"]
    assert got["test/4"]["random_fallback"] and got["test/4"]["scores"]["official"] == 1
    # robust: "(B) run away, not (D)" is B, "I don't know" unread (no lucky draw): the same 4 of 6, other rows
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(400 / 6) and t["unparsed"] == 1
    assert o["disagree"] == ["test/1", "test/4"]
    assert got["test/0"]["input"] == ("why did the boy bend down?\nA. pick up the toy\nB. run away\nC. sit down\n"
                                      "D. look at the dog\nE. clap hands")
    assert got["test/5"]["video"] == [f"{data}/lmms-lab/NExTQA/videos.zip:NExTVideo/4010069386.mp4"]


def test_nextqa_mc_test_videos_reach_the_endpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    import base64

    from judge_fakes import ScriptedJudge

    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main

    nextqa_repo(data, [q(11, 1, "DC", "how many dogs?"), q(12, 0, "TP", "what happens first?")],
                ["11.mp4", "12.MP4"], levels={"11": 70, "12": 170})
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "B") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "nextqa_mc_test", "--output_path", str(out)]) == 0
    levels = {"how many dogs?": 70, "what happens first?": 170}
    assert len(model.bodies) == 2
    for body, prompt in zip(model.bodies, model.prompts):
        content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        (url,) = [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))
        assert abs(frames[0].getpixel((8, 8))[0] - levels[prompt.split("\n")[0]]) <= 3
    res = json.loads((out / "results.json").read_text())["tasks"]["nextqa_mc_test"]
    assert res["official"]["by_category"] == {"DC": 100.0, "TP": 0.0}


def test_nextqa_mc_test_missing_video_is_named(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    nextqa_repo(data, [q(1, 0, "CW"), q(2, 0, "CW")], ["1.mp4"])
    tasks, _ = resolve(["nextqa_mc_test"])
    with pytest.raises(TaskError, match=r"(?s)1 of 2 videos are not here \(first: lmms-lab/NExTQA split test row 1, "
                                        r"NExTVideo/2.mp4 or NExTVideo/2.MP4\).*lmms-lab/NExTQA"):
        tasks[0].samples()
