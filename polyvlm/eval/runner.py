"""The evaluation loop: shard samples over ranks, ask the backend in batches, save progress for resume,
gather on rank 0, extract answers, score, and hand the results to the report."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist
from tqdm import tqdm

from polyvlm.eval.backends import Backend, Failure, Result
from polyvlm.eval.extract import Extraction
from polyvlm.eval.judge import JudgeClient, judge_choice
from polyvlm.eval.report import sample_row, unlabeled_rows
from polyvlm.eval.tasks import PublishedTask, Suite, Task, TaskError
from polyvlm.eval.tasks.base import Sample, task_language
from polyvlm.eval.tasks.jsonl import iter_json_lines
from polyvlm.eval.tasks.published import official_summary
from polyvlm.utils import atomic_write_text

log = logging.getLogger("polyvlm.eval")


def dist_info() -> tuple[int, int]:
    """(rank, world size); under torchrun a gloo process group is started on first use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Progress:
    """Answers already received for one task, one append-only JSONL per rank under `out/progress/`.
    Every rank's file is read on start, so a resumed run (with any number of ranks) skips them."""

    def __init__(self, out_dir: Path, task: str, rank: int):
        self.dir = out_dir / "progress"
        self.task, self.path = task, out_dir / "progress" / f"{task}.rank{rank}.jsonl"
        self.meta = self.dir / f"{task}.run.json"
        self._fh: Any = None
        self._synced = 0.0

    def check_run(self, run: dict[str, Any], write: bool) -> None:
        """Answers saved under `out/progress/` are reused only by the same model and task settings: a different
        checkpoint, endpoint model, prompt or generation length must not inherit them."""
        if self.meta.is_file():
            saved = json.loads(self.meta.read_text(encoding="utf-8"))
            if saved != run:
                diff = sorted(k for k in set(saved) | set(run) if saved.get(k) != run.get(k))
                raise TaskError(f"{self.dir}: the answers saved for task '{self.task}' come from a different run "
                                f"({', '.join(diff)} changed: {saved.get(diff[0])!r} -> {run.get(diff[0])!r}); "
                                f"use another --out, or delete {self.dir}/{self.task}.* to start this task over")
        elif write:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.meta, json.dumps(run, ensure_ascii=False, sort_keys=True) + "\n")

    def load(self) -> dict[str, dict[str, Any]]:
        done: dict[str, dict[str, Any]] = {}
        for f in sorted(self.dir.glob(f"{self.task}.rank*.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                try:
                    obj = json.loads(line)
                    done[str(obj["id"])] = obj
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # the last line of a killed run may be cut short
        return done

    SYNC_SECONDS = 10.0  # a machine crash loses at most this much of the answers (a killed process loses none)

    def append(self, entries: list[dict[str, Any]]) -> None:
        """One line per answer, handed to the OS at once (flush); forced to disk every `SYNC_SECONDS` and at
        `close`, not per batch: an fsync per batch costs more than a small model's batch."""
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
            self._synced = time.monotonic()
        self._fh.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
        self._fh.flush()
        if time.monotonic() - self._synced >= self.SYNC_SECONDS:
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def _entry(sample_id: str, res: Result) -> dict[str, Any]:
    if isinstance(res, Failure):
        return {"id": sample_id, "error": res.error}
    return {"id": sample_id, "prediction": res.text, "prompt_tokens": res.prompt_tokens,
            "completion_tokens": res.completion_tokens, "finish_reason": res.finish_reason}


def read_predictions(path: str | Path) -> dict[str, str]:
    """`--predictions FILE.jsonl` -> key -> prediction. A record names its sample by `split` + `row` (published
    datasets: the 0-based row in the split as `datasets` loads it) or `split` + `index` (TSV rows), or by `id` /
    `index` (+ `language` for a task with one file per language); `task` prefixes the key (`task::key`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: predictions file not found")
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    for n, obj in iter_json_lines(path):  # a malformed line: TaskError (a ValueError) naming file:line
        named = isinstance(obj, dict) and ("id" in obj or "index" in obj or ("split" in obj and "row" in obj))
        if not named or "prediction" not in obj:
            raise ValueError(f"{path}:{n}: a prediction record needs 'prediction' and 'split' + 'row', "
                             "'split' + 'index', 'id' or 'index'")
        pred = obj["prediction"]
        if isinstance(pred, bool) or not isinstance(pred, (str, int, float)):
            raise ValueError(f"{path}:{n}: 'prediction' must be a string, not {type(pred).__name__} {pred!r}")
        if "split" in obj and ("row" in obj or "index" in obj):
            row = obj.get("row", obj.get("index"))
            if "row" in obj and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
                raise ValueError(f"{path}:{n}: 'row' must be a 0-based integer, not {row!r}")
            key = f"{obj['split']}/{row}"
        else:
            key = str(obj.get("id", obj.get("index")))
            if "id" not in obj and obj.get("language"):  # normalised as the task's languages are (`eng` -> `en`)
                key = f"{task_language(obj['language'])}/{key}"
        if obj.get("task"):
            key = f"{obj['task']}::{key}"
        if key in lines:
            raise ValueError(f"{path}:{n}: a second prediction for id {key} (the first is on line {lines[key]})")
        lines[key] = n
        out[key] = str(pred)
    return out


def answers_from_file(task: Task, predictions: dict[str, str], limit: int | None) -> dict[str, dict[str, Any]]:
    """`--predictions`: each sample's answer from the file; a sample without one is a failure."""
    samples = task.samples()[:limit] if limit else task.samples()
    answers = {}
    for s in samples:
        # a record may name its task, and may carry a `language` the task's ids do not (one file per language)
        keys = [f"{task.name}::{s.id}", s.id, f"{task.name}::{s.language}/{s.id}", f"{s.language}/{s.id}"]
        key = next((k for k in keys if k in predictions), None)
        answers[s.id] = ({"id": s.id, "prediction": predictions[key]} if key is not None
                         else {"id": s.id, "error": f"no prediction for id {s.id}"})
    missing = sum("error" in a for a in answers.values())
    if missing == len(samples) and samples:
        example = next(iter(predictions), None)
        log.warning("%s: no prediction matches a sample id (task ids look like %r, the file's like %r; a task with "
                    "one file per language needs `language` in each record)", task.name, samples[0].id, example)
    elif missing:
        log.warning("%s: %d of %d samples have no prediction (scored as failures)", task.name, missing, len(samples))
    return answers


def task_config(task: Task) -> dict[str, Any]:
    """The task's settings as run (resolved metrics), for results.json and the resume check."""
    config = {k: v for k, v in dataclasses.asdict(task.spec).items() if k != "base_dir"}
    config["metrics"] = list(task.metrics)
    return json.loads(json.dumps(config, default=str))


def loglik_scorer(task: Task, backend: Backend) -> Callable[[Sample], list[float]] | None:
    """For a log-likelihood task and an in-process checkpoint: sample -> the choices' log-likelihoods (as
    lm-evaluation-harness computes them, on the bare context without chat template). None otherwise."""
    model = getattr(getattr(backend, "generator", None), "model", None)
    processor = getattr(getattr(backend, "generator", None), "processor", None)
    if not getattr(task, "loglik", False) or model is None or processor is None:
        return None
    from polyvlm.eval.loglik import choice_logliks

    return lambda s: choice_logliks(model.llm, processor.tokenizer, s.extra["context"], s.extra["choices"])


def generate_task(task: Task, backend: Backend, out_dir: Path, limit: int | None, rank: int, world: int,
                  on_batch: Callable[[int], None] | None = None,
                  model_id: str = "") -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Ask for every sample not answered yet (this rank's share), save as it goes, gather on rank 0.
    Returns (answers by sample id, throughput) on rank 0; on other ranks the answers are partial."""
    samples = task.samples()[:limit] if limit else task.samples()
    progress = Progress(out_dir, task.name, rank)
    scorer = loglik_scorer(task, backend)
    run = {"model": model_id or backend.name, "task": task_config(task),
           **({"scoring": "loglikelihood"} if scorer is not None else {})}
    run["task"].pop("metrics")  # scoring settings may change between runs; generation settings may not
    progress.check_run(run, write=rank == 0)
    done = progress.load()
    pending = [s for s in samples if s.id not in done or "error" in done[s.id]]
    if world > 1:  # every rank must shard the same list, whatever the others have written meanwhile
        ids = [[s.id for s in pending]] if rank == 0 else [None]
        dist.broadcast_object_list(ids, src=0)
        by_id = {s.id: s for s in samples}
        pending = [by_id[i] for i in ids[0]]
    mine = pending[rank::world]
    pop_router = getattr(backend, "pop_router", None)
    if pop_router:
        pop_router()  # statistics of this task's samples only
    new: list[dict[str, Any]] = []
    start = time.perf_counter()
    # rank 0 draws the bar for all ranks: its total is every pending sample, and each of its batches stands for
    # one batch per rank (the ranks' shares differ by at most one sample)
    bar = tqdm(total=len(pending), desc=f"{task.name}", disable=rank != 0 or not pending, unit="sample")
    try:
        for i in range(0, len(mine), backend.batch_size):
            chunk = mine[i:i + backend.batch_size]
            if scorer is not None:  # multiple choice by log-likelihood: the prediction is the choices' JSON list
                entries = [{"id": s.id, "prediction": json.dumps(scorer(s))} for s in chunk]
            else:
                results = backend.generate([task.request(s) for s in chunk])
                entries = [_entry(s.id, r) for s, r in zip(chunk, results)]
            progress.append(entries)
            new.extend(entries)
            bar.update(min(len(chunk) * world, len(pending) - bar.n))
            if on_batch:
                on_batch(len(chunk))
    finally:
        progress.close()
    bar.update(len(pending) - bar.n)
    bar.close()
    elapsed = time.perf_counter() - start
    routing = [pop_router()] if pop_router else []
    if world > 1:
        gathered: list[Any] = [None] * world if rank == 0 else []
        dist.gather_object((new, elapsed, routing), gathered if rank == 0 else None, dst=0)
        if rank == 0:
            new = [e for part, _, _ in gathered for e in part]
            elapsed = max(t for _, t, _ in gathered)
            routing = [r for _, _, rs in gathered for r in rs]
    for e in new:
        done[e["id"]] = e
    generated = [e for e in new if "error" not in e]
    tokens = sum(int(e.get("completion_tokens", 0)) for e in generated)
    speed = {"samples": len(generated), "seconds": round(elapsed, 3),
             "samples_per_s": round(len(generated) / elapsed, 3) if elapsed > 0 and generated else None,
             "tokens_per_s": round(tokens / elapsed, 3) if elapsed > 0 and generated else None}
    router = merge_router(routing)
    if router:
        speed["router"] = router
    return done, speed


def merge_router(parts: list[dict[str, tuple[list[float], int]]]) -> dict[str, dict[str, Any]]:
    """Per-rank router sums -> language -> {"images": n, "mean": mean expert weights}."""
    total: dict[str, tuple[list[float], int]] = {}
    for part in parts:
        for lang, (sums, n) in part.items():
            prev, m = total.get(lang, ([0.0] * len(sums), 0))
            total[lang] = ([a + b for a, b in zip(prev, sums)], m + n)
    return {lang: {"images": n, "mean": [round(x / n, 4) for x in sums]} for lang, (sums, n) in sorted(total.items())}


def _value(sample: Any, key: str) -> str | None:
    v = getattr(sample, key, None) if key in ("language", "category") else sample.extra.get(key)
    return None if v in (None, "") else str(v)


def score_task(task: Task, answers: dict[str, dict[str, Any]], limit: int | None,
               judge: JudgeClient | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Extract, score and group one task's answers. Failed or missing samples are counted, not scored."""
    samples = task.samples()[:limit] if limit else task.samples()
    task.scope = samples
    ok = [s for s in samples if s.id in answers and "error" not in answers[s.id]]
    n_failed = len(samples) - len(ok)
    # a published test split with hidden labels (CVQA): answered and read, not scored
    unlabeled = [s for s in ok if isinstance(task, PublishedTask) and s.target is None]
    ok = [s for s in ok if s not in unlabeled] if unlabeled else ok
    preds = [answers[s.id]["prediction"] for s in ok]
    ext: list[Extraction] = [task.extract(s, p) for s, p in zip(ok, preds)]
    if judge is not None and task.parsed and ok and ok[0].options:
        todo = [i for i, e in enumerate(ext) if e.answer is None]
        for i, e in zip(todo, judge_choice(judge, [ok[i] for i in todo], [preds[i] for i in todo])):
            ext[i] = e
    if getattr(task, "judged", False):  # judged: the official scorer asks an LLM
        task.client = judge
    got = [e.answer for e in ext]
    per = task.sample_scores(ok, got) if ok else {m: [] for m in task.metrics}
    metrics: dict[str, Any] = {}
    for m in task.metrics:
        entry: dict[str, Any] = {"overall": task.corpus_score(m, ok, got, per[m])}
        for key in task.spec.group_by:
            groups: dict[str, list[int]] = {}
            for i, s in enumerate(ok):
                value = _value(s, key)
                if value is not None:
                    groups.setdefault(value, []).append(i)
            if groups:
                entry[f"by_{key}"] = {g: task.corpus_score(m, [ok[i] for i in idx], [got[i] for i in idx],
                                                           [per[m][i] for i in idx]) for g, idx in sorted(groups.items())}
        metrics[m] = entry
    main = task.metrics[0]
    by_lang = metrics[main].get("by_language", {})
    official, official_rows = None, [{} for _ in ok]
    if isinstance(task, PublishedTask) and ok:
        official, official_rows = official_summary(task, ok, preds, per[main])
        if official is not None:
            by_lang = official["by_language"]  # the official score is the headline (comparable with the papers)
    non_en = [v for k, v in by_lang.items() if k.split("-")[0] != "en" and not math.isnan(v)]
    summary = {
        # n counts questions: CircularEval's rotated copies of a question (one group) count once; n_prompts counts all
        "task": task.name, "type": task.spec.type, "main_metric": main, "n": len({s.group or s.id for s in samples}),
        "n_prompts": len(samples), "n_scored": len(ok),
        "failed": n_failed, "unparsed": sum(a is None for a in got) if task.parsed else 0,
        "judge_unparsed": sum(math.isnan(v) for v in per.get(main, [])) if getattr(task, "judged", False) else 0,
        "metrics": metrics, "en": by_lang.get("en"), "mul": sum(non_en) / len(non_en) if non_en else None,
        "config": task_config(task),
    }
    if official is not None:
        summary["official"] = official
        summary["headline"] = "official"
    if getattr(task, "loglik", False) and ok:
        summary["scored_by"] = ("loglikelihood (lm-evaluation-harness acc, acc_norm)" if ext[0].method == "loglikelihood"
                                else "generation (the option letter read from each reply; no log-likelihoods)")
    if getattr(task, "open_ended", False) and ok:  # captions, chat: did the model answer in the asked language?
        from polyvlm.eval.metrics.language import language_rates

        summary["answered_in_language"] = language_rates(preds, [s.language for s in ok])
    if unlabeled:
        summary["unlabeled"] = len(unlabeled)
    fallback = {k: v for k, v in task.english_fallback([s.language for s in samples]).items() if v}
    if fallback:  # languages this task has no instruction / answer phrase / yes-no word of its own for
        summary["english_fallback"] = fallback
        log.warning("%s: English forms used for %s", task.name, "; ".join(f"{k}: {', '.join(v)}"
                                                                          for k, v in fallback.items()))
    rows = []
    idx = {s.id: i for i, s in enumerate(ok)}
    hidden = unlabeled_rows(task, unlabeled, answers) if unlabeled else {}
    for s in samples:
        rows.append(hidden.get(s.id) or sample_row(s, answers, idx.get(s.id), preds, got, ext, per, task.metrics,
                                             official_rows))
    return summary, rows


def suite_summary(suite: Suite, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """PangeaBench-style: each task's `en` and `mul` scores and their means over the suite's tasks."""
    def mean(key: str) -> float | None:
        vals = [results[t][key] for t in suite.tasks if results.get(t, {}).get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    return {"suite": suite.name, "tasks": {t: {"en": results[t]["en"], "mul": results[t]["mul"]}
                                           for t in suite.tasks if t in results},
            "en": mean("en"), "mul": mean("mul")}


def evaluate(tasks: list[Task], out_dir: str | Path, backend: Backend | None = None,
             predictions: dict[str, str] | None = None, limit: int | None = None, suites: list[Suite] | None = None,
             judge: JudgeClient | None = None, model: str = "", extra: dict[str, Any] | None = None,
             model_id: str = "") -> dict[str, Any] | None:
    """Run every task and write the outputs to `out_dir` (rank 0). Returns the results on rank 0, else None.
    `model_id` identifies the model for the resume check (default: `model`, else the backend's name)."""
    from polyvlm.eval.report import write_results, write_samples

    out_dir = Path(out_dir)
    if (backend is None) == (predictions is None):
        raise ValueError("evaluate needs exactly one of a backend or predictions")
    rank, world = dist_info()  # with --predictions every rank would score the same: only rank 0 writes
    results: dict[str, Any] = {"model": model or (backend.name if backend else "predictions"), "world_size": world,
                               "tasks": {}, **(extra or {})}
    for task in tasks:
        if predictions is not None:
            if rank != 0:
                continue
            answers, speed = answers_from_file(task, predictions, limit), {}
        else:
            assert backend is not None
            answers, speed = generate_task(task, backend, out_dir, limit, rank, world, model_id=model_id or model)
        if rank != 0:
            continue
        summary, rows = score_task(task, answers, limit, judge)
        router = speed.pop("router", None)
        summary["throughput"] = speed
        if router:  # a moe connector: do experts specialise by language? (over the samples generated in this run)
            summary["router"] = router
        results["tasks"][task.name] = summary
        write_samples(out_dir, task.name, rows)
        if hasattr(task, "write_outputs"):  # a benchmark's own official files (MEGA-Bench's submission + scores)
            task.write_outputs(out_dir)
        log.info("%s: %s %.1f (n=%d, unparsed=%d, failed=%d)", task.name, summary["main_metric"],
                 summary["metrics"][summary["main_metric"]]["overall"], summary["n"], summary["unparsed"],
                 summary["failed"])
    if rank != 0:
        return None
    results["suites"] = [suite_summary(s, results["tasks"]) for s in suites or []]
    from polyvlm.eval.tasks.megabench import overall as megabench_overall

    if (mega := megabench_overall(results["tasks"])) is not None:  # MEGA-Bench: core and open weighted by tasks
        results["megabench"] = mega
    write_results(out_dir, results)
    return results
