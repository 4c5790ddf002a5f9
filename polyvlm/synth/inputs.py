"""What a synth pipeline reads: its input records and their fingerprint (the root of the stage fingerprint chain),
and the records a completed stage passes on to the next."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from polyvlm.data.records import RecordError
from polyvlm.synth.config import PipelineConfig, PipelineError
from polyvlm.synth.store import iter_jsonl, iter_results, shard_paths


def fingerprint(*parts: Any) -> str:
    """One link of the stage fingerprint chain: a hash of JSON-able parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: Path) -> str:
    """Content hash of an input file (~1 GB/s): the root of the stage fingerprint chain, so rewriting the
    same input reuses every result while a changed input starts fresh stage directories."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def input_fingerprint(cfg: PipelineConfig) -> str:
    """Content of every input file (a dataset directory: its file names, sizes and times)."""
    from polyvlm.data.readers import expand_paths

    for name in cfg.input:
        if not Path(name).exists():
            raise PipelineError(f"{cfg.path}: input {name}: no such file")
    parts: list[Any] = []
    for p in expand_paths(cfg.input):
        if p.is_file():
            parts.append(file_digest(p))
        else:
            parts.append(sorted((str(q.relative_to(p)), q.stat().st_size, q.stat().st_mtime_ns)
                                for q in p.rglob("*") if q.is_file()))
    return fingerprint(parts)


def iter_input(cfg: PipelineConfig) -> Iterator[tuple[Any, str, str]]:
    """(object, source, error) for each input record, streamed by `polyvlm.data.readers` (JSONL, JSON arrays,
    Parquet, TSV, HF datasets on disk, .gz/.zst); OpenAI `messages` records arrive in the LLaVA layout."""
    from polyvlm.data.readers import expand_paths, iter_raw, source_of

    for name in cfg.input:
        if not Path(name).exists():
            raise PipelineError(f"{cfg.path}: input {name}: no such file")
    for path in expand_paths(cfg.input):
        for index, line, obj in iter_raw(path):
            source = source_of(path, index, line)
            if isinstance(obj, RecordError):
                if cfg.on_bad_input == "error":
                    raise obj
                yield {"_raw": source}, source, str(obj)
                continue
            yield obj, source, ""


def stage_outputs(sdir: Path, has_reduce: bool) -> Iterator[tuple[dict, str]]:
    """(record, source) for every record a completed stage passes on."""
    if has_reduce:
        for p in shard_paths(sdir / "out"):
            for n, rec in iter_jsonl(p):
                yield rec, f"{p}:{n}"
        return
    for res in iter_results(sdir / "map"):
        if res["status"] == "ok":
            for rec in res["outputs"]:
                yield rec, f"{sdir.name}:{res.get('in_id')}"


def stage_reader(sdir: Path, has_reduce: bool) -> Any:
    """A re-iterable view of a completed stage's outputs as (record, source, error) triples."""
    def read() -> Iterator[tuple[dict, str, str]]:
        return ((rec, src, "") for rec, src in stage_outputs(sdir, has_reduce))
    return read
