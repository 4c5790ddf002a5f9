"""The data file format registry (`FORMATS`), and record layouts other than LLaVA turned into LLaVA dicts.

A `DataFormat` says how a file of that format is recognised (suffix, directory marker, a sniff when the
suffix is ambiguous) and names the functions that read it (streaming), index it (random access), write it and
locate records in it for validation; readers, `RecordIndex`, `RecordWriter` and the validator look them up
here instead of branching on the format's name. Adding a format is its functions plus one entry.

Layouts: OpenAI `messages`, Parquet/Arrow rows, media blobs.

Everything a reader yields goes through `to_llava_dict`, so validation, statistics and training see one
layout: `{"id", "conversations": [{"from", "value"}], "image"/"audio"/"video", "language", ...}`.
Media given inline (base64, Arrow image structs) become `data:` URIs; `polyvlm.data.media` opens them.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyvlm.data.records import MEDIA_KEYS, PLACEHOLDERS, RecordError
from polyvlm.registry import Registry

# Schema metadata key marking a Parquet file written by polyvlm (see `writers.PARQUET_SCHEMA`).
POLYVLM_PARQUET_KEY = b"polyvlm.layout"
POLYVLM_PARQUET_VERSION = b"1"



@dataclass(frozen=True)
class DataFormat:
    """One data file format. Capabilities are `module:attribute` names, imported when first used (pyarrow only
    for Parquet); an empty one means the format lacks it.

    - read(path) -> iterator of (index, line or None, LLaVA dict | RecordError) — every format has it;
    - index: a `RecordIndex` access class (`cls(path, cache)`: `len`, `source(i)`, `raw(i)`), random access;
    - write: a `RecordWriter` sink class (`cls(tmp_path, writer)`: `write(dict)`, `close(ok)`);
    - locate(path, indices) -> {index: (line, id)}: finds a few records for the validator cheaply;
    - sniff(path) -> format name: picks between formats sharing a suffix (`.json`: an array or JSON lines).
    """

    name: str
    suffixes: tuple[str, ...] = ()  # name endings before .gz/.zst
    marker: tuple[str, ...] = ()  # files whose presence makes a directory this format
    read: str = ""
    index: str = ""
    write: str = ""
    locate: str = ""
    sniff: str = ""
    line_based: bool = True  # records are named file:line (else file#index)
    compressible: bool = True  # .gz/.zst accepted when reading
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def capability(self, what: str) -> Callable[..., Any] | None:
        """The function or class named by capability `what` (read, index, write, locate, sniff), or None."""
        if what not in self._cache:
            target = getattr(self, what)
            module, _, attr = target.partition(":")
            self._cache[what] = getattr(importlib.import_module(module), attr) if target else None
        return self._cache[what]


FORMATS: Registry[DataFormat] = Registry("data format")


def register_format(fmt: DataFormat) -> DataFormat:
    return FORMATS.register(fmt.name)(fmt)


_R, _I, _W, _V = "polyvlm.data.readers", "polyvlm.data.index", "polyvlm.data.writers", "polyvlm.data.dupes"
register_format(DataFormat("jsonl", ("jsonl", "ndjson"), read=f"{_R}:iter_jsonl", index=f"{_I}:JsonlAccess",
                           write=f"{_W}:JsonlSink", locate=f"{_V}:locate_lines"))
register_format(DataFormat("json", ("json",), read=f"{_R}:iter_json_array", index=f"{_I}:JsonArrayAccess",
                           sniff=f"{_R}:sniff_json"))
register_format(DataFormat("parquet", ("parquet",), read=f"{_R}:iter_parquet", index=f"{_I}:ParquetAccess",
                           write=f"{_W}:ParquetSink", locate=f"{_V}:locate_rows", line_based=False,
                           compressible=False))
register_format(DataFormat("tsv", ("tsv",), read="polyvlm.data.tsv:iter_tsv"))
register_format(DataFormat("hf", marker=("state.json", "dataset_dict.json"), read=f"{_R}:iter_hf",
                           line_based=False, compressible=False))


def format_for_name(name: str) -> DataFormat | None:
    """The format whose suffix ends `name` (compression suffix already removed), or None."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return next((FORMATS.get(n) for n in FORMATS.names() if suffix in FORMATS.get(n).suffixes), None)


def format_for_dir(path: Path) -> DataFormat | None:
    """The format a directory is saved in (its marker files), or None."""
    return next((FORMATS.get(n) for n in FORMATS.names()
                 if any((path / m).is_file() for m in FORMATS.get(n).marker)), None)


def writable_formats() -> list[str]:
    """Names of the formats `RecordWriter` can write (those with a `write` capability)."""
    return [n for n in FORMATS.names() if FORMATS.get(n).write]


def file_suffixes() -> tuple[str, ...]:
    """Every registered file suffix (`.json`, `.jsonl`, ...), for messages and directory listings."""
    return tuple(sorted(s for n in FORMATS.names() for s in FORMATS.get(n).suffixes))


_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"),
    (b"RIFF", "image/webp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
]


def sniff_mime(data: bytes, default: str = "application/octet-stream") -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return "audio/wav" if mime == "image/webp" and data[8:12] == b"WAVE" else mime
    return default


