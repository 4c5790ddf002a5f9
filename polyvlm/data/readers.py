"""Streaming readers: JSON arrays, JSONL, Parquet, VLMEvalKit TSV, HF datasets on disk; `.gz`/`.zst` transparent.

`iter_raw(path)` yields `(index, line, obj)` per record with `obj` a LLaVA-layout dict (or whatever the file
held, for validation to judge) or a `RecordError` for undecodable input. `iter_records(paths)` parses those
into `Record`s whose `.source` is `file:line` (line-based files) or `file#index` (row-based files).
Nothing reads a whole file into memory: JSON arrays are decoded element by element with `raw_decode`.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from polyvlm.data.formats import (
    POLYVLM_PARQUET_KEY,
    arrow_row_to_llava,
    b64_to_data_uri,
    to_llava_dict,
)
from polyvlm.data.records import Record, RecordError, parse_record

FORMATS = ("jsonl", "json", "parquet", "tsv", "hf")
CHUNK = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
RawItem = tuple[int, int | None, Any]


def split_compression(path: Path) -> tuple[str, str | None]:
    """`a.jsonl.zst` -> ("a.jsonl", "zst")."""
    name = path.name
    for ext in ("gz", "zst"):
        if name.endswith("." + ext):
            return name[: -len(ext) - 1], ext
    return name, None


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing `.gz` / `.zst` on the fly."""
    path = Path(path)
    _, comp = split_compression(path)
    if comp == "gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if comp == "zst":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True), CHUNK)
    return open(path, "rb", buffering=CHUNK)


def detect_format(path: str | Path) -> str:
    """The reader a path needs, from its suffix (and, for `.json`, its first character)."""
    path = Path(path)
    if path.is_dir():
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            return "hf"
        raise RecordError("a directory that is not a Hugging Face dataset saved with save_to_disk", str(path), code="unsupported_format")
    if not path.is_file():
        raise RecordError("no such file", str(path), code="missing_file")
    name, _ = split_compression(path)
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix == "parquet":
        return "parquet"
    if suffix == "tsv":
        return "tsv"
    if suffix == "json":
        with open_binary(path) as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        return "json" if head.startswith(b"[") or not head else "jsonl"
    raise RecordError(f"unknown data format '.{suffix}' (expected .json, .jsonl, .parquet, .tsv, optionally .gz/.zst)", str(path), code="unsupported_format")


_DECODER = json.JSONDecoder()
_scan_once = _DECODER.scan_once  # the C scanner: decodes one value at an index, no encoding sniffing


def _loads_line(line: bytes) -> Any:
    """json.loads for one JSONL line, minus the per-call overhead that dominates on short records."""
    s = line.decode("utf-8")
    start = _WS.match(s).end()
    try:
        obj, end = _scan_once(s, start)
    except StopIteration as e:
        raise json.JSONDecodeError("Expecting value", s, e.value) from None
    if end != len(s) and not s[end:].isspace():
        raise json.JSONDecodeError("Extra data", s, end)
    return obj


