"""The real Pangea sample end to end (validate, stats plot, round trip), how tests find it, and the README's data commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from datahelpers import PANGEA, PANGEA_ENV, REPO, find_pangea, pangea_candidates

from polyvlm.data.cli import main as data_main
from polyvlm.data.readers import iter_records

FALLBACK = Path("/work/shared/datasets/pangea-sample")


@pytest.fixture
def pangea() -> Path:
    if PANGEA is None:
        pytest.skip("pangea sample not found; looked in " + ", ".join(map(str, pangea_candidates())))
    return PANGEA


def _sample(root: Path) -> Path:
    d = root / "shared" / "datasets" / "pangea-sample"
    d.mkdir(parents=True)
    (d / "sample_data.json").write_text("[]")
    return d


def test_lookup_prefers_the_env_var(tmp_path: Path) -> None:
    mine = _sample(tmp_path / "elsewhere")
    beside = _sample(tmp_path / "work")
    clone = tmp_path / "work" / "main"
    assert find_pangea({PANGEA_ENV: str(mine)}, clone) == mine
    assert find_pangea({}, clone) == beside  # ../shared beside the clone
    assert pangea_candidates({PANGEA_ENV: str(mine)}, clone) == [mine, beside, FALLBACK]


def test_lookup_from_a_clone_elsewhere(tmp_path: Path) -> None:
    """CI clones to another folder (e.g. /check/work/main), with or without a shared/ beside it."""
    clone = tmp_path / "check" / "work" / "main"
    clone.mkdir(parents=True)
    expected = FALLBACK if (FALLBACK / "sample_data.json").is_file() else None
    assert find_pangea({}, clone) == expected
    assert find_pangea({PANGEA_ENV: str(tmp_path / "nothing-here")}, clone) == expected  # a stale variable falls through
    beside = _sample(tmp_path / "check" / "work")
    assert find_pangea({}, clone) == beside


def test_pangea_validates(pangea: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code = data_main(["validate", str(pangea / "sample_data.json"), "--check-media", "--report", str(report), "--quiet"])
    d = json.loads(report.read_text())
    assert code == 0 and d["ok"] and d["records"] == 270 and d["errors"] == 0
    assert d["by_code"]["language_missing"]["count"] == 30
    assert d["by_code"]["language_ambiguous"]["examples"][0]["message"].startswith("'kr'")
    assert d["language_normalised"] == {"zh_simplified -> zh-Hans": 20, "urdu -> ur": 10}
    assert sum(d["languages"].values()) == 240 and "zh" in d["languages"] and "zh_simplified" not in d["languages"]


def test_pangea_stats_plot(pangea: Path, tmp_path: Path) -> None:
    png = tmp_path / "stats.png"
    assert data_main(["stats", str(pangea / "sample_data.json"), "--plot", str(png), "--json", str(tmp_path / "s.json"), "--quiet"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["records"] == 270 and s["modality"]["text-only"] == 30 and s["modality"]["image"] == 240
    assert s["languages"]["(none)"] == 30 and s["languages"]["zh-Hans"] == 20


def test_pangea_round_trip_json_parquet_jsonl(pangea: Path, tmp_path: Path) -> None:
    src = pangea / "sample_data.json"
    assert data_main(["convert", str(src), "--to", "parquet", "--out", str(tmp_path / "p.parquet"), "--quiet"]) == 0
    assert data_main(["convert", str(tmp_path / "p.parquet"), "--to", "jsonl", "--out", str(tmp_path / "p.jsonl"), "--quiet"]) == 0
    original = json.loads(src.read_text(encoding="utf-8"))
    back = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(back) == len(original) == 270
    assert back == original  # every record identical, float ids and extra keys included
    assert sum(isinstance(o["id"], float) for o in back) == 8
    assert [r.source.rsplit(":", 1)[1] for r in iter_records(tmp_path / "p.jsonl")][:3] == ["1", "2", "3"]


def readme_data_script(readme: str, sample: Path) -> str:
    """The bash blocks of the README's data section, with the sample's relative path replaced by where it is."""
    start = readme.index("## Data (`polyvlm data`)")
    section = readme[start : readme.index("\n## ", start + 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert blocks, "the data section shows commands"
    return re.sub(r"(?:\.\./)+shared/datasets/pangea-sample", str(sample), "\n".join(blocks))


@pytest.mark.slow
def test_readme_data_commands_run_as_written(pangea: Path, tmp_path: Path) -> None:
    script = readme_data_script((REPO / "README.md").read_text(encoding="utf-8"), pangea)
    for verb in ("validate", "stats", "convert", "mix"):
        assert f"polyvlm data {verb} " in script
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    out = tmp_path / "runs" / "data"
    report = json.loads((out / "pangea_report.json").read_text())
    assert report["ok"] and report["records"] == 270 and report["by_code"]["language_missing"]["count"] == 30
    assert (out / "pangea_stats.png").read_bytes()[:4] == b"\x89PNG"
    original = json.loads((pangea / "sample_data.json").read_text(encoding="utf-8"))
    assert [r.to_llava() for r in iter_records(out / "pangea.jsonl.zst")] == original
    manifest = json.loads((out / "mix" / "manifest.json").read_text())
    assert manifest["records"] == sum(s["records"] for s in manifest["shards"]) > 0
    assert manifest["languages"]["none"] == 10 and manifest["image_root"] == os.path.realpath(pangea)
    # `weights: {ru: 2.0}` on the first half, which holds all 11 of the sample's ru records: each kept twice
    half = len(original) // 2
    assert sum(r.get("language") == "ru" for r in original[:half]) == 11 == sum(r.get("language") == "ru" for r in original)
    assert manifest["languages"]["ru"] == 22
    assert sum(str(r.id).endswith("#2") for r in iter_records(out / "mix") if r.language == "ru") == 11
    assert "0 error(s)" in run.stdout.rsplit("records in", 1)[1]  # the final validate of the mixture's shards
    seeded = json.loads((out / "mix_seed3" / "manifest.json").read_text())  # the mix with key=value overrides
    assert seeded["seed"] == 3 and seeded["overrides"] == ["datasets.0.sampling_strategy=first:25%"]
    assert seeded["records"] < manifest["records"]
