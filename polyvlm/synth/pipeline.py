"""Running a synth pipeline: stage directories keyed by a fingerprint chain, resumable map phases,
atomic reduce phases, stage statistics, the final shards and the report.

Layout of `output/`:

    pipeline.yaml                    the resolved pipeline of the latest run
    stages/NN-<stage>-<fp8>/         fp = hash(previous fp, stage, params, prompt version, model); result
                                     lines of other `*-<stage>-*` directories are reused by key
        map/part-AAAA-SSSSS.jsonl    one result line per input record (see `store`)
        failures.jsonl               records of the latest attempt that failed, with reasons
        out/                         reduce stages: kept records (+ dropped.jsonl with reasons)
        attempts.jsonl, done.json    per-attempt timings; statistics once the stage is complete
    final/part-*.jsonl (or .parquet) the records out of the last stage, + manifest.json
    report.md, report.json, report.png
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from polyvlm.data.langs import language_or_none
from polyvlm.synth.backends import Backend
from polyvlm.synth.config import PipelineConfig, PipelineError, StageSpec, make_backend, make_stage
from polyvlm.synth.inputs import fingerprint, input_fingerprint, iter_input, stage_outputs, stage_reader
from polyvlm.synth.runners import Failure, Outcome, WorkItem, make_runner
from polyvlm.synth.stages.base import Stage, reject
from polyvlm.synth.store import (
    ResultIndex,
    ShardWriter,
    iter_jsonl,
    iter_results,
    result_key,
    scan_done,
    shard_paths,
    short_key,
    write_parquet_shards,
    write_record_shards,
)
from polyvlm.utils import atomic_dir, atomic_write_text


class PipelineIncomplete(RuntimeError):
    """A stage ended with failed records (on_failure: stop); `--resume` retries exactly those."""


def _group(rec: Any) -> tuple[str, str]:
    if not isinstance(rec, dict):
        return "und", "uncategorized"
    lang = rec.get("language")
    lang = (language_or_none(lang) or str(lang)) if isinstance(lang, str) and lang.strip() else "und"
    return lang, str(rec.get("category") or "uncategorized")


class Pipeline:
    """Runs `cfg`. `backends` may inject ready backends by name (a TransformersBackend with a Generator)."""

    def __init__(self, cfg: PipelineConfig, backends: dict[str, Backend] | None = None):
        self.cfg = cfg
        self.out = Path(cfg.output)
        self.backends: dict[str, Backend] = dict(backends or {})

    def _backend(self, name: str) -> Backend:
        if name not in self.backends:
            self.backends[name] = make_backend(name, self.cfg)
        return self.backends[name]

    def build(self, spec: StageSpec) -> Stage:
        stage = make_stage(spec, self.cfg, None)
        if stage.uses_backend():
            stage.ctx.backend = self._backend(spec.backend)
        return stage

    def stage_key_parts(self, stage: Stage) -> tuple[str, str, dict]:
        uses = stage.uses_backend()
        prompt = stage.ctx.prompt.key_id if (uses and stage.ctx.prompt) else "-"
        model = stage.ctx.backend.model_id if (uses and stage.ctx.backend) else "-"
        return prompt, model, dataclasses.asdict(stage.params)

    def run(self, resume: bool = False) -> dict:
        if (self.out / "pipeline.yaml").exists() and not resume:
            raise PipelineError(f"output {self.out} already holds a synth run: pass --resume to continue it "
                                "(finished work is skipped) or choose another output")
        self.out.mkdir(parents=True, exist_ok=True)
        lock = open(self.out / ".lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineError(f"output {self.out} is in use by another `polyvlm synth` process") from None
        try:
            return self._run()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def _run(self) -> dict:
        atomic_write_text(self.out / "pipeline.yaml", yaml.safe_dump(self.cfg.to_dict(), sort_keys=False,
                                                                       allow_unicode=True))
        fp = input_fingerprint(self.cfg)
        upstream: Any = lambda: iter_input(self.cfg)  # noqa: E731 - rebound per stage below
        expected = None
        stats = []
        ran = 0  # stages that had work left in this run
        for i, spec in enumerate(self.cfg.stages):
            stage = self.build(spec)
            prompt, model, params = self.stage_key_parts(stage)
            fp = fingerprint(fp, stage.name, prompt, model, params)
            sdir = self.out / "stages" / f"{i:02d}-{stage.name}-{fp[:8]}"
            done_file = sdir / "done.json"
            if done_file.is_file():
                st = json.loads(done_file.read_text(encoding="utf-8"))
            else:
                st = self._run_stage(stage, spec, sdir, upstream, expected, (prompt, model, params))
                atomic_write_text(done_file, json.dumps(st, indent=1, ensure_ascii=False))
                ran += 1
            stats.append(st)
            expected = st["out"]["records"]
            upstream = stage_reader(sdir, stage.has_reduce)
        wrote = self._write_final(fp, upstream)
        from polyvlm.synth.report import write_report

        summary = write_report(self.out, stats)
        summary["up_to_date"] = not ran and not wrote  # a resumed run that had nothing left to do
        return summary

    def _write_final(self, fp: str, upstream: Any) -> bool:
        """Write `final/` unless it already holds these records; True when it was written."""
        manifest = self.out / "final" / "manifest.json"
        fp = fingerprint(fp, self.cfg.final_format)
        if manifest.is_file() and json.loads(manifest.read_text())["fingerprint"] == fp:
            return False
        with atomic_dir(self.out / "final") as tmp:
            records = (rec for rec, _, _ in upstream())
            if self.cfg.final_format == "parquet":
                n = write_parquet_shards(tmp, records, self.cfg.shard_size)
            else:
                n = write_record_shards(tmp, records, self.cfg.shard_size)
            (tmp / "manifest.json").write_text(json.dumps({"fingerprint": fp, "records": n,
                                                           "format": self.cfg.final_format}))
        return True

    def _run_stage(self, stage: Stage, spec: StageSpec, sdir: Path, upstream: Any, expected: int | None,
                   key_parts: tuple[str, str, dict]) -> dict:
        st: dict[str, Any] = {"stage": stage.name, "dir": sdir.name, "status": {}, "rejections": {}, "scores": {}}
        t0 = time.perf_counter()
        if stage.has_map:
            self._map(stage, spec, sdir, upstream, expected, key_parts, st)
            self._summarize_map(sdir, st)
        else:
            st["in"] = self._counts(rec for rec, _, _ in upstream())
        if stage.has_reduce:
            self._reduce(stage, sdir, upstream, st)
        else:
            st["out"] = self._counts(rec for rec, _ in stage_outputs(sdir, False))
        # time of this run plus the map time of earlier, interrupted attempts
        st["elapsed_s"] = round(time.perf_counter() - t0 + st.get("earlier_attempts_s", 0.0), 3)
        return st

    @staticmethod
    def _counts(records: Any) -> dict:
        c_lang: Counter = Counter()
        c_cat: Counter = Counter()
        n = 0
        for rec in records:
            n += 1
            lg, ct = _group(rec)
            c_lang[lg] += 1
            c_cat[ct] += 1
        return {"records": n, "language": dict(c_lang), "category": dict(c_cat)}

    @staticmethod
    def _summarize_map(sdir: Path, st: dict) -> None:
        """Status counts, rejection reasons and scores from the stage's result lines."""
        status: Counter = Counter()
        rejections: Counter = Counter()
        examples: dict[str, str] = {}
        scores: Counter = Counter()
        for res in iter_results(sdir / "map"):
            status[res["status"]] += 1
            meta = res.get("meta") or {}
            extra = [tuple(r) for r in meta.get("rejections", [])]
            if res["status"] != "ok":
                extra.insert(0, (res["code"], res["reason"]))
            for code, reason in extra:
                rejections[code] += 1
                examples.setdefault(code, reason)
            if isinstance(meta.get("score"), (int, float)):
                scores[f"{float(meta['score']):g}"] += 1
        st["status"], st["rejections"], st["scores"] = dict(status), dict(rejections), dict(scores)
        st["rejection_examples"] = examples

    def _map(self, stage: Stage, spec: StageSpec, sdir: Path, upstream: Any, expected: int | None,
             key_parts: tuple[str, str, dict], st: dict) -> None:
        """One attempt of a stage's map phase: skip finished keys, reuse results of the same key from the
        stage's other directories, run the rest, record the attempt; failures stop or are skipped."""
        others = [d / "map" for d in sorted((self.out / "stages").glob(f"*-{stage.name}-*")) if d != sdir]
        attempt = _MapAttempt(self.cfg, stage, sdir, key_parts, expected, ResultIndex(others) if others else None)
        backend_obj = stage.ctx.backend if stage.uses_backend() else None
        before = dataclasses.replace(backend_obj.stats) if backend_obj else None
        stage.warm()
        t0 = time.perf_counter()
        try:
            make_runner(self.cfg).run(stage, spec, attempt.pending(upstream), attempt.on_done)
        finally:
            backend = backend_obj.stats.minus(before).as_dict() if backend_obj and before else {}
            attempt.close(time.perf_counter() - t0, backend)
        if attempt.counters["failed"] and self.cfg.on_failure == "stop":
            raise PipelineIncomplete(
                f"stage {stage.name}: {attempt.counters['failed']} record(s) failed (reasons in "
                f"{sdir / 'failures.jsonl'}); rerun with --resume to retry them")
        _summarize_attempts(sdir, st)
        st["in"] = {"records": attempt.counters["inputs"], "language": dict(attempt.c_lang),
                    "category": dict(attempt.c_cat)}

    def _reduce(self, stage: Stage, sdir: Path, upstream: Any, st: dict) -> None:
        if stage.has_map:
            def records() -> Iterator[dict]:
                return (rec for rec, _ in stage_outputs(sdir, False))
        else:
            def records() -> Iterator[dict]:
                return (rec for rec, _, _ in upstream())
        dropped: Counter = Counter()
        examples: dict[str, str] = st.setdefault("rejection_examples", {})
        with atomic_dir(sdir / "out") as tmp:
            writer = ShardWriter(tmp, shard_size=self.cfg.shard_size, fsync_every=1 << 30)
            with open(tmp / "dropped.jsonl", "w", encoding="utf-8") as df:
                def drop(rec: dict, code: str, reason: str) -> None:
                    dropped[code] += 1
                    examples.setdefault(code, f"id={rec.get('id')}: {reason}")
                    df.write(json.dumps({"id": rec.get("id"), "code": code, "reason": reason}, ensure_ascii=False) + "\n")
                stage.reduce(records, writer.write, drop)
            writer.close()
        st["out"] = self._counts(rec for p in shard_paths(sdir / "out") for _, rec in iter_jsonl(p))
        st["dropped"] = sum(dropped.values())
        for code, n in dropped.items():
            st["rejections"][code] = st["rejections"].get(code, 0) + n


