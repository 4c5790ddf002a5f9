"""The `mammoth_vl` suite: every lmms-eval benchmark MAmmoTH-VL reports, each read from its own repo layout, in one
command; the suite's `en` is the mean of the tasks' official scores."""

from __future__ import annotations

from pathlib import Path

import pytest
from judge_fakes import ScriptedJudge
from mammoth_fixtures import (
    ai2d_repo,
    blink_repo,
    chartqa_repo,
    docvqa_repo,
    mathverse_repo,
    mathvista_repo,
    mmbench_repo,
    mmmu_pro_vision_repo,
    mmstar_repo,
    mmvet_repo,
    ocrbench_repo,
    realworldqa_repo,
    seedbench_repo,
)
from megabench_fixtures import info, row, write_repo
from published_fixtures import mmmu_repos, muirbench_repo
from test_published import data, run  # noqa: F401  (the fixture and helpers)
from test_published_llava_wilder import wilder_repo
from test_published_wildvision import wildvision_repo
from video_fixtures import (
    activitynetqa_repo,
    egoschema_repo,
    longvideobench_repo,
    mlvu_repo,
    mvbench_repo,
    nextqa_repo,
    perceptiontest_repo,
    videomme_repo,
)

from polyvlm.eval.tasks import SUITES


def test_mammoth_vl_suite_runs_every_task_from_its_repo(tmp_path: Path, data: Path) -> None:  # noqa: F811
    mmmu_repos(data)
    mmmu_pro_vision_repo(data, [(str(["x", "y"]), "B", "Art")], shards=1)
    muirbench_repo(data)
    mathverse_repo(data, {"vision_only": [("Find x.\nChoices:\nA:1\nB:2", "B", "multi-choice", "Answer it.")]})
    chartqa_repo(data, [("human_test", "Peak?", "12")])
    docvqa_repo(data, "DocVQA", [("Code?", ["abcd"])])
    docvqa_repo(data, "InfographicVQA", [("Year?", ["2019"])])
    mathvista_repo(data, [{"question": "How many?", "answer": "3", "question_type": "free_form",
                           "answer_type": "integer", "query": "How many?"}])
    mmstar_repo(data, [("Which?\nOptions: A: x, B: y", "A", "math", "geometry")])
    ai2d_repo(data, [("Which?", ["x", "y"], "1")])
    realworldqa_repo(data, [("Which?\nA. x\nB. y\nAnswer with the letter.", "B")])
    ocrbench_repo(data, [("IIIT5K", "What is written?", "Regular Text Recognition", ["cat"])])
    seedbench_repo(data, [("image", "Which?", ["w", "x", "y", "z"], "C", 1),
                          ("video", "Then?", ["w", "x", "y", "z"], "D", 2)])
    mmbench_repo(data, [{"index": 0, "question": "Which?", "answer": "A", "options": ["x", "y"]}])
    mmvet_repo(data, [("What color?", "red", "rec")])
    blink_repo(data, {"Counting": [(["1", "2"], "(A)", "How many?\n(A) 1\n(B) 2", 1)]})
    videomme_repo(data, [{"videoID": "v1", "duration": "short", "question": "Which?", "answer": "C",
                          "options": ["A. w", "B. x", "C. y", "D. z"]}], {"videos_chunked_01.zip": ["v1.mp4"]})
    mvbench_repo(data, {"action_sequence": [{"video": "s.mp4", "question": "Then?", "candidates": ["x", "y"],
                                             "answer": "y"}]})
    egoschema_repo(data, [{"video_idx": "e1", "question": "Which?", "answer": "4",
                           "option": ["A. v", "B. w", "C. x", "D. y", "E. z"]}], {"videos_chunked_01.zip": ["e1.mp4"]})
    perceptiontest_repo(data, [{"video_name": "p1", "question": "Which?", "options": ["x", "y", "z"], "answer_id": 1,
                                "area": "memory"}], {"videos_chunked_01.zip": ["p1.mp4"]})
    mlvu_repo(data, [{"video_name": "ego/m1.mp4", "question": "Where?\n(A) x\n(B) y", "answer": "B", "task_type": "ER"}],
              {"video_part_1.zip": ["ego/m1.mp4"]})
    nextqa_repo(data, [{"video": 7, "question": "Why?", "answer": 4, "type": "CW", "answers": ["p", "q", "r", "s", "t"]}],
                ["7.mp4"])
    longvideobench_repo(data, [{"video_path": "l.mp4", "question": "Who?", "candidates": ["x", "y"], "correct_choice": 1,
                                "duration_group": 15, "question_category": "S2E"}])
    activitynetqa_repo(data, [{"video_name": "n1", "question": "what is he doing", "answer": "running", "type": 1}],
                       {"all_test_v01.zip": ["v_n1.mp4"]})
    wilder_repo(data)
    wildvision_repo(data)
    exact = info({"answer": "exact_str_match"}, parser="answer_string")
    write_repo(data, "core", [row(0, "c1", {"answer": "a"}, exact), row(1, "c2", {"answer": "b"}, exact)])
    write_repo(data, "open", [row(0, "o1", {"answer": "a"}, exact)])
    records = [{"task": "megabench_core", "split": "test", "row": 0, "prediction": "a"},
               {"task": "megabench_core", "split": "test", "row": 1, "prediction": "x"},
               {"task": "megabench_open", "split": "test", "row": 0, "prediction": "a"},
               *({"task": "muirbench", "split": "test", "row": i, "prediction": "B."} for i in range(4)),
               {"task": "mmmu_val", "split": "validation", "row": 0, "prediction": "(B) different"},
               {"task": "mmmu_val", "split": "validation", "row": 1, "prediction": "The area is 12.0"},
               {"task": "mmmu_pro", "split": "test", "row": 0, "prediction": "J"},
               {"task": "mmmu_pro_vision", "split": "test", "row": 0, "prediction": "(B)"},
               {"task": "mathverse", "split": "vision_only", "row": 0, "prediction": "A"},
               {"task": "chartqa", "split": "test", "row": 0, "prediction": "12"},
               {"task": "docvqa_val", "split": "validation", "row": 0, "prediction": "abcd"},
               {"task": "infovqa_val", "split": "validation", "row": 0, "prediction": "1984"},
               {"task": "mathvista_testmini", "split": "testmini", "row": 0, "prediction": "3"},
               {"task": "mmstar", "split": "val", "row": 0, "prediction": "A"},
               {"task": "ai2d", "split": "test", "row": 0, "prediction": "B."},
               {"task": "realworldqa", "split": "test", "row": 0, "prediction": "y"},
               {"task": "ocrbench", "split": "test", "row": 0, "prediction": "cat"},
               {"task": "seedbench", "split": "test", "row": 0, "prediction": "C"},
               {"task": "seedbench_video", "split": "test", "row": 1, "prediction": "D"},
               {"task": "mmbench_en_dev", "split": "dev", "row": 0, "prediction": "A"},
               {"task": "mmvet", "split": "test", "row": 0, "prediction": "It is red."},
               {"task": "blink", "split": "Counting", "row": 0, "prediction": "A"},
               {"task": "videomme", "split": "test", "row": 0, "prediction": "Definitely C"},
               {"task": "mvbench", "split": "action_sequence", "row": 0, "prediction": "b"},
               {"task": "egoschema_subset", "split": "test", "row": 0, "prediction": "(E) z"},
               {"task": "perceptiontest_val_mc", "split": "validation", "row": 0, "prediction": "A y"},
               {"task": "mlvu_dev", "split": "test", "row": 0, "prediction": "B) y"},
               {"task": "nextqa_mc_test", "split": "test", "row": 0, "prediction": "(E) t"},
               {"task": "longvideobench_val_v", "split": "validation", "row": 0, "prediction": "The answer is B"},
               {"task": "activitynetqa", "split": "test", "row": 0, "prediction": "running"},
               *({"task": "llava_wilder", "split": "test", "row": i, "prediction": "A cup."} for i in range(6)),
               *({"task": "wildvision", "split": "test500", "row": i, "prediction": "A kite."} for i in range(9))]

    def judge(text: str) -> str:  # LLaVA-Bench-Wilder's ratings, WildVision's verdict, MM-Vet's grade, else "0"
        if "video-based question-answer pair" in text:  # ActivityNet-QA's verdict
            return "{'pred': 'yes', 'score': 4}"
        if "[Assistant 2]" in text:
            return "10 8\nGood."
        if "<|User Prompt|>" in text:
            return "[[B>A]]" if "Question 0 " in text else "[[A=B]]"
        return "1.0" if text.startswith("Compare the ground truth and prediction") else "0"

    with ScriptedJudge(judge) as j:  # llava_wilder and wildvision are scored only by a judge
        res = run(tmp_path, "mammoth_vl", records, "--judge", j.url)
    suite = res["suites"][0]
    assert suite["suite"] == "mammoth_vl" and list(suite["tasks"]) == SUITES["mammoth_vl"]
    scores = {t: res["tasks"][t]["official"]["overall"] for t in SUITES["mammoth_vl"]}
    # with the judge: MathVerse's extraction "0" judged "0"; MM-Vet graded 1.0; LLaVA-Bench-Wilder 8 / 10;
    # WildVision one win and eight ties -> (2 + 8) / 18
    assert scores == {"mmmu_val": 100.0, "mmmu_pro": 100.0, "mmmu_pro_vision": 0.0, "muirbench": 100.0, "mathverse": 0.0,
                      "chartqa": 100.0, "docvqa_val": 100.0, "infovqa_val": 0.0,
                      "mathvista_testmini": 100.0, "mmstar": 100.0, "ai2d": 100.0, "realworldqa": 100.0,
                      "ocrbench": 0.1, "seedbench": 100.0, "mmbench_en_dev": 100.0, "mmvet": 100.0,
                      "blink": 100.0, "megabench_core": 50.0, "megabench_open": 100.0, "videomme": 0.0, "mvbench": 100.0,
                      "seedbench_video": 100.0, "egoschema_subset": 100.0, "perceptiontest_val_mc": 0.0, "mlvu_dev": 100.0, "nextqa_mc_test": 100.0,
                      "longvideobench_val_v": 100.0, "activitynetqa": 100.0,
                      "llava_wilder": 80.0, "wildvision": 55.56}
    assert suite["en"] == pytest.approx(sum(scores.values()) / len(scores))
    assert res["megabench"]["overall"] == pytest.approx((50.0 * 2 + 100.0) / 3)  # MEGA-Bench's one number


