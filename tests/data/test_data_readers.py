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


ASSETS = Path(__file__).with_name("assets")


def test_json_array_literals_and_numbers_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = [rec(f"r{i}", score=-1.5e-3 * i, big=12345678901234567890 + i, ok=bool(i % 2), none=None, n=i) for i in range(30)]
    p = tmp_path / "d.json"
    p.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")  # one line: boundaries fall everywhere
    for chunk in (7, 11, 13, 17):
        monkeypatch.setattr(readers, "CHUNK", chunk)
        assert [r.to_llava() for r in iter_records(p)] == data


def test_malformed_json_array_is_reported_without_reading_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad element early in a huge array must not make the reader buffer the rest of the file."""
    good = [json.dumps(rec(f"r{i}")) for i in range(3000)]
    p = tmp_path / "d.json"
    p.write_text("[\n" + good[0] + ',\n{"id": "bad", "conversations": [}},\n' + ",\n".join(good[1:]) + "\n]\n")
    monkeypatch.setattr(readers, "CHUNK", 4096)
    biggest = []
    refill = readers._ArrayScanner.refill

    def spy(self: readers._ArrayScanner, at_least: int = 4096) -> bool:
        biggest.append(len(self.buf))
        return refill(self, at_least)

    monkeypatch.setattr(readers._ArrayScanner, "refill", spy)
    items = list(iter_raw(p))
    assert len(items) == 2 and isinstance(items[1][2], RecordError) and items[1][1] == 3
    assert "line 3" in items[1][2].reason and items[1][2].code == "malformed_json"
    assert max(biggest) < 3 * 4096 < p.stat().st_size // 20


def test_hf_dataset_dict_written_by_datasets(tmp_path: Path) -> None:
    """`assets/hf_saved` was written by `datasets.DatasetDict.save_to_disk` (see make_hf_saved.py)."""
    d = ASSETS / "hf_saved"
    recs = list(iter_records(d))
    assert [r.id for r in recs] == ["t0", "t1", "t2", "v0", "v1"]
    assert [r.source for r in recs][2:4] == [f"{d / 'train'}#2", f"{d / 'test'}#0"]  # each split names itself
    assert recs[1].turns[1].text == "Зелёный." and recs[3].language == "zh_simplified"
    assert recs[0].media["image"][0].startswith("data:image/png;base64,") and "image" not in recs[2].media
    assert [i for i, _, _ in iter_raw(d)] == [0, 1, 2, 3, 4]  # one running index when read as one dataset
    split = list(iter_records(d / "test"))
    assert [r.source for r in split] == [f"{d / 'test'}#0", f"{d / 'test'}#1"]
    from polyvlm.data.cli import main as data_main

    report = tmp_path / "r.json"
    assert data_main(["validate", str(d), "--check-media", "--quiet", "--report", str(report)]) == 0
    got = json.loads(report.read_text())
    assert got["records"] == 5 and got["files"] == [str(d / "train"), str(d / "test")]
    assert got["language_normalised"] == {"zh_simplified -> zh-Hans": 1}
    out = tmp_path / "hf.jsonl"
    assert data_main(["convert", str(d), "--to", "jsonl", "--out", str(out), "--quiet"]) == 0
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["t0", "t1", "t2", "v0", "v1"]


def test_damaged_parquet_and_hf_are_file_level_errors(tmp_path: Path) -> None:
    from polyvlm.data.validate import validate

    good = tmp_path / "g.parquet"
    with RecordWriter(good) as w:
        for i in range(50):
            w.write(rec(f"r{i}"))
    (tmp_path / "cut.parquet").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "state.json").write_text('{"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}')
    (hf / "data-00000-of-00001.arrow").write_bytes(b"\x00" * 40)
    rep = validate([tmp_path / "cut.parquet", hf], progress=False)
    assert rep.counts == {"unreadable_file": 2} and rep.records == 0
    assert {e["file"] for e in rep.examples["unreadable_file"]} == {str(tmp_path / "cut.parquet"), str(hf)}
    with pytest.raises(RecordError, match="unreadable Parquet"):
        list(iter_records(tmp_path / "cut.parquet"))


def _write_tsv(p: Path, cols: list[str], rows: list[list[str]]) -> Path:
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(cols)
        w.writerows(rows)
    return p


def test_tsv_lines_with_multiline_cells_and_bad_rows(tmp_path: Path) -> None:
    b64 = _png_b64()
    p = _write_tsv(tmp_path / "b.tsv", ["index", "question", "A", "B", "answer", "image"], [
        ["1", "first line\nsecond line\nthird", "x", "y", "A", b64],
        ["2", "Which?", "x", "y", "B", "1"],
        ["3", "Broken ref", "x", "y", "A", "99"],
    ])
    with open(p, "a", encoding="utf-8") as f:
        f.write("4\tshort row\n")
    items = list(iter_raw(p))
    assert [line for _, line, _ in items] == [2, 5, 6, 7]  # row 1 spans lines 2-4
    assert items[1][2]["image"] == b64_to_uri(b64)
    err, short = items[2][2], items[3][2]
    assert isinstance(err, RecordError) and err.code == "media_missing" and "'99'" in err.reason and err.record_id == "3"
    assert isinstance(short, RecordError) and short.code == "malformed_row" and "2 tab-separated fields" in short.reason
    from polyvlm.data.validate import validate

    rep = validate([p], progress=False)
    assert rep.counts == {"media_missing": 1, "malformed_row": 1, "language_missing": 2}  # TSV rows carry no language
    assert rep.errors == 2 and rep.examples["malformed_row"][0]["line"] == 7


def b64_to_uri(b64: str) -> str:
    return f"data:image/png;base64,{b64}"


def test_turn_keys_and_numeric_ids_survive_conversion(tmp_path: Path) -> None:
    src = [rec(7.0, image=None, q="hi", conversations=[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo", "weight": 0}]),
           rec(12, image=None, q="hi"), rec("s", image=None, q="hi")]
    p = write_jsonl(tmp_path / "d.jsonl", src)
    assert [r.id for r in iter_records(p)] == ["7", "12", "s"]
    with RecordWriter(tmp_path / "d.parquet") as w:
        for r in iter_records(p):
            w.write(r)
    with RecordWriter(tmp_path / "back.jsonl") as w:
        for r in iter_records(tmp_path / "d.parquet"):
            w.write(r)
    back = [json.loads(x) for x in (tmp_path / "back.jsonl").read_text().splitlines()]
    assert back == src and isinstance(back[0]["id"], float) and back[0]["conversations"][1]["weight"] == 0


def test_openai_unknown_content_part_is_named(tmp_path: Path) -> None:
    from polyvlm.data.index import RecordIndex
    from polyvlm.data.validate import validate

    good = {"id": "ok", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "language": "en"}
    bad = {"id": "m2", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "hologram"}]},
                                    {"role": "assistant", "content": "yo"}], "language": "en"}
    p = write_jsonl(tmp_path / "m.jsonl", [good, bad])
    with pytest.raises(RecordError, match=r"m\.jsonl:2 id=m2: message 0 content part 1 has unknown type 'hologram'"):
        list(iter_records(p))
    with pytest.raises(RecordError, match=r"m\.jsonl:2 id=m2: message 0"):
        RecordIndex(p, cache=False)[1]
    rep = validate([p], progress=False)
    assert rep.counts == {"wrong_type": 1} and rep.examples["wrong_type"][0]["id"] == "m2"
