"""Random access to records by position: byte offsets for JSONL / JSON arrays, row groups for Parquet.

Each format's access class is its `index` capability in `polyvlm.data.formats.FORMATS`.

`RecordIndex(path)[i]` reads one record from disk and returns a `Record` whose `.source` is `file:line`
(or `file#row` for Parquet). Memory holds only the offsets (8 bytes per record, plus line numbers for JSON
arrays) and, for Parquet, the last row group read. The index can be cached beside the data file as
`<file>.idx.npz` and is rebuilt when the file's size or mtime change. Safe to use from DataLoader workers:
file handles are reopened in each process.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from polyvlm.data.formats import FORMATS, POLYVLM_PARQUET_KEY, arrow_row_to_llava, to_llava_dict
from polyvlm.data.readers import _ArrayScanner, detect_format, split_compression
from polyvlm.data.records import Record, RecordError, parse_record

_SCAN = 4 << 20
INDEX_VERSION = 1


def jsonl_offsets(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Byte offsets of the non-blank lines of a JSONL file, and their line numbers when blank lines exist.

    Returns `(offsets int64 [n], lines int64 [n] or None)`; `None` means record i is on line i + 1.
    """
    ends_all: list[np.ndarray] = []
    pos = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(_SCAN)
            if not chunk:
                break
            nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10).astype(np.int64) + pos
            ends_all.append(nl)
            pos += len(chunk)
    ends = np.concatenate(ends_all) if ends_all else np.zeros(0, np.int64)
    if pos and (len(ends) == 0 or ends[-1] != pos - 1):
        ends = np.append(ends, pos)  # last line without a newline
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64) if len(ends) else np.zeros(0, np.int64)
    length = ends - starts
    keep = length > 0
    if keep.all():
        return starts, None
    # a line holding only '\r' or spaces is blank too; check the short ones individually
    with open(path, "rb") as f:
        for i in np.flatnonzero((length > 0) & (length <= 8)):
            f.seek(starts[i])
            keep[i] = bool(f.read(int(length[i])).strip())
    lines = np.flatnonzero(keep).astype(np.int64) + 1
    return starts[keep], lines