def _iter_jsonl(path: Path) -> Iterator[RawItem]:
    with open_binary(path) as f:
        index = 0
        for lineno, line in enumerate(f, 1):
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                line = line[3:]
            if not line.strip():
                continue
            try:
                obj = _loads_line(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                msg = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
                col = f" column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
                obj = RecordError(f"malformed JSON{col}: {msg}", f"{path}:{lineno}", code="malformed_json")
            else:
                if obj.__class__ is dict and "conversations" not in obj:
                    obj = to_llava_dict(obj)
            yield index, lineno, obj
            index += 1


class _ArrayScanner:
    """Walks a JSON array in a text stream, one element at a time, tracking lines and byte offsets."""

    def __init__(self, f: IO[str], name: str):
        self.f, self.name = f, name
        self.buf, self.pos, self.eof = "", 0, False
        self.line, self.counted = 1, 0  # line number at buf[self.counted]
        self.byte, self.byte_counted = 0, 0  # byte offset at buf[self.byte_counted]
        self.dec = json.JSONDecoder()

    def _advance_counts(self, p: int) -> None:
        seg = self.buf[self.counted : p]
        self.line += seg.count("\n")
        self.byte += len(seg) if seg.isascii() else len(seg.encode("utf-8"))
        self.counted = p

    def line_at(self, p: int) -> int:
        return self.line + self.buf.count("\n", self.counted, p)

    def byte_at(self, p: int) -> int:
        seg = self.buf[self.counted : p]
        return self.byte + (len(seg) if seg.isascii() else len(seg.encode("utf-8")))

    def refill(self, at_least: int = CHUNK) -> bool:
        if self.eof:
            return False
        more = self.f.read(max(CHUNK, at_least))
        if not more:
            self.eof = True
            return False
        self._advance_counts(self.pos)
        self.buf = self.buf[self.pos :] + more
        self.pos = self.counted = 0
        return True

    def skip_ws(self) -> str:
        """Skip whitespace; return the next character ('' at end of input)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.refill():
                return ""

    def error(self, p: int, msg: str) -> RecordError:
        col = p - self.buf.rfind("\n", 0, p)
        return RecordError(f"malformed JSON at line {self.line_at(p)} column {col}: {msg}; the rest of the file was not read",
                           f"{self.name}:{self.line_at(p)}", code="malformed_json")

    def elements(self) -> Iterator[tuple[int, int, int, Any]]:
        """Yield (index, line, byte offset, decoded element); a RecordError element ends the array."""
        first = self.skip_ws()
        if first != "[":
            yield 0, self.line_at(self.pos), self.byte_at(self.pos), self.error(self.pos, "top level is not a JSON array")
            return
        self.pos += 1
        index = 0
        while True:
            c = self.skip_ws()
            if c == "]" and index == 0:
                break
            start = self.pos
            while True:
                try:
                    obj, end = self.dec.raw_decode(self.buf, start)
                except json.JSONDecodeError as e:
                    if self.refill(len(self.buf)):
                        start = self.pos
                        continue
                    yield index, self.line_at(start), self.byte_at(start), self.error(e.pos, e.msg)
                    return
                if end >= len(self.buf) and self.refill(len(self.buf)):  # a number may continue in the next chunk
                    start = self.pos
                    continue
                break
            yield index, self.line_at(start), self.byte_at(start), obj
            index += 1
            self.pos = end
            c = self.skip_ws()
            if c == ",":
                self.pos += 1
            elif c == "]":
                break
            else:
                what = "end of file" if c == "" else repr(c)
                yield index, self.line_at(self.pos), self.byte_at(self.pos), self.error(self.pos, f"expected ',' or ']' after record {index - 1}, found {what}")
                return
        self.pos += 1
        if self.skip_ws() != "":
            yield index, self.line_at(self.pos), self.byte_at(self.pos), self.error(self.pos, "extra data after the closing ']'")


def _iter_json_array(path: Path) -> Iterator[RawItem]:
    with open_binary(path) as fb, io.TextIOWrapper(fb, encoding="utf-8-sig", errors="strict") as f:
        try:
            for index, line, _, obj in _ArrayScanner(f, str(path)).elements():
                yield index, line, to_llava_dict(obj) if obj.__class__ is dict else obj
        except UnicodeDecodeError as e:
            yield -1, None, RecordError(f"not UTF-8 ({e.reason}); the rest of the file was not read", str(path), code="malformed_json")


def _iter_parquet(path: Path, batch_size: int = 1024) -> Iterator[RawItem]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        yield 0, None, RecordError(f"unreadable Parquet file: {e}", str(path), code="malformed_json")
        return
    ours = (pf.schema_arrow.metadata or {}).get(POLYVLM_PARQUET_KEY) is not None
    index = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield index, None, arrow_row_to_llava(row, ours)
            index += 1


def _iter_hf(path: Path) -> Iterator[RawItem]:
    """A `datasets` Dataset or DatasetDict saved with `save_to_disk` (Arrow stream files), read with pyarrow."""
    import pyarrow as pa

    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        for split in splits:
            yield from _iter_hf(path / split)
        return
    state = json.loads((path / "state.json").read_text())
    index = 0
    for entry in state.get("_data_files", []):
        with pa.memory_map(str(path / entry["filename"])) as src:
            reader = pa.ipc.open_stream(src)
            for batch in reader:
                for row in batch.to_pylist():
                    yield index, None, arrow_row_to_llava(row, False)
                    index += 1


_OPTION_KEYS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def _is_missing(v: str | None) -> bool:
    return v is None or v.strip() == "" or v.strip().lower() == "nan"


def _tsv_images(value: str, images: dict[str, str]) -> list[str]:
    """The image column: base64, a list of base64, or the short index of another row holding the image."""
    if value.startswith("[") and value.endswith("]"):
        items = ast.literal_eval(value)
    else:
        items = [value]
    out = []
    for it in items:
        it = str(it)
        out.append(images[it] if len(it) <= 64 and it in images else b64_to_data_uri(it) if len(it) > 64 else it)
    return out


def tsv_row_to_llava(row: dict[str, str], images: dict[str, str]) -> dict:
    """One VLMEvalKit row -> LLaVA dict: hint, question and options in the user turn, the answer as the reply."""
    rid = row.get("index", "")
    if row.get("image") and not _is_missing(row.get("image")):
        media = _tsv_images(row["image"], images)
    elif row.get("image_path") and not _is_missing(row.get("image_path")):
        p = row["image_path"]
        media = [str(x) for x in ast.literal_eval(p)] if p.startswith("[") else [p]
    else:
        media = []
    options = {k: row[k] for k in _OPTION_KEYS if k in row and not _is_missing(row[k])}
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
        if k not in skip and k is not None and not _is_missing(v):
            out[k] = v
    return out


def _iter_tsv(path: Path) -> Iterator[RawItem]:
    csv.field_size_limit(sys.maxsize)

    def rows() -> Iterator[dict[str, str]]:
        with open_binary(path) as fb, io.TextIOWrapper(fb, encoding="utf-8", newline="") as f:
            yield from csv.DictReader(f, delimiter="\t")

    # pass 1: which rows are referenced by a short `image` value; pass 2 keeps only those images
    wanted = {r["image"] for r in rows() if r.get("image") and len(r["image"]) <= 64 and not _is_missing(r["image"])}
    images: dict[str, str] = {}
    if wanted:
        for r in rows():
            if r.get("index") in wanted and r.get("image") and len(r["image"]) > 64:
                images[r["index"]] = b64_to_data_uri(r["image"])
    for index, row in enumerate(rows()):
        line = index + 2  # header is line 1 (rows with embedded newlines shift this; index stays exact)
        try:
            yield index, line, tsv_row_to_llava(row, images)
        except (ValueError, SyntaxError) as e:
            yield index, line, RecordError(f"bad TSV row: {e}", f"{path}:{line}", code="wrong_type")


_READERS: dict[str, Callable[[Path], Iterator[RawItem]]] = {
    "jsonl": _iter_jsonl, "json": _iter_json_array, "parquet": _iter_parquet, "tsv": _iter_tsv, "hf": _iter_hf,
}


def iter_raw(path: str | Path, fmt: str | None = None) -> Iterator[RawItem]:
    """Yield `(index, line or None, obj)` for each record of one file, streaming."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in _READERS:
        raise RecordError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})", str(path), code="unsupported_format")
    return _READERS[fmt](path)


