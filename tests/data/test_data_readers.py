"""Readers: JSON arrays streamed, JSONL, Parquet, OpenAI messages, VLMEvalKit TSV, HF on disk, .gz/.zst."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from datahelpers import rec, write_jsonl

import polyvlm.data.readers as readers
from polyvlm.data.readers import iter_raw, iter_records
from polyvlm.data.records import RecordError
from polyvlm.data.writers import RecordWriter


def test_json_array_streams_in_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = [rec(f"r{i}", a="é" * i + " 12345") for i in range(40)]
    p = tmp_path / "d.json"
    text = json.dumps(data, indent=2, ensure_ascii=False)
    p.write_text(text, encoding="utf-8")
    monkeypatch.setattr(readers, "CHUNK", 13)  # every record straddles many chunk boundaries
    recs = list(iter_records(p))
    assert [r.id for r in recs] == [f"r{i}" for i in range(40)]
    lines = text.split("\n")
    for r in recs:
        line = int(r.source.rsplit(":", 1)[1])
        assert lines[line - 1].strip() == "{" and f'"{r.id}"' in lines[line]


def test_json_array_is_not_loaded_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "d.json"
    p.write_text(json.dumps([rec(f"r{i}") for i in range(3)]) + "\n")
    monkeypatch.setattr(json, "load", lambda *a, **k: pytest.fail("json.load used"))
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("json.loads used"))
    assert len(list(iter_records(p))) == 3


def test_jsonl_errors_carry_file_and_line(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [rec("a"), "", "{bad json", rec("c")])
    with pytest.raises(RecordError) as e:
        list(iter_records(p))
    assert e.value.source == f"{p}:3" and e.value.code == "malformed_json"
    errors: list[RecordError] = []
    got = list(iter_records(p, on_error=errors.append))
    assert [r.id for r in got] == ["a", "c"] and got[1].source == f"{p}:4" and len(errors) == 1


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".json.gz"])
def test_compressed(tmp_path: Path, suffix: str) -> None:
    import zstandard

    records = [rec(f"r{i}") for i in range(5)]
    raw = (json.dumps(records) if suffix.startswith(".json.") else "".join(json.dumps(r) + "\n" for r in records)).encode()
    blob = gzip.compress(raw) if suffix.endswith(".gz") else zstandard.ZstdCompressor().compress(raw)
    p = tmp_path / f"d{suffix}"
    p.write_bytes(blob)
    assert [r.id for r in iter_records(p)] == [f"r{i}" for i in range(5)]


def test_openai_messages(tmp_path: Path) -> None:
    msg = {"id": "m1", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "img.png"}}, {"type": "text", "text": "What?"},
                                     {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]},
        {"role": "assistant", "content": "A cat."}], "language": "en"}
    (r,) = iter_records(write_jsonl(tmp_path / "m.jsonl", [msg]))
    assert [t.role for t in r.turns] == ["system", "user", "assistant"]
    assert r.turns[1].text == "<image>\nWhat?\n<audio>"
    assert r.media == {"image": ["img.png"], "audio": ["data:audio/wav;base64,UklGRg=="]}


def _png_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_vlmevalkit_tsv_with_image_references(tmp_path: Path) -> None:
    p = tmp_path / "bench.tsv"
    b64 = _png_b64()
    cols = ["index", "question", "hint", "A", "B", "C", "answer", "category", "l2-category", "split", "image"]
    rows = [["10", "Colour?", "nan", "red", "blue", "", "A", "color", "perception", "dev", b64],
            ["11", "Shape?", "Look closely", "square", "round", "nan", "B", "shape", "perception", "dev", "10"]]
    with open(p, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(cols)
        w.writerows(rows)
    a, b = iter_records(p)
    assert a.id == "10" and a.media["image"][0].startswith("data:image/png;base64,")
    assert b.media["image"] == a.media["image"]  # the short value pointed to row 10
    assert b.turns[0].text.startswith("<image>\nHint: Look closely\nQuestion: Shape?\nOptions:\nA. square\nB. round\n")
    assert b.turns[1].text == "B" and b.extra["options"] == {"A": "square", "B": "round"}
    assert b.extra["category"] == "shape" and b.extra["l2-category"] == "perception" and b.extra["split"] == "dev"
    assert a.source == f"{p}:2"


def test_hf_dataset_saved_to_disk(tmp_path: Path) -> None:
    import pyarrow as pa

    d = tmp_path / "hf"
    d.mkdir()
    png = base64.b64decode(_png_b64())
    table = pa.table({
        "id": ["h0", "h1"],
        "image": [{"bytes": png, "path": None}, {"bytes": None, "path": "x.png"}],
        "conversations": [[{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]] * 2,
    })
    with pa.OSFile(str(d / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    (d / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    a, b = iter_records(d)
    assert a.media["image"][0].startswith("data:image/png;base64,") and b.media["image"] == ["x.png"]
    assert a.source == f"{d}#0"


def test_parquet_roundtrip_keeps_scalar_and_list_media(tmp_path: Path) -> None:
    src = [rec("a"), rec("b", image=["x.png"], q="<image>\nq"), rec("c", image=["x.png", "y.png"], q="<image><image>"),
           rec("d", image=None, q="text", url="http://x", score=1.5, tags=["t"])]
    p = write_jsonl(tmp_path / "d.jsonl", src)
    with RecordWriter(tmp_path / "d.parquet") as w:
        for r in iter_records(p):
            w.write(r)
    back = list(iter_records(tmp_path / "d.parquet"))
    assert [r.to_llava() for r in back] == src
    assert back[2].source == f"{tmp_path / 'd.parquet'}#2"


def test_unknown_format_and_missing(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(RecordError, match="unknown data format"):
        list(iter_raw(tmp_path / "a.csv"))
    with pytest.raises(RecordError, match="no such file"):
        list(iter_records(tmp_path / "nope.jsonl"))


def test_writer_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    with pytest.raises(RuntimeError), RecordWriter(out) as w:
        w.write(rec("a"))
        raise RuntimeError("killed")
    assert not out.exists() and not list(tmp_path.iterdir())