class _MapAttempt:
    """The state of one map attempt over a stage directory: the result shards being written, the failures
    file, counters, the progress bar and the reusable results of the stage's other directories."""

    def __init__(self, cfg: PipelineConfig, stage: Stage, sdir: Path, key_parts: tuple[str, str, dict],
                 expected: int | None, reuse: ResultIndex | None):
        self.cfg, self.stage, self.sdir, self.key_parts, self.reuse = cfg, stage, sdir, key_parts, reuse
        self.done, _ = scan_done(sdir / "map")
        self.writer = ShardWriter(sdir / "map", shard_size=cfg.shard_size)
        self.failures = open(sdir / "failures.jsonl", "w", encoding="utf-8")
        self.c_lang: Counter = Counter()
        self.c_cat: Counter = Counter()
        self.counters = {"inputs": 0, "already_done": 0, "reused": 0, "processed": 0, "failed": 0}
        self.bar = tqdm(total=expected, desc=f"synth {stage.name}", unit="rec", disable=not cfg.progress,
                        mininterval=1.0)

    @staticmethod
    def line(item: WorkItem, status: str, res: Any) -> dict:
        """The result line of one input record (see `store`)."""
        return {"key": item.key, "in_id": str(item.record.get("id")) if isinstance(item.record, dict) else None,
                "source": item.source, "status": status, "outputs": getattr(res, "outputs", []),
                "reason": res.reason, "code": res.code, "meta": getattr(res, "meta", {})}

    def on_done(self, item: WorkItem, outcome: Outcome) -> None:
        self.counters["processed"] += 1
        self.bar.update(1)
        if isinstance(outcome, Failure):
            self.counters["failed"] += 1
            self.failures.write(json.dumps({"key": item.key, "id": item.record.get("id"), "source": item.source,
                                            "code": outcome.code, "reason": outcome.reason}, ensure_ascii=False) + "\n")
            self.failures.flush()
            if self.cfg.on_failure == "skip":
                self.writer.write(self.line(item, "failed", outcome))
            return
        self.writer.write(self.line(item, outcome.status, outcome))

    def pending(self, upstream: Any) -> Iterator[WorkItem]:
        """The work items still to run; finished keys are skipped, reusable results copied, bad input rejected."""
        prompt, model, params = self.key_parts
        for rec, src, err in upstream():
            self.counters["inputs"] += 1
            lg, ct = _group(rec)
            self.c_lang[lg] += 1
            self.c_cat[ct] += 1
            key = result_key(rec, self.stage.name, prompt, model, params)
            sk = short_key(key)
            if sk in self.done:
                self.counters["already_done"] += 1
                self.bar.update(1)
                continue
            self.done.add(sk)  # identical input records are one unit of work
            if err or not isinstance(rec, dict):
                self.on_done(WorkItem(key, rec if isinstance(rec, dict) else {}, src),
                             reject("invalid_record", err or f"{src}: record is not an object"))
                continue
            if self.reuse is not None and (old := self.reuse.get(key)) is not None:
                self.counters["reused"] += 1
                self.bar.update(1)
                self.writer.write({**old, "source": src})
                continue
            yield WorkItem(key, rec, src)

    def close(self, elapsed: float, backend: dict) -> None:
        """Close the shards and files and append this attempt to `attempts.jsonl`."""
        self.writer.close()
        if self.reuse is not None:
            self.reuse.close()
        self.failures.close()
        self.bar.close()
        with open(self.sdir / "attempts.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"attempt": self.writer.attempt, **self.counters, "elapsed_s": round(elapsed, 3),
                                "backend": backend}) + "\n")


def _summarize_attempts(sdir: Path, st: dict) -> None:
    """Stage statistics over every attempt of the map phase (a resumed stage adds up its attempts)."""
    attempts = [json.loads(x) for x in (sdir / "attempts.jsonl").read_text().splitlines() if x.strip()]
    st["attempts"] = len(attempts)
    st["earlier_attempts_s"] = round(sum(a["elapsed_s"] for a in attempts[:-1]), 3)
    st["map_elapsed_s"] = round(sum(a["elapsed_s"] for a in attempts), 3)
    st["processed"] = sum(a["processed"] for a in attempts)
    st["reused"] = sum(a.get("reused", 0) for a in attempts)
    st["backend"] = attempts[-1]["backend"]
