"""`polyvlm data stats` and `convert`, the verb dispatch, and the real Pangea sample end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datahelpers import PANGEA, rec, write_jsonl

from polyvlm.cli import main as polyvlm_main
from polyvlm.data.cli import main as data_main
from polyvlm.data.readers import iter_records
from polyvlm.data.records import parse_record
from polyvlm.data.stats import compute_stats

needs_pangea = pytest.mark.skipif(not (PANGEA / "sample_data.json").is_file(), reason="pangea sample not present")


def test_dispatch(capsys: pytest.CaptureFixture) -> None:
    assert polyvlm_main(["data"]) == 0 and "validate" in capsys.readouterr().out
    assert data_main(["frobnicate"]) == 2


def test_stats_counts(tmp_path: Path, tiny_tokenizer: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [
        rec("a"), rec("b", image=["x", "y"], q="<image><image> two words"), rec("c", image=None, q="just text"),
        rec("d", image=None, video="v.mp4", q="<video> what", language="urdu"), rec("e", image=None, audio="s.wav", q="<audio>"),
        "{broken",
    ])
    st = compute_stats([p], progress=False)
    d = st.to_dict()
    assert d["records"] == 5 and d["unreadable_records"] == 1 and d["turns"] == 10
    assert d["modality"] == {"text-only": 1, "image": 1, "multi-image": 1, "video": 1, "audio": 1, "mixed": 0}
    assert d["languages"] == {"en": 4, "ur": 1} and d["sources"] == {str(p): 5}
    assert d["length"]["max"] == len("<image><image> two words") + len("A cat.")
    tok = compute_stats([p], tokenizer=str(tiny_tokenizer), progress=False).to_dict()
    assert tok["length_unit"] == "tokens" and tok["length"]["max"] == 7 and tok["length"]["min"] == 3  # no placeholders


def test_convert_reports_bad_record_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [rec("a"), rec("b", conversations=[]), rec("c")])
    out = tmp_path / "o.parquet"
    assert data_main(["convert", str(p), "--to", "parquet", "--out", str(out), "--quiet"]) == 1
    assert "d.jsonl:2 id=b: empty conversation" in capsys.readouterr().err and not out.exists()
    assert data_main(["convert", str(p), "--to", "parquet", "--out", str(out), "--skip-bad", "--quiet"]) == 0
    assert [r.id for r in iter_records(out)] == ["a", "c"]


@needs_pangea
def test_pangea_validates(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code = data_main(["validate", str(PANGEA / "sample_data.json"), "--check-media", "--report", str(report), "--quiet"])
    d = json.loads(report.read_text())
    assert code == 0 and d["ok"] and d["records"] == 270 and d["errors"] == 0
    assert d["by_code"]["language_missing"]["count"] == 30
    assert d["by_code"]["language_ambiguous"]["examples"][0]["message"].startswith("'kr'")
    assert d["language_normalised"] == {"zh_simplified -> zh-Hans": 20, "urdu -> ur": 10}
    assert sum(d["languages"].values()) == 240 and "zh" in d["languages"] and "zh_simplified" not in d["languages"]


@needs_pangea
def test_pangea_stats_plot(tmp_path: Path) -> None:
    png = tmp_path / "stats.png"
    assert data_main(["stats", str(PANGEA / "sample_data.json"), "--plot", str(png), "--json", str(tmp_path / "s.json"), "--quiet"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["modality"]["text-only"] == 30 and s["modality"]["image"] == 240 and s["languages"]["(none)"] == 30


@needs_pangea
def test_pangea_round_trip_json_parquet_jsonl(tmp_path: Path) -> None:
    src = PANGEA / "sample_data.json"
    assert data_main(["convert", str(src), "--to", "parquet", "--out", str(tmp_path / "p.parquet"), "--quiet"]) == 0
    assert data_main(["convert", str(tmp_path / "p.parquet"), "--to", "jsonl", "--out", str(tmp_path / "p.jsonl"), "--quiet"]) == 0
    original = json.loads(src.read_text(encoding="utf-8"))
    back = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(back) == len(original) == 270
    for o, b in zip(original, back):
        assert parse_record(o).to_llava() == b  # identical records (float ids read as their integer string)
        assert {k: v for k, v in o.items() if k != "id"} == {k: v for k, v in b.items() if k != "id"}
    assert [r.source.rsplit(":", 1)[1] for r in iter_records(tmp_path / "p.jsonl")][:3] == ["1", "2", "3"]


def test_quickstart_scenes_validate_and_index(tmp_path: Path) -> None:
    """Integration with the quick start's synthetic data: it validates clean and indexes for training."""
    scenes = pytest.importorskip("polyvlm.quickstart.scenes")
    from polyvlm.data.index import RecordIndex

    path = scenes.write_jsonl(scenes.make_split(tmp_path, 12, seed=0), tmp_path / "qa.jsonl")
    assert data_main(["validate", str(path), "--check-media", "--quiet"]) == 0
    st = compute_stats([path], progress=False)
    assert st.records == 12 and set(st.languages) == set(scenes.LANGUAGES) and st.modality["image"] == 12
    ix = RecordIndex(path, cache=False)
    assert ix[11].id == "scene-0-11" and ix[11].source == f"{path}:12"
