"""MAmmoTH-VL style stages over conversation records: `categorize`, `rewrite`, `judge`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from polyvlm.data.records import RecordError
from polyvlm.synth.parsing import ParseError, extract_json, get_pairs, get_score
from polyvlm.synth.stages.base import (
    Result,
    Stage,
    check_conversation,
    conversation_text,
    derive,
    ok,
    pairs_to_conversation,
    register,
    reject,
)

CATEGORIES = ("general", "chart", "ocr", "caption", "math_code", "domain", "detection", "multi_image", "video",
              "text_only")

# Keyword rules, tried in order on the question + answer text (lower-cased). First match wins.
_RULES: list[tuple[str, re.Pattern]] = [
    ("detection", re.compile(r"bounding box|\bbbox\b|\[\s*0?\.\d+\s*,\s*0?\.\d+\s*,\s*0?\.\d+\s*,\s*0?\.\d+\s*\]|"
                             r"\bdetect\b|coordinates of")),
    ("chart", re.compile(r"\bchart\b|\bgraph\b|\bplot\b|bar (?:chart|graph)|pie chart|\baxis\b|\blegend\b|"
                         r"\btable\b|\binfographic\b")),
    ("ocr", re.compile(r"\bocr\b|what (?:is|does) (?:the )?(?:text|sign|label|word)|\bwritten\b|\bread\b|"
                       r"\bdocument\b|\breceipt\b|\bhandwrit|\btitle of\b|\bsays?\b")),
    ("math_code", re.compile(r"\bsolve\b|\bequation\b|\bcalculate\b|\bcompute\b|\bgeometry\b|\btriangle\b|"
                             r"\bpython\b|\bcode\b|\bfunction\b|\balgorithm\b|\d\s*[=+*/^]\s*\d")),
    ("domain", re.compile(r"x-ray|\bct scan\b|\bmri\b|\bpatholog|\bradiolog|\bmedical\b|\bsatellite\b|"
                          r"remote sensing|\bmicroscop|\bcircuit\b|\bmolecul")),
    ("caption", re.compile(r"\bdescribe\b|\bdescription\b|\bcaption\b|what is (?:shown|happening) in")),
]

# Category guidance for the default rewrite template (categories with their own variant ignore it).
GUIDANCE = {
    "general": "Ask questions that need the image to answer: objects, attributes, relations, counts, reasons.",
    "detection": "Ask about where objects are and how they are arranged; give positions in words.",
    "domain": "Use the correct domain terms; stay conservative about anything not clearly visible.",
    "multi_image": "Ask questions that compare or relate the images to each other.",
    "video": "Ask about events, their order and what changes over time.",
}


@dataclass
class CategorizeParams:
    mode: str = "rules"  # rules | model | rules_then_model (model only where the rules fall back to general)
    source_map: dict = field(default_factory=dict)  # substring of the record's source/dataset/id -> category
    overwrite: bool = False  # re-categorise records that already carry a valid `category`
    max_tokens: int = 32


def rule_category(record: dict, source_map: dict | None = None) -> tuple[str, bool]:
    """(category, decided): `decided` is False when only the `general` fallback matched."""
    if record.get("video"):
        return "video", True
    images = record.get("image")
    n_img = 0 if images is None else (1 if isinstance(images, str) else len(images))
    if n_img > 1:
        return "multi_image", True
    origin = " ".join(str(record.get(k, "")) for k in ("source", "dataset", "id")).lower()
    for needle, cat in (source_map or {}).items():
        if str(needle).lower() in origin:
            return str(cat), True
    if n_img == 0 and not record.get("audio"):
        return "text_only", True
    q, a = conversation_text(record)
    text = f"{q}\n{a}".lower()
    for cat, pattern in _RULES:
        if pattern.search(text):
            return cat, True
    return "general", False


@register
class Categorize(Stage):
    """Assign one of CATEGORIES to each conversation record (field `category`)."""

    name = "categorize"
    Params = CategorizeParams
    prompt_name = "categorize"

    def __init__(self, params: CategorizeParams, ctx):  # noqa: ANN001
        super().__init__(params, ctx)
        if params.mode not in ("rules", "model", "rules_then_model"):
            raise ValueError(f"stage categorize: mode must be rules, model or rules_then_model, not {params.mode!r}")
        bad = [c for c in params.source_map.values() if c not in CATEGORIES]
        if bad:
            raise ValueError(f"stage categorize: source_map names unknown categories {bad} (known: {CATEGORIES})")

    def uses_backend(self) -> bool:
        return self.params.mode != "rules"

    async def process(self, record: dict) -> Result:
        try:
            check_conversation(record)
        except RecordError as e:
            return reject("invalid_record", str(e))
        if record.get("category") in CATEGORIES and not self.params.overwrite:
            return ok([record], category=record["category"], by="given")
        cat, decided = rule_category(record, self.params.source_map)
        if self.params.mode == "rules" or (self.params.mode == "rules_then_model" and decided):
            return ok([derive(record, "", category=cat)], category=cat, by="rules")
        q, a = conversation_text(record)
        assert self.ctx.prompt is not None
        msgs = self.ctx.prompt.render(question=q, answer=a, categories=", ".join(CATEGORIES))
        text = await self.ask(msgs, self.images_of(record), max_tokens=self.params.max_tokens)
        found = _parse_category(text)
        if found is None:
            if self.params.mode == "rules_then_model":
                return ok([derive(record, "", category=cat)], category=cat, by="rules")
            return reject("unparseable_output", f"model named no known category: {text[:100]!r}")
        return ok([derive(record, "", category=found)], category=found, by="model")


def _parse_category(text: str) -> str | None:
    try:
        obj = extract_json(text)
        if isinstance(obj, dict) and obj.get("category") in CATEGORIES:
            return str(obj["category"])
    except ParseError:
        pass
    words = re.findall(r"[a-z_]+", text.lower())
    return next((w for w in words if w in CATEGORIES), None)


@dataclass
class RewriteParams:
    n: int = 1  # instruction-response pairs asked for per record
    keep_original: bool = False  # also pass the input record through
    max_tokens: int = 1024
    temperature: float = 0.7
    attempts: int = 2  # model calls per record before an unparseable answer is a rejection


@register
class Rewrite(Stage):
    """Rewrite a record into `n` richer instruction-response pairs (one output record), per category template."""

    name = "rewrite"
    Params = RewriteParams
    prompt_name = "rewrite"
    needs_backend = True

    async def process(self, record: dict) -> Result:
        try:
            check_conversation(record)
            images = self.images_of(record)
        except RecordError as e:
            return reject("invalid_record", str(e))
        q, a = conversation_text(record)
        cat = record.get("category") or "general"
        assert self.ctx.prompt is not None
        msgs = self.ctx.prompt.render(variant=cat, question=q, answer=a, n=self.params.n,
                                      guidance=GUIDANCE.get(cat, GUIDANCE["general"]))
        err = ""
        for _ in range(max(1, self.params.attempts)):
            text = await self.ask(msgs, images, max_tokens=self.params.max_tokens,
                                  temperature=self.params.temperature)
            try:
                pairs = get_pairs(extract_json(text), max_pairs=self.params.n)
            except ParseError as e:
                err = str(e)
                continue
            conv = pairs_to_conversation(record, pairs)
            out = [derive(record, "-rw", conv, category=cat)]
            if self.params.keep_original:
                out.insert(0, record)
            return ok(out, category=cat, pairs=len(pairs))
        return reject("unparseable_output", err, category=cat)


@dataclass
class JudgeParams:
    threshold: float = 3.0  # keep records whose score is >= threshold (scores are 1-5)
    max_tokens: int = 256
    attempts: int = 2


def render_conversation(record: dict) -> str:
    names = {"human": "User", "user": "User", "gpt": "Assistant", "assistant": "Assistant", "system": "System"}
    return "\n".join(f"{names.get(t.get('from'), 'User')}: {t.get('value', '')}" for t in record["conversations"])


@register
class Judge(Stage):
    """Rate each record against its media; keep score >= threshold; store `judge_score` and `judge_reason`."""

    name = "judge"
    Params = JudgeParams
    prompt_name = "judge"
    needs_backend = True

    async def process(self, record: dict) -> Result:
        try:
            check_conversation(record)
            images = self.images_of(record)
        except RecordError as e:
            return reject("invalid_record", str(e))
        assert self.ctx.prompt is not None
        msgs = self.ctx.prompt.render(conversation=render_conversation(record))
        err = ""
        for _ in range(max(1, self.params.attempts)):
            text = await self.ask(msgs, images, max_tokens=self.params.max_tokens)
            try:
                score, obj = get_score(text, "score", 1, 5)
            except ParseError as e:
                err = str(e)
                continue
            reason = str(obj.get("reason", "")).strip()
            cat = record.get("category")
            if score < self.params.threshold:
                return reject("below_threshold", f"judge score {score:g} < {self.params.threshold:g}: {reason}",
                              score=score, category=cat)
            return ok([derive(record, "", judge_score=score, judge_reason=reason)], score=score,
                      category=cat)
        return reject("unparseable_output", err)