def source_of(path: str | Path, index: int, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else f"{path}#{index}"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Paths as given; a directory that is not an HF dataset expands to its data files, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not ((p / "state.json").is_file() or (p / "dataset_dict.json").is_file()):
            kids = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith(".")
                          and split_compression(q)[0].rsplit(".", 1)[-1] in ("json", "jsonl", "ndjson", "parquet", "tsv"))
            if not kids:
                raise RecordError("directory holds no .json/.jsonl/.parquet/.tsv files", str(p), code="missing_file")
            out.extend(kids)
        else:
            out.append(p)
    return out


def iter_records(
    paths: str | Path | Iterable[str | Path],
    fmt: str | None = None,
    on_error: Callable[[RecordError], None] | None = None,
) -> Iterator[Record]:
    """Stream `Record`s from one or more files; `.source` names file and line (or record index).

    A bad record raises its `RecordError` (file, line, id, reason), unless `on_error` is given: then it is
    passed the error and reading goes on.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for path in expand_paths(paths):
        for index, line, obj in iter_raw(path, fmt):
            source = source_of(path, index, line)
            try:
                if isinstance(obj, RecordError):
                    raise obj
                yield parse_record(obj, source)
            except RecordError as e:
                if on_error is None:
                    raise
                on_error(e)
