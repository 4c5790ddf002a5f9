"""MEGA-Bench's official result files, written atomically: the submission lmms-eval 0.7.3 writes
(lmms_eval/tasks/megabench/utils.py megabench_process_results + megabench_aggregate_results_for_submission) and the
scored file of evaluator.py (MEGABenchEvaluator.evaluate: `data` with per-query scores and task scores, `summary`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from polyvlm.eval.tasks.base import Sample

TASK_KEYS = ("task_name", "global_images", "global_description", "example_info")


def submission(samples: list[Sample], predictions: list[str]) -> list[dict[str, Any]]:
    """One entry per task (in the order tasks first appear), its queries in order, as lmms-eval writes them."""
    tasks: dict[str, dict[str, Any]] = {}
    for s, p in zip(samples, predictions):
        name = str(s.extra["task_name"])
        if name not in tasks:
            tasks[name] = {"task_name": name, "global_images": s.extra["global_media"],
                           "global_description": s.extra["task_description"],
                           "example_info": {"image_paths": s.extra["example_media"],
                                            "example_text": s.extra["example_text"]},
                           "query_response": []}
        tasks[name]["query_response"].append({"response": p, "correct_answer": s.target,
                                              "global_idx": s.extra["global_idx"], "images": s.extra["query_media"],
                                              "query_text": s.extra["query_text"]})
    return list(tasks.values())


def scored(samples: list[Sample], predictions: list[str], per: list[float],
           fields: list[dict[str, float] | None]) -> dict[str, Any]:
    """evaluator.py's output: each query's field scores and aggregated score, each task's task_score (sum) and
    mean_task_score, the summary (0-1, as the official file); tasks left out (judged, no --judge) are not in it."""
    data = submission(samples, predictions)
    by_task = {t["task_name"]: t for t in data}
    seen: dict[str, int] = {}
    for s, v, f in zip(samples, per, fields):
        name = str(s.extra["task_name"])
        i = seen.get(name, 0)
        seen[name] = i + 1
        if math.isnan(v):
            by_task[name]["left_out"] = True
            continue
        by_task[name]["query_response"][i]["scores"] = {"field": f or {}, "info": {}, "query": v}
    kept = [t for t in data if not t.pop("left_out", False)]
    judged = {str(s.extra["task_name"]) for s in samples if _judged(s.extra["metric_info"])}
    for t in kept:
        total = sum(q["scores"]["query"] for q in t["query_response"])
        t["task_score"], t["mean_task_score"] = total, total / len(t["query_response"])
        t["eval_type"] = "llm" if t["task_name"] in judged else "rule"
    n_q = sum(len(t["query_response"]) for t in kept)
    summary = {"macro_mean_score": sum(t["mean_task_score"] for t in kept) / len(kept) if kept else 0.0,
               "micro_mean_score": sum(t["task_score"] for t in kept) / n_q if n_q else 0.0,
               "num_tasks": len(kept), "num_queries": n_q}
    return {"data": kept, "summary": summary}


def _judged(info: dict[str, Any]) -> bool:
    """evaluator.py's eval_type "llm": a field scored by gpt_4o_as_judge (a VLMJudgeScore)."""
    names = [*(info.get("field_score_function") or {}).values(), *(info.get("global_aux_metrics") or {}).values()]
    return any(str(n).lower() == "gpt_4o_as_judge" for n in names)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=4, default=repr), encoding="utf-8")
    os.replace(tmp, path)


def write_official_files(task: Any, out_dir: Path, samples: list[Sample], predictions: list[str],
                         per: list[float]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / f"megabench_all_query_responses_{task.name}.json", submission(samples, predictions))
    _write_json(out_dir / f"megabench_data_with_scores_{task.name}.json",
                scored(samples, predictions, per, task.field_scores))
