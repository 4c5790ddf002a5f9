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


MIN_ACCURACY = 0.5  # a fraction, read as 50%; a six-step --fast model stays below it in some language: exit 1


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("qs") / "run"
    r = _polyvlm("quickstart", "--out", str(out), "--fast", "--no-progress", "--min-accuracy", str(MIN_ACCURACY),
                 cwd=out.parent)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    assert (out / "report.json").is_file(), r.stderr[-3000:]
    return out, r


def _mean(values: list[bool]) -> float:
    """Percent of true values (the report's scale)."""
    return 100 * sum(values) / len(values)


@pytest.mark.slow
def test_fast_quickstart_writes_report_and_checkpoint(fast_run):
    out, r = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(rep["accuracy"]) == set(LANGUAGES) == set(rep["chance"]) == set(rep["majority"])
    assert set(rep["accuracy_by_type"]) == set(QTYPES) == set(rep["majority_by_type"])
    # one scale, percent (0-100) as `polyvlm eval` reports: chance of a two-way question is 50
    assert rep["chance_by_type"]["side"] == 50 and rep["chance_by_type"]["color"] == pytest.approx(100 / 6)
    # stage 0 is contrastive: it reports zero-shot caption retrieval per attribute, not classifier heads
    assert set(rep["encoder_accuracy"]) == {"image_caption", "image_color", "image_shape", "image_count", "image_side"}
    assert all(0 <= v <= 100 for v in rep["encoder_accuracy"].values())
    assert rep["wall_seconds"] > 0
    ckpt = Path(rep["checkpoint"])
    assert ckpt == out / "stage2" / "final" and (ckpt / "model.safetensors").is_file()
    assert rep["history"]["stage1"] and rep["history"]["stage2"]
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(samples) == 4 * len(LANGUAGES)  # --fast: 4 questions per language, one per type
    assert (out / "report.png").stat().st_size > 1000
    md = (out / "report.md").read_text(encoding="utf-8")
    assert all(f"| {lang} |" in md for lang in LANGUAGES)
    assert "| language | accuracy | chance | majority |" in r.stdout and "accuracy in percent (0-100)" in md
    assert f"| color | {rep['accuracy_by_type']['color']:.1f} | 16.7 |" in md


@pytest.mark.slow
def test_report_accuracy_is_what_the_samples_say(fast_run):
    """Each sample is judged by exact match of the normalised answer, and every accuracy in the report is
    the mean over its samples: per language, per question type and per both."""
    from polyvlm.quickstart.evaluate import normalize_answer

    out, _ = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    for s in samples:
        assert s["correct"] == (normalize_answer(s["prediction"]) == normalize_answer(s["target"])), s
    for lang in LANGUAGES:
        assert rep["accuracy"][lang] == pytest.approx(_mean([s["correct"] for s in samples if s["language"] == lang]))
    for t in QTYPES:
        assert rep["accuracy_by_type"][t] == pytest.approx(_mean([s["correct"] for s in samples if s["qtype"] == t]))
        for lang in LANGUAGES:
            got = [s["correct"] for s in samples if s["qtype"] == t and s["language"] == lang]
            assert rep["accuracy_by_language_and_type"][f"{lang}/{t}"] == pytest.approx(_mean(got))


@pytest.mark.slow
def test_majority_baseline_answers_the_most_frequent_training_answer(fast_run):
    from collections import Counter

    from polyvlm.quickstart.evaluate import normalize_answer

    out, _ = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    train = [json.loads(x) for x in (out / "data" / "qa.jsonl").read_text(encoding="utf-8").splitlines()]
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    guess = {}
    for lang in LANGUAGES:
        for t in QTYPES:
            answers = Counter(normalize_answer(r["answer"]) for r in train if r["language"] == lang and r["qtype"] == t)
            guess[lang, t] = answers.most_common(1)[0][0] if answers else None
    hit = {id(s): guess[s["language"], s["qtype"]] == normalize_answer(s["target"]) for s in samples}
    for lang in LANGUAGES:
        assert rep["majority"][lang] == pytest.approx(_mean([hit[id(s)] for s in samples if s["language"] == lang]))
    for t in QTYPES:
        assert rep["majority_by_type"][t] == pytest.approx(_mean([hit[id(s)] for s in samples if s["qtype"] == t]))


@pytest.mark.slow
def test_min_accuracy_sets_the_exit_code(fast_run):
    """`--min-accuracy 0.5` is 50%: exit 1 naming each language below it (the report is still written), else 0."""
    out, r = fast_run
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    low = [lang for lang, acc in rep["accuracy"].items() if acc < 100 * MIN_ACCURACY]
    assert r.returncode == (1 if low else 0)
    if low:
        assert "below --min-accuracy 50.0%" in r.stderr
        assert all(f"{lang} {rep['accuracy'][lang]:.1f}" in r.stderr for lang in low)
    else:
        assert "every language >= 50.0%" in r.stdout


def test_min_accuracy_reads_fractions_and_percentages(tmp_path, capsys):
    """0.8 and 80 are both 80%; the default is 80; a value outside [0, 100] is refused before any work."""
    from polyvlm.quickstart.run import main, min_accuracy_percent

    assert min_accuracy_percent(None) == 80 and min_accuracy_percent(0.8) == 80 and min_accuracy_percent(80) == 80
    assert min_accuracy_percent(0.57) == 57 and min_accuracy_percent(1) == 100 and min_accuracy_percent(95.5) == 95.5
    assert main(["--out", str(tmp_path / "x"), "--min-accuracy", "120"]) == 2
    assert "--min-accuracy must be a fraction in [0, 1] or a percentage in (1, 100], got 120.0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


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
    assert cap.err.startswith("polyvlm chat: ") and "broken.png" in cap.err and "not a readable image" in cap.err
