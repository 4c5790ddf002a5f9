"""RecordIndex: random access over JSONL, JSON arrays and Parquet; cache; pickling for DataLoader workers."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from datahelpers import rec, write_jsonl

from polyvlm.data.index import RecordIndex
from polyvlm.data.readers import iter_records
from polyvlm.data.records import RecordError
from polyvlm.data.writers import RecordWriter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    records = [rec(f"r{i}", a="ü" * i) for i in range(25)]
    jsonl = write_jsonl(tmp_path / "d.jsonl", [records[0], "", "   ", *records[1:]])
    arr = tmp_path / "d.json"
    arr.write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
    with RecordWriter(tmp_path / "d.parquet", row_group_size=4) as w:
        for r in iter_records(arr):
            w.write(r)
    return {"jsonl": jsonl, "json": arr, "parquet": tmp_path / "d.parquet"}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_random_access_matches_streaming(files: dict[str, Path], fmt: str) -> None:
    path = files[fmt]
    ix = RecordIndex(path, cache=False)
    streamed = list(iter_records(path))
    assert len(ix) == len(streamed) == 25
    for i in [24, 0, 13, 3, 7, 22, -1]:
        assert ix[i] == streamed[i]  # same turns, media, extra and `.source`
    assert ix[-1].id == "r24"
    with pytest.raises(IndexError):
        ix[25]


def test_jsonl_sources_skip_blank_lines(files: dict[str, Path]) -> None:
    ix = RecordIndex(files["jsonl"], cache=False)
    assert ix[0].source.endswith(":1") and ix[1].source.endswith(":4")


def test_cache_is_written_reused_and_invalidated(files: dict[str, Path]) -> None:
    path = files["json"]
    ix = RecordIndex(path)
    cache = path.with_name(path.name + ".idx.npz")
    assert cache.is_file()
    mtime = cache.stat().st_mtime_ns
    assert len(RecordIndex(path)) == 25 and cache.stat().st_mtime_ns == mtime  # reused
    path.write_text(json.dumps([rec("only")]))
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    ix = RecordIndex(path)
    assert len(ix) == 1 and ix[0].id == "only"


# Run as `nobody` when root (CI runs as root, and root writes into a 0555 directory anyway); everything is
# imported first because the interpreter's own files may not be readable by `nobody`.
_READ = """
import os, sys, tempfile, zipfile
from pathlib import Path
from polyvlm.data.index import RecordIndex
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
path = Path(sys.argv[1])
try:
    open(path.parent / "probe", "w")
    print("writable")
except PermissionError:
    ix = RecordIndex(path)
    print(len(ix), ix[24].id)
"""


def test_read_only_directory_without_cache(files: dict[str, Path]) -> None:
    ro = Path(tempfile.mkdtemp(prefix="polyvlm-ro-"))  # outside pytest's 0700 tree: `nobody` must reach it
    try:
        (ro / "d.jsonl").write_bytes(files["jsonl"].read_bytes())
        ro.chmod(0o555)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        r = subprocess.run([sys.executable, "-c", _READ, str(ro / "d.jsonl")], capture_output=True,
                           text=True, env=env, cwd=ro, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["25", "r24"]  # the directory really refused writes, and the index still works
        assert [p.name for p in ro.iterdir()] == ["d.jsonl"]  # no cache, no temporary file left behind
    finally:
        ro.chmod(0o755)
        shutil.rmtree(ro)


def test_pickles_without_file_handles(files: dict[str, Path]) -> None:
    for path in files.values():
        ix = RecordIndex(path, cache=False)
        ix[3]
        clone = pickle.loads(pickle.dumps(ix))
        assert clone[5] == ix[5]


def test_bad_record_names_file_and_line(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [rec("a"), "{oops", rec("b", conversations=[])])
    ix = RecordIndex(p, cache=False)
    with pytest.raises(RecordError, match=r"d\.jsonl:2.*malformed JSON"):
        ix[1]
    with pytest.raises(RecordError, match=r"d\.jsonl:3 id=b: empty conversation"):
        ix[2]


def test_refuses_compressed_and_tsv(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl.gz").write_bytes(b"")
    (tmp_path / "a.tsv").write_text("index\tquestion\n")
    with pytest.raises(RecordError, match="uncompressed"):
        RecordIndex(tmp_path / "a.jsonl.gz")
    with pytest.raises(RecordError, match="convert"):
        RecordIndex(tmp_path / "a.tsv")


def test_malformed_json_array_fails_at_open(tmp_path: Path) -> None:
    p = tmp_path / "d.json"
    p.write_text('[{"id": 1},\n{"id": ]')
    with pytest.raises(RecordError, match="line 2"):
        RecordIndex(p, cache=False)


def test_json_array_with_byte_order_mark(tmp_path: Path) -> None:
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps([rec("x"), rec("y")], ensure_ascii=False).encode())
    ix = RecordIndex(p, cache=False)
    assert [ix[0].id, ix[1].id] == ["x", "y"] == [r.id for r in iter_records(p)]
    q = tmp_path / "bom.jsonl"
    q.write_bytes(b"\xef\xbb\xbf" + write_jsonl(tmp_path / "plain.jsonl", [rec("x"), rec("y")]).read_bytes())
    ix = RecordIndex(q, cache=False)
    assert [ix[0].id, ix[1].id] == ["x", "y"] == [r.id for r in iter_records(q)]
