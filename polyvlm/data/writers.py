"""Writing records as JSONL (optionally .gz/.zst) or Parquet shards, atomically (temp file, then rename).

The sink classes are the `write` capability of their format in `polyvlm.data.formats.FORMATS`."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import IO, Any

from polyvlm.atomic import mkstemp
from polyvlm.data.formats import (
    FORMATS,
    POLYVLM_PARQUET_KEY,
    POLYVLM_PARQUET_VERSION,
    format_for_name,
    writable_formats,
)
from polyvlm.data.readers import split_compression
from polyvlm.data.records import MEDIA_KEYS, Record, RecordError, normalise_id


def parquet_schema() -> Any:
    """The polyvlm Parquet layout: fixed columns, media as lists, every other key JSON-encoded in `extra`."""
    import pyarrow as pa

    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    fields = [("id", pa.string()), ("conversations", pa.list_(turn))]
    fields += [(m, pa.list_(pa.string())) for m in MEDIA_KEYS]
    fields += [("language", pa.string()), ("extra", pa.string())]
    return pa.schema(fields, metadata={POLYVLM_PARQUET_KEY: POLYVLM_PARQUET_VERSION})


def _json_default(o: Any) -> Any:
    raise TypeError(f"value of type {type(o).__name__} cannot be written as JSON")


def llava_to_row(d: dict) -> dict:
    """A LLaVA dict (from `Record.to_llava`) -> one row of `parquet_schema()`; scalar/list media is remembered."""
    extra = {k: v for k, v in d.items() if k not in ("id", "conversations", "language", *MEDIA_KEYS)}
    rid = d["id"]
    if rid.__class__ is not str:  # a numeric id is stored as text, its JSON value kept to be written back
        extra["_id_raw"] = rid
        rid = normalise_id(rid)
    turns = d["conversations"]
    turn_extra = [{k: v for k, v in t.items() if k not in ("from", "value")} for t in turns]
    if any(turn_extra):  # turn keys other than from/value (e.g. `weight`) ride along in `extra`
        extra["_turn_extra"] = turn_extra
        turns = [{"from": t["from"], "value": t["value"]} for t in turns]
    row: dict[str, Any] = {"id": rid, "conversations": turns, "language": d.get("language")}
    for m in MEDIA_KEYS:
        v = d.get(m)
        if v is None:
            row[m] = None
        elif isinstance(v, list):
            row[m] = v
            if len(v) == 1:
                extra[f"_{m}_list"] = True
        else:
            row[m] = [v]
    row["extra"] = json.dumps(extra, ensure_ascii=False, default=_json_default) if extra else None
    return row


class JsonlSink:
    """JSON lines into `tmp` (gzip / zstd by the writer's compression suffix)."""

    def __init__(self, tmp: Path, writer: RecordWriter):
        if writer.compression == "gz":
            self._f: IO[str] = io.TextIOWrapper(gzip.open(tmp, "wb"), encoding="utf-8")
        elif writer.compression == "zst":
            import zstandard

            raw = zstandard.ZstdCompressor().stream_writer(open(tmp, "wb"), closefd=True)
            self._f = io.TextIOWrapper(raw, encoding="utf-8")
        else:
            self._f = open(tmp, "w", encoding="utf-8", buffering=1 << 20)

    def write(self, d: dict) -> None:
        self._f.write(json.dumps(d, ensure_ascii=False, default=_json_default) + "\n")

    def close(self, ok: bool) -> None:
        self._f.close()


class ParquetSink:
    """polyvlm's Parquet layout (`parquet_schema`), zstd, `row_group_size` records per row group."""

    def __init__(self, tmp: Path, writer: RecordWriter):
        import pyarrow.parquet as pq

        self.row_group_size = writer.row_group_size
        self._pq = pq.ParquetWriter(tmp, parquet_schema(), compression="zstd")
        self._rows: list[dict] = []

    def write(self, d: dict) -> None:
        self._rows.append(llava_to_row(d))
        if len(self._rows) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._pq.write_table(pa.Table.from_pylist(self._rows, schema=parquet_schema()), row_group_size=self.row_group_size)
            self._rows = []

    def close(self, ok: bool) -> None:
        if ok:
            self._flush()
        self._pq.close()


class RecordWriter:
    """Context manager writing Records to one file; the file appears only when the block succeeds.

    `fmt` is a format with a `write` capability in `polyvlm.data.formats.FORMATS` (`jsonl`, `parquet`;
    default: from the suffix). Parquet row groups hold `row_group_size` records, which is also the unit
    `RecordIndex` reads.
    """

    def __init__(self, path: str | Path, fmt: str | None = None, row_group_size: int = 2048):
        self.path = Path(path)
        name, self.compression = split_compression(self.path)
        named = format_for_name(name)
        implied = None if named is None else "jsonl" if named.name == "json" else named.name  # .json: JSON lines
        self.fmt = fmt or implied or "jsonl"
        writable = writable_formats()
        if self.fmt not in writable:
            raise ValueError(f"output format must be {' or '.join(writable)}, not {self.fmt!r}")
        if implied is not None and implied != self.fmt:
            raise ValueError(f"{self.path}: the name says {implied} but the format asked for is {self.fmt}")
        if self.compression and not FORMATS.get(self.fmt).compressible:
            raise ValueError(f"{self.path}: {self.fmt} output is compressed internally; drop the .{self.compression} suffix")
        self.row_group_size = row_group_size
        self.count = 0
        self._sink: Any = None

    def __enter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._sink = FORMATS.get(self.fmt).capability("write")(self._tmp, self)  # type: ignore[misc]
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        return self

    def write(self, rec: Record | dict) -> None:
        d = rec.to_llava() if isinstance(rec, Record) else rec
        try:
            self._sink.write(d)
        except TypeError as e:
            src = rec.source if isinstance(rec, Record) else ""
            raise RecordError(f"cannot be written: {e}", src, str(d.get("id")), code="wrong_type") from None
        self.count += 1

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._sink.close(exc_type is None)
        finally:
            if exc_type is None:
                os.replace(self._tmp, self.path)
            else:
                self._tmp.unlink(missing_ok=True)
