"""Multiple choice from VLMEvalKit TSV files (MMMB / multilingual MMBench layout), with CircularEval."""

from __future__ import annotations

import csv
import math
import re
import string
import sys
from pathlib import Path

from polyvlm.data.langs import NAMES, normalize_language
from polyvlm.eval.extract import Extraction, english_fallback, extract_choice
from polyvlm.eval.forms import extend
from polyvlm.eval.tasks.base import Sample, Task, TaskError, task_language

# "Answer with the option's letter", per language; the template places it after the options.
INSTRUCTIONS = {
    "en": "Answer with the option's letter from the given choices directly.",
    "zh": "请直接回答正确选项的字母。",
    "pt": "Responda diretamente com a letra da opção correta.",
    "ar": "أجب مباشرة بحرف الخيار الصحيح.",
    "tr": "Doğrudan doğru seçeneğin harfiyle cevap verin.",
    "ru": "Ответьте буквой правильного варианта.",
}
extend(INSTRUCTIONS, "mcq")  # the other benchmark languages: polyvlm/eval/prompts/language_forms.yaml
TEMPLATE = "{hint}{question}\n{options}\n{instruction}"
CIRCULAR_OFFSET = 1_000_000  # VLMEvalKit: rotated copies of question i have index i + k * 1e6
_LANG_IN_NAME = re.compile(r"(?:^|[_\-.])([a-z]{2,3}(?:[-_][A-Za-z]{2,4})?)\.tsv$")
_EMPTY = {"", "nan", "none", "null"}


def _cell(row: dict[str, str | None], key: str) -> str:
    v = row.get(key)
    return "" if v is None or v.strip().lower() in _EMPTY else v.strip()


def language_of_file(path: Path, default: str | None) -> str | None:
    """`mmmb_zh.tsv` -> `zh`; otherwise the task's language. A three-letter suffix counts only when it names a
    language datasets use (`eng`, `yue`, `fil`): most three-letter words are some ISO 639-3 code (`hidden_mcq.tsv`
    is not in the Ese language)."""
    m = _LANG_IN_NAME.search(path.name)
    if not m:
        return default
    tag = m.group(1).replace("_", "-")
    primary = tag.split("-")[0].lower()
    if len(primary) == 3:
        norm = normalize_language(primary)[0]
        if norm is None or (len(norm) == 3 and norm not in NAMES.values()):
            return default
    return tag


class MCQTask(Task):
    default_metrics = ["accuracy"]
    parsed = True

    def load(self) -> list[Sample]:
        files: list[Path] = []
        for p in self.spec.data_paths():
            files.extend(sorted(p.glob("*.tsv")) if p.is_dir() else [p])
        if not files:
            raise TaskError(f"task {self.name}: no .tsv files in {self.spec.data}")
        samples: list[Sample] = []
        for f in files:
            samples.extend(self._read_tsv(f, language_of_file(f, self.spec.language), multi=len(files) > 1))
        mode = self.spec.circular
        if mode not in ("auto", "on", "off"):
            raise TaskError(f"task {self.name}: circular must be auto, on or off, not {mode!r}")
        rotated = any(int(s.extra["index"]) >= CIRCULAR_OFFSET for s in samples if s.extra["index"].isdigit())
        if mode == "off" or (mode == "auto" and not rotated):
            for s in samples:
                s.group = None
        return samples

    def _read_tsv(self, path: Path, language: str | None, multi: bool) -> list[Sample]:
        csv.field_size_limit(sys.maxsize)  # base64 images are long cells
        language = task_language(language, str(path))  # `eng` (file name or task) -> `en`, as everywhere
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            return []
        cols = set(rows[0])
        for need in ("index", "question", "answer"):
            if need not in cols:
                raise TaskError(f"{path}: missing column '{need}' (columns: {sorted(cols)})")
        letters = [c for c in string.ascii_uppercase if c in cols]
        images_by_index = {_cell(r, "index"): _cell(r, "image") for r in rows if len(_cell(r, "image")) > 64}
        out = []
        for n, row in enumerate(rows, 2):
            where = f"{path}:{n}"
            index = _cell(row, "index")
            if not index:
                raise TaskError(f"{where}: empty 'index'")
            options = {k: _cell(row, k) for k in letters if _cell(row, k)}
            if len(options) < 2:
                raise TaskError(f"{where} index={index}: fewer than two options")
            answer = _cell(row, "answer").upper()
            if answer not in options:
                raise TaskError(f"{where} index={index}: answer {answer!r} is not one of the options {sorted(options)}")
            images = []
            img = _cell(row, "image")
            if img:
                if len(img) <= 64:  # a reference to the row that holds the picture (VLMEvalKit saves space so)
                    if img not in images_by_index:
                        raise TaskError(f"{where} index={index}: image refers to index {img}, which has no image")
                    img = images_by_index[img]
                images.append("base64," + img)
            elif _cell(row, "image_path"):
                p = Path(_cell(row, "image_path"))
                p = p if p.is_absolute() else (Path(self.spec.image_root) if self.spec.image_root else path.parent) / p
                if not p.is_file():
                    raise TaskError(f"{where} index={index}: image file {p} not found")
                images.append(str(p))
            hint = _cell(row, "hint")
            template = self.spec.prompt_for(language, TEMPLATE)
            try:
                prompt = template.format(
                    hint=f"{hint}\n" if hint else "", question=_cell(row, "question"),
                    options="\n".join(f"{k}. {v}" for k, v in options.items()),
                    instruction=INSTRUCTIONS.get((language or "en").split("-")[0], INSTRUCTIONS["en"]))
            except (KeyError, IndexError, ValueError) as e:
                raise TaskError(f"task {self.name}: bad prompt template {template!r} ({type(e).__name__}: {e}); "
                                "it may use {hint}, {question}, {options} and {instruction}") from None
            group_index = str(int(index) % CIRCULAR_OFFSET) if index.isdigit() else index
            prefix = f"{language}/" if multi and language else ""
            out.append(Sample(
                id=f"{prefix}{index}", prompt=prompt, images=images, target=answer, language=language,
                category=_cell(row, "category") or None, group=f"{prefix}{group_index}", options=options,
                extra={"index": index, "l2-category": _cell(row, "l2-category"), "split": _cell(row, "split")},
                source=where))
        return out

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        # a task's own prompt is the user's choice; otherwise {instruction} comes from INSTRUCTIONS, else English
        instructions = [] if self.spec.prompt else sorted(
            {lang for lang in languages if lang and lang.split("-")[0] not in INSTRUCTIONS})
        return {"instructions": instructions, "answer_phrases": english_fallback(languages, "phrases")}

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        """CircularEval: a group of rotated copies counts as right only if every copy is right. A group with a
        copy that got no answer (a failure) is left out, as failures are."""
        if metric != "accuracy" or not any(s.group for s in samples):
            return super().corpus_score(metric, samples, answers, per_sample)
        sizes: dict[str, int] = {}
        for s in self.scope if self.scope is not None else samples:
            sizes[s.group or s.id] = sizes.get(s.group or s.id, 0) + 1
        units: dict[str, bool] = {}
        seen: dict[str, int] = {}
        for s, v in zip(samples, per_sample):
            key = s.group or s.id
            units[key] = units.get(key, True) and v == 1.0
            seen[key] = seen.get(key, 0) + 1
        units = {k: v for k, v in units.items() if seen[k] == sizes.get(k, seen[k])}
        return 100.0 * sum(units.values()) / len(units) if units else math.nan