def json_array_offsets(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Byte offset and line of each element of a JSON array, found by one streaming pass.

    Raises RecordError (malformed_json, with the line) if the file is not a well-formed array.
    """
    offsets: list[int] = []
    lines: list[int] = []
    with open(path, "rb") as fb:
        bom = 3 if fb.read(3) == b"\xef\xbb\xbf" else 0  # utf-8-sig drops it from the text we count
        fb.seek(0)
        f = io.TextIOWrapper(fb, encoding="utf-8-sig")
        for _, line, byte, obj in _ArrayScanner(f, str(path)).elements():
            if isinstance(obj, RecordError):
                raise obj
            offsets.append(byte + bom)
            lines.append(line)
    return np.asarray(offsets, dtype=np.int64), np.asarray(lines, dtype=np.int64)


class _OffsetAccess:
    """Records at byte offsets of a text file; offsets (+ lines) cached in `<file>.idx.npz` (see RecordIndex)."""

    def __init__(self, path: Path, cache: bool | None):
        self.path = path
        self.lines: np.ndarray | None = None
        self._fh: Any = None
        self._pid = -1
        self._load_offsets(cache)

    @staticmethod
    def offsets_of(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def decode(self, fh: Any, i: int) -> Any:
        """The decoded JSON value of record i (raises UnicodeDecodeError / JSONDecodeError)."""
        raise NotImplementedError

    @property
    def cache_path(self) -> Path:
        return self.path.with_name(self.path.name + ".idx.npz")

    def _stamp(self) -> np.ndarray:
        st = self.path.stat()
        return np.array([INDEX_VERSION, st.st_size, st.st_mtime_ns], dtype=np.int64)

    def _load_offsets(self, cache: bool | None) -> None:
        stamp = self._stamp()
        if cache is not False and self.cache_path.is_file():
            try:
                with np.load(self.cache_path) as z:
                    if np.array_equal(z["stamp"], stamp):
                        self.offsets = z["offsets"]
                        self.lines = z["lines"] if "lines" in z.files else None
                        return
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache: rebuild
        self.offsets, self.lines = self.offsets_of(self.path)
        if cache is not False:
            self._write_cache(stamp, required=cache is True)

    def _write_cache(self, stamp: np.ndarray, required: bool) -> None:
        arrays = {"stamp": stamp, "offsets": self.offsets}
        if self.lines is not None:
            arrays["lines"] = self.lines
        tmp = self.cache_path.with_name(f".{self.cache_path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, self.cache_path)
        except OSError:
            tmp.unlink(missing_ok=True)
            if required:
                raise

    def __len__(self) -> int:
        return len(self.offsets)

    def source(self, i: int) -> str:
        line = int(self.lines[i]) if self.lines is not None else i + 1
        return f"{self.path}:{line}"

    def raw(self, i: int) -> Any:
        if self._fh is None or self._pid != os.getpid():  # reopened in each DataLoader worker
            self._fh, self._pid = open(self.path, "rb"), os.getpid()
        try:
            obj = self.decode(self._fh, i)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return RecordError(f"malformed JSON: {e}", self.source(i), code="malformed_json")
        return to_llava_dict(obj)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fh": None, "_pid": -1}

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._fh = None


class JsonlAccess(_OffsetAccess):
    """JSON lines: record i is the line at offsets[i]."""

    offsets_of = staticmethod(jsonl_offsets)

    def decode(self, fh: Any, i: int) -> Any:
        start = int(self.offsets[i])
        fh.seek(start)
        return json.loads(fh.readline().decode("utf-8-sig" if start == 0 else "utf-8"))


class JsonArrayAccess(_OffsetAccess):
    """A JSON array: record i spans offsets[i] to the next element's offset."""

    offsets_of = staticmethod(json_array_offsets)

    def decode(self, fh: Any, i: int) -> Any:
        start = int(self.offsets[i])
        fh.seek(start)
        data = fh.read(int(self.offsets[i + 1]) - start) if i + 1 < len(self.offsets) else fh.read()
        return json.JSONDecoder().raw_decode(data.decode("utf-8-sig" if start == 0 else "utf-8"))[0]


class ParquetAccess:
    """Parquet rows by row group: `offsets` holds each group's first row and the end; the last group read is kept."""

    lines = None

    def __init__(self, path: Path, cache: bool | None = None):
        import pyarrow.parquet as pq

        self.path = path
        pf = pq.ParquetFile(path)
        md = pf.metadata
        sizes = np.array([md.row_group(g).num_rows for g in range(md.num_row_groups)], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # row-group starts, and the end
        self._ours = (pf.schema_arrow.metadata or {}).get(POLYVLM_PARQUET_KEY) is not None
        self._fh: Any = None
        self._pid = -1
        self._group: tuple[int, Any] | None = None  # (row group, its Arrow table)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def source(self, i: int) -> str:
        return f"{self.path}#{i}"

    def raw(self, i: int) -> Any:
        if self._fh is None or self._pid != os.getpid():
            import pyarrow.parquet as pq

            self._fh, self._pid, self._group = pq.ParquetFile(self.path), os.getpid(), None
        g = int(np.searchsorted(self.offsets, i, side="right") - 1)
        if self._group is None or self._group[0] != g:
            self._group = (g, self._fh.read_row_group(g))
        row = self._group[1].slice(i - int(self.offsets[g]), 1).to_pylist()[0]
        return arrow_row_to_llava(row, self._ours)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fh": None, "_group": None, "_pid": -1}

    def close(self) -> None:
        self._fh = None


class RecordIndex:
    """Random access `index[i] -> Record` over one uncompressed file of a format with an `index` capability
    (JSONL, JSON arrays, Parquet; see `polyvlm.data.formats.FORMATS`).

    `cache`: `None` uses a valid `<file>.idx.npz` if present and writes one when the directory is writable;
    `True` requires writing it; `False` never touches it (formats indexed by byte offsets).
    """

    def __init__(self, path: str | Path, cache: bool | None = None):
        self.path = Path(path)
        self.fmt = detect_format(self.path)
        if split_compression(self.path)[1] is not None:
            raise RecordError("random access needs an uncompressed file; decompress it or convert it "
                              "(`polyvlm data convert IN --to parquet`)", str(self.path), code="unsupported_format")
        access = FORMATS.get(self.fmt).capability("index")
        if access is None:
            able = [n for n in FORMATS.names() if FORMATS.get(n).index]
            raise RecordError(f"random access supports {', '.join(able)}, not '{self.fmt}'; "
                              "convert it first with `polyvlm data convert`", str(self.path), code="unsupported_format")
        self.access = access(self.path, cache)

    @property
    def offsets(self) -> np.ndarray:
        return self.access.offsets

    @property
    def lines(self) -> np.ndarray | None:
        return self.access.lines

    def __len__(self) -> int:
        return len(self.access)

    def source(self, i: int) -> str:
        return self.access.source(i)

    def raw(self, i: int) -> Any:
        """The decoded record at position i, in LLaVA layout (a RecordError for undecodable bytes)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"record {i} out of range for {self.path} ({n} records)")
        i %= n
        obj = self.access.raw(i)
        if isinstance(obj, RecordError) and not obj.source:  # made by `formats` without a location
            return RecordError(obj.reason, self.source(i), obj.record_id, obj.code)
        return obj

    def __getitem__(self, i: int) -> Record:
        obj = self.raw(i)
        if isinstance(obj, RecordError):
            raise obj
        return parse_record(obj, self.source(i % len(self)))

    def close(self) -> None:
        self.access.close()

    def __repr__(self) -> str:
        return f"RecordIndex({str(self.path)!r}, {self.fmt}, {len(self)} records)"
