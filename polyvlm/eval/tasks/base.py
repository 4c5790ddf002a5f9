"""Task and sample types shared by every task kind: spec (YAML/dataclass), requests, scoring and grouping."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from polyvlm.data.langs import normalize_language
from polyvlm.eval.extract import Extraction
from polyvlm.eval.metrics import get_metric
from polyvlm.infer import ChatRequest
from polyvlm.infer.request import media_fields
from polyvlm.media import PLACEHOLDERS

log = logging.getLogger("polyvlm.eval")


class TaskError(ValueError):
    """A bad task file, task record or task name; the message names the file/record and the reason."""


_DOUBTFUL: set[tuple[str, str]] = set()  # (raw tag, file) already warned about


def task_language(raw: Any, where: str = "") -> str | None:
    """A record's or file's language tag as results, samples and every per-language lookup show it: the one
    normalisation of polyvlm.data.langs that `polyvlm data` and training use (`urdu` -> `ur`, `eng` -> `en`,
    `zh_simplified` -> `zh-Hans`). A tag it cannot settle (`cn`, `jp`: flagged, never guessed) is kept as written,
    with one warning naming `where` and the reason."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip()
    tag, problem = normalize_language(text)
    if problem is not None and where and (text, where.split(":")[0]) not in _DOUBTFUL:
        _DOUBTFUL.add((text, where.split(":")[0]))
        log.warning("%s: language %r %s: %s", where, text, "kept as written" if tag is None else f"read as {tag!r}",
                    problem.message)
    return tag or text


@dataclass
class Sample:
    """One question. `images` holds file paths or `base64,<data>` strings, decoded only when asked; `media` the files of
    the other modalities by name (`{"thermal": ["x.png"]}`), probed when the task loads, decoded when asked.
    `target` is the gold option letter (MCQ), `yes`/`no`, or the reference answers."""

    id: str
    prompt: str
    images: list[Any] = field(default_factory=list)  # str refs, or objects with `.open()` (published datasets)
    media: dict[str, list[str]] = field(default_factory=dict)  # other modalities (audio, video, thermal, ...): files
    target: Any = None
    language: str | None = None
    category: str | None = None
    group: str | None = None  # CircularEval: rotated copies of one question share a group
    options: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # file:line of the record, for error messages

    def references(self) -> list[str]:
        if isinstance(self.target, list):
            return [str(t) for t in self.target]
        return [] if self.target is None else [str(self.target)]


def _media(fn: Any, ref: Any, where: str) -> Any:
    """Run a polyvlm.media reader on a path, a `base64,<data>` string or a picture still inside its dataset
    (published benchmarks: `.raw()` bytes); a refusal is a TaskError naming `where`."""
    from polyvlm import media

    src = ref.raw() if not isinstance(ref, str) else ref if media.is_inline(ref) else Path(ref)
    try:
        return fn("image", src, where=where)
    except media.MediaError as e:
        what = "base64 image" if str(ref).startswith("base64,") else f"image {ref}"
        raise TaskError(f"{where}: {what} cannot be decoded ({e.code}: {e.reason})") from None


def image_label(ref: Any) -> str:
    """How an image reference appears in samples files: its path, `<base64>`, or where it is in its dataset."""
    return str(ref) if not str(ref).startswith("base64,") else "<base64>"


def load_input(modality: str, ref: str, where: str, probe_only: bool = False) -> Any:
    """A sample's input of a modality other than image: decoded by polyvlm.media (a video stays a reference the
    model samples), or with `probe_only` its header checked; a refusal is a TaskError naming `where` and the file."""
    from polyvlm import media
    from polyvlm.infer import Video

    try:
        if probe_only or modality == "video":
            media.probe(modality, Path(ref), where=ref)
            return Video(Path(ref)) if modality == "video" else None
        return media.load(modality, Path(ref), where=ref)
    except media.MediaError as e:
        raise TaskError(f"{where}: {modality} {ref} cannot be decoded ({e.code}: {e.reason})") from None


def load_image(ref: Any, where: str = "") -> Any:
    """A PIL RGB image from a path or a `base64,<data>` string; a bad one raises TaskError naming `where`."""
    from polyvlm import media

    return _media(media.load, ref, where)


def check_image(ref: Any, where: str) -> None:
    """Reads only the header, so a broken picture stops the run before any model is asked anything."""
    from polyvlm import media

    _media(media.probe, ref, where)


