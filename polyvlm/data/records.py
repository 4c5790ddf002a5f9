"""The LLaVA conversation record: parsing from dicts, media path resolution under a root, record errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyvlm.media import PLACEHOLDERS, RECORD_KEYS

# read from the Modality registry (polyvlm/media) at each use: a modality registered there is a record key here
MEDIA_KEYS = RECORD_KEYS
ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class RecordError(ValueError):
    """A bad record. `str()` is one line: `file:line id=... : reason`."""

    def __init__(self, reason: str, source: str = "", record_id: str | None = None, code: str = "invalid"):
        self.reason, self.source, self.record_id, self.code = reason, source, record_id, code
        where = " ".join(x for x in (source, f"id={record_id}" if record_id is not None else "") if x)
        super().__init__(f"{where or 'a record without source or id'}: {reason}")


@dataclass
class Turn:
    role: str  # user | assistant | system
    text: str
    extra: dict[str, Any] = field(default_factory=dict)  # other keys of the turn (e.g. `weight`), kept on conversion


@dataclass
class Record:
    """One training or evaluation sample.

    `media` maps modality -> list of paths (as written in the record, relative to the image root).
    `source` says where it came from (`file.jsonl:12`), for error messages.
    """

    id: str
    turns: list[Turn]
    media: dict[str, list[str]] = field(default_factory=dict)
    language: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def placeholder_counts(self) -> dict[str, int]:
        return {m: sum(t.text.count(PLACEHOLDERS[m]) for t in self.turns) for m in MEDIA_KEYS}

    def to_llava(self) -> dict:
        """Back to the LLaVA dict layout (`from` human/gpt/system)."""
        back = {"user": "human", "assistant": "gpt", "system": "system"}
        raw = self.extra.get("_id_raw")  # a non-string id as the file held it (e.g. 123.0), if still this id
        out: dict[str, Any] = {"id": raw if raw is not None and normalise_id(raw) == self.id else self.id}
        for m, paths in self.media.items():
            if paths:
                out[m] = paths[0] if len(paths) == 1 and not self.extra.get(f"_{m}_list") else list(paths)
        out["conversations"] = [{"from": back[t.role], "value": t.text, **t.extra} for t in self.turns]
        if self.language is not None:
            out["language"] = self.language
        for k, v in self.extra.items():
            if not k.startswith("_"):
                out[k] = v
        return out


def normalise_id(v: Any) -> str | None:
    """An id as a string (floats that are whole numbers lose their `.0`); None when it is not a string or number."""
    if v.__class__ is str:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


_TURN_KEYS = ("from", "role", "value", "content")


def parse_record(obj: Any, source: str = "") -> Record:
    """Parse one LLaVA-format dict into a Record, raising RecordError with the reason."""
    if not isinstance(obj, dict):
        raise RecordError(f"record is a {type(obj).__name__}, not an object", source, code="wrong_type")
    rid_raw = obj.get("id")
    if rid_raw is None:
        raise RecordError("missing key 'id'", source, code="missing_key")
    rid = normalise_id(rid_raw)
    if rid is None:
        raise RecordError(f"'id' is a {type(rid_raw).__name__}, not a string or number", source, code="wrong_type")
    convs = obj.get("conversations")
    if convs is None:
        raise RecordError("missing key 'conversations'", source, rid, code="missing_key")
    if not isinstance(convs, list):
        raise RecordError(f"'conversations' is a {type(convs).__name__}, not a list", source, rid, code="wrong_type")
    if not convs:
        raise RecordError("empty conversation", source, rid, code="empty_conversation")
    turns = []
    for i, turn in enumerate(convs):
        if not isinstance(turn, dict):
            raise RecordError(f"turn {i} is not an object", source, rid, code="wrong_type")
        role = ROLE_ALIASES.get(str(turn.get("from", turn.get("role", ""))))
        if role is None:
            raise RecordError(f"turn {i} has no known role (from={turn.get('from')!r})", source, rid, code="bad_role")
        value = turn.get("value", turn.get("content"))
        if not isinstance(value, str):
            raise RecordError(f"turn {i} value is not a string", source, rid, code="wrong_type")
        turns.append(Turn(role, value, {k: v for k, v in turn.items() if k not in _TURN_KEYS}))
    if not any(t.role == "user" for t in turns):
        raise RecordError("no human turn", source, rid, code="no_user_turn")
    media: dict[str, list[str]] = {}
    extra: dict[str, Any] = {} if rid_raw.__class__ is str else {"_id_raw": rid_raw}
    for m in MEDIA_KEYS:
        v = obj.get(m)
        if v is None:
            continue
        if isinstance(v, str):
            media[m] = [v]
        elif isinstance(v, list) and all(isinstance(p, str) for p in v):
            media[m] = list(v)
            extra[f"_{m}_list"] = True
        else:
            raise RecordError(f"'{m}' must be a path or a list of paths", source, rid, code="wrong_type")
    lang = obj.get("language")
    if lang is not None and not isinstance(lang, str):
        raise RecordError("'language' is not a string", source, rid, code="wrong_type")
    for k, v in obj.items():
        if k not in ("id", "conversations", "language", *MEDIA_KEYS):
            extra[k] = v
    return Record(id=rid, turns=turns, media=media, language=lang, source=source, extra=extra)


def check_placeholders(rec: Record) -> None:
    """Each modality's placeholder count must equal its media count (images with none get one prepended)."""
    counts = rec.placeholder_counts()
    for m in MEDIA_KEYS:
        n_media = len(rec.media.get(m, []))
        if counts[m] != n_media:
            raise RecordError(
                f"{counts[m]} {PLACEHOLDERS[m]} placeholder(s) but {n_media} {m} file(s)",
                rec.source, rec.id, code="placeholder_mismatch",
            )


def resolve_media(root: str | Path, rel: str, source: str = "", record_id: str | None = None) -> Path:
    """Resolve a media path under `root`; absolute paths, `..` and symlinks that leave the root are refused."""
    root_real = Path(os.path.realpath(root))
    if os.path.isabs(rel):
        raise RecordError(f"media path '{rel}' is absolute; paths must be relative to the image root", source, record_id, code="media_escape")
    full = Path(os.path.realpath(root_real / rel))
    if full != root_real and root_real not in full.parents:
        raise RecordError(f"media path '{rel}' escapes the image root {root_real}", source, record_id, code="media_escape")
    if not full.is_file():
        raise RecordError(f"media file '{rel}' not found under {root_real}", source, record_id, code="media_missing")
    return full


def iter_json_records(path: str | Path) -> Iterator[Record]:
    """Stream records from a .json array or .jsonl file (any format `polyvlm.data.readers` reads).

    Raises RecordError (file, line, id, reason) at the first bad record; see `readers.iter_records`.
    """
    from polyvlm.data.readers import iter_records  # readers imports this module

    path = Path(path)
    if not path.is_file():
        raise RecordError("no such file", str(path), code="missing_file")
    yield from iter_records([path])
