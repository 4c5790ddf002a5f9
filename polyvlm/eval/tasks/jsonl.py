"""Tasks read from JSONL records: open VQA, yes/no (MaRVL style), captioning and text-only tasks."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from polyvlm.data.records import RecordError, resolve_media
from polyvlm.eval.extract import Extraction, english_fallback, extract_yes_no
from polyvlm.eval.forms import extend
from polyvlm.eval.tasks.base import Sample, Task, TaskError, task_language
from polyvlm.media import RECORD_KEYS, by_record_key

VQA_PROMPT = {
    "en": "{question}\nAnswer the question using a single word or phrase.",
    "zh": "{question}\n请用一个词或短语回答。",
    "pt": "{question}\nResponda com uma única palavra ou frase.",
    "ar": "{question}\nأجب بكلمة واحدة أو عبارة قصيرة.",
    "tr": "{question}\nSoruyu tek bir kelime veya kısa bir ifadeyle cevaplayın.",
    "ru": "{question}\nОтветьте одним словом или короткой фразой.",
}
YESNO_PROMPT = {
    "en": "{question}\nAnswer yes or no.", "zh": "{question}\n请回答是或否。", "pt": "{question}\nResponda sim ou não.",
    "ar": "{question}\nأجب بنعم أو لا.", "tr": "{question}\nEvet veya hayır olarak cevaplayın.",
    "ru": "{question}\nОтветьте да или нет.", "id": "{question}\nJawab ya atau tidak.",
    "sw": "{question}\nJibu ndiyo au hapana.", "ta": "{question}\nஆம் அல்லது இல்லை என்று பதிலளிக்கவும்.",
}
CAPTION_PROMPT = {
    "en": "Describe this image in one sentence.", "zh": "用一句话描述这张图片。", "pt": "Descreva esta imagem em uma frase.",
    "ar": "صف هذه الصورة في جملة واحدة.", "tr": "Bu resmi bir cümleyle açıklayın.", "ru": "Опишите это изображение одним предложением.",
    "ja": "この画像を一文で説明してください。", "th": "อธิบายภาพนี้ในหนึ่งประโยค",
}
for _table, _key in ((VQA_PROMPT, "vqa"), (YESNO_PROMPT, "yesno"), (CAPTION_PROMPT, "caption")):
    extend(_table, _key)  # the other benchmark languages: polyvlm/eval/prompts/language_forms.yaml
_ANSWER_KEYS = ("answers", "answer", "references", "reference", "captions", "target")


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(1-based line number, decoded value) per non-empty line; a malformed line raises TaskError naming
    file:line."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                raise TaskError(f"{path}:{n}: malformed JSON: {e.msg}") from None


def read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(source, object) per non-empty line; a malformed line raises TaskError naming file:line."""
    out = []
    for n, obj in iter_json_lines(path):
        if not isinstance(obj, dict):
            raise TaskError(f"{path}:{n}: a record must be a JSON object")
        out.append((f"{path}:{n}", obj))
    return out


class _Fields(dict):
    def __init__(self, obj: dict[str, Any], where: str):
        super().__init__(obj)
        self.where = where

    def __missing__(self, key: str) -> str:
        raise TaskError(f"{self.where}: the prompt template uses {{{key}}} but the record has no '{key}'")


