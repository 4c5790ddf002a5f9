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
