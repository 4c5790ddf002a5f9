"""Benchmarks read as published on the Hugging Face Hub: one split per language, rows as `datasets` loads them,
images left in the dataset until asked for, and two scores (the official scorer's and polyvlm's robust one)."""

from __future__ import annotations

import base64
import io
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from polyvlm.eval.tasks.base import Sample, Task, TaskError, TaskSpec
from polyvlm.eval.tasks.hub import MissingSplit, download_command, load_split, where
from polyvlm.registry import Registry

log = logging.getLogger("polyvlm.eval")
OFFICIAL_SEED = 0  # lmms-eval seeds Python's `random` with 0 before evaluating (its --seed default)


class HubImage:
    """A picture still inside its dataset: (dataset, row, column), decoded only by `open()`. The column holds an
    image feature (read undecoded: {"bytes", "path"}), raw bytes, or a base64 string (M3Exam, xMMMU); `item`
    picks one picture of a list column (MuirBench's image_list)."""

    def __init__(self, dataset: Any, row: int, column: str, where: str, item: int | None = None):
        self.dataset, self.row, self.column, self.where, self.item = dataset, row, column, where, item

    def raw(self) -> bytes:
        value = self.dataset[self.row][self.column]
        if self.item is not None:
            value = value[self.item]
        if isinstance(value, dict):
            if value.get("bytes"):
                return value["bytes"]
            if value.get("path"):
                with open(value["path"], "rb") as fh:
                    return fh.read()
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            return base64.b64decode(value, validate=False)
        raise TaskError(f"{self.where}: column '{self.column}' holds no image ({type(value).__name__})")

    def open(self) -> Any:
        from PIL import Image

        return Image.open(io.BytesIO(self.raw()))

    def __str__(self) -> str:
        return self.where


@dataclass
class Official:
    """What the official scorer reads from each prediction (`answers`), its per-sample score, and which samples
    it scored with a letter drawn at random because none could be read."""

    metric: str
    per_sample: list[float]
    answers: list[Any]
    random: list[bool] = field(default_factory=list)
    note: str = ""  # how this run departs from the official scorer (e.g. no --judge: the rule used instead)
    other_metrics: dict[str, float] = field(default_factory=dict)  # the official task's further metrics, overall


PUBLISHED: Registry[type[PublishedTask]] = Registry("published benchmark")


def register_published(cls: type[PublishedTask]) -> type[PublishedTask]:
    PUBLISHED.register(cls.task_name)(cls)
    return cls


class PublishedTask(Task):
    """A benchmark as its Hub repo publishes it. Subclasses set `task_name`, `repo`, `splits` (split -> language
    code), `cites` (the official code followed) and implement `make_sample` and `official`."""

    task_name: ClassVar[str] = ""
    kind: ClassVar[str] = "vqa"
    repo: ClassVar[str] = ""
    config: ClassVar[str | None] = None
    splits: ClassVar[dict[str, str]] = {}
    cites: ClassVar[str] = ""
    max_new_tokens: ClassVar[int] = 16
    image_columns: ClassVar[tuple[str, ...]] = ("image",)
    group_by: ClassVar[list[str]] = ["language", "category"]  # further keys: sample.extra fields both scores group by

    def __init__(self, spec: TaskSpec | None = None):
        spec = spec or TaskSpec(name=self.task_name, type=self.kind, data=self.repo,
                                max_new_tokens=self.max_new_tokens, group_by=list(self.group_by))
        super().__init__(spec)
        self.language_fallback: list[str] = []  # languages whose instructions fell back to English

    # ---- listing -----------------------------------------------------------------------------------------
    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"task": cls.task_name, "repo": cls.repo, "languages": sorted(set(cls.splits.values())),
                "data": where(cls.repo), "download": download_command(cls.repo), "follows": cls.cites}

    # ---- data --------------------------------------------------------------------------------------------
    def load(self) -> list[Sample]:
        samples: list[Sample] = []
        self.missing_splits: list[str] = []
        for split, language in self.splits.items():
            try:
                ds = self.dataset(split)
            except MissingSplit as e:
                log.warning("%s (skipped)", e)
                self.missing_splits.append(split)
                continue
            images = [c for c in self.image_columns if c in ds.column_names]
            raw = ds.cast_column(images[0], _undecoded(ds, images[0])) if images else ds
            for c in images[1:]:
                raw = raw.cast_column(c, _undecoded(raw, c))
            for row in range(len(ds)):
                record = _text_columns(raw, row, images)
                where = f"{self.repo} split {split} row {row}"
                try:
                    sample = self.make_sample(record, split, row, language, where)
                except (KeyError, TypeError, ValueError, SyntaxError) as e:
                    raise TaskError(f"{where}: {type(e).__name__}: {e} (columns: {ds.column_names})") from None
                if sample is None:
                    continue
                sample.images = [HubImage(raw, row, c, f"{where} column {c}") if isinstance(c, str) else
                                 HubImage(raw, row, c[0], f"{where} column {c[0]}[{c[1]}]", c[1])
                                 for c in self.images_of(record, images, sample)]
                sample.extra.update(split=split, row=row)
                sample.source = where
                samples.append(sample)
        if len(self.missing_splits) == len(self.splits):
            raise TaskError(f"task {self.name}: the copy of {self.repo} has none of the splits "
                            f"{', '.join(self.splits)}; download it with\n  {download_command(self.repo)}")
        return samples

    def dataset(self, split: str) -> Any:
        """One split as `datasets` loads it (tasks whose languages are configs override this)."""
        return load_split(self.repo, split, self.name, self.config)

    def images_of(self, record: dict[str, Any], columns: list[str], sample: Sample) -> list[Any]:
        """The image columns this row uses (default: every image column that is not empty); (column, i) for the
        i-th picture of a list column."""
        return [c for c in columns if record.get(c) not in (None, "", "None")]

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample | None:
        raise NotImplementedError

    # ---- scoring -----------------------------------------------------------------------------------------
    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official | None:
        """The official scorer applied to `predictions` (one per sample, in order), random draws from `rng`."""
        raise NotImplementedError

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """The official score of a subset (a language): the mean x 100 unless the metric is a corpus one."""
        return 100.0 * sum(per_sample) / len(per_sample) if per_sample else math.nan


