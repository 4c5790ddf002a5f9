"""megabench_core/_open/_core_si/_open_si read TIGER-Lab/MEGA-Bench as published and score as lmms-eval 0.7.3's
lmms_eval/tasks/megabench/evaluator.py (MEGABenchEvaluator) does; the prompt is utils.megabench_doc_to_text's and the
media order megabench_doc_to_visual's (global, example, query)."""

from __future__ import annotations

from pathlib import Path

import pytest
from megabench_fixtures import info, png, row, write_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.tasks import TaskError, resolve


def _task(name: str):
    tasks, _ = resolve([name])
    return tasks[0]


def test_listed_with_download_command() -> None:
    from polyvlm.eval.tasks import PUBLISHED

    for name, config in [("megabench_core", "core"), ("megabench_open", "open"), ("megabench_core_si", "core_si"),
                         ("megabench_open_si", "open_si")]:
        cls = PUBLISHED.get(name)
        assert cls.config == config and cls.max_new_tokens == 2048
        assert "huggingface-cli download --repo-type dataset TIGER-Lab/MEGA-Bench" in cls.describe()["download"]


def test_missing_repo_names_the_download_command(data: Path) -> None:  # noqa: F811
    with pytest.raises(TaskError, match=r"huggingface-cli download --repo-type dataset TIGER-Lab/MEGA-Bench"):
        _task("megabench_core").samples()


def test_prompt_and_media_order_as_utils(data: Path) -> None:  # noqa: F811
    media = {"data/t/g.png": png((1, 2, 3)), "data/t/e.png": png((4, 5, 6)), "data/t/q.png": png((7, 8, 9))}
    write_repo(data, "core", [row(7, "t", {"a": "x"}, info({"a": "exact_str_match"}), query_text="Q <image>",
                                  description="D <image>", example_text="E <image>",
                                  global_media=["./data/t/g.png"], example_media=["./data/t/e.png"],
                                  query_media=["./data/t/q.png"])], media)
    task = _task("megabench_core")
    s = task.samples()[0]
    assert s.id == "test/0" and s.extra["global_idx"] == 7 and s.category == "t"
    assert s.prompt == "D <image>\nE <image>\nQ <image>"  # "\n".join(task_description, example_text, query_text)
    assert [im.open().getpixel((0, 0)) for im in s.images] == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    req = task.request(s)
    assert req.messages[-1]["content"] == "D <image>\nE <image>\nQ <image>" and len(req.images) == 3
    # the member was extracted once, where `unzip data.zip` in the repo folder writes it
    assert (data / "TIGER-Lab" / "MEGA-Bench" / "data" / "t" / "q.png").is_file()


def test_lmms_eval_unpacked_cache_is_used(data: Path, tmp_path: Path) -> None:  # noqa: F811
    repo = write_repo(data, "open", [row(1, "t", {"a": "x"}, info({"a": "exact_str_match"}))], {})
    (repo / "data.zip").unlink()
    cache = tmp_path / "hf_home" / "megabench_data" / "data" / "t"  # lmms-eval: $HF_HOME/megabench_data
    cache.mkdir(parents=True)
    (cache / "q.png").write_bytes(png())
    s = _task("megabench_open").samples()[0]
    assert s.images[0].open().size == (8, 8)


@pytest.mark.parametrize("column,value,reason", [
    ("metric_info", "{'field_score_function': ", "metric_info is not a Python literal"),
    ("metric_info", "{'x': 1}", "metric_info has no field_score_function"),
    ("answer", "['a']", "answer is not a dict"),
    ("metric_info", "{'field_score_function': {'a': 'exact_str_matchh'}, 'aggregation': {'function': 'mean', "
                    "'field_weights': {}}, 'response_parse_function': 'json'}", "unknown metric of field 'a'"),
    ("metric_info", "{'field_score_function': {'a': 'exact_str_match'}, 'aggregation': {'function': 'mean', "
                    "'field_weights': {}}, 'response_parse_function': 'jsn'}", "unknown parser: 'jsn'"),
])
def test_bad_row_names_repo_config_row_and_reason(data: Path, column: str, value: str,  # noqa: F811
                                                   reason: str) -> None:
    bad = row(42, "t", {"a": "x"}, info({"a": "exact_str_match"}))
    bad[column] = value
    write_repo(data, "core", [row(1, "t", {"a": "x"}, info({"a": "exact_str_match"})), bad])
    with pytest.raises(TaskError, match=rf"TIGER-Lab/MEGA-Bench config core row 1 \(id 42\).*{reason}"):
        _task("megabench_core").samples()


def test_missing_media_names_the_file(data: Path) -> None:  # noqa: F811
    write_repo(data, "core", [row(1, "t", {"a": "x"}, info({"a": "exact_str_match"}),
                                  query_media=["./data/t/absent.png"])])
    with pytest.raises(TaskError, match=r"data/t/absent.png"):
        _task("megabench_core").samples()


