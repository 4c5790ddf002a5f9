"""Video-MME with subtitles as lmms-eval builds its prompt, from the repo's subtitle.zip and video chunks. Rules worked
out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/videomme/videomme_w_subtitle.yaml: videomme_doc_to_text_subtitle, frame_num 32 (`default`),
  the same process_results and aggregation as videomme;
- lmms_eval/tasks/videomme/utils.py: videomme_doc_to_text_subtitle ("This video's subtitles are listed below: \\n",
  the subtitle lines, the instruction, the question and options, "The best answer is:"; "No subtitles available"
  without <cache>/subtitle/<videoID>.srt), extract_subtitles (OpenCV's fps and frame count of <cache>/data/<id>.mp4,
  each SRT block as frames [int(start x fps), int(end x fps))), load_subtitles (blocks split on blank lines, times
  "HH:MM:SS,mmm"), the 32 frames of np.linspace(0, frames - 1, 32, dtype=int), list(set(...)) of the blocks hit,
  and each block's first `<font color="white" size=".72c">` text."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import videomme_repo

OPTIONS = ["A. one", "B. two", "C. three", "D. four"]
FONT = '<font color="white" size=".72c">{}</font>'
SRT = "\n\n".join([
    "1\n00:00:00,000 --> 00:00:01,000\n" + FONT.format("Hello there"),  # frames [0, 10): frames 0 and 6 are picked
    "2\n00:00:00,100 --> 00:00:00,500\n" + FONT.format("Missed line"),  # frames [1, 5): none of the 32 falls there
    "3\n00:00:05,000 --> 00:00:06,000\nplain words, no font tag",  # frame 51 is picked, but no <font>: dropped
    "4\n00:00:10,000 --> 00:00:11,500\n" + FONT.format("Second") + "\n" + FONT.format("third"),  # frame 102: first tag
]) + "\n"
INSTRUCTION = ("Select the best answer to the following multiple-choice question based on the video and the subtitles. "
               "Respond with only the letter (A, B, C, or D) of the correct option.")


def row(video: str, answer: str) -> dict:
    return {"videoID": video, "duration": "short", "question": f"What is said in {video}?", "options": OPTIONS,
            "answer": answer}


def prompt(video: str, subtitles: str) -> str:
    return (f"This video's subtitles are listed below: \n{subtitles}\n{INSTRUCTION}\nWhat is said in {video}?\n"
            "A. one\nB. two\nC. three\nD. four\nThe best answer is:")


def test_videomme_subtitles_at_32_frames_in_the_prompt(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from judge_fakes import ScriptedJudge

    from polyvlm.eval.cli import main as eval_main

    # 200 frames at 10 fps (20 s); vidMkv0001 has subtitles, but OpenCV's data/<id>.mp4 does not exist for it
    videomme_repo(data, [row("vidTalk0001", "B"), row("vidMkv0001", "C"), row("vidMute0001", "A")],
                  {"videos_chunked_01.zip": ["vidTalk0001.mp4", "vidMkv0001.mkv", "vidMute0001.mp4"]},
                  subtitles={"vidTalk0001": SRT, "vidMkv0001": SRT}, n_frames=200, fps=10)
    out = tmp_path / "out"
    with ScriptedJudge(lambda text: "The best answer is B.") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "videomme_w_subtitle", "--output_path", str(out)]) == 0
    assert sorted(model.prompts) == sorted([prompt("vidTalk0001", "Hello there\nSecond"), prompt("vidMkv0001", ""),
                                            prompt("vidMute0001", "No subtitles available")])
    rows = samples(tmp_path, "videomme_w_subtitle")
    assert rows["test/0"]["input"] == prompt("vidTalk0001", "Hello there\nSecond")  # the prompt as asked
    assert rows["test/0"]["scores"]["official"] == 1.0 and rows["test/1"]["scores"]["official"] == 0.0


def test_videomme_subtitles_known_before_asking_when_unzipped(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """With the files already unzipped (as lmms-eval leaves them), `--predictions` shows the full prompts; the
    scoring is videomme's."""
    import zipfile

    base = videomme_repo(data, [row("vidTalk0001", "B"), row("vidTalk0001", "D")],
                         {"videos_chunked_01.zip": ["vidTalk0001.mp4"]}, subtitles={"vidTalk0001": SRT},
                         n_frames=200, fps=10)
    for z in ("videos_chunked_01.zip", "subtitle.zip"):
        zipfile.ZipFile(base / z).extractall(base)
    res = run(tmp_path, "videomme_w_subtitle", [{"split": "test", "row": 0, "prediction": "B"},
                                                {"split": "test", "row": 1, "prediction": "Definitely D"}])
    assert res["tasks"]["videomme_w_subtitle"]["official"]["overall"] == 100.0  # "Definitely D": the D of Definitely
    rows = samples(tmp_path, "videomme_w_subtitle")
    assert rows["test/1"]["input"] == prompt("vidTalk0001", "Hello there\nSecond")


def test_videomme_bad_srt_time_names_the_file(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    base = videomme_repo(data, [row("vidTalk0001", "B")], {"videos_chunked_01.zip": ["vidTalk0001.mp4"]},
                         subtitles={"vidTalk0001": "1\n00:00:00.000 -> 00:00:01,000\nhi\n"})
    import zipfile

    for z in ("videos_chunked_01.zip", "subtitle.zip"):
        zipfile.ZipFile(base / z).extractall(base)
    tasks, _ = resolve(["videomme_w_subtitle"])
    with pytest.raises(TaskError, match=r"split test row 0: subtitle/vidTalk0001.srt: bad SRT time line"):
        tasks[0].samples()