def bytes_to_data_uri(data: bytes, mime: str | None = None) -> str:
    return f"data:{mime or sniff_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def b64_to_data_uri(b64: str) -> str:
    """A bare base64 string (VLMEvalKit TSV) -> data URI, with the type sniffed from the first bytes."""
    head = base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4), validate=False)
    return f"data:{sniff_mime(head, 'image/jpeg')};base64,{b64}"


def _media_value(v: Any) -> Any:
    """Arrow image/audio structs ({bytes, path} or {array, path}) -> a path or a data URI; lists element-wise."""
    if isinstance(v, dict):
        if v.get("bytes"):
            return bytes_to_data_uri(v["bytes"])
        if v.get("path"):
            return v["path"]
        return v
    if isinstance(v, bytes):
        return bytes_to_data_uri(v)
    if isinstance(v, list):
        return [_media_value(x) for x in v]
    return v


def _registered_part(part: dict, kind: Any, where: str, media: dict[str, list[str]], pieces: list[str]) -> str:
    """A content part of a modality in the registry (`by_part`) -> its reference (a URL or data URI) under its record
    key and its placeholder; returns the reason when the part is of no known type or holds no reference."""
    from polyvlm import media as registry

    m = registry.by_part(kind) if isinstance(kind, str) else None
    if m is None or m.part_source is None:
        return f"{where} has unknown type {kind!r} (known: text, {', '.join(registry.PART_MODALITY)})"
    try:
        src = m.part_source(part, where)
    except registry.MediaError as e:
        return str(e)
    media.setdefault(m.record_key, []).append(src if isinstance(src, str) else bytes_to_data_uri(src))
    pieces.append(m.placeholder)
    return ""


def _openai_to_llava(obj: dict) -> dict | RecordError:
    """`{"messages": [{"role", "content": str | [parts]}]}` -> LLaVA dict; media parts become placeholders in place."""
    msgs = obj["messages"]
    out: dict[str, Any] = {k: v for k, v in obj.items() if k != "messages"}
    if not isinstance(msgs, list):
        out["conversations"] = msgs  # validation reports the wrong type
        return out
    media: dict[str, list[str]] = {}
    convs = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            convs.append(m)
            continue
        content = m.get("content")
        if isinstance(content, list):
            pieces = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text":
                    pieces.append(str(part.get("text", "")))
                elif kind == "image_url":
                    url = part.get("image_url")
                    url = url.get("url") if isinstance(url, dict) else url
                    media.setdefault("image", []).append(str(url))
                    pieces.append(PLACEHOLDERS["image"])
                elif kind == "input_audio":
                    a = part.get("input_audio") or {}
                    fmt = a.get("format", "wav")
                    media.setdefault("audio", []).append(f"data:audio/{fmt};base64,{a.get('data', '')}")
                    pieces.append(PLACEHOLDERS["audio"])
                elif kind in ("video_url", "video"):
                    url = part.get(kind)
                    url = url.get("url") if isinstance(url, dict) else url
                    media.setdefault("video", []).append(str(url))
                    pieces.append(PLACEHOLDERS["video"])
                else:  # thermal, depth, imu, a modality added later: the part its declaration reads
                    err = _registered_part(part, kind, f"message {i} content part {j}", media, pieces)
                    if err:
                        rid = obj.get("id")
                        return RecordError(err, "", None if rid is None else str(rid), code="wrong_type")
            content = "\n".join(pieces)
        convs.append({"from": m.get("role"), "value": content})
    out["conversations"] = convs
    for k, paths in media.items():
        out[k] = paths[0] if len(paths) == 1 else paths
    return out


def to_llava_dict(obj: Any) -> Any:
    """Normalise one decoded record to the LLaVA layout (non-dicts pass through for validation to report).

    A record that cannot be expressed in it (an unknown `messages` content part) becomes a RecordError
    without a source; the reader that called this adds the file and line.
    """
    if not isinstance(obj, dict):
        return obj
    if "conversations" not in obj and "messages" in obj:
        return _openai_to_llava(obj)
    return obj


def arrow_row_to_llava(row: dict, polyvlm_layout: bool) -> dict:
    """One Parquet/Arrow row (as from `to_pylist`) -> LLaVA dict."""
    if polyvlm_layout:
        extra = json.loads(row["extra"]) if row.get("extra") else {}
        out: dict[str, Any] = {"id": extra.pop("_id_raw", row["id"])}
        for m in MEDIA_KEYS:
            paths = row.get(m)
            if paths is not None:
                out[m] = list(paths) if extra.pop(f"_{m}_list", False) or len(paths) != 1 else paths[0]
        turns = row["conversations"]
        turn_extra = extra.pop("_turn_extra", None)
        if turn_extra and turns is not None and len(turn_extra) == len(turns):
            turns = [{**t, **x} for t, x in zip(turns, turn_extra)]
        out["conversations"] = turns
        if row.get("language") is not None:
            out["language"] = row["language"]
        out.update(extra)
        return out
    out = {k: v for k, v in row.items() if v is not None}
    for m in MEDIA_KEYS:
        if m in out:
            out[m] = _media_value(out[m])
    return to_llava_dict(out)
