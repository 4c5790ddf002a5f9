"""Exactly-once storage for synth stages: result keys, sharded JSONL result files, crash repair, reading back.

A map stage writes one *result line* per distinct input record:

    {"key": "<sha256 hex>", "in_id": "...", "status": "ok" | "rejected" | "failed",
     "outputs": [record, ...], "reason": "...", "code": "...", "meta": {...}}

`key = hash(input record, stage, prompt version, model, params)`. On resume every shard is scanned, a
trailing half-written line (the process was SIGKILLed inside a write) is cut off, and the keys found are
skipped. Reading a stage's outputs back keeps only the first line per key, so a record is never emitted twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

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
