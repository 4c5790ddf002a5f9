"""EgoSchema's answered subset as lmms-eval reads and scores it, beside polyvlm's robust reading, from the repo's layout.
Official rules worked out by hand from EvolvingLMMs-Lab/lmms-eval at 80391ce3 (Dec 2024):
- lmms_eval/tasks/egoschema/_default_template_yaml: lmms-lab/egoschema, cache_dir egoschema;
  egoschema_subset.yaml: dataset_name Subset, test_split test, metric `score` (egoschema_aggregate_score);
- lmms_eval/tasks/egoschema/utils.py: egoschema_doc_to_visual (<cache>/videos/<video_idx>.mp4, else .MP4),
  egoschema_doc_to_text (question + "\\n" + each `option` string + "\\nAnswer with the option's letter from the given
  choices directly."), get_multi_choice_info (index2ans: the five stored option strings, stripped),
  parse_multi_choice_response ("(X)", "X ", "X." all collected; option text in replies over 5 words; several -> the
  smallest last-occurrence index; none -> random.choice), egoschema_process_results_generation (letter -> 0-4, -1
  otherwise), egoschema_aggregate_score (str(ground_truth) == str(pred), over every question);
- lmms_eval/api/task.py: the reply is stripped first; videos unzipped to $HF_HOME/<cache_dir>; lmms-eval seeds
  `random` with 0 (its --seed), so the first two draws of random.Random(0).choice over A-E are D, D."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)
from video_fixtures import egoschema_repo

OPTIONS = ["A. a cup", "B. a knife", "C. a bowl", "D. a pan", "E. a towel"]


def q(video: str, answer: str, question: str = "What does c use most?") -> dict:
    return {"video_idx": video, "question": question, "option": OPTIONS, "answer": answer}


def test_egoschema_subset_parse_rules_random_fallback_and_score(tmp_path: Path, data: Path) -> None:  # noqa: F811
    golds = ["1", "2", "2", "1", "3", "4", "4"]
    egoschema_repo(data, [q(f"v{i}", a) for i, a in enumerate(golds)],
                   {"videos_chunked_01.zip": [f"v{i}.mp4" for i in range(4)],
                    "videos_chunked_02.zip": [f"v{i}.mp4" for i in range(4, 7)]})
    preds = ["B",  # "B " -> B (1): right
             "(C) a bowl",  # "(C)" only ("C)" is no "C "): right
             "The DNA test says C.",  # "." stripped; "A " (of "DNA ") and "C ": A's last place comes first -> A: wrong
             "the person mostly uses b. a knife in the kitchen",  # no capital form, 9 words: "b. a knife" holds the
             # stored option "B. a knife" (case-insensitive) -> B: right
             "no idea",  # nothing, 2 words: random -> D (first draw) = gold 3: right by chance
             "E. a towel, or maybe (A)",  # "(A)" and "E.": E's last place (1) comes first -> E: right
             "e"]  # lower-case letter alone: random -> D (second draw): wrong
    records = [{"task": "egoschema_subset", "split": "test", "row": i, "prediction": p} for i, p in enumerate(preds)]
    t = run(tmp_path, "egoschema_subset", records)["tasks"]["egoschema_subset"]
    o = t["official"]
    assert o["metric"] == "score" and o["random_fallback"] == 2
    assert o["overall"] == pytest.approx(500 / 7)
    rows = samples(tmp_path, "egoschema_subset")
    assert [rows[f"test/{i}"]["official_answer"] for i in range(7)] == ["B", "C", "A", "B", "D", "E", "D"]
    assert [rows[f"test/{i}"]["scores"]["official"] for i in range(7)] == [1, 1, 0, 1, 1, 1, 0]
    assert rows["test/4"]["random_fallback"] and "random_fallback" not in rows["test/0"]
    # robust: "says C" is C; "no idea" is unread (no lucky draw); a lone "e" is E
    assert t["metrics"]["accuracy"]["overall"] == pytest.approx(600 / 7)
    assert sorted(o["disagree"]) == ["test/2", "test/4", "test/6"]
    assert rows["test/0"]["input"] == ("What does c use most?\nA. a cup\nB. a knife\nC. a bowl\nD. a pan\nE. a towel"
                                       "\nAnswer with the option's letter from the given choices directly.")
    assert rows["test/5"]["target"] == "E" and rows["test/5"]["video"] == \
        [f"{data}/lmms-lab/egoschema/videos_chunked_02.zip:videos/v5.mp4"]


def test_egoschema_subset_videos_from_the_zips_reach_the_endpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    import json

    from judge_fakes import ScriptedJudge

    from polyvlm import media
    from polyvlm.eval.cli import main as eval_main
    from polyvlm.eval.tasks import listing

    egoschema_repo(data, [q("a1b2", "0", "Where is c?"), q("c3d4", "2", "Why does c stop?")],
                   {"videos_chunked_01.zip": ["a1b2.mp4"], "videos_chunked_02.zip": ["c3d4.MP4"]},
                   levels={"a1b2": 40, "c3d4": 200})
    info = {r["task"]: r for r in listing()}["egoschema_subset"]
    assert info["download"] == ("huggingface-cli download --repo-type dataset lmms-lab/egoschema --local-dir "
                                "$POLYVLM_EVAL_DATA/lmms-lab/egoschema") and info["data"] == "local"
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "A.") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "egoschema_subset", "--output_path", str(out)]) == 0
    levels = {"Where is c?": 40, "Why does c stop?": 200}
    assert len(model.bodies) == 2
    for body, prompt in zip(model.bodies, model.prompts):
        content = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        (url,) = [p["video_url"]["url"] for p in content if p.get("type") == "video_url"]
        frames = media.load("video", base64.b64decode(url.split(",", 1)[1]))
        assert abs(frames[0].getpixel((8, 8))[0] - levels[prompt.split("\n")[0]]) <= 3
    assert (data / "lmms-lab/egoschema/videos/c3d4.MP4").is_file()  # extracted where `unzip` puts it
    res = json.loads((out / "results.json").read_text())["tasks"]["egoschema_subset"]
    assert res["official"]["overall"] == 50.0 and res["official"]["random_fallback"] == 0


def test_egoschema_subset_bad_rows_and_missing_videos_are_named(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.tasks import TaskError, resolve

    egoschema_repo(data, [q("v0", "1"), q("gone", "2")], {"videos_chunked_01.zip": ["v0.mp4"]})
    tasks, _ = resolve(["egoschema_subset"])
    with pytest.raises(TaskError, match=r"(?s)1 of 2 videos are not here \(first: lmms-lab/egoschema split test row 1, "
                                        r"videos/gone.mp4 or videos/gone.MP4\).*huggingface-cli download"):
        tasks[0].samples()
    egoschema_repo(data, [q("v0", "5")], {})
    tasks, _ = resolve(["egoschema_subset"])
    with pytest.raises(TaskError, match=r"lmms-lab/egoschema split test row 0: ValueError: answer '5' is not an option "
                                        r"index 0-4"):
        tasks[0].samples()