@dataclass
class TaskSpec:
    """A task as written in a YAML file (or built in code). Relative paths are relative to the YAML file."""

    name: str
    type: str  # mcq | vqa | yesno | caption | text | judge | quickstart
    data: str | list[str] = ""  # file(s) or a directory
    prompt: str | dict[str, str] = ""  # template with {question}, {options}, {hint} or record fields; per language
    system: str = ""
    metrics: list[str] = field(default_factory=list)
    max_new_tokens: int = 32
    language: str | None = None  # language of records that do not say
    image_root: str = ""  # media paths in records are resolved under it (default: the data file's folder)
    circular: str = "auto"  # mcq: auto (on when rotated copies exist) | on | off
    group_by: list[str] = field(default_factory=lambda: ["language", "category"])
    judge: dict[str, Any] = field(default_factory=dict)  # judge tasks: mode (rubric|reference), prompt file
    options: dict[str, Any] = field(default_factory=dict)  # task-kind specific settings
    base_dir: str = ""

    @classmethod
    def from_dict(cls, obj: dict[str, Any], source: str = "<dict>") -> TaskSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise TaskError(f"{source}: unknown task key(s) {unknown} (known: {sorted(known)})")
        for key in ("name", "type"):
            if not obj.get(key):
                raise TaskError(f"{source}: task needs '{key}'")
        for key, kinds, what in _KEY_TYPES:
            if key in obj and obj[key] is not None and not isinstance(obj[key], kinds):
                raise TaskError(f"{source}: task key '{key}' must be {what}, not {type(obj[key]).__name__} {obj[key]!r}")
        for key in ("metrics", "group_by"):
            if not all(isinstance(v, str) for v in obj.get(key) or []):
                raise TaskError(f"{source}: task key '{key}' must be a list of names")
        if isinstance(obj.get("prompt"), dict) and not all(isinstance(v, str) for v in obj["prompt"].values()):
            raise TaskError(f"{source}: task key 'prompt' must map languages to template strings")
        tokens = obj.get("max_new_tokens")
        if tokens is not None and (isinstance(tokens, bool) or tokens < 1):
            raise TaskError(f"{source}: task key 'max_new_tokens' must be a positive integer")
        return cls(**{k: v for k, v in obj.items() if v is not None or k == "language"})

    @classmethod
    def from_yaml(cls, path: str | Path) -> TaskSpec:
        path = Path(path)
        try:
            obj = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise TaskError(f"{path}: cannot read task YAML: {e}") from None
        if not isinstance(obj, dict):
            raise TaskError(f"{path}: a task YAML is a mapping of keys")
        obj.setdefault("base_dir", str(path.parent))
        return cls.from_dict(obj, str(path))

    def data_paths(self) -> list[Path]:
        raw = [self.data] if isinstance(self.data, str) else list(self.data)
        out = []
        for p in raw:
            if not p:
                continue
            p = os.path.expandvars(os.path.expanduser(p))
            if "$" in p:
                raise TaskError(f"task {self.name}: data '{p}' names an environment variable that is not set "
                                "(the built-in tasks read their files under $POLYVLM_EVAL_DATA)")
            path = Path(p) if os.path.isabs(p) or not self.base_dir else Path(self.base_dir) / p
            if not path.exists():
                raise TaskError(f"task {self.name}: data '{p}' not found ({path})")
            out.append(path)
        if not out and self.type != "quickstart":
            raise TaskError(f"task {self.name}: no data file given")
        return out

    def prompt_for(self, language: str | None, default: dict[str, str] | str) -> str:
        """The prompt template for `language`: the spec's own (per language or one), else the default."""
        for source in (self.prompt, default):
            if isinstance(source, str) and source:
                return source
            if isinstance(source, dict) and source:
                if language in source:
                    return source[language]
                if source is self.prompt and language:  # the user's keys may be written `urdu`, `zh_simplified`
                    mine = {task_language(k): v for k, v in source.items()}
                    if language in mine:
                        return mine[language]
                    source = mine
                if language and language.split("-")[0] in source:
                    return source[language.split("-")[0]]
                if "en" in source:
                    return source["en"]
                return next(iter(source.values()))
        return "{question}"


