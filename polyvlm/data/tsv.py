"""VLMEvalKit TSV reading: rows with base64 `image` (or short references to another row's image) to LLaVA dicts.

Columns: `index`, `question`, `hint`, option columns `A`..`Z`, `answer`, `category`, `l2-category`,
`split`, `image` (base64, a list of them, or the `index` of another row holding the image) or
`image_path`. Rows are read with the csv module, so a quoted cell may span lines; the line reported for
a row is the physical line it starts on.
"""

from __future__ import annotations

import ast
import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from polyvlm.data.formats import b64_to_data_uri
from polyvlm.data.records import RecordError

OPTION_KEYS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
_SHORT = 64  # an `image` value this short is a reference to another row, not base64


def _is_missing(v: str | None) -> bool:
    return v is None or v.strip() == "" or v.strip().lower() == "nan"


def _image_items(value: str) -> list[str]:
    if value.startswith("[") and value.endswith("]"):
        items = ast.literal_eval(value)
        if not isinstance(items, list):
            raise ValueError(f"image column {value[:40]!r} is not a list")
        return [str(x) for x in items]
    return [value]


def _tsv_images(value: str, images: dict[str, str]) -> list[str]:
    """The image column: base64, a list of base64, or the short index of another row holding the image."""
    out = []
    for it in _image_items(value):
        if len(it) > _SHORT:
            out.append(b64_to_data_uri(it))
        elif it in images:
            out.append(images[it])
        else:
            raise KeyError(it)
    return out


def tsv_row_to_llava(row: dict[str, str], images: dict[str, str]) -> dict:
    """One VLMEvalKit row -> LLaVA dict: hint, question and options in the user turn, the answer as the reply."""
    rid = row.get("index", "")
    if row.get("image") and not _is_missing(row.get("image")):
        media = _tsv_images(row["image"], images)
    elif row.get("image_path") and not _is_missing(row.get("image_path")):
        media = _image_items(row["image_path"])
    else:
        media = []
    options = {k: row[k] for k in OPTION_KEYS if k in row and not _is_missing(row[k])}
    parts = []
    if not _is_missing(row.get("hint")):
        parts.append(f"Hint: {row['hint']}")
    parts.append(f"Question: {row.get('question', '')}" if options else str(row.get("question", "")))
    if options:
        parts.append("Options:\n" + "\n".join(f"{k}. {v}" for k, v in options.items()))
        parts.append("Please select the correct answer from the options above.")
    prompt = "<image>\n" * len(media) + "\n".join(parts)
    conv = [{"from": "human", "value": prompt}]
    answer = row.get("answer")
    if not _is_missing(answer):
        conv.append({"from": "gpt", "value": answer})
    out: dict[str, Any] = {"id": rid, "conversations": conv}
    if media:
        out["image"] = media[0] if len(media) == 1 else media
    if options:
        out["options"] = options
    skip = {"index", "image", "image_path", "question", "hint", *options}
    for k, v in row.items():
        if k not in skip and not _is_missing(v):
            out[k] = v
    return out


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str] | RecordError]]:
    """`(line the row starts on, row dict)`; a row whose field count differs from the header's is a RecordError."""
    from polyvlm.data.readers import open_binary  # readers imports this module

    with open_binary(path) as fb, io.TextIOWrapper(fb, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None:
            return
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                yield start, RecordError(f"row has {len(row)} tab-separated fields but the header has {len(header)}",
                                         f"{path}:{start}", row[0] if header[0] == "index" and row else None, code="malformed_row")
                continue
            yield start, dict(zip(header, row))


def iter_tsv(path: Path) -> Iterator[tuple[int, int | None, Any]]:
    """Yield `(index, line, LLaVA dict or RecordError)` per row; an undecodable file ends with a file-level error."""
    csv.field_size_limit(sys.maxsize)
    index = 0
    try:
        # pass 1: which rows are referenced by a short `image` value; pass 2 keeps only those images
        wanted: set[str] = set()
        for _, r in _rows(path):
            v = r.get("image") if isinstance(r, dict) else None
            if v and len(v) <= 4 * _SHORT and not _is_missing(v):
                try:
                    wanted.update(it for it in _image_items(v) if len(it) <= _SHORT)
                except (ValueError, SyntaxError):
                    pass  # reported for its own row below
        images: dict[str, str] = {}
        if wanted:
            for _, r in _rows(path):
                if isinstance(r, dict) and r.get("index") in wanted and len(r.get("image") or "") > _SHORT:
                    images[r["index"]] = b64_to_data_uri(r["image"])
        for line, row in _rows(path):
            if isinstance(row, RecordError):
                yield index, line, row
            else:
                where, rid = f"{path}:{line}", row.get("index")
                try:
                    yield index, line, tsv_row_to_llava(row, images)
                except KeyError as e:
                    yield index, line, RecordError(f"image refers to row index {e.args[0]!r}, which holds no image",
                                                   where, rid, code="media_missing")
                except (ValueError, SyntaxError) as e:
                    yield index, line, RecordError(f"bad TSV row: {e}", where, rid, code="wrong_type")
            index += 1
    except UnicodeDecodeError as e:
        yield -1, None, RecordError(f"not UTF-8 ({e.reason}); the rest of the file was not read", str(path), code="malformed_row")
