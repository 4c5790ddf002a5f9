"""MEGA-Bench as published (TIGER-Lab/MEGA-Bench, configs core/open/core_si/open_si, split test) and its official
scoring: lmms-eval 0.7.3 lmms_eval/tasks/megabench/ (megabench_*.yaml, _default_template_yaml, utils.py
megabench_doc_to_text/_doc_to_visual/_process_results) for the prompt and media, evaluator.py (MEGABenchEvaluator,
= TIGER-AI-Lab/MEGA-Bench megabench/evaluator.py) for parsing, field scoring, aggregation and the macro/micro means."""

from __future__ import annotations

import ast
import logging
import math
import mimetypes
import random
import re
from pathlib import Path
from typing import Any, ClassVar

from polyvlm.eval.extract import Extraction
from polyvlm.eval.metrics import METRICS, Metric
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.hub import MissingSplit, download_command, load_split, local_dir
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published
from polyvlm.eval.tasks.videos import VideoStore, lmms_cache

log = logging.getLogger("polyvlm.eval")

REPO = "TIGER-Lab/MEGA-Bench"
LMMS_CACHE = "megabench_data"  # _default_template_yaml dataset_kwargs.cache_dir: data.zip unpacked (or linked) there
MAX_VIDEO_FRAMES = 64  # _default_template_yaml lmms_eval_specific_kwargs.default.max_video_subsample_frame


def _scored_by_task(predictions: list[str], references: list[list[str]]) -> Any:
    raise AssertionError("megabench_score is scored by its task")


METRICS.register("megabench_score")(Metric(
    "megabench_score", _scored_by_task, scored_by="task",
    help="MEGA-Bench's official query score (evaluator.py: parse, score each field, aggregate); reported as the "
         "mean over tasks of each task's mean x 100 (macro_mean_score)"))


class RepoMedia:
    """One picture of the repo's data (a path relative to the repo root, `data/...`), read from the unpacked copy
    or from data.zip (extracted on first use by the VideoStore)."""

    def __init__(self, store: VideoStore, rel: str, where: str):
        self.store, self.rel, self.where = store, rel, where

    def raw(self) -> bytes:
        return self.store.path(self.rel).read_bytes()

    def open(self) -> Any:
        import io

        from PIL import Image

        return Image.open(io.BytesIO(self.raw()))

    def __str__(self) -> str:
        return f"{self.where} ({self.rel})"


