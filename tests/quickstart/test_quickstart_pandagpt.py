"""`polyvlm quickstart --recipe pandagpt` through the command line: the fast plan writes report.json (accuracy per
modality and language, chance, the majority answer), report.md, report.png, samples and a PandaGPT checkpoint,
having trained the LLM side on pictures only; `--min-accuracy` sets the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polyvlm.data.scenes import LANGUAGES
from polyvlm.data.scenes_modal import CARRIES, MODALITIES, chance

MIN_ACCURACY = 0.99  # a fraction, read as 99%; a three-step --fast model stays below it somewhere: exit 1


def _polyvlm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polyvlm", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONWARNINGS": "default"})


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("qs_pandagpt") / "run"
    r = _polyvlm("quickstart", "--recipe", "pandagpt", "--out", str(out), "--fast", "--no-progress",
                 "--min-accuracy", str(MIN_ACCURACY), cwd=out.parent)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    assert (out / "report.json").is_file(), r.stderr[-3000:]
    return out, r


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_report_structure_and_files(fast_run):
    out, r = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(rep["accuracy_by_modality"]) == set(MODALITIES) == {"image", "audio", "thermal", "depth", "imu"}
    for m in MODALITIES:
        assert set(rep["accuracy_by_modality"][m]) == set(LANGUAGES) == set(rep["majority"][m])
        assert rep["chance"][m] == pytest.approx(100 * chance(m))  # percent, like every accuracy here
        assert rep["questions"][m] == list(CARRIES[m])
    assert rep["chance"]["audio"] == pytest.approx(100 * (1 / 6 + 1 / 4) / 2)  # colour and count
    assert rep["trained_on"] == "image"
    assert rep["wall_seconds"] > 0 and rep["cpu_seconds"] > 0
    assert {"image/side", "audio/color", "thermal/shape", "depth/count", "imu/side"} <= set(rep["imagebind_probe"])
    assert all(0 <= v <= 100 for v in rep["imagebind_probe"].values())
    assert any(v > 1 for v in rep["imagebind_probe"].values())  # percent: even a 3-step ImageBind beats 1%
    assert rep["history"]["stage1"] and rep["history"]["stage2"]
    assert (out / "report.png").stat().st_size > 1000
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| audio (zero-shot) | color, count |" in md and "| image | color, shape, count, side |" in md
    assert "| modality | asked | en | zh | pt | ar | tr | ru | chance | majority |" in r.stdout
    assert "accuracy in percent (0-100)" in md and f"| {100 * chance('audio'):.1f} |" in md
    assert "CPU time" in r.stdout


def test_language_model_trained_on_pictures_only(fast_run):
    """The zero-shot claim rests on this: stages 1 and 2 never saw a sound, thermal picture, depth map or IMU."""
    out, _ = fast_run
    for name in ("captions.jsonl", "qa.jsonl"):
        for rec in _lines(out / "data" / name):
            assert "image" in rec and not {"audio", "thermal", "depth", "imu", "video"} & set(rec), rec["id"]
            assert "<image>" in rec["conversations"][0]["value"]
    for stage in ("stage1", "stage2"):
        cfg = (out / stage / "config.yaml").read_text(encoding="utf-8")
        assert str(out / "data") in cfg
    stage2 = (out / "stage2" / "config.yaml").read_text(encoding="utf-8")
    assert "stage: lora" in stage2 and "connector: pool1" in stage2 and "template: pandagpt" in stage2


def test_accuracy_is_what_the_samples_say(fast_run):
    from polyvlm.quickstart.evaluate import normalize_answer

    out, _ = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    samples = _lines(out / "samples.jsonl")
    assert len(samples) == len(MODALITIES) * len(LANGUAGES) * 2  # --fast: 2 questions per modality and language
    for s in samples:
        assert s["qtype"] in CARRIES[s["modality"]]
        assert s["correct"] == (normalize_answer(s["prediction"]) == normalize_answer(s["target"]))
    for m in MODALITIES:
        for lang in LANGUAGES:
            got = [s["correct"] for s in samples if s["modality"] == m and s["language"] == lang]
            assert rep["accuracy_by_modality"][m][lang] == pytest.approx(100 * sum(got) / len(got))


def test_eval_records_name_their_one_input(fast_run):
    out, _ = fast_run
    recs = _lines(out / "eval" / "eval.jsonl")
    for r in recs:
        m = r["modality"]
        assert [k for k in MODALITIES if k in r] == [m] and (out / "eval" / r[m]).is_file()
        assert r["conversations"][0]["value"].startswith(f"<{m}>\n")


def test_min_accuracy_sets_the_exit_code(fast_run):
    out, r = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    low = [f"{m}/{lang}" for m, by in rep["accuracy_by_modality"].items() for lang, a in by.items()
           if a < 100 * MIN_ACCURACY]
    assert r.returncode == (1 if low else 0)
    if low:
        assert f"below --min-accuracy {100 * MIN_ACCURACY:.1f}%" in r.stderr
        assert all(cell in r.stderr for cell in low)


def test_checkpoint_is_pandagpt_and_chat_answers_a_sound(fast_run):
    """The final checkpoint is a PandaGPT model (ImageBind + pool1: one row per input, LoRA); its inputs are read
    at its ImageBind's sizes; `polyvlm chat --audio` answers from a sound alone, as the report's audio rows did."""
    import torch

    import polyvlm
    from polyvlm.models import pandagpt

    out, _ = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    model, _processor = polyvlm.load(rep["checkpoint"])
    pandagpt.check_model(model)
    arch = model.vision.tower.cfg
    wav = sorted((out / "eval" / "audio").glob("*.wav"))[0]
    png = sorted((out / "eval" / "thermal").glob("*.png"))[0]
    x = pandagpt.input_tensor("audio", str(wav), arch=arch)
    assert x.shape == (3, 1, 128, 204)  # ImageBind's three 2 s clips
    assert pandagpt.input_tensor("thermal", str(png), arch=arch).shape == (1, 64, 64)
    rows = pandagpt.encode_inputs(model, pandagpt.request_inputs({"audio": [str(wav)], "thermal": [str(png)]}, arch))
    assert rows.shape == (2, model.llm.config.hidden_size)
    assert torch.allclose(pandagpt.summed_row(model, [("audio", x)]), rows[:1])
    samples = {s["id"]: s for s in _lines(out / "samples.jsonl")}
    rec = next(r for r in _lines(out / "eval" / "eval.jsonl") if r["modality"] == "audio")
    question = rec["conversations"][0]["value"].split("\n", 1)[1]
    r = _polyvlm("chat", rep["checkpoint"], "--audio", str(out / "eval" / rec["audio"]), question, "--max-tokens", "8",
                 cwd=out.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == samples[rec["id"]]["prediction"].strip()


def test_unknown_recipe_is_refused(tmp_path):
    r = _polyvlm("quickstart", "--recipe", "nope", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert r.returncode == 2 and "unknown --recipe 'nope' (known: llava, pandagpt)" in r.stderr
    assert not (tmp_path / "x").exists()


def test_min_accuracy_is_a_percentage_like_the_llava_recipe(tmp_path, capsys):
    """One scale for both recipes: 70 and 0.7 are 70%; a value outside [0, 100] is refused before any work."""
    from polyvlm.quickstart.pandagpt import main

    assert main(["--out", str(tmp_path / "x"), "--min-accuracy", "120"]) == 2
    assert "--min-accuracy must be a fraction in [0, 1] or a percentage in (1, 100], got 120.0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