def test_mammoth_vl_judged_tasks_without_a_judge_are_refused(tmp_path: Path, data: Path) -> None:  # noqa: F811
    from polyvlm.eval.cli import main as eval_main

    wilder_repo(data)
    wildvision_repo(data)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("", encoding="utf-8")
    assert eval_main(["--predictions", str(preds), "--tasks", "llava_wilder,wildvision",
                      "--output_path", str(tmp_path / "out")]) != 0


def test_mammoth_vl_pictures_reach_the_endpoint_from_every_storage(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """One picture per question from an image feature (ChartQA), MathVista's `decoded_image`, SEED-Bench's list
    column, and BLINK's image_1..image_4 columns (3 used); the tasks list names each task's repo and finds it here."""
    from polyvlm.eval.cli import main as eval_main
    from polyvlm.eval.tasks import listing

    chartqa_repo(data, [("human_test", "Peak value?", "12")])
    mathvista_repo(data, [{"question": "How many?", "answer": "3", "question_type": "free_form",
                           "answer_type": "integer", "query": "How many?"}])
    seedbench_repo(data, [("image", "Which?", ["w", "x", "y", "z"], "C", 1),
                          ("video", "Which clip?", ["w", "x", "y", "z"], "A", 3)])
    blink_repo(data, {"Jigsaw": [(["the second image", "the third image"], "(B)", "Which completes it?", 3)]})
    out = tmp_path / "out"
    with ScriptedJudge(lambda prompt: "B") as model:
        assert eval_main(["--endpoint", model.url, "--tasks", "chartqa,mathvista_testmini,seedbench,seedbench_video,blink",
                          "--output_path", str(out)]) == 0
    sent = {p.splitlines()[0]: n for p, n in model.pictures.items()}
    assert sent["Peak value?"] == 1 and sent["How many?"] == 1 and sent["Which?"] == 1
    assert sent["Which clip?"] == 3  # SEED-Bench video: the row's frames
    assert sent["Note: You only need to respond with A, B without providing any additional information."] == 3
    rows = {r["task"]: r for r in listing()}
    assert all(rows[t]["repo"] and rows[t]["follows"] for t in SUITES["mammoth_vl"])
    assert rows["chartqa"]["data"] == "local" and rows["mmvet"]["data"] == "missing"
    assert rows["mathverse"]["download"].endswith("CaraJ/MathVerse-lmmseval --local-dir $POLYVLM_EVAL_DATA/"
                                                  "CaraJ/MathVerse-lmmseval")


def test_readme_lists_the_mammoth_vl_suite_as_defined() -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("The `mammoth_vl` suite runs"):].split("\n\n", 1)[0]
    named = re.findall(r"`([a-z0-9_]+)`", paragraph.split(":", 1)[0])
    assert named[1:] == SUITES["mammoth_vl"]
