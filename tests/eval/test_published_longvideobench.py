"""LongVideoBench (validation, video only) as lmms-eval reads and scores it, beside polyvlm's robust reading, from the
repo's layout. Official rules worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/longvideobench/longvideobench_val_v.yaml: longvideobench/LongVideoBench, cache_dir longvideobench,
  test_split validation, max_new_tokens 32, post_prompt "Answer with the option's letter from the given choices
  directly.\\n", metric lvb_acc;
- lmms_eval/tasks/longvideobench/utils.py: longvideobench_doc_to_text (question + "\\n" + "A. ..." lines of the options
  that are not "N/A", then "\\n" + post_prompt), longvideobench_doc_to_visual_v (<cache>/videos/<video_path>),
  parse_multi_choice_response (prefixes deleted; first capital A-E; random.choice of the question's letters when there
  is none or more than 10 words without one), longvideobench_process_results (letters up to the first "N/A"; gold
  chr(65 + correct_choice)), longvideobench_aggregate_results + calculate_ins_level_acc (each question in its
  duration_group and its question_category; the weighted mean is the plain accuracy; round(acc, 5));
- lmms_eval/api/task.py: the reply is stripped; split tars (`videos.tar.part.*`, grouped by the name before ".tar")
  concatenated and unpacked into $HF_HOME/longvideobench; lmms-eval seeds `random` with 0: the first draws of random.Random(0).choice over A-D and
  then A-E are D and D."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import longvideobench_repo

CANDS = ["a red car", "a blue bus", "a bike", "a truck"]


def q(video: str, answer: int, group: int, category: str, candidates: list[str] = CANDS,
      question: str = "What passes the camera first?") -> dict:
    return {"video_path": video, "question": question, "candidates": candidates, "correct_choice": answer,
            "duration_group": group, "question_category": category}


def unpack(base: Path) -> None:
    """README's optional unpacking of the split tar, run as written (with $POLYVLM_EVAL_DATA pointing at the copy)."""
    command = "cat $DIR/videos.tar.part.* | tar -x -C $DIR"
    subprocess.run(command, shell=True, check=True, env={"DIR": str(base), "PATH": "/usr/bin:/bin"})


def test_longvideobench_val_v_reading_random_draws_and_rounded_accuracy(tmp_path: Path, data: Path) -> None:  # noqa: F811
    rows = [q("v0.mp4", 1, 15, "S2E"), q("v1.mp4", 2, 15, "S2E"), q("v2.mp4", 3, 15, "S2E"),
            q("v3.mp4", 0, 600, "T3O"), q("v4.mp4", 3, 600, "T3O"), q("v5.mp4", 4, 600, "T3O", CANDS + ["a van"])]
    longvideobench_repo(data, rows)  # the videos stay in the split tar
    preds = ["B",  # right
             "Definitely C",  # the D of "Definitely": wrong; robust C
             "The best option is D.",  # prefix deleted: D, right
             "no letter here",  # none: random among A-D -> D (first draw): wrong (gold A)
             "the truck comes first in the clip while everything else follows behind it",  # 13 words, no A-E:
             # random among A-D -> D (second draw) = gold: right by chance
             "E"]  # five options here: E is right
    records = [{"task": "longvideobench_val_v", "split": "validation", "row": i, "prediction": p}
               for i, p in enumerate(preds)]
    t = run(tmp_path, "longvideobench_val_v", records)["tasks"]["longvideobench_val_v"]
    o = t["official"]
    got = samples(tmp_path, "longvideobench_val_v")
    reads = [got[f"validation/{i}"]["official_answer"] for i in range(6)]
    assert o["metric"] == "lvb_acc" and o["random_fallback"] == 2
    assert reads == ["B", "D", "D", "D", "D", "E"]
    assert [got[f"validation/{i}"]["scores"]["official"] for i in range(6)] == [1, 0, 1, 0, 1, 1]
    assert o["overall"] == pytest.approx(66.667)  # round(4 / 6, 5) x 100, not 66.666...
    assert o["by_category"] == pytest.approx({"S2E": 66.667, "T3O": 66.667})
    assert o["by_duration_group"] == pytest.approx({"15": 66.667, "600": 66.667})
    # robust: "Definitely C" is C; the two unread replies are wrong (no draw): 4 of 6 too, other rows
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(400 / 6) and t["unparsed"] == 2
    assert o["disagree"] == ["validation/1", "validation/4"]
    assert got["validation/0"]["input"] == ("What passes the camera first?\nA. a red car\nB. a blue bus\nC. a bike\n"
                                            "D. a truck\nAnswer with the option's letter from the given choices "
                                            "directly.\n")
    assert got["validation/5"]["video"] == [f"{data}/longvideobench/LongVideoBench/videos.tar:videos/v5.mp4"]


def test_longvideobench_val_v_videos_from_the_split_tar_reach_the_endpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    import base64

    from judge_fakes import ScriptedJudge

    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main

    base = longvideobench_repo(data, [q("a.mp4", 0, 60, "E2O", question="Who speaks?"),
                                      q("b.mp4", 1, 3600, "O3O", ["x", "y"], question="Which comes later?")],
                               levels={"a.mp4": 45, "b.mp4": 205})
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "A") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "longvideobench_val_v", "--output_path", str(out)]) == 0
    levels = {"Who speaks?": 45, "Which comes later?": 205}
    assert len(model.bodies) == 2
    for body, prompt in zip(model.bodies, model.prompts):
        content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        (url,) = [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))
        assert abs(frames[0].getpixel((8, 8))[0] - levels[prompt.split("\n")[0]]) <= 3
        assert body["max_tokens"] == 32
    # extracted from the parts where `cat parts | tar -x` would put them; the parts are untouched
    assert (base / "videos/a.mp4").read_bytes()[:8] == (base / "videos/b.mp4").read_bytes()[:8]
    assert sorted(p.name for p in base.glob("videos.tar*")) == ["videos.tar.part.aa", "videos.tar.part.ab"]
    res = json.loads((out / "results.json").read_text())["tasks"]["longvideobench_val_v"]
    assert res["official"]["by_duration_group"] == {"60": 100.0, "3600": 0.0}


def test_longvideobench_val_v_missing_video_is_named(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    longvideobench_repo(data, [q("c.mp4", 0, 15, "S2E"), q("gone.mp4", 0, 15, "S2E")], skip_videos=("gone.mp4",))
    tasks, _ = resolve(["longvideobench_val_v"])
    with pytest.raises(TaskError, match=r"(?s)1 of 2 videos are not here \(first: longvideobench/LongVideoBench split "
                                        r"validation row 1, videos/gone.mp4\).*1 archive\(s\) under"):
        tasks[0].samples()


def test_longvideobench_val_v_reads_an_unpacked_copy_and_refuses_broken_parts(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    base = longvideobench_repo(data, [q("d.mp4", 2, 600, "T2A")])
    unpack(base)
    (base / "videos.tar.part.aa").unlink()
    (base / "videos.tar.part.ab").unlink()
    tasks, _ = resolve(["longvideobench_val_v"])
    (sample,) = tasks[0].samples()
    assert sample.media == {"video": [str(base / "videos/d.mp4")]}
    (base / "videos.tar.part.aa").write_bytes(b"not a tar header" * 40)
    tasks, _ = resolve(["longvideobench_val_v"])
    with pytest.raises(TaskError, match=r"videos.tar: 1 part\(s\) do not read as one tar"):
        tasks[0].samples()