def test_judged_task_left_out_without_judge_and_named(tmp_path: Path, data: Path) -> None:  # noqa: F811
    write_repo(data, "open", [row(1, "judged_task", {"a": "x"}, info({"a": "gpt_4o_as_judge"}, parser="dummy")),
                              row(2, "judged_task", {"a": "y"}, info({"a": "gpt_4o_as_judge"}, parser="dummy"))])
    res = run(tmp_path, "megabench_open", [{"task": "megabench_open", "split": "test", "row": i, "prediction": "x"}
                                           for i in range(2)])
    off = res["tasks"]["megabench_open"]["official"]
    assert "judged_task" in off["note"] and "--judge" in off["note"]
    assert off["other_metrics"]["num_tasks"] == 0


def test_frame_indices_as_subsample_video() -> None:
    import numpy as np

    from polyvlm.eval.tasks.megabench import frame_indices

    for n in (1, 5, 64, 65, 100, 127, 1000, 12345):
        want = list(range(n)) if n <= 64 else [int(i) for i in np.linspace(0, n - 1, 64, dtype=int)]
        assert frame_indices(n) == want


def test_mixed_row_videos_become_frames_with_placeholders(data: Path) -> None:  # noqa: F811
    from video_fixtures import video_bytes

    media = {"data/t/a.png": png(), "data/t/v.mp4": video_bytes(100, n_frames=3)}
    write_repo(data, "core", [row(0, "t", {"a": "x"}, info({"a": "exact_str_match"}),
                                  description="  Look:  <video>  ", query_text="and <image>?",
                                  global_media=["./data/t/v.mp4"], query_media=["./data/t/a.png"])], media)
    s = _task("megabench_core").samples()[0]
    # _process_text_and_mixed_media: chunks stripped, joined by spaces; the video as its 3 frames
    assert s.prompt == "Look: [video start]<image><image><image>[video end]\n\nand <image> ?"
    assert len(s.images) == 4 and s.extra["media_type"] == "mixed"
    assert s.images[1].open().size == (16, 16)


def test_video_row_keeps_the_files(data: Path) -> None:  # noqa: F811
    from video_fixtures import video_bytes

    write_repo(data, "core", [row(0, "t", {"a": "x"}, info({"a": "exact_str_match"}), query_text="<video> what?",
                                  query_media=["./data/t/v.mp4"])], {"data/t/v.mp4": video_bytes(50)})
    s = _task("megabench_core").samples()[0]
    assert s.prompt == "Answer in JSON.\n\n<video> what?" and s.media["video"][0].endswith("data/t/v.mp4")


def test_constrained_generation_error_scores_0_not_a_crash() -> None:
    from polyvlm.eval.tasks.base import Sample
    from polyvlm.eval.tasks.megabench_score import score_query

    s = Sample(id="test/0", prompt="", target={"response": ""}, source="x", extra={
        "metric_info": eval(info({"response": "constrained_generation"}, parser="dummy")),  # noqa: S307
        "eval_context": {"constraints": "not a list"}, "task_description": "", "query_text": "", "query_media": []})
    assert score_query(s, "anything")[0] == 0.0


def test_geocode_cache_missing_stops_with_the_task_row_and_what_to_set(tmp_path: Path, data: Path,  # noqa: F811
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Offline, a place not in $POLYVLM_GEOCODE_CACHE cannot be scored: the run stops with a message (not a
    traceback, not a silent 0) naming the subset, the row's MEGA-Bench task and the variables to set."""
    import json

    from polyvlm.eval.cli import main as eval_main

    monkeypatch.delenv("POLYVLM_GEOCODE_CACHE", raising=False)
    monkeypatch.delenv("POLYVLM_GEOCODE_ONLINE", raising=False)
    place = {"country": "France", "province_or_state": "Ile-de-France", "municipality": "Paris"}
    write_repo(data, "open", [row(1, "geo_task", {"loc": place}, info({"loc": "geo_proximity_location_dict"}))])
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"task": "megabench_open", "split": "test", "row": 0,
                                 "prediction": json.dumps({"loc": place})}) + "\n", encoding="utf-8")
    assert eval_main(["--predictions", str(preds), "--tasks", "megabench_open", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "megabench_open" in err and "geo_task" in err
    assert "POLYVLM_GEOCODE_CACHE" in err and "POLYVLM_GEOCODE_ONLINE=1" in err


def test_listing_says_which_configs_are_here(data: Path) -> None:  # noqa: F811
    """`--tasks list`: a subset is `local` only when its config folder is in the downloaded repo."""
    from polyvlm.eval.tasks import listing

    write_repo(data, "open", [row(0, "t", {"a": "x"}, info({"a": "exact_str_match"}))])
    rows = {r["task"]: r["data"] for r in listing()}
    assert rows["megabench_open"] == "local"
    assert rows["megabench_core"] == "missing" and rows["megabench_core_si"] == "missing"
