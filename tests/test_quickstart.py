"""The quick start through its real entry points: `polyvlm quickstart --fast` writes the report, plots and a
checkpoint that `polyvlm chat` answers from (one clean line, no warnings); bad flags are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polyvlm.data.scenes import LANGUAGES, QTYPES


def _polyvlm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # show every warning the user would see
    return subprocess.run([sys.executable, "-m", "polyvlm", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env)


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("qs") / "run"
    r = _polyvlm("quickstart", "--out", str(out), "--fast", "--no-progress", cwd=out.parent)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


@pytest.mark.slow
def test_fast_quickstart_writes_report_and_checkpoint(fast_run):
    out, r = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(rep["accuracy"]) == set(LANGUAGES) == set(rep["chance"])
    assert all(0.0 <= v <= 1.0 for v in rep["accuracy"].values())
    assert set(rep["accuracy_by_type"]) == set(QTYPES)
    assert rep["chance_by_type"]["side"] == 0.5 and rep["chance_by_type"]["color"] == pytest.approx(1 / 6)
    # stage 0 trains both readings of the encoder: the flat patch grid and the CLS summary the LM reads
    assert {"side", "cls_side", "cls_count"} <= set(rep["encoder_accuracy"])
    assert rep["wall_seconds"] > 0
    ckpt = Path(rep["checkpoint"])
    assert ckpt == out / "stage2" / "final" and (ckpt / "model.safetensors").is_file()
    assert rep["history"]["stage1"] and rep["history"]["stage2"]
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(samples) == 4 * len(LANGUAGES)  # --fast: 4 questions per language, one per type
    assert (out / "report.png").stat().st_size > 1000
    md = (out / "report.md").read_text(encoding="utf-8")
    assert all(f"| {lang} |" in md for lang in LANGUAGES)
    assert "| language | accuracy | chance |" in r.stdout and "every language >= 0.80" in r.stdout


@pytest.mark.slow
def test_quickstart_model_reads_the_cls_summary(fast_run):
    import polyvlm

    out, _ = fast_run
    model, processor = polyvlm.load(out / "stage2" / "final")
    assert model.cfg.vision_select == "full"
    assert processor.config.tokens_per_media["image"] == model.vision.tokens_per_image == (64 // 8) ** 2 + 1


@pytest.mark.slow
def test_chat_on_the_quickstart_checkpoint_prints_one_clean_line(fast_run):
    import polyvlm
    from polyvlm.infer import ChatRequest
    from polyvlm.serve.chat import load_images

    out, _ = fast_run
    img = sorted((out / "eval" / "images").glob("*.png"))[0]
    question = "What colour are the shapes?"
    r = _polyvlm("chat", str(out / "stage2" / "final"), "--image", str(img), question, "--max-tokens", "6", cwd=out.parent)
    assert r.returncode == 0, r.stderr
    gen = polyvlm.load_generator(out / "stage2" / "final")
    (want,) = gen.generate([ChatRequest([{"role": "user", "content": question}], images=load_images([str(img)]),
                                        max_new_tokens=6)])
    assert r.stdout == want.text.rstrip("\n") + "\n"  # the greedy answer and one newline, nothing else
    for noise in ("deprecated", "FutureWarning", "Use `cache`"):
        assert noise not in r.stderr, r.stderr


def test_quickstart_refuses_unknown_modality(tmp_path, capsys):
    from polyvlm.quickstart.run import main

    assert main(["--out", str(tmp_path / "x"), "--modalities", "image,smell"]) == 2
    assert "--modalities must be image or image,audio, got image,smell" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything is generated


@pytest.mark.slow
def test_chat_refuses_an_unreadable_image_in_one_line(fast_run, tmp_path, capsys):
    from polyvlm.serve.chat import main

    out, _ = fast_run
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    assert main([str(out / "stage2" / "final"), "--image", str(bad), "What colour are the shapes?"]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1
    assert cap.err.startswith("polyvlm chat: ") and "broken.png" in cap.err and "unreadable image" in cap.err
