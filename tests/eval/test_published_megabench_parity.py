"""The whole path (`polyvlm eval --predictions`) against lmms-eval 0.7.3's reference evaluator
(lmms_eval/tasks/megabench/evaluator.py MEGABenchEvaluator, its `_load_hf` patched to return the fixture rows) run on
the submission file polyvlm writes (utils.py megabench_aggregate_results_for_submission's layout): the same
per-task mean_task_score, macro_mean_score and micro_mean_score."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from megabench_fixtures import info, row, write_repo
from megabench_reference import megabench_dir, reference
from test_published import data, run  # noqa: F401  (the fixture and helpers)


@pytest.fixture()
def evaluator_cls(monkeypatch: pytest.MonkeyPatch):
    """MEGABenchEvaluator, imported with its `metrics` package (the reference loader's) and no model download."""
    pkg = reference("aggregation_type")
    sys.modules.pop("metrics.metric_type", None)
    # nli_entailment builds deberta-large-mnli's pipeline at import: a stand-in module (no fixture task uses it)
    nli = types.ModuleType("metrics.scoring.nli_entailment")
    nli.NliEntailment = type("NliEntailment", (), {})
    reference("scoring.common")  # the scoring package itself
    monkeypatch.setitem(sys.modules, "metrics.scoring.nli_entailment", nli)
    pkg_mod = sys.modules["metrics"]
    pkg_mod.AggregationType = pkg.AggregationType
    pkg_mod.MetricType = reference("metric_type").MetricType
    pkg_mod.ResponseParseType = reference("response_parse_type").ResponseParseType
    monkeypatch.syspath_prepend(str(megabench_dir()))
    sys.modules.pop("evaluator", None)
    import evaluator

    return evaluator.MEGABenchEvaluator


STR = info({"answer": "exact_str_match"}, parser="answer_string")
JSON2 = info({"a": "exact_str_match", "b": "exact_str_match_case_insensitive"}, aggregation="min")
JSONW = info({"a": "exact_str_match", "b": "set_equality"}, weights={"a": 3, "b": 1})
CONSTRAINED = info({"response": "constrained_generation"}, parser="dummy")

ROWS = [  # (row, prediction): three tasks of different sizes, so that macro != micro
    (row(0, "str_task", {"answer": "Paris"}, STR), "Answer: Paris"),
    (row(1, "str_task", {"answer": "Rome"}, STR), "I think it is Milan"),
    (row(2, "str_task", {"answer": "Oslo"}, STR), "oslo"),
    (row(3, "json_task", {"a": "x", "b": "Yes"}, JSON2), '{"a": "x", "b": "yes"}'),
    (row(4, "json_task", {"a": "x", "b": "Yes"}, JSON2), "not json at all"),  # every field = the raw reply
    (row(5, "weighted_task", {"a": "1", "b": "['p', 'q']"}, JSONW), '```json\n{"a": "1", "b": ["q", "p"]}\n```'),
    (row(6, "weighted_task", {"a": "1", "b": "['p', 'q']"}, JSONW), '{"a": "2", "b": ["q", "p"]}'),
    (row(7, "weighted_task", {"a": "1", "b": "['p', 'q']"}, JSONW), '{"a": "1", "b": ["q"]}'),
    (row(8, "weighted_task", {"a": "1", "b": "['p', 'q']"}, JSONW), "[1, 2]"),  # a list, not a dict: raw reply
    (row(9, "weighted_task", {"a": "1", "b": "['p', 'q']"}, JSONW), 'Here: {"a": 1, "b": "p, q"}'),
]


def test_summary_equals_the_reference_evaluator(tmp_path: Path, data: Path, evaluator_cls,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [r for r, _ in ROWS]
    write_repo(data, "core", rows)
    res = run(tmp_path, "megabench_core", [{"task": "megabench_core", "split": "test", "row": i, "prediction": p}
                                           for i, (_, p) in enumerate(ROWS)])
    ours = res["tasks"]["megabench_core"]["official"]
    out = tmp_path / "out"
    sub = out / "megabench_all_query_responses_megabench_core.json"
    by_task: dict[str, list] = {}
    for r in rows:
        by_task.setdefault(r["task_name"], []).append(r)
    monkeypatch.setattr(evaluator_cls, "_load_hf", lambda self, subset: by_task)
    ref_out = tmp_path / "ref" / "scores.json"
    evaluator_cls("core", str(sub), str(ref_out)).evaluate()
    ref = json.loads(ref_out.read_text(encoding="utf-8"))
    assert ours["overall"] == pytest.approx(100 * ref["summary"]["macro_mean_score"], abs=1e-9)
    assert ours["other_metrics"]["micro_mean_score"] == pytest.approx(100 * ref["summary"]["micro_mean_score"],
                                                                      abs=1e-9)
    assert ours["by_category"] == pytest.approx({t["task_name"]: 100 * t["mean_task_score"] for t in ref["data"]})
    mine = json.loads((out / "megabench_data_with_scores_megabench_core.json").read_text(encoding="utf-8"))
    assert mine["summary"] == pytest.approx(ref["summary"])
    for a, b in zip(mine["data"], ref["data"]):
        assert [q["scores"]["query"] for q in a["query_response"]] == \
            pytest.approx([q["scores"]["query"] for q in b["query_response"]])
        for qa, qb in zip(a["query_response"], b["query_response"]):
            assert qa["scores"]["field"] == pytest.approx(qb["scores"]["field"])
    # hand-worked: str_task 1/3 (only "Paris"; exact_str_match is case-sensitive), json_task 1/2 (min of the fields;
    # the unparsable reply fills every field and matches none), weighted_task (3a + b) / 4 per query: 1, 0.25, 0.75,
    # 0, 1 -> 3/5; macro = (1/3 + 1/2 + 3/5) / 3, micro = (1 + 1 + 3) / 10
    assert ours["by_category"] == pytest.approx({"str_task": 100 / 3, "json_task": 50.0, "weighted_task": 60.0})
    assert ours["overall"] == pytest.approx(100 * (1 / 3 + 1 / 2 + 3 / 5) / 3)
    assert ours["other_metrics"]["micro_mean_score"] == pytest.approx(50.0)


def test_core_and_open_overall_weighted_by_tasks(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # summary_and_keyword_stats.json (megabench/results/Qwen2_VL_7B/analysis): overall_score 0.3447139844003881 =
    # (core 0.32935375825687346 x 440 + open 0.44869089983341 x 65) / 505
    write_repo(data, "core", [row(0, "c1", {"answer": "a"}, STR), row(1, "c2", {"answer": "b"}, STR)])
    write_repo(data, "open", [row(0, "o1", {"answer": "a"}, STR), row(1, "o1", {"answer": "b"}, STR)])
    recs = [{"task": t, "split": "test", "row": i, "prediction": p}
            for t, preds in (("megabench_core", ["a", "x"]), ("megabench_open", ["a", "b"])) for i, p in enumerate(preds)]
    res = run(tmp_path, "megabench", recs)
    assert res["tasks"]["megabench_core"]["official"]["overall"] == pytest.approx(50.0)  # (1 + 0) / 2 tasks
    assert res["tasks"]["megabench_open"]["official"]["overall"] == pytest.approx(100.0)  # one task, 2 of 2
    assert res["megabench"]["overall"] == pytest.approx((50.0 * 2 + 100.0 * 1) / 3)  # not the plain mean, 75
    assert res["megabench"]["overall_tasks"] == {"megabench_core": 2, "megabench_open": 1}
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "MEGA-Bench overall: 66.7 (the subsets' macro means weighted by their tasks: megabench_core x 2, " \
           "megabench_open x 1)" in md