def _undecoded(ds: Any, column: str) -> Any:
    """Image features read as {"bytes", "path"} (no decoding while listing); other columns as they are."""
    from datasets import Image, Sequence

    feature = ds.features[column]
    if isinstance(feature, Sequence) and isinstance(feature.feature, Image):
        return Sequence(Image(decode=False))
    if isinstance(feature, list) and feature and isinstance(feature[0], Image):
        return [Image(decode=False)]
    return Image(decode=False) if isinstance(feature, Image) else feature


def _text_columns(ds: Any, row: int, images: list[str]) -> dict[str, Any]:
    record = dict(ds[row])
    for c in images:  # keep only whether the row has a picture; the bytes stay in the dataset
        value = record.get(c)
        if isinstance(value, list):  # a list of pictures: how many
            record[c] = len(value)
            continue
        record[c] = None if value in (None, "", "None") else "<image>"
        if isinstance(value, dict) and not (value.get("bytes") or value.get("path")):
            record[c] = None
    return record


def official_rng() -> random.Random:
    """The seeded generator of a task's random fallbacks (same samples in the same order -> same draws)."""
    return random.Random(OFFICIAL_SEED)


def official_summary(task: PublishedTask, samples: list[Sample], predictions: list[str],
                     robust: list[float]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The official score beside the robust one: overall and by language, the random draws, and the samples
    where the two readings disagree (0/1 metrics). Returns (summary, one dict per sample for its row)."""
    result = task.official(samples, predictions, official_rng())
    if result is None:  # no official scorer for these predictions (e.g. generated replies to a log-likelihood task)
        return None, [{} for _ in samples]
    per, drawn = result.per_sample, result.random or [False] * len(samples)
    keep = [i for i in range(len(samples)) if not math.isnan(per[i])]

    def score(idx: list[int]) -> float:
        return task.official_corpus([samples[i] for i in idx], [predictions[i] for i in idx], [per[i] for i in idx]) \
            if idx else math.nan

    by_lang: dict[str, list[int]] = {}
    by_cat: dict[str, list[int]] = {}
    for i in keep:
        by_lang.setdefault(samples[i].language or "", []).append(i)
        if samples[i].category:
            by_cat.setdefault(str(samples[i].category), []).append(i)
    by_key: dict[str, dict[str, list[int]]] = {k: {} for k in task.spec.group_by if k not in ("language", "category")}
    for key, groups in by_key.items():  # the task's own groupings (Video-MME: domain, sub_category, task_type)
        for i in keep:
            if samples[i].extra.get(key) not in (None, ""):
                groups.setdefault(str(samples[i].extra[key]), []).append(i)
    binary = all(v in (0.0, 1.0) for v in (per[i] for i in keep)) and all(v in (0.0, 1.0) for v in robust)
    disagree = [samples[i].id for i in keep if binary and per[i] != robust[i]]
    summary = {
        "metric": result.metric, "overall": score(keep),
        "by_language": {k: score(v) for k, v in sorted(by_lang.items())},
        **({"by_category": {k: score(v) for k, v in sorted(by_cat.items())}} if by_cat else {}),
        **{f"by_{key}": {k: score(v) for k, v in sorted(groups.items())} for key, groups in by_key.items() if groups},
        "random_fallback": sum(drawn), "disagree": disagree if binary else None, "follows": task.cites,
        "seed": OFFICIAL_SEED, **({"note": result.note} if result.note else {}),
        **({"other_metrics": result.other_metrics} if result.other_metrics else {}),
    }
    rows = [{"official_answer": a, "official_score": p, **({"random_fallback": True} if d else {}),
             **({"disagree": True} if binary and p != r else {})}
            for a, p, d, r in zip(result.answers, per, drawn, robust)]
    return summary, rows
