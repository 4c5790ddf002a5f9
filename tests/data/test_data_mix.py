"""Mixtures: sampling strategies, per-language weights and caps, reproducibility, materialised shards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datahelpers import rec, write_jsonl

from polyvlm.data.cli import main as data_main
from polyvlm.data.mix import Mixture, MixtureError, load_mixture, load_mixture_records, sample_indices
from polyvlm.data.readers import iter_records


@pytest.mark.parametrize(("strategy", "expect"), [
    ("all", list(range(10))), ("first:3", [0, 1, 2]), ("end:2", [8, 9]), ("first:25%", [0, 1, 2]),
    ("end:10%", [9]), ("first:50", list(range(10))),
])
def test_strategies(strategy: str, expect: list[int]) -> None:
    assert sample_indices(10, strategy, np.random.default_rng(0)).tolist() == expect


def test_random_strategy_is_seeded() -> None:
    a = sample_indices(100, "random:10", np.random.default_rng(1))
    assert len(set(a.tolist())) == 10 and a.tolist() == sorted(a.tolist())
    assert a.tolist() == sample_indices(100, "random:10", np.random.default_rng(1)).tolist()
    assert a.tolist() != sample_indices(100, "random:10", np.random.default_rng(2)).tolist()
    with pytest.raises(MixtureError, match="sampling_strategy"):
        sample_indices(10, "some:3", np.random.default_rng(0))


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    langs = ["en"] * 20 + ["urdu"] * 10 + [None] * 10
    write_jsonl(tmp_path / "a" / "a.jsonl", [rec(f"a{i}", language=lang) for i, lang in enumerate(langs)])
    (tmp_path / "b" / "b.json").write_text(json.dumps([rec(f"b{i}", language="zh_simplified") for i in range(30)]))
    (tmp_path / "mix.yaml").write_text("""
seed: 7
shuffle: true
datasets:
  - json_path: a/a.jsonl
    sampling_strategy: all
    languages: {weights: {ur: 2.0, en: 0.5}, caps: {none: 4}}
  - path: b/b.json
    sampling_strategy: random:50%
languages: {caps: {zh-Hans: 10}}
""")
    return tmp_path / "mix.yaml"


def test_language_rules_and_reproducibility(sources: Path) -> None:
    ds = load_mixture(sources)
    langs = Counter(ds[i].language for i in range(len(ds)))
    assert langs == {"en": 10, "urdu": 20, None: 4, "zh_simplified": 10}
    ids = [ds[i].id for i in range(len(ds))]
    assert Counter(ids)["a25"] == 1 and Counter(ids)["a25#2"] == 1  # weight 2 repeats each urdu record twice
    assert len(set(ids)) == len(ids)
    assert ids == [r.id for r in load_mixture(sources)]  # same seed: same list, on every rank
    other = [ds2.id for ds2 in load_mixture(sources, seed=8)]
    assert other != ids and sorted(set(other)) != sorted(set(ids))
    assert str(ds.root_of(0)).endswith(("/a", "/b")) and ds[0].extra["_image_root"] == str(ds.root_of(0))


def test_materialise_shards(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert data_main(["mix", str(sources), "--out", str(out), "--shard-size", "20", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == 44 and [s["records"] for s in manifest["shards"]] == [20, 20, 4]
    assert manifest["languages"] == {"ur": 20, "en": 10, "zh-Hans": 10, "none": 4}
    assert manifest["image_root"] == str(tmp_path.resolve())
    recs = list(iter_records(sorted(out.glob("part-*.jsonl"))))
    assert len(recs) == 44
    assert {r.media["image"][0].split("/")[0] for r in recs} == {"a", "b"}  # rebased onto the common root
    assert data_main(["validate", *map(str, sorted(out.glob("part-*.jsonl"))), "--image-root", manifest["image_root"], "--quiet"]) == 0
    assert data_main(["mix", str(sources), "--out", str(tmp_path / "pq"), "--format", "parquet", "--quiet"]) == 0
    assert [r.id for r in iter_records(tmp_path / "pq" / "part-00000.parquet")] == [r.id for r in recs]


def test_bad_yaml_is_named(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("datasets:\n  - path: x.jsonl\n    sampling_strategy: most:3\n")
    with pytest.raises(MixtureError, match=r"m\.yaml: datasets\[0\]: unknown sampling_strategy"):
        Mixture.from_yaml(p)
    p.write_text("datasets:\n  - path: missing.jsonl\n")
    with pytest.raises(MixtureError, match="missing.jsonl"):
        Mixture.from_yaml(p).resolve()
    assert data_main(["mix", str(p), "--out", str(tmp_path / "o")]) == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("strategy", "expect"), [
    ("all", [f"s{i}" for i in range(20)]), ("first:3", ["s0", "s1", "s2"]), ("end:2", ["s18", "s19"]),
    ("first:10%", ["s0", "s1"]), ("end:5%", ["s19"]), ("random:4", 4), ("random:25%", 5),
])
def test_strategies_through_the_cli(strategy: str, expect: list[str] | int, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "s.jsonl", [rec(f"s{i}") for i in range(20)])
    (tmp_path / "m.yaml").write_text(f"seed: 3\ndatasets:\n  - path: s.jsonl\n    sampling_strategy: '{strategy}'\n")
    runs = []
    for out in ("o1", "o2"):
        assert data_main(["mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / out), "--quiet"]) == 0
        runs.append([r.id for r in iter_records(tmp_path / out / "part-00000.jsonl")])
    assert runs[0] == runs[1]  # resolved from the seed: the same on every run (and rank)
    if isinstance(expect, int):
        assert len(set(runs[0])) == expect and runs[0] == sorted(runs[0], key=lambda s: int(s[1:]))
    else:
        assert runs[0] == expect


def test_fractional_weights_and_global_caps_through_the_cli(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "s.jsonl", [rec(f"e{i}") for i in range(10)] + [rec(f"v{i}", language="vi") for i in range(10)])
    (tmp_path / "m.yaml").write_text("datasets:\n  - path: s.jsonl\n    languages: {weights: {en: 0.3, vi: 1.5}}\n"
                                     "languages: {caps: {vi: 12}}\n")
    assert data_main(["mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["languages"] == {"vi": 12, "en": 3}  # 10 x 1.5 = 15 vi, capped at 12; 10 x 0.3 = 3 en
    ids = [r.id for r in iter_records(tmp_path / "o" / "part-00000.jsonl")]
    assert len(set(ids)) == 15 and sum("#2" in i for i in ids) <= 5


def test_bad_record_stops_mix_or_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_jsonl(tmp_path / "s.jsonl", [rec("a"), "{broken", rec("c", conversations=[]), rec("d")])
    (tmp_path / "m.yaml").write_text("datasets:\n  - path: s.jsonl\n")
    assert data_main(["mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    assert "s.jsonl:2" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert data_main(["mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o"), "--quiet", "--skip-bad"]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["records"] == 2 and m["skipped"] == 2 and [s["records"] for s in m["shards"]] == [2]
    assert "s.jsonl:3 id=c: empty conversation" in capsys.readouterr().out


def test_load_mixture_records_for_a_trainer(sources: Path) -> None:
    from polyvlm.data.records import resolve_media

    records, root = load_mixture_records(sources)
    assert root == sources.parent.resolve() and len(records) == 44
    assert [r.id for r in records] == [load_mixture(sources).record(i).id for i in range(44)]
    for name in ("a", "b"):
        (sources.parent / name / "img.png").write_bytes(b"x")
    for r in records:  # media paths are relative to the one root, inside it
        assert resolve_media(root, r.media["image"][0], r.source, r.id).is_file()


def test_a_language_rule_with_nothing_to_act_on_is_logged(tmp_path, caplog) -> None:
    """README's mixture once weighted `ur` on a half of the Pangea sample that has no Urdu: say so."""
    from polyvlm.data.mix import load_mixture

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "language": "en", "conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}) + "\n" for i in range(4)))
    mix = tmp_path / "mix.yaml"
    mix.write_text(f"datasets:\n  - path: {data}\n    languages: {{weights: {{ur: 2.0, en: 2.0}}}}\n")
    caplog.set_level("WARNING", logger="polyvlm.data")
    assert len(load_mixture(mix)) == 8  # en doubled
    assert "languages.weights names ur, which none of its selected records has: no effect" in caplog.text


