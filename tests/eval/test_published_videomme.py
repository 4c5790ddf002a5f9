"""Video-MME as lmms-eval reads and scores it, beside polyvlm's robust reading, from the repo's parquet and zip chunks.
Official rules worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/videomme/videomme.yaml: dataset lmms-lab/Video-MME, split test, max_new_tokens 16, the `default`
  post_prompt "\\nAnswer with the option's letter from the given choices directly.";
- lmms_eval/tasks/videomme/utils.py: videomme_doc_to_visual (<cache>/data/<videoID>.mp4, else .MP4, else .mkv;
  lmms_eval/api/task.py unzips every zip of the repo into $HF_HOME/videomme), videomme_doc_to_text (instruction,
  question, the `options` lines, post_prompt, joined by newlines), extract_characters_regex (strip; delete "The best
  answer is", "The correct answer is", "The answer is", "The answer" and two comma-less concatenations; "" for more
  than 10 words without A-D; else the first capital A-D anywhere), videomme_process_results and
  videomme_aggregate_results (correct / answered over every question, logged by duration, domain, sub_category and
  task_type); api/task.py strips the reply first."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import videomme_repo

OPTIONS = ["A. one", "B. two", "C. three", "D. four"]


def row(video: str, duration: str, answer: str, domain: str = "Knowledge",
        task_type: str = "Object Recognition") -> dict:
    return {"videoID": video, "duration": duration, "question": f"How many objects in {video}?", "options": OPTIONS,
            "answer": answer, "domain": domain, "task_type": task_type}


def test_videomme_official_letter_rule_and_duration_breakdown(tmp_path: Path, data: Path) -> None:  # noqa: F811
    rows = [row("vidShort01", "short", "B", task_type="Counting Problem"), row("vidShort01", "short", "C"),
            row("vidShort01", "short", "B"),
            row("vidMedium2", "medium", "C", "Sports Competition", "Counting Problem"),
            row("vidMedium2", "medium", "B", "Sports Competition"), row("vidMedium2", "medium", "A", "Sports Competition"),
            row("vidLong003", "long", "C", task_type="Counting Problem"), row("vidLong003", "long", "D"),
            row("vidLong003", "long", "A")]
    videomme_repo(data, rows, {"videos_chunked_01.zip": ["vidShort01.mp4", "vidMedium2.MP4"],
                               "videos_chunked_02.zip": ["vidLong003.mkv"]})
    preds = ["B",  # right both ways
             "The answer is C.",  # the prefix is deleted: C
             "b",  # no capital A-D: "" (wrong); robust B
             "Definitely C",  # the first capital A-D is the D of "Definitely"; robust C
             "A cat runs, so the answer is B",  # the article A comes first; robust B (stated answer)
             "(A)",  # A
             "Best answer: C",  # "Best answer:Best option:" lacks its comma, so nothing is deleted: the B of "Best"
             "The best answer is: D",  # D
             "The video shows a man cooking pasta in a small kitchen at night time"]  # > 10 words, no A-D: ""
    res = run(tmp_path, "videomme", [{"task": "videomme", "split": "test", "row": i, "prediction": p}
                                     for i, p in enumerate(preds)])
    t = res["tasks"]["videomme"]
    o = t["official"]
    assert o["metric"] == "videomme_perception_score" and o["overall"] == pytest.approx(400 / 9)
    assert o["by_category"] == pytest.approx({"short": 200 / 3, "medium": 100 / 3, "long": 100 / 3})
    assert o["by_domain"] == pytest.approx({"Knowledge": 50.0, "Sports Competition": 100 / 3})
    assert o["by_task_type"] == pytest.approx({"Counting Problem": 100 / 3, "Object Recognition": 50.0})
    assert o["by_sub_category"] == pytest.approx({"Astronomy": 400 / 9})
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(800 / 9) and t["unparsed"] == 1
    assert t["metrics"]["accuracy"]["by_category"] == pytest.approx({"long": 200 / 3, "medium": 100.0, "short": 100.0})
    assert sorted(o["disagree"]) == ["test/2", "test/3", "test/4", "test/6"]
    assert t["en"] == pytest.approx(400 / 9)
    r = samples(tmp_path, "videomme")
    assert [r[f"test/{i}"]["official_answer"] for i in range(9)] == ["B", "C", "", "D", "A", "A", "B", "D", ""]
    assert r["test/0"]["input"] == (
        "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
        "Respond with only the letter (A, B, C, or D) of the correct option.\nHow many objects in vidShort01?\n"
        "A. one\nB. two\nC. three\nD. four\n\nAnswer with the option's letter from the given choices directly.")
    assert r["test/0"]["video"] == [f"{data}/lmms-lab/Video-MME/videos_chunked_01.zip:data/vidShort01.mp4"]
    assert r["test/8"]["video"] == [f"{data}/lmms-lab/Video-MME/videos_chunked_02.zip:data/vidLong003.mkv"]
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "## videomme: official videomme_perception_score by category" in md and "| short | 66.7 |" in md
    assert "## videomme: official videomme_perception_score by task_type" in md


def _video_parts(body: dict) -> list[str]:
    content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    return [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]


def test_videomme_videos_come_out_of_the_zip_chunks_to_the_endpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from judge_fakes import ScriptedJudge

    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main
    from polyvlm.eval.tasks import listing

    base = videomme_repo(data, [row("vidShort01", "short", "B"), row("vidMedium2", "medium", "A"),
                                row("vidLong003", "long", "D")],
                         {"videos_chunked_01.zip": ["vidShort01.mp4", "vidMedium2.MP4"],
                          "videos_chunked_02.zip": ["vidLong003.mkv"]},
                         levels={"vidShort01": 40, "vidMedium2": 120, "vidLong003": 200})
    info = {r["task"]: r for r in listing()}["videomme"]
    assert info["data"] == "local" and info["repo"] == "lmms-lab/Video-MME" and "mammoth_vl" in info["suites"]
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "B") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "videomme", "--output_path", str(out)]) == 0
    assert len(model.bodies) == 3 and all(b["max_tokens"] == 16 for b in model.bodies)
    expect = {"vidShort01": (40, "video/mp4"), "vidMedium2": (120, "video/mp4"), "vidLong003": (200, "video/x-matroska")}
    for body, prompt in zip(model.bodies, model.prompts):  # requests may arrive in any order
        level, mime = expect[prompt.split("How many objects in ")[1].split("?")[0]]
        (url,) = _video_parts(body)
        assert url.startswith(f"data:{mime};base64,")
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))  # the seeking sampler, 6 frames
        assert abs(frames[0].getpixel((8, 8))[0] - level) <= 3
    # extracted where `unzip` in the repo folder puts them, in the lookup order of videomme_doc_to_visual
    assert sorted(p.name for p in (base / "data").iterdir()) == ["vidLong003.mkv", "vidMedium2.MP4", "vidShort01.mp4"]
    res = __import__("json").loads((out / "results.json").read_text())
    assert res["tasks"]["videomme"]["official"]["overall"] == pytest.approx(100 / 3)
    shown = [__import__("json").loads(x)["video"] for x in (out / "samples_videomme.jsonl").read_text().splitlines()]
    assert shown[0] == [f"{base}/videos_chunked_01.zip:data/vidShort01.mp4"]  # where it was when the run started


def test_videomme_reads_lmms_evals_unzipped_folder(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """Videos already unzipped by lmms-eval ($HF_HOME/videomme/data) are used as they are; no zip needed."""
    from judge_fakes import ScriptedJudge
    from video_fixtures import video_bytes

    from polyvlm.eval.cli import main as eval_main

    videomme_repo(data, [row("vidShort01", "short", "B")], {})
    cache = tmp_path / "hf_home" / "videomme" / "data"
    cache.mkdir(parents=True)
    (cache / "vidShort01.mp4").write_bytes(video_bytes(90))
    with ScriptedJudge(lambda prompt: "B") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "videomme", "--output_path", str(tmp_path / "o")]) == 0
    (url,) = _video_parts(model.bodies[0])
    assert base64.b64decode(url.split(",", 1)[1]) == (cache / "vidShort01.mp4").read_bytes()


def test_videomme_missing_video_stops_before_any_request(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    # videomme_doc_to_visual replaces every "mp4" of the path, the one inside the id too
    videomme_repo(data, [row("vidShort01", "short", "B"), row("gmp4ne", "long", "A")],
                  {"videos_chunked_01.zip": ["vidShort01.mp4"]})
    tasks, _ = resolve(["videomme"])
    with pytest.raises(TaskError, match=r"1 of 2 videos are not here \(first: lmms-lab/Video-MME split test row 1, "
                                        r"data/gmp4ne.mp4 or data/gMP4ne.MP4 or data/gmkvne.mkv\).*\n  "
                                        r"huggingface-cli download --repo-type dataset lmms-lab/Video-MME"):
        tasks[0].samples()


@pytest.mark.slow
def test_videomme_on_a_checkpoint_matches_the_model_asked_directly(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """`--model`: the video goes to the checkpoint as a `Video` the model samples with polyvlm.media's seeking
    sampler (its trained fps and frame cap); each prediction is the model's greedy answer to that video."""
    import json

    import polyvlm
    from polyvlm.eval.cli import main as eval_main
    from polyvlm.infer import ChatRequest, Video
    from polyvlm.models.generate import VLMGenerator
    from polyvlm.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", overrides=["model.max_length=512", "model.frames_upbound=4"])
    base = videomme_repo(data, [row("vidDark001", "short", "B"), row("vidLight02", "long", "A")],
                         {"videos_chunked_01.zip": ["vidDark001.mp4", "vidLight02.mp4"]},
                         levels={"vidDark001": 20, "vidLight02": 230})
    out = tmp_path / "out"
    assert eval_main(["--model", str(ckpt), "--tasks", "videomme", "--output_path", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "samples_videomme.jsonl").read_text(encoding="utf-8").splitlines()]
    gen = VLMGenerator(*polyvlm.load(ckpt))
    for r, video in zip(rows, ["vidDark001", "vidLight02"]):
        req = ChatRequest(messages=[{"role": "user", "content": "<video>\n" + r["input"]}],
                          videos=[Video(base / "data" / f"{video}.mp4")], max_new_tokens=16)
        assert r["prediction"] == gen.generate([req])[0].text
    assert rows[0]["prediction"] != rows[1]["prediction"]  # the answer follows the video's frames
