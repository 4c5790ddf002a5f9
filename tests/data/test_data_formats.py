"""The data file format registry (`polyvlm.data.formats.FORMATS`): detection, and each capability (read, index,
write, locate) round-tripping records; unknown formats name the known ones; a new format is one entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datahelpers import rec, write_jsonl

from polyvlm.data.formats import FORMATS, DataFormat, register_format
from polyvlm.data.index import RecordIndex
from polyvlm.data.readers import detect_format, iter_raw, iter_records
from polyvlm.data.records import RecordError
from polyvlm.data.validate import validate
from polyvlm.data.writers import RecordWriter
from polyvlm.registry import UnknownName

RECORDS = [rec(f"r{i}", a="ü" * i) for i in range(7)]


def test_registry_lists_formats_and_their_capabilities():
    assert FORMATS.names() == ["hf", "json", "jsonl", "parquet", "tsv"]
    able = {what: [n for n in FORMATS.names() if getattr(FORMATS.get(n), what)]
            for what in ("read", "index", "write", "locate")}
    assert able == {"read": ["hf", "json", "jsonl", "parquet", "tsv"], "index": ["json", "jsonl", "parquet"],
                    "write": ["jsonl", "parquet"], "locate": ["jsonl", "parquet"]}
    with pytest.raises(UnknownName, match=r"unknown data format 'parquett' \(did you mean 'parquet'\?\) "
                                          r"\(known: hf, json, jsonl, parquet, tsv\)"):
        FORMATS.get("parquett")


@pytest.mark.parametrize("name, fmt", [("d.jsonl", "jsonl"), ("d.ndjson", "jsonl"), ("d.jsonl.gz", "jsonl"),
                                       ("d.jsonl.zst", "jsonl"), ("d.parquet", "parquet")])
def test_write_detect_read_index_round_trip(tmp_path: Path, name: str, fmt: str):
    path = tmp_path / name
    with RecordWriter(path) as w:
        for r in iter_records(write_jsonl(tmp_path / "src.jsonl", RECORDS)):
            w.write(r)
    assert w.fmt == fmt and detect_format(path) == fmt
    back = list(iter_records(path))
    assert [r.to_llava() for r in back] == RECORDS
    if not name.endswith((".gz", ".zst")):
        ix = RecordIndex(path, cache=False)
        assert [ix[i].to_llava() for i in range(len(ix))] == RECORDS and [ix[i] for i in range(7)] == back


def test_json_suffix_is_sniffed_between_array_and_lines(tmp_path: Path):
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    lines = write_jsonl(tmp_path / "l.json", RECORDS)
    assert (detect_format(arr), detect_format(lines)) == ("json", "jsonl")
    assert [r.to_llava() for r in iter_records(arr)] == [r.to_llava() for r in iter_records(lines)] == RECORDS
    assert RecordIndex(arr, cache=False)[6].to_llava() == RECORDS[6]


def test_formats_without_a_capability_refuse_it_by_name(tmp_path: Path):
    (tmp_path / "a.tsv").write_text("index\tquestion\n")
    with pytest.raises(RecordError, match="random access supports json, jsonl, parquet, not 'tsv'"):
        RecordIndex(tmp_path / "a.tsv")
    with pytest.raises(ValueError, match="output format must be jsonl or parquet, not 'tsv'"):
        RecordWriter(tmp_path / "out.tsv")
    with pytest.raises(ValueError, match="parquet output is compressed internally"):
        RecordWriter(tmp_path / "out.parquet.gz")
    (tmp_path / "a.csv").write_text("x\n")
    with pytest.raises(RecordError, match=r"unknown data format '\.csv' \(expected \.json, \.jsonl, \.ndjson, "
                                          r"\.parquet, \.tsv, optionally \.gz/\.zst\)"):
        list(iter_raw(tmp_path / "a.csv"))


def test_validator_locates_duplicates_through_each_format(tmp_path: Path):
    dup = [*RECORDS[:3], rec("r1", a="again")]
    for name, first in (("d.jsonl", "d.jsonl:2"), ("d.parquet", "d.parquet#1"), ("d.json", "d.json:3")):
        path = tmp_path / name
        if name.endswith(".json"):
            path.write_text(json.dumps(dup, indent=None).replace("}, {", "},\n{"), encoding="utf-8")
        else:
            with RecordWriter(path) as w:
                for r in iter_records(write_jsonl(tmp_path / "dup.jsonl", dup)):
                    w.write(r)
        (ex,) = validate([path]).examples["duplicate_id"]
        assert ex["message"] == f"id 'r1' already used at {tmp_path / first}", name


def read_pipe_lines(path: Path):
    """A toy format for the test: one `question|answer` per line."""
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        q, a = line.split("|")
        yield i, i + 1, {"id": f"p{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}


def test_a_new_format_is_one_registry_entry(tmp_path: Path):
    path = tmp_path / "qa.pipe"
    path.write_text("2+2?|4\ncapital of Peru?|Lima\n", encoding="utf-8")
    register_format(DataFormat("pipe", ("pipe",), read=f"{__name__}:read_pipe_lines"))
    try:
        assert detect_format(path) == "pipe"
        recs = list(iter_records(path))
        assert [(r.id, r.source, r.turns[1].text) for r in recs] == [("p0", f"{path}:1", "4"),
                                                                   ("p1", f"{path}:2", "Lima")]
        with RecordWriter(tmp_path / "qa.jsonl") as w:
            for r in recs:
                w.write(r)
        assert [r.id for r in iter_records(tmp_path / "qa.jsonl")] == ["p0", "p1"]
    finally:
        del FORMATS._items["pipe"]