def test_mix_takes_key_value_overrides_like_every_command(sources: Path, tmp_path: Path, capsys) -> None:
    """`polyvlm data mix` takes `key=value` (dotted keys of the mixture YAML, and its flags) with the checks and the
    nearest-key error of train, serve, eval and synth."""
    out = tmp_path / "o"
    assert data_main(["mix", str(sources), "--quiet", f"out={out}", "shard_size=100", "seed=3", "shuffle=false",
                      "datasets.1.sampling_strategy=first:2", "languages.caps={zh-Hans: 1}"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["sources"][str(sources.parent / "b" / "b.json")] == 1
    assert manifest["overrides"] == ["shuffle=false", "datasets.1.sampling_strategy=first:2", "languages.caps={zh-Hans: 1}"]
    ids = [r.id for r in iter_records(out / "part-00000.jsonl")]
    assert ids[-1] == "b0" and "b1" not in ids  # no shuffle: sources in order; the zh cap keeps 1 of the first 2
    nums = [int(i[1:].split("#")[0]) for i in ids[:-1]]
    assert nums == sorted(nums)
    assert data_main(["mix", str(sources), "--out", str(out), "shufle=true"]) == 2
    assert "polyvlm data mix: unknown config key 'shufle' (did you mean 'shuffle'?)" in capsys.readouterr().err
    assert data_main(["mix", str(sources), "--out", str(out), "datasets.0.sampling_stratgy=all"]) == 2
    assert ("unknown config key 'datasets.0.sampling_stratgy' (did you mean 'datasets.0.sampling_strategy'?)"
            in capsys.readouterr().err)
    assert data_main(["mix", str(sources), "--out", str(out), "shuffle=maybe"]) == 2
    assert "config key 'shuffle': expected bool, got str 'maybe'" in capsys.readouterr().err
    assert data_main(["mix", str(sources), "--out", str(out), "datasets.5.path=x.jsonl"]) == 1
    assert f"{sources}: override 'datasets.5.path=x.jsonl': index 5 is out of range (2 items)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --out is required: as a flag or as out=
        data_main(["mix", str(sources)])
    assert "--out (or out=VALUE)" in capsys.readouterr().err


def test_a_mixture_that_selects_nothing_is_written_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "m.yaml").write_text("datasets:\n  - path: empty.jsonl\n")
    assert data_main(["mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["records"] == 0
    assert "selects no records" in capsys.readouterr().err
