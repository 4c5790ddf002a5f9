"""Exactly-once storage for synth stages: result keys, sharded JSONL result files, crash repair, reading back.

A map stage writes one *result line* per distinct input record:

    {"key": "<sha256 hex>", "in_id": "...", "status": "ok" | "rejected" | "failed",
     "outputs": [record, ...], "reason": "...", "code": "...", "meta": {...}}

`key = hash(input record, stage, prompt version, model, params)`. On resume every shard is scanned, a
trailing half-written line (the process was SIGKILLed inside a write) is cut off, and the keys found are
skipped. Reading a stage's outputs back keeps only the first line per key, so a record is never emitted twice.
Result lines of the same stage under another configuration (`ResultIndex`) are copied instead of recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from polyvlm.data.records import RecordError


def canonical_json(obj: Any) -> str:
    """A stable serialisation (sorted keys, no spaces) so equal records hash equally."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def result_key(record: dict, stage: str, prompt_version: str, model: str, params: dict) -> str:
    """hash(input record, stage, prompt version, model, params): the identity of one unit of work."""
    h = hashlib.sha256()
    for part in (canonical_json(record), stage, prompt_version, model, canonical_json(params)):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def short_key(key: str) -> int:
    """64-bit integer form of a hex key: the in-memory done-set holds these (≈50 bytes per record)."""
    return int(key[:16], 16)