_KEY_TYPES: list[tuple[str, type | tuple[type, ...], str]] = [
    ("name", str, "a string"), ("type", str, "a string"), ("data", (str, list), "a path or a list of paths"),
    ("prompt", (str, dict), "a template or a mapping language -> template"), ("system", str, "a string"),
    ("metrics", list, "a list of metric names"), ("max_new_tokens", int, "an integer"),
    ("language", str, "a language code"), ("image_root", str, "a path"), ("circular", str, "auto, on or off"),
    ("group_by", list, "a list of keys"), ("judge", dict, "a mapping"), ("options", dict, "a mapping"),
]


class Task:
    """Base task: subclasses load samples and say how a raw prediction becomes an answer."""

    default_metrics: list[str] = ["exact_match"]
    parsed: bool = False  # True when extraction can fail (then `unparsed` is counted)

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.name = spec.name
        self.metrics = list(spec.metrics or self.default_metrics)
        for m in self.metrics:
            try:
                metric = get_metric(m)  # unknown names fail now, not after generation
            except KeyError as e:
                raise TaskError(f"task {self.name}: {e.args[0]}") from None
            if metric.scored_by == "judge" and not getattr(self, "judged", False):
                raise TaskError(f"task {self.name}: metric {m} is scored by an LLM judge; use it in a judge task "
                                "(type: judge)")
        self._samples: list[Sample] | None = None
        self.scope: list[Sample] | None = None  # the samples of the current evaluation, answered or not

    # ---- data ------------------------------------------------------------------------------------------
    def load(self) -> list[Sample]:
        raise NotImplementedError

    def samples(self) -> list[Sample]:
        if self._samples is None:
            samples = self.load()
            seen: dict[str, str] = {}
            for s in samples:
                if s.id in seen:
                    raise TaskError(f"task {self.name}: {s.source}: duplicate sample id '{s.id}' "
                                    f"(first at {seen[s.id]})")
                seen[s.id] = s.source or "?"
                for ref in s.images:
                    check_image(ref, f"{s.source or 'task ' + self.name} id={s.id}")
                for m, refs in s.media.items():
                    for ref in refs:
                        load_input(m, ref, f"{s.source or 'task ' + self.name} id={s.id}", probe_only=True)
            self._samples = samples
        return self._samples

    def request(self, sample: Sample) -> ChatRequest:
        messages = [{"role": "system", "content": self.spec.system}] if self.spec.system else []
        text = sample.prompt
        for m, refs in sample.media.items():  # inputs without placeholders go first, each with its own
            tag = PLACEHOLDERS[m]
            if refs and tag not in text:
                text = (tag + "\n") * len(refs) + text
        if sample.images and "<image>" not in text:
            text = "<image>\n" * len(sample.images) + text
        messages.append({"role": "user", "content": text})
        where = f"task {self.name}: {sample.source or 'sample'} id={sample.id}"
        inputs = {m: [load_input(m, r, where) for r in refs] for m, refs in sample.media.items()}
        return ChatRequest(messages=messages, **media_fields({"image": [load_image(r, where) for r in sample.images],
                                                              **inputs}),
                           max_new_tokens=self.spec.max_new_tokens, temperature=0.0, language=sample.language)

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        """What this task has no form of its own for, per kind ("instructions", "answer_phrases", "yes_no"): the
        languages (of `languages`) that get the English form instead. The results list them."""
        return {}

    # ---- scoring ---------------------------------------------------------------------------------------
    def extract(self, sample: Sample, prediction: str) -> Extraction:
        """The answer scored from a raw prediction (default: the prediction itself, trimmed)."""
        return Extraction(prediction.strip(), "raw")

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        """Per-sample score of each metric (an unresolved answer scores 0)."""
        out: dict[str, list[float]] = {}
        for m in self.metrics:
            if m == "accuracy":
                out[m] = [float(a is not None and a == s.target) for s, a in zip(samples, answers)]
            else:
                out[m] = get_metric(m)([a or "" for a in answers], [s.references() for s in samples]).per_sample
        return out

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        """The reported value of `metric` over a subset (recomputed for corpus metrics such as CIDEr-D)."""
        if not samples:
            return math.nan
        if get_metric(metric).corpus:
            return get_metric(metric)([a or "" for a in answers], [s.references() for s in samples]).score
        return 100.0 * sum(per_sample) / len(per_sample)

