"""`polyvlm data stats` and `convert`, the verb dispatch, and the quick start data (Pangea: test_data_pangea.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datahelpers import rec, write_jsonl

from polyvlm.cli import main as polyvlm_main
from polyvlm.data.cli import main as data_main
from polyvlm.data.readers import iter_records
from polyvlm.data.stats import compute_stats


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
    assert d["modality"] == {"text-only": 1, "image": 1, "multi-image": 1, "video": 1, "audio": 1, "thermal": 0,
                             "depth": 0, "imu": 0, "mixed": 0}
    assert d["languages"] == {"en": 4, "ur": 1} and d["sources"] == {str(p): 5}
    assert d["length"]["max"] == len("<image><image> two words") + len("A cat.")
    tok = compute_stats([p], tokenizer=str(tiny_tokenizer), progress=False).to_dict()
    assert tok["length_unit"] == "tokens" and tok["length"]["max"] == 7 and tok["length"]["min"] == 3  # no placeholders


def _count_axes(fig) -> dict[str, tuple[float, float]]:
    """Each panel's count axis limits (the sources panel is horizontal: its counts are on x)."""
    ax = {a.get_title().split(" (")[0]: a for a in fig.axes if a.get_title()}
    return {"modality": ax["modality"].get_ylim(), "languages": ax["languages"].get_ylim(),
            "records per source": ax["records per source"].get_xlim(), "turns per record": ax["turns per record"].get_ylim(),
            "sample length": ax["sample length"].get_ylim()}


def test_stats_plot_of_an_empty_dataset_is_pinned_at_0_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import matplotlib.pyplot as plt

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    png, js = tmp_path / "s.png", tmp_path / "s.json"
    assert data_main(["stats", str(empty), "--plot", str(png), "--json", str(js), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"no records to describe in {empty}: the files hold no records" in err
    assert png.read_bytes()[:4] == b"\x89PNG" and '"records": 0' in js.read_text()  # outputs still written
    fig = compute_stats([empty], progress=False).figure()
    try:
        for name, (lo, hi) in _count_axes(fig).items():
            assert lo == 0 and hi >= 1, (name, lo, hi)  # not matplotlib's -0.04..0.04 around nothing
        for a in fig.axes[:5]:
            assert "no records" in " ".join(t.get_text() for t in a.texts), a.get_title()
            assert all(t >= 0 for t in [*a.get_xticks(), *a.get_yticks()]), a.get_title()
    finally:
        plt.close(fig)
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{broken", "{}"])
    assert data_main(["stats", str(bad), "--quiet"]) == 1
    assert "all 2 record(s) are unreadable (see polyvlm data validate)" in capsys.readouterr().err


def test_stats_plot_count_axes_start_at_0(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    p = write_jsonl(tmp_path / "d.jsonl", [rec("a"), rec("b"), rec("c", language="pt")])
    fig = compute_stats([p], progress=False).figure()
    try:
        lims = _count_axes(fig)
        assert all(not fig.axes[i].texts for i in range(5))  # no "no records" notice
        for name, most in (("modality", 3), ("languages", 2), ("records per source", 3), ("turns per record", 3)):
            lo, hi = lims[name]
            assert lo == 0 and hi >= most, (name, lo, hi)
        assert 0 < lims["sample length"][0] <= 1  # log axis: a bar of one record is drawn
    finally:
        plt.close(fig)


def test_convert_reports_bad_record_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [rec("a"), rec("b", conversations=[]), rec("c")])
    out = tmp_path / "o.parquet"
    assert data_main(["convert", str(p), "--to", "parquet", "--out", str(out), "--quiet"]) == 1
    assert "d.jsonl:2 id=b: empty conversation" in capsys.readouterr().err and not out.exists()
    assert data_main(["convert", str(p), "--to", "parquet", "--out", str(out), "--skip-bad", "--quiet"]) == 0
    assert [r.id for r in iter_records(out)] == ["a", "c"]


def test_quickstart_scenes_validate_and_index(tmp_path: Path) -> None:
    """Integration with the quick start's synthetic data: it validates clean and indexes for training."""
    scenes = pytest.importorskip("polyvlm.data.scenes")
    from polyvlm.data.index import RecordIndex

    path = scenes.write_jsonl(scenes.make_split(tmp_path, 12, seed=0), tmp_path / "qa.jsonl")
    assert data_main(["validate", str(path), "--check-media", "--quiet"]) == 0
    st = compute_stats([path], progress=False)
    assert st.records == 12 and set(st.languages) == set(scenes.LANGUAGES) and st.modality["image"] == 12
    ix = RecordIndex(path, cache=False)
    assert ix[11].id == "scene-0-11" and ix[11].source == f"{path}:12"


def test_convert_refuses_a_name_that_contradicts_the_format(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [rec("a")])
    assert data_main(["convert", str(p), "--to", "parquet", "--out", str(tmp_path / "o.jsonl"), "--quiet"]) == 2
    assert "the name says jsonl" in capsys.readouterr().err and not (tmp_path / "o.jsonl").exists()
    assert data_main(["convert", str(p), "--to", "jsonl", "--out", str(tmp_path / "o.jsonl.gz"), "--quiet"]) == 0
    assert [r.id for r in iter_records(tmp_path / "o.jsonl.gz")] == ["a"]