def repair_shard(path: Path) -> int:
    """Cut a trailing partial line (no newline or not valid JSON) left by a kill; return bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        # find the end of the last complete line
        block = 1 << 16
        pos = size
        tail = b""
        last_nl = -1
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            tail = f.read(pos - start) + tail
            idx = tail.rfind(b"\n")
            if idx >= 0:
                last_nl = start + idx
                break
            pos = start
        keep = last_nl + 1  # 0 when no newline at all
        if keep < size:
            f.truncate(keep)
            return size - keep
    return 0


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-empty line; a malformed line raises RecordError naming it."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(f"malformed JSON: {e.msg}", f"{path}:{n}", code="malformed_json") from None
            yield n, obj


def shard_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob("part-*.jsonl")) if directory.is_dir() else []


def scan_done(directory: Path) -> tuple[set[int], int]:
    """Repair every shard, then return (done short keys, number of result lines)."""
    done: set[int] = set()
    lines = 0
    for p in shard_paths(directory):
        repair_shard(p)
        for _, obj in iter_jsonl(p):
            done.add(short_key(obj["key"]))
            lines += 1
    return done, lines


def iter_results(directory: Path) -> Iterator[dict]:
    """Every result line of a map stage, first occurrence per key only."""
    seen: set[int] = set()
    for p in shard_paths(directory):
        for _, obj in iter_jsonl(p):
            k = short_key(obj["key"])
            if k in seen:
                continue
            seen.add(k)
            yield obj


class ResultIndex:
    """Result lines of *other* stage directories, found by key, so work done under another pipeline
    configuration is reused: a changed upstream stage gives this stage a new directory, yet every input
    record it had seen before keeps its key. Holds ~20 bytes per line (sorted keys, file, byte offset);
    partial lines of killed attempts and `failed` results are never reused."""

    _PREFIX = b'{"key": "'

    def __init__(self, directories: list[Path]):
        self.paths: list[Path] = []
        keys, files, offsets = array("Q"), array("I"), array("Q")
        for d in directories:
            for p in shard_paths(d):
                self.paths.append(p)
                with open(p, "rb") as f:
                    pos = 0
                    for line in f:
                        if line.endswith(b"\n") and line.startswith(self._PREFIX):
                            keys.append(int(line[9:25], 16))
                            files.append(len(self.paths) - 1)
                            offsets.append(pos)
                        pos += len(line)
        order = np.argsort(np.frombuffer(keys, dtype=np.uint64), kind="stable") if keys else np.zeros(0, int)
        self.keys = np.frombuffer(keys, dtype=np.uint64)[order] if keys else np.zeros(0, np.uint64)
        self.files = np.frombuffer(files, dtype=np.uint32)[order] if files else np.zeros(0, np.uint32)
        self.offsets = np.frombuffer(offsets, dtype=np.uint64)[order] if offsets else np.zeros(0, np.uint64)
        self._open: dict[int, BinaryIO] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, key: str) -> dict | None:
        """The finished (ok or rejected) result line stored under `key`, or None."""
        sk = np.uint64(short_key(key))
        i = int(np.searchsorted(self.keys, sk))
        while i < len(self.keys) and self.keys[i] == sk:
            fi = int(self.files[i])
            if fi not in self._open:
                self._open[fi] = open(self.paths[fi], "rb")
            f = self._open[fi]
            f.seek(int(self.offsets[i]))
            obj = json.loads(f.readline())
            if obj.get("key") == key and obj.get("status") in ("ok", "rejected"):
                return obj
            i += 1
        return None

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()


class ShardWriter:
    """Appends lines to `part-{attempt}-{n}.jsonl` shards of at most `shard_size` lines.

    Each run of a stage is a new attempt and never appends to an older attempt's shard, so a repaired
    shard is only ever read. Every line is written with one `write` and flushed; `fsync_every` lines
    force it to disk.
    """

    def __init__(self, directory: Path, shard_size: int = 10000, fsync_every: int = 1000):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard_size, self.fsync_every = shard_size, fsync_every
        attempts = [int(p.name.split("-")[1]) for p in shard_paths(self.dir)]
        self.attempt = max(attempts, default=-1) + 1
        self._n_shard, self._in_shard, self._since_sync = 0, 0, 0
        self._f: TextIO | None = None
        self.written = 0

    def _open(self) -> TextIO:
        path = self.dir / f"part-{self.attempt:04d}-{self._n_shard:05d}.jsonl"
        return open(path, "a", encoding="utf-8")

    def write(self, obj: dict) -> None:
        if self._f is None or self._in_shard >= self.shard_size:
            if self._f is not None:
                self._close_file()
                self._n_shard += 1
            self._f, self._in_shard = self._open(), 0
        self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._f.flush()
        self._in_shard += 1
        self.written += 1
        self._since_sync += 1
        if self._since_sync >= self.fsync_every:
            os.fsync(self._f.fileno())
            self._since_sync = 0

    def _close_file(self) -> None:
        assert self._f is not None
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._f = None

    def close(self) -> None:
        if self._f is not None:
            self._close_file()


def write_record_shards(directory: Path, records: Iterator[dict], shard_size: int) -> int:
    """Write plain records into `part-00000-NNNNN.jsonl` shards under `directory` (caller makes it atomic)."""
    w = ShardWriter(directory, shard_size=shard_size, fsync_every=1 << 30)
    for rec in records:
        w.write(rec)
    w.close()
    return w.written


def write_parquet_shards(directory: Path, records: Iterator[dict], shard_size: int) -> int:
    """Write conversation records as `part-00000-NNNNN.parquet` shards in polyvlm's Parquet layout (the one
    `polyvlm.data` reads back); a record that is not a conversation record raises RecordError naming it."""
    from polyvlm.data.writers import RecordWriter

    n, shard = 0, 0
    it = iter(records)
    while (first := next(it, None)) is not None:
        with RecordWriter(Path(directory) / f"part-00000-{shard:05d}.parquet", fmt="parquet") as w:
            for rec in chain([first], islice(it, shard_size - 1)):  # not `yield from`: that would close `it`
                if not isinstance(rec.get("conversations"), list):
                    raise RecordError("final_format parquet holds conversation records; this one has no "
                                      "'conversations' (use final_format: jsonl)", "final", str(rec.get("id")),
                                      code="wrong_type")
                w.write(rec)
                n += 1
        shard += 1
    return n
