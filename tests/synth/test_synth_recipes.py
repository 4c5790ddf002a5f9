"""The recipes under recipes/synth and the README's synth commands, run through `polyvlm synth` (the CLI) against
the loopback fake server: every recipe loads, runs on crafted data and writes final shards and a report."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synth_helpers import conv, read_final, write_jsonl

from polyvlm.synth import textcheck
from polyvlm.synth.cli import main as synth_main
from polyvlm.synth.config import load_pipeline

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "synth").glob("*.yaml"))


def _backends(recipe: Path, url: str) -> str:
    """`backends=...` for --set: every backend the recipe names, pointed at the fake server."""
    names = load_pipeline(recipe).backends
    return "backends=" + json.dumps({n: {"type": "openai", "base_url": url, "model": "fake", "timeout": 30}
                                     for n in names})


def _run(recipe: Path, tmp_path: Path, url: str, inp: Path, image_root: Path, capsys) -> tuple[dict, str]:
    out = tmp_path / f"out-{recipe.stem}"
    args = [str(recipe), "--no-progress", "--set", f"input={inp}", "--set", f"image_root={image_root}",
            "--set", f"output={out}", "--set", "concurrency=8", "--set", _backends(recipe, url)]
    rc = synth_main(args)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def test_every_recipe_loads():
    assert {p.stem for p in RECIPES} >= {"demo", "mammoth_rewrite", "pangea_translate", "pangea_cultural"}
    for recipe in RECIPES:
        cfg = load_pipeline(recipe)
        assert cfg.stages and cfg.output.startswith("runs/synth/"), recipe
        assert recipe.read_text().startswith("#"), f"{recipe} opens with a comment saying what it is"


def test_mammoth_rewrite_recipe(tmp_path, image_dir, fake_server, capsys):
    server = fake_server()
    recs = [conv(f"s{i}", f"Is the cat in picture {i} happy?", f"Yes {i}.", image="red.png") for i in range(12)]
    recs += [conv("c1", "What does the bar chart show?", "Sales rose.", image="blue.png"),
             conv("t1", "Write a haiku about rain.", "Rain falls.", image=None)]
    inp = write_jsonl(tmp_path / "source.jsonl", recs)
    report, md = _run(ROOT / "recipes/synth/mammoth_rewrite.yaml", tmp_path, server.url, inp, image_dir, capsys)
    rows = {r["stage"]: r for r in report["stages"]}
    assert list(rows) == ["categorize", "rewrite", "judge", "dedup", "balance"]
    assert rows["categorize"]["out"] == rows["rewrite"]["out"] == 14
    assert server.by_stage["categorize"] == 12  # the rules decide chart and text-only; the model the rest
    assert rows["judge"]["in"] == 14 and 0 < rows["judge"]["ok"] < 14 and rows["judge"]["failed"] == 0
    final = read_final(tmp_path / "out-mammoth_rewrite")
    assert len(final) == report["final_records"] == rows["balance"]["out"]
    assert all(r["judge_score"] >= 3.5 and r["id"].endswith("-rw") and r["source_id"] for r in final)
    assert "below_threshold" in md and "| categorize | und 14 |" in md


def test_pangea_translate_recipe(tmp_path, image_dir, fake_server, capsys):
    server = fake_server()
    Image.new("RGB", (320, 240), (30, 200, 30)).save(image_dir / "green.png")
    recs = [conv("e0", "How many apples are in the basket? Options:\nA. 3\nB. 12", "There are 12 apples. The answer is B.",
                 image="red.png", language="en"),
            conv("e1", "What year is written on the sign? Options:\nA. 1998\nB. 2004",
                 "The sign says 2004, so the answer is B.", image="blue.png", language="en"),
            conv("e2", "How many people wait at the bus stop? Options:\nA. 7\nB. 9",
                 "I count 7 people at the stop. The answer is A.", image="green.png", language="en")]
    inp = write_jsonl(tmp_path / "english.jsonl", recs)
    report, md = _run(ROOT / "recipes/synth/pangea_translate.yaml", tmp_path, server.url, inp, image_dir, capsys)
    tr = next(s for s in report["detail"] if s["stage"] == "translate")
    # the fake server has canned sentences for 8 of the 14 targets; the other 6 come back in English and
    # are rejected by the language identifier, per language, with the reason
    assert tr["out"]["records"] == 3 * (1 + 8) and tr["rejections"] == {"wrong_language": 3 * 6}
    assert "| translate | wrong_language | 18 |" in md and "identified en" in md
    final = read_final(tmp_path / "out-pangea_translate")
    assert len(final) == report["final_records"] == 27  # distinct images: no duplicates, English 3/27 < 40%
    assert {r["language"] for r in final} == {"en", "zh-Hans", "ja", "hi", "ar", "sw", "es", "fr", "de"}
    by_id = {r["id"]: r for r in recs}
    for r in final:
        user, src = r["conversations"][0]["value"], by_id[r.get("source_id", r["id"])]
        src_user = src["conversations"][0]["value"]
        assert user.startswith("<image>") and "A. " in user and "B. " in user  # placeholder, option letters kept
        assert textcheck.numbers(user) == textcheck.numbers(src_user)
        assert r["image"] == src["image"]


def _noise(path: Path, w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8)).resize((w, h)).save(path)


def test_pangea_cultural_recipe(tmp_path, fake_server, capsys):
    server = fake_server()
    img = tmp_path / "img"
    img.mkdir()
    alts = ["Soko la matunda mjini Nairobi asubuhi na mapema sana leo", "Un marché aux fruits animé à Dakar le matin",
            "A busy fruit market in Nairobi early in the morning today", "Ein Obstmarkt in Berlin am frühen Morgen heute",
            "Mercado de frutas en Lima por la mañana temprano hoy", "यह सुबह का एक व्यस्त फल बाज़ार है जो दिल्ली में है"]
    recs = []
    for i, alt in enumerate(alts):
        _noise(img / f"p{i}.png", 400, 300, i)
        recs.append({"id": f"p{i}", "image": f"p{i}.png", "alt_text": alt})
    _noise(img / "p0_copy.jpg", 400, 300, 0)
    _noise(img / "tiny.png", 100, 100, 9)
    recs += [{"id": "copy", "image": "p0_copy.jpg", "alt_text": alts[0]},
             {"id": "tiny", "image": "tiny.png", "alt_text": alts[2]},
             {"id": "noalt", "image": "p1.png", "alt_text": "ok"}]
    inp = write_jsonl(tmp_path / "alt.jsonl", recs)
    report, md = _run(ROOT / "recipes/synth/pangea_cultural.yaml", tmp_path, server.url, inp, img, capsys)
    rows = {r["stage"]: r for r in report["stages"]}
    mf = next(s for s in report["detail"] if s["stage"] == "media_filter")
    assert mf["rejections"] == {"image_size": 1, "alt_text_length": 1, "phash_duplicate": 1}
    assert rows["media_filter"]["out"] == 6 and rows["score"]["in"] == 6
    kept = rows["score"]["out"]
    assert 0 < kept < 6 and rows["recaption"]["in"] == kept and rows["recaption"]["out"] == kept
    final = read_final(tmp_path / "out-pangea_cultural")
    assert len(final) == report["final_records"]
    for r in final:
        assert r["category"] == "caption" and r["id"].endswith("-cap") and r["topic"] and r["country"]
        assert r["conversations"][0]["value"].startswith("<image>\n") and len(r["conversations"]) == 6
    assert "phash_duplicate" in md and "low_informativeness" in md and "## Score histogram: score" in md


def _readme_synth_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Data synthesis.*?(?=^## )", text, re.S | re.M)
    assert m, "README has a synth section"
    cmds = []
    for line in m.group(0).splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("polyvlm synth "):
            cmds.append(shlex.split(line)[2:])
    return cmds


def test_readme_synth_commands_resolve(monkeypatch):
    """Every `polyvlm synth` line of the README names a recipe that loads with its --set values and an input
    that exists (paths are relative to the repository root, where the README's commands run)."""
    monkeypatch.chdir(ROOT)
    cmds = _readme_synth_commands()
    assert len(cmds) >= 3
    for args in cmds:
        sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
        cfg = load_pipeline(args[0], sets)
        missing = [p for p in cfg.input if not Path(p).exists()]
        # the shared Pangea sample sits beside the repository on the development machine, not in every clone
        assert all("pangea-sample" in p for p in missing), (args, missing)


@pytest.mark.slow
def test_demo_recipe_as_in_the_readme(tmp_path, fake_server, capsys, monkeypatch):
    """The README demo (the Pangea sample through six stages), then `--resume`, which asks the model nothing."""
    monkeypatch.chdir(ROOT)
    demo = ROOT / "recipes/synth/demo.yaml"
    cfg = load_pipeline(demo)
    if not Path(cfg.input[0]).is_file():
        pytest.skip(f"the demo's sample data {cfg.input[0]} is not on this machine")
    server = fake_server()
    args = [str(demo), "--no-progress", "--set", f"output={tmp_path / 'demo'}", "--set", _backends(demo, server.url)]
    assert synth_main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "final records:" in out and "balance" in out
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    rows = [r["stage"] for r in report["stages"]]
    assert rows == ["categorize", "rewrite", "judge", "translate", "dedup", "balance"]
    assert report["stages"][0]["in"] == 270 and all(r["failed"] == 0 for r in report["stages"])
    assert (tmp_path / "demo" / "report.png").stat().st_size > 5000
    final = read_final(tmp_path / "demo")
    assert len(final) == report["final_records"] > 270 and len({r["id"] for r in final}) == len(final)
    en = sum(r["language"] == "en" for r in final)
    assert en <= 0.4 * len(final) + 1
    n = server.requests
    assert synth_main([*args, "--resume"]) == 0
    assert server.requests == n and read_final(tmp_path / "demo") == final