def literal(value: Any, what: str, where: str) -> Any:
    """A column stored as a Python literal string (answer, metric_info, eval_context, *_media), as utils.py and
    evaluator.py read it (`ast.literal_eval`); a bad one is a TaskError naming the row."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise TaskError(f"{where}: column {what} is not a Python literal ({type(e).__name__}: {e})") from None


def _check_names(info: dict[str, Any], where: str) -> None:
    """Every parser, field metric and aggregation a row names is one MEGA-Bench has (the official evaluator stops
    at an unknown name: MetricType/AggregationType/ResponseParseType.from_string raise)."""
    from polyvlm.eval.metrics.megabench import AGGREGATIONS, FIELD_METRICS, PARSERS

    agg = info["aggregation"]
    if not isinstance(agg, dict) or not isinstance(info["field_score_function"], dict):
        raise TaskError(f"{where}: metric_info's field_score_function and aggregation must be dicts")
    checks = [(PARSERS, str(info.get("response_parse_function", "dummy") or "unsupported"), "parser"),
              (AGGREGATIONS, str(agg.get("function") or "unsupported"), "aggregation")]
    checks += [(FIELD_METRICS, str(n or "unsupported"), f"metric of field {f!r}")
               for f, n in {**info["field_score_function"], **(info.get("global_aux_metrics") or {})}.items()]
    for registry, name, what in checks:
        if name.lower() != "unsupported" and name.lower() not in registry:
            raise TaskError(f"{where}: metric_info names an unknown {what}: {name!r}")


def is_video(path: str) -> bool:
    """image_video_utils.is_video_file: the type `mimetypes` guesses from the name is video/*."""
    mime = mimetypes.guess_type(str(path))[0]
    return bool(mime) and mime.startswith("video")


def media_kind(paths: list[str]) -> str:
    """utils._check_media_type: image (no video), video (all videos) or mixed."""
    videos = [is_video(p) for p in paths]
    return "image" if not any(videos) else "video" if all(videos) else "mixed"


class VideoFrame:
    """One frame of a repo video (mixed rows: videos become frames), decoded when first asked, as PNG bytes."""

    def __init__(self, store: VideoStore, rel: str, index: int, where: str):
        self.store, self.rel, self.index, self.where = store, rel, index, where

    def raw(self) -> bytes:
        import io

        from PIL import Image

        from polyvlm.media.video import read_frames

        frame = read_frames(self.store.path(self.rel), [self.index], where=self.where)[0]
        buf = io.BytesIO()
        (frame if isinstance(frame, Image.Image) else Image.fromarray(frame)).convert("RGB").save(buf, format="PNG")
        return buf.getvalue()

    def open(self) -> Any:
        import io

        from PIL import Image

        return Image.open(io.BytesIO(self.raw()))

    def __str__(self) -> str:
        return f"{self.where} ({self.rel} frame {self.index})"


def frame_indices(n_frames: int, limit: int = MAX_VIDEO_FRAMES) -> list[int]:
    """image_video_utils.subsample_video: every frame up to `limit`, else np.linspace(0, n - 1, limit) as ints."""
    if n_frames <= 0:
        raise ValueError("the video has no frames")
    if n_frames <= limit:
        return list(range(n_frames))
    return [int(i * (n_frames - 1) / (limit - 1)) for i in range(limit)]


def mixed_section(text: str, paths: list[str], store: VideoStore, where: str) -> tuple[str, list[Any]]:
    """image_video_utils._process_text_and_mixed_media for one text and its media: split at <image>/<video>, a
    picture stays `<image>`, a video becomes "[video start]" + one `<image>` per sampled frame + "[video end]" (a
    one-frame video: `<image>`), the other chunks stripped, empty ones dropped, all joined by one space."""
    from polyvlm.media.video import probe_video

    chunks = re.split(r"(<image>|<video>)", text)
    marks = sum(c in ("<image>", "<video>") for c in chunks)
    if marks != len(paths):
        raise TaskError(f"{where}: {marks} media placeholders but {len(paths)} media paths")
    out, refs, i = [], [], 0
    for chunk in chunks:
        if chunk in ("<image>", "<video>"):
            rel = _rel(paths[i])
            i += 1
            if not is_video(rel):
                out.append("<image>")
                refs.append(RepoMedia(store, rel, where))
                continue
            idx = frame_indices(int(probe_video(store.path(rel), where=where)["frames"]))
            refs.extend(VideoFrame(store, rel, k, where) for k in idx)
            out.append("<image>" if len(idx) == 1 else "[video start]" + "<image>" * len(idx) + "[video end]")
        elif chunk.strip():
            out.append(chunk.strip())
    return " ".join(out), refs


def _jsonable(value: Any) -> Any:
    """The parsed reply as the samples file can hold it (a parser may return sets or other non-JSON values)."""
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _rel(path: str) -> str:
    return str(path)[2:] if str(path).startswith("./") else str(path)


class MegaBench(PublishedTask):
    """One MEGA-Bench subset: each row one query of one of its tasks. The prompt is utils.megabench_doc_to_text's
    ("\\n".join of task_description, example_text, query_text; their `<image>`/`<video>` markers stay where the
    benchmark puts them); the media are global, example then query (megabench_doc_to_visual's order). The official
    score is evaluator.py's: per task the mean query score (a query's aggregated score counts when >= 0, over all
    queries), the headline the mean of the task means (macro_mean_score, x100), micro_mean_score beside it."""

    repo, kind = REPO, "vqa"
    splits = {"test": "en"}
    max_new_tokens = 2048  # _default_template_yaml generation_kwargs (greedy: temperature 0)
    image_columns = ()
    judged: ClassVar[bool] = True  # the runner hands `--judge` (or None) to `client`: two metrics ask an LLM
    default_metrics: ClassVar[list[str]] = ["megabench_score"]  # the official query score, also as polyvlm's metric
    group_by: ClassVar[list[str]] = ["language"]  # by task: `category`
    cites = ("lmms-eval 0.7.3 lmms_eval/tasks/megabench/ (utils.py, evaluator.py MEGABenchEvaluator); "
             "TIGER-AI-Lab/MEGA-Bench megabench/evaluator.py")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        info = {**super().describe(), "download": download_command(REPO) + "  (the whole repo: the configs' "
                "parquet files and data.zip, which holds the media)"}
        local = local_dir(REPO)
        if info["data"] == "local" and local is not None and not (local / cls.config).is_dir():
            info["data"] = "missing"  # the repo folder is here, this config's folder is not
        return info

    def dataset(self, split: str) -> Any:
        return load_split(self.repo, split, self.name, self.config)

    def store(self) -> VideoStore:
        local = local_dir(self.repo)
        roots = ([local] if local is not None else []) + [lmms_cache(LMMS_CACHE)]
        return VideoStore(roots, local, f"task {self.name}")

    def load(self) -> list[Sample]:
        try:
            ds = self.dataset("test")
        except MissingSplit as e:
            raise TaskError(f"{e}; download it with\n  {download_command(self.repo)}") from None
        store = self.store()
        samples = []
        for row in range(len(ds)):
            record = dict(ds[row])
            where = f"{self.repo} config {self.config} row {row} (id {record.get('id')})"
            try:
                samples.append(self.make_row(record, row, where, store))
            except KeyError as e:
                raise TaskError(f"{where}: no column {e} (columns: {ds.column_names})") from None
        return samples

    def make_row(self, record: dict[str, Any], row: int, where: str, store: VideoStore) -> Sample:
        info = literal(record["metric_info"], "metric_info", where)
        answer = literal(record["answer"], "answer", where)
        if not isinstance(info, dict) or "field_score_function" not in info or "aggregation" not in info:
            raise TaskError(f"{where}: metric_info has no field_score_function/aggregation: {record['metric_info']!r}")
        if not isinstance(answer, dict):
            raise TaskError(f"{where}: answer is not a dict of fields: {record['answer']!r}")
        _check_names(info, where)
        context = literal(record["eval_context"], "eval_context", where)
        media = [_rel(p) for col in ("global_media", "example_media", "query_media")
                 for p in literal(record[col], col, where)]
        prompt = "\n".join([record["task_description"], record["example_text"], record["query_text"]])
        sample = Sample(id=f"test/{row}", prompt=prompt, target=answer, language="en",
                        category=str(record["task_name"]), source=where,
                        extra={"split": "test", "global_idx": record["id"], "task_name": record["task_name"], "metric_info": info, "eval_context": context,
                               "query_text": record["query_text"], "task_description": record["task_description"],
                               "example_text": record["example_text"], "row": row,
                               "global_media": literal(record["global_media"], "global_media", where),
                               "example_media": literal(record["example_media"], "example_media", where),
                               "query_media": literal(record["query_media"], "query_media", where)})
        for rel in media:
            if store.find([rel]) is None:
                raise TaskError(f"{where}: media file {rel} is in none of {store.describe()}; download the repo "
                                f"(data.zip) with\n  {download_command(self.repo)}")
        kind = media_kind(media)
        if kind == "image":
            sample.images = [RepoMedia(store, rel, where) for rel in media]
        elif kind == "video":  # megabench_doc_to_visual: the video files, in order (extracted here from data.zip)
            sample.media = {"video": [str(store.path(rel)) for rel in media]}
        else:  # megabench_doc_to_text's mixed branch: videos become frames, the placeholders follow
            texts, refs = [], []
            for text_col, media_col in (("task_description", "global_media"), ("example_text", "example_media"),
                                        ("query_text", "query_media")):
                text, got = mixed_section(record[text_col], sample.extra[media_col], store, where)
                texts.append(text)
                refs.extend(got)
            sample.prompt, sample.images = "\n".join(texts), refs
        sample.extra["media_type"] = kind
        return sample

    # ---- scoring -----------------------------------------------------------------------------------------------
    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(prediction, "raw")  # the official parsers read the reply as generated

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        """polyvlm's metric is the official query score (NaN: a judged task without --judge)."""
        return {"megabench_score": self.official(samples, [a or "" for a in answers], random.Random(0)).per_sample}

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        return self.official_corpus(samples, [a or "" for a in answers], per_sample)

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        from polyvlm.eval.tasks.megabench_score import score_query

        key = (tuple(s.id for s in samples), tuple(predictions))
        if getattr(self, "_scored", (None,))[0] == key:  # sample_scores and official_summary ask for the same run
            return self._scored[1]
        client = getattr(self, "client", None)
        judge = None
        if client is not None:
            from polyvlm.eval.tasks.megabench_score import judge_for

            store = self.store()
            judge = judge_for(client, lambda path: store.path(_rel(path)).read_bytes())
        per, answers, skipped = [], [], set()
        self.field_scores: list[dict[str, float] | None] = []
        for s, p in zip(samples, predictions):
            try:
                score, parsed, fields = score_query(s, p, judge=judge)
            except ImportError as e:  # a missing package, NLI model, nltk data or geocoding cache entry
                raise TaskError(f"{self.name}: scoring {s.id} (MEGA-Bench task {s.extra['task_name']}) needs what "
                                f"this machine lacks: {e}. The answers are kept: run the same command again once "
                                f"it is there") from e
            self.field_scores.append(None if score is None else fields)
            if score is None:
                skipped.add(str(s.extra["task_name"]))
                per.append(math.nan)
            else:
                per.append(score if score >= 0 else 0.0)  # a query counts when >= 0
            answers.append(_jsonable(parsed))
        self.query_scores = per
        tasks: dict[str, list[float]] = {}
        for s, v in zip(samples, per):
            if not math.isnan(v):
                tasks.setdefault(str(s.extra["task_name"]), []).append(v)
        means = {t: sum(v) / len(v) for t, v in tasks.items()}
        n_q = sum(len(v) for v in tasks.values())
        note = ""
        if skipped:
            note = (f"{len(skipped)} task(s) use a judged metric (gpt_4o_as_judge / ascii_art_gpt4o_judge) and need "
                    f"--judge: left out of every score ({', '.join(sorted(skipped))})")
        result = Official("macro_mean_score", per, answers, note=note, other_metrics={
            "macro_mean_score": 100.0 * sum(means.values()) / len(means) if means else 0.0,
            "micro_mean_score": 100.0 * sum(sum(v) for v in tasks.values()) / n_q if n_q else 0.0,
            "num_tasks": float(len(means)), "num_queries": float(n_q)})
        self._scored = (key, result)
        self.scored_run = (samples, predictions, per)
        return result

    def write_outputs(self, out_dir: Path) -> None:
        """The official files of this run in `out_dir`: lmms-eval's submission (`megabench_all_query_responses_
        <task>.json`, megabench_aggregate_results_for_submission's layout, what MEGA-Bench's evaluator reads) and
        evaluator.py's scored output (`megabench_data_with_scores_<task>.json`: data + summary)."""
        from polyvlm.eval.tasks.megabench_files import write_official_files

        if getattr(self, "scored_run", None):
            write_official_files(self, out_dir, *self.scored_run)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """Macro: the mean over the subset's tasks of each task's mean query score, x100."""
        tasks: dict[str, list[float]] = {}
        for s, v in zip(samples, per_sample):
            if math.isnan(v):
                continue
            tasks.setdefault(str(s.extra["task_name"]), []).append(v)
        return 100.0 * sum(sum(v) / len(v) for v in tasks.values()) / len(tasks) if tasks else math.nan


def _subset(name: str, config: str) -> type[MegaBench]:
    cls = type(f"MegaBench_{config}", (MegaBench,), {"task_name": name, "config": config,
                                                     "__doc__": f"MEGA-Bench config `{config}` ({name})."})
    return register_published(cls)


for _config in ("core", "open", "core_si", "open_si"):
    _subset(f"megabench_{_config}", _config)


def overall(tasks: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """MEGA-Bench's overall score when core and open were both run: their macro means weighted by their numbers of
    scored tasks (megabench/results/*/analysis/summary_and_keyword_stats.json: overall_score =
    (core x 440 + open x 65) / 505). Names the single-image pair alike (megabench_core_si + megabench_open_si)."""
    out = {}
    for core, open_, key in (("megabench_core", "megabench_open", "overall"),
                             ("megabench_core_si", "megabench_open_si", "overall_si")):
        parts = [tasks.get(core, {}).get("official"), tasks.get(open_, {}).get("official")]
        if not all(parts):
            continue
        n = [p["other_metrics"]["num_tasks"] for p in parts]
        if sum(n):
            out[key] = sum(p["other_metrics"]["macro_mean_score"] * k for p, k in zip(parts, n)) / sum(n)
            out[f"{key}_tasks"] = {core: n[0], open_: n[1]}
    return out or None