class JsonlTask(Task):
    """Records: `id`, `question`, `image` (path or list, relative to image_root), answers (`answers`,
    `answer`, `references` or `captions`), `language`, `category`. The prompt template may use any field."""

    default_prompt: dict[str, str] | str = "{question}"
    needs_answers = True

    def load(self) -> list[Sample]:
        samples: list[Sample] = []
        for path in self.spec.data_paths():
            files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
            for f in files:
                for where, obj in read_jsonl(f):
                    samples.append(self.to_sample(obj, where, f))
        return samples

    def to_sample(self, obj: dict[str, Any], where: str, path: Path) -> Sample:
        rid = obj.get("id", obj.get("question_id", obj.get("index")))
        if rid is None:
            raise TaskError(f"{where}: record has no 'id'")
        rid = str(rid)
        language = task_language(obj.get("language", self.spec.language), where)
        root = Path(self.spec.image_root) if self.spec.image_root else path.parent
        raw = obj.get("image", obj.get("images", []))
        raw = [raw] if isinstance(raw, str) else raw
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise TaskError(f"{where} id={rid}: 'image' must be a path or a list of paths")
        media = {}
        try:
            images = [str(resolve_media(root, p, where, rid)) for p in raw]
            for key in RECORD_KEYS:  # audio, video, thermal, depth, imu: `"thermal": "x.png"` or a list
                refs = obj.get(key) if key != "image" else None
                refs = [refs] if isinstance(refs, str) else refs
                if refs is None:
                    continue
                if not isinstance(refs, list) or not all(isinstance(p, str) for p in refs):
                    raise TaskError(f"{where} id={rid}: '{key}' must be a path or a list of paths")
                media[by_record_key(key).name] = [str(resolve_media(root, p, where, rid)) for p in refs]
        except RecordError as e:
            raise TaskError(str(e)) from None
        template = self.spec.prompt_for(language, self.default_prompt)
        fields = {k: v for k, v in obj.items() if isinstance(v, (str, int, float))}
        fields.setdefault("question", "")
        try:
            prompt = string.Formatter().vformat(template, (), _Fields(fields, f"{where} id={rid}"))
        except (ValueError, IndexError) as e:
            raise TaskError(f"{where} id={rid}: bad prompt template {template!r}: {e}") from None
        target = self.target(obj, f"{where} id={rid}")
        return Sample(id=rid, prompt=prompt, images=images, media=media, target=target, language=language,
                      category=obj.get("category"),
                      extra={k: obj[k] for k in obj if k not in ("image", "images", *RECORD_KEYS)}, source=where)

    def target(self, obj: dict[str, Any], where: str) -> Any:
        for key in _ANSWER_KEYS:
            if key in obj and obj[key] is not None:
                value = obj[key]
                refs = value if isinstance(value, list) else [value]
                if not refs or not all(isinstance(r, (str, int, float)) for r in refs):
                    raise TaskError(f"{where}: '{key}' must be a string or a non-empty list of strings")
                return [str(r) for r in refs]
        if self.needs_answers:
            raise TaskError(f"{where}: no reference answer (one of {', '.join(_ANSWER_KEYS)})")
        return None

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        """Languages the default instruction has no form for (a task's own prompt is the user's choice)."""
        if self.spec.prompt or not isinstance(self.default_prompt, dict):
            return {}
        return {"instructions": sorted({lang for lang in languages
                                        if lang and lang.split("-")[0] not in self.default_prompt})}


class VQATask(JsonlTask):
    default_metrics = ["vqa_accuracy", "exact_match"]
    default_prompt = VQA_PROMPT

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        lines = [ln for ln in prediction.strip().splitlines() if ln.strip()]
        return Extraction(lines[0].strip() if lines else "", "first_line")


class YesNoTask(JsonlTask):
    """MaRVL style: the answer in the record may be a boolean or yes/no in the task's language."""

    default_metrics = ["accuracy"]
    default_prompt = YESNO_PROMPT
    parsed = True

    def target(self, obj: dict[str, Any], where: str) -> Any:
        value = obj.get("label", obj.get("answer"))
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, str):
            got = extract_yes_no(value, task_language(obj.get("language", self.spec.language))).answer
            if got is not None:
                return got
        raise TaskError(f"{where}: yes/no answer {value!r} is neither a boolean nor a yes/no word")

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_yes_no(prediction, sample.language)

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        return {**super().english_fallback(languages), "yes_no": english_fallback(languages, "yes_no")}


class CaptionTask(JsonlTask):
    default_metrics = ["cider_d", "bleu4", "rouge_l"]
    default_prompt = CAPTION_PROMPT


class TextTask(JsonlTask):
    """Text-only tasks (translation with chrF, MGSM with the final number): records have no image."""

    default_metrics = ["chrf"]
    default_prompt = "{question}"
