"""Streaming readers: JSON arrays, JSONL, Parquet, VLMEvalKit TSV, HF datasets on disk; `.gz`/`.zst` transparent.

`iter_raw(path)` yields `(index, line, obj)` per record with `obj` a LLaVA-layout dict (or whatever the file
held, for validation to judge) or a `RecordError` for undecodable input. `iter_records(paths)` parses those
into `Record`s whose `.source` is `file:line` (line-based files) or `file#index` (row-based files).
Nothing reads a whole file into memory: JSON arrays are decoded element by element with `raw_decode`.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from polyvlm.data.formats import (
    FORMATS,
    POLYVLM_PARQUET_KEY,
    arrow_row_to_llava,
    file_suffixes,
    format_for_dir,
    format_for_name,
    to_llava_dict,
)
from polyvlm.data.records import Record, RecordError, parse_record

__all__ = ["FORMATS", "detect_format", "expand_paths", "iter_raw", "iter_records", "open_binary", "source_of",
           "split_compression"]
CHUNK = 1 << 20
_TAIL = 32  # see _ArrayScanner.may_continue
MIX_MANIFEST = "manifest.json"  # what `polyvlm data mix` writes beside its shards
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
    """The registered format of a path: a directory by its marker files, a file by its suffix (before .gz/.zst),
    refined by the format's sniff when the suffix is shared (`.json`: an array, or JSON lines)."""
    path = Path(path)
    if path.is_dir():
        fmt = format_for_dir(path)
        if fmt is None:
            raise RecordError("a directory that is not a Hugging Face dataset saved with save_to_disk", str(path),
                              code="unsupported_format")
        return fmt.name
    if not path.is_file():
        raise RecordError("no such file", str(path), code="missing_file")
    name, _ = split_compression(path)
    fmt = format_for_name(name)
    if fmt is None:
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        expected = ", ".join("." + x for x in file_suffixes())
        raise RecordError(f"unknown data format '.{suffix}' (expected {expected}, optionally .gz/.zst)", str(path),
                          code="unsupported_format")
    sniff = fmt.capability("sniff")
    return sniff(path) if sniff else fmt.name


def sniff_json(path: Path) -> str:
    """`.json` holds one array (`json`) or, as many datasets ship it, one record per line (`jsonl`)."""
    with open_binary(path) as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if head.startswith(b"[") or not head else "jsonl"


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


def iter_jsonl(path: Path) -> Iterator[RawItem]:
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

    def may_continue(self, e: json.JSONDecodeError) -> bool:
        """Whether the decoder failed only because the buffer ended mid-element (then reading on may fix it).

        Any other error is in the data: reading on would pull the rest of a file of many gigabytes into
        memory before reporting it. The decoder stops within a few characters of the end when it runs out
        (`"Expecting ',' delimiter"` at the end, a cut literal like `tru`, a cut `\\u` escape), except for a
        string still open at the end, which it reports at the string's start.
        """
        return len(self.buf) - e.pos <= _TAIL or e.msg.startswith("Unterminated string")

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
                    if self.may_continue(e) and self.refill(len(self.buf)):
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


def iter_json_array(path: Path) -> Iterator[RawItem]:
    with open_binary(path) as fb, io.TextIOWrapper(fb, encoding="utf-8-sig", errors="strict") as f:
        try:
            for index, line, _, obj in _ArrayScanner(f, str(path)).elements():
                yield index, line, to_llava_dict(obj) if obj.__class__ is dict else obj
        except UnicodeDecodeError as e:
            yield -1, None, RecordError(f"not UTF-8 ({e.reason}); the rest of the file was not read", str(path), code="malformed_json")


def iter_parquet(path: Path, batch_size: int = 1024) -> Iterator[RawItem]:
    import pyarrow.parquet as pq

    index = 0
    try:
        pf = pq.ParquetFile(path)
        ours = (pf.schema_arrow.metadata or {}).get(POLYVLM_PARQUET_KEY) is not None
        for batch in pf.iter_batches(batch_size=batch_size):
            for row in batch.to_pylist():
                yield index, None, arrow_row_to_llava(row, ours)
                index += 1
    except Exception as e:  # pyarrow raises several types for a damaged file
        yield -1, None, RecordError(f"unreadable Parquet file after {index} record(s): {e}", str(path), code="unreadable_file")


def hf_split_dirs(path: Path) -> list[Path]:
    """The split directories of a `DatasetDict` saved to disk (`dataset_dict.json` lists them)."""
    try:
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        assert isinstance(splits, list) and all(isinstance(s, str) for s in splits)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as e:
        raise RecordError(f"dataset_dict.json does not list the splits ({type(e).__name__}: {e})", str(path),
                          code="unreadable_file") from None
    return [path / s for s in splits]


def iter_hf(path: Path, start: int = 0) -> Iterator[RawItem]:
    """A `datasets` Dataset or DatasetDict saved with `save_to_disk` (Arrow stream files), read with pyarrow.

    A DatasetDict's splits are read in the listed order with one running index (`iter_records` names
    each split's directory instead, as `expand_paths` lists them one by one).
    """
    import pyarrow as pa

    if (path / "dataset_dict.json").is_file():
        index = start
        for split in hf_split_dirs(path):
            for item in iter_hf(split, index):
                yield item
                index = item[0] + 1 if item[0] >= 0 else index
        return
    index = start
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        for entry in state.get("_data_files", []):
            with pa.memory_map(str(path / entry["filename"])) as src:
                for batch in pa.ipc.open_stream(src):
                    for row in batch.to_pylist():
                        yield index, None, arrow_row_to_llava(row, False)
                        index += 1
    except Exception as e:  # a damaged state.json or Arrow file (json, OS and several pyarrow errors)
        yield -1, None, RecordError(f"unreadable saved dataset after {index - start} record(s): {type(e).__name__}: {e}",
                                    str(path), code="unreadable_file")


def iter_raw(path: str | Path, fmt: str | None = None) -> Iterator[RawItem]:
    """Yield `(index, line or None, obj)` for each record of one file, streaming (the format's `read`)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise RecordError(f"unknown format '{fmt}' (known: {', '.join(FORMATS.names())})", str(path),
                          code="unsupported_format")
    return FORMATS.get(fmt).capability("read")(path)  # type: ignore[misc]


def source_of(path: str | Path, index: int, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else f"{path}#{index}"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Paths as given; a directory expands to its data files, sorted (a `polyvlm data mix` output's
    `manifest.json` is not data), and a saved HF `DatasetDict` to its split directories."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and (p / "dataset_dict.json").is_file():
            out.extend(hf_split_dirs(p))
        elif p.is_dir() and not (p / "state.json").is_file():
            kids = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith(".") and q.name != MIX_MANIFEST
                          and format_for_name(split_compression(q)[0]) is not None)
            if not kids:
                raise RecordError(f"directory holds no {'/'.join('.' + x for x in file_suffixes())} files", str(p),
                                  code="missing_file")
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
                    raise obj if obj.source else RecordError(obj.reason, source, obj.record_id, obj.code)
                yield parse_record(obj, source)
            except RecordError as e:
                if on_error is None:
                    raise
                on_error(e)
