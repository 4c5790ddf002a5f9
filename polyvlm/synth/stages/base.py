"""The synth stage contract: a registry from name to class, typed params, per-record results, record helpers.

A stage is either a *map* stage (`process(record) -> Result`, one result per input record, resumable by
key) or a *reduce* stage (`reduce(records, emit, drop)`, a pass over the whole previous output: dedup,
balance), or both (map, then reduce over the map outputs: `media_filter`).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from polyvlm.data.langs import language_or_none
from polyvlm.data.records import PLACEHOLDERS, RecordError, parse_record, resolve_media
from polyvlm.infer import ChatRequest
from polyvlm.registry import Registry
from polyvlm.synth.backends import Backend, strip_reasoning
from polyvlm.synth.templates import PromptTemplate

STAGES: Registry[type[Stage]] = Registry("stage")


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make a stage available by its `name` in pipeline files."""
    return STAGES.register(cls.name)(cls)


def get_stage(name: str) -> type[Stage]:
    """The stage class registered as `name`; unknown names raise an error listing the known ones."""
    import polyvlm.synth.stages  # noqa: F401 - registers the built-in stages

    return STAGES.get(name)


@dataclass
class Result:
    """What a map stage made of one input record. `status`: ok (outputs kept) or rejected (with a reason)."""

    status: str
    outputs: list[dict] = field(default_factory=list)
    reason: str = ""
    code: str = ""
    meta: dict = field(default_factory=dict)


def ok(outputs: list[dict], **meta: Any) -> Result:
    return Result("ok", outputs, meta=meta)


def reject(code: str, reason: str, **meta: Any) -> Result:
    return Result("rejected", [], reason=reason, code=code, meta=meta)


@dataclass
class StageContext:
    """What a stage may use besides its params: the media root, a backend, its prompt template, a seed."""

    image_root: Path
    backend: Backend | None = None
    prompt: PromptTemplate | None = None
    seed: int = 0


class Stage:
    name: ClassVar[str] = ""
    Params: ClassVar[type] = object
    prompt_name: ClassVar[str | None] = None  # built-in template file; None: the stage uses no model
    needs_backend: ClassVar[bool] = False
    has_map: ClassVar[bool] = True
    has_reduce: ClassVar[bool] = False

    def __init__(self, params: Any, ctx: StageContext):
        self.params, self.ctx = params, ctx

    def uses_backend(self) -> bool:
        """Whether this configuration calls a model (e.g. `categorize` by rules only does not)."""
        return self.needs_backend

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Load slow resources (a language identifier, ...) before records flow, outside the event loop."""

    async def process(self, record: dict) -> Result:
        raise NotImplementedError

    def reduce(self, records: Callable[[], Iterable[dict]], emit: Callable[[dict], None],
               drop: Callable[[dict, str, str], None]) -> None:
        raise NotImplementedError

    # helpers for model-calling stages
    async def ask(self, messages: list[dict[str, str]], images: list[str] = (), *, max_tokens: int = 512,
                  temperature: float = 0.0) -> str:
        assert self.ctx.backend is not None, f"stage {self.name} has no backend"
        req = ChatRequest(messages=messages, images=list(images), max_new_tokens=max_tokens,
                          temperature=temperature, tag=self.name)
        return strip_reasoning(await self.ctx.backend.complete(req))

    def images_of(self, record: dict) -> list[str]:
        """Absolute image paths (or data URIs) of a record, resolved safely under the image root."""
        raw = record.get("image")
        refs = [raw] if isinstance(raw, str) else list(raw or [])
        out = []
        for ref in refs:
            if not isinstance(ref, str):
                raise RecordError("'image' must be a path or a list of paths", record.get("_source", ""),
                                  str(record.get("id")), code="wrong_type")
            if ref.startswith("data:"):
                out.append(ref)
                continue
            try:
                out.append(_resolve(str(self.ctx.image_root), ref))
            except RecordError as e:
                raise RecordError(e.reason, e.source, str(record.get("id")), e.code) from None
        return out


@lru_cache(maxsize=1 << 16)
def _resolve(root: str, ref: str) -> str:
    """resolve_media, memoised: instruction datasets ask many questions about the same image."""
    return str(resolve_media(root, ref))


def _coerce(where: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
            try:
                return _coerce(where, value, arg)
            except ValueError:
                continue
        raise ValueError(f"{where}: expected {tp}, got {value!r}")
    base = origin or tp
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base in (int, float, str, bool, list, dict):
        if not isinstance(value, base) or (base is int and isinstance(value, bool)):
            raise ValueError(f"{where}: expected {base.__name__}, got {type(value).__name__} {value!r}")
    return value


def params_from_dict(cls: type, data: dict, where: str) -> Any:
    """Build a params dataclass from a mapping; unknown keys and wrong types raise ValueError naming `where`."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} (known: {', '.join(sorted(names))})")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(f"{where}.{k}", v, hints[k]) for k, v in data.items()})


# ---- conversation record helpers --------------------------------------------------------------------------

_PH = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


def check_conversation(record: dict) -> None:
    """Raise RecordError (naming the record) when `record` is not a valid LLaVA conversation record."""
    parse_record({k: v for k, v in record.items() if not k.startswith("_")}, record.get("_source", ""))


def strip_placeholders(text: str) -> str:
    return _PH.sub("", text).strip()


def conversation_text(record: dict) -> tuple[str, str]:
    """(all user text, all assistant text) of a conversation record, placeholders removed."""
    user, bot = [], []
    for turn in record.get("conversations", []):
        (user if turn.get("from") in ("human", "user") else bot).append(strip_placeholders(str(turn.get("value", ""))))
    return "\n".join(t for t in user if t), "\n".join(t for t in bot if t)


def media_prefix(record: dict) -> str:
    """The placeholders a first user turn needs for the record's media (`<image>\\n` per image, ...)."""
    out = []
    for key, ph in PLACEHOLDERS.items():
        v = record.get(key)
        n = 0 if v is None else (1 if isinstance(v, str) else len(v))
        out.extend([ph] * n)
    return "\n".join(out) + ("\n" if out else "")


def record_id(record: dict) -> str:
    """The id as `parse_record` reads it (`12.0` -> `12`)."""
    rid = record.get("id")
    return str(int(rid)) if isinstance(rid, float) and rid.is_integer() else str(rid)


def derive(record: dict, suffix: str = "", conversations: list[dict] | None = None, **fields: Any) -> dict:
    """A new record `id + suffix` carrying the input's media and metadata, with `source_id` pointing back
    and the language tag normalised to BCP-47 (`zh_simplified` -> `zh-Hans`)."""
    out = {k: v for k, v in record.items() if not k.startswith("_")}
    out["source_id"] = record.get("source_id", record_id(record))
    out["id"] = record_id(record) + suffix
    if isinstance(out.get("language"), str):
        out["language"] = language_or_none(out["language"]) or out["language"]
    if conversations is not None:
        out["conversations"] = conversations
    out.update(fields)
    return out


def pairs_to_conversation(record: dict, pairs: list[tuple[str, str]]) -> list[dict]:
    """Question/answer pairs -> LLaVA turns; the first question carries the record's media placeholders."""
    turns = []
    for i, (q, a) in enumerate(pairs):
        turns.append({"from": "human", "value": (media_prefix(record) if i == 0 else "") + q.strip()})
        turns.append({"from": "gpt", "value": a.strip()})
    return turns
