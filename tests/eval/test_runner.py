"""End-to-end evaluation with a fake generator: MMMB-layout MCQ, CircularEval, VQA, yes/no, captions, MGSM,
suites, outputs, resume after interruption, failures, predictions files and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_fakes import ASSETS, FakeGenerator

from polyvlm.eval.backends import GeneratorBackend
from polyvlm.eval.cli import main as eval_main
from polyvlm.eval.runner import evaluate
from polyvlm.eval.tasks import TaskError, TaskSpec, build_task, resolve

LANGS = ["ar", "en", "pt", "ru", "tr", "zh"]


def run(entries: list[str], out: Path, gen: FakeGenerator | None = None, bs: int = 4, limit: int | None = None) -> dict:
    tasks, suites = resolve(entries)
    res = evaluate(tasks, out, backend=GeneratorBackend(gen or FakeGenerator(), bs), suites=suites, limit=limit)
    assert res is not None
    return res


def test_mmmb_directory_is_one_task_with_a_language_per_file(tmp_path: Path) -> None:
    res = run([str(ASSETS / "mmmb")], tmp_path)
    t = res["tasks"]["mmmb"]
    assert t["n"] == 18 and t["failed"] == 0 and t["unparsed"] == 0
    acc = t["metrics"]["accuracy"]
    assert acc["overall"] == 100.0
    assert sorted(acc["by_language"]) == LANGS and set(acc["by_language"].values()) == {100.0}
    assert acc["by_category"] == {"colour": 100.0, "reuse": 100.0}
    assert t["en"] == 100.0 and t["mul"] == 100.0
    rows = [json.loads(x) for x in (tmp_path / "samples_mmmb.jsonl").read_text(encoding="utf-8").splitlines()]
    ru = next(r for r in rows if r["id"] == "ru/1")
    assert ru["prediction"] == "Ответ: В" and ru["extracted"] == "B" and ru["scores"]["accuracy"] == 1.0
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| mmmb | accuracy | 100.0 |" in md and "by category" in md
    assert (tmp_path / "results.png").stat().st_size > 1000
    assert res["tasks"]["mmmb"]["throughput"]["samples"] == 18


def test_circular_eval_counts_a_group_only_when_every_rotation_is_right(tmp_path: Path) -> None:
    preds = tmp_path / "preds.jsonl"
    # question 0 (red): rotations answer A, C, B are all right; question 1 (blue): the last rotation is wrong
    rows = [(0, "A"), (1000000, "C"), (2000000, "B"), (1, "B"), (1000001, "A"), (2000001, "B")]
    preds.write_text("".join(json.dumps({"index": i, "prediction": p}) + "\n" for i, p in rows))
    out = tmp_path / "out"
    assert eval_main(["--predictions", str(preds), "--tasks", str(ASSETS / "circular_en.tsv"), "--out", str(out)]) == 0
    t = json.loads((out / "results.json").read_text())["tasks"]["circular_en"]
    assert t["metrics"]["accuracy"]["overall"] == 50.0  # 5 of 6 copies right, 1 of 2 groups
    assert t["n"] == 2 and t["n_prompts"] == 6  # the table's n counts questions, not their rotated copies
    assert "| circular_en | accuracy | 50.0 | 50.0 | - | - | 2 | 0 | 0 |" in (out / "results.md").read_text()
    spec = TaskSpec(name="flat", type="mcq", data=str(ASSETS / "circular_en.tsv"), circular="off")
    flat = evaluate([build_task(spec)], tmp_path / "flat", predictions={str(i): p for i, p in rows})
    assert flat is not None and flat["tasks"]["flat"]["metrics"]["accuracy"]["overall"] == pytest.approx(500 / 6)
    # a group with an unanswered rotation is left out (failures are not scored), not counted right
    part = evaluate(resolve([str(ASSETS / "circular_en.tsv")])[0], tmp_path / "part",
                    predictions={"0": "A", "1000000": "C", "1": "B", "1000001": "A", "2000001": "B"})
    assert part is not None and part["tasks"]["circular_en"]["metrics"]["accuracy"]["overall"] == 0.0
    assert part["tasks"]["circular_en"]["failed"] == 1


def test_open_vqa_yes_no_captions_and_mgsm(tmp_path: Path) -> None:
    marvl = tmp_path / "marvl.yaml"
    marvl.write_text(f"name: marvl\ntype: yesno\ndata: {ASSETS / 'marvl.jsonl'}\n")
    caps = tmp_path / "caps.yaml"
    caps.write_text(f"name: caps\ntype: caption\ndata: {ASSETS / 'captions.jsonl'}\n")
    mgsm = tmp_path / "mgsm.yaml"
    mgsm.write_text(f"name: mgsm\ntype: text\nmetrics: [mgsm]\ndata: {ASSETS / 'mgsm.jsonl'}\nmax_new_tokens: 64\n")
    res = run([str(ASSETS / "vqa.jsonl"), str(marvl), str(caps), str(mgsm)], tmp_path)
    vqa = res["tasks"]["vqa"]["metrics"]
    assert vqa["vqa_accuracy"]["overall"] == pytest.approx((1.0 + 0.6 + 1.0 + 1.0) / 4 * 100)
    assert vqa["vqa_accuracy"]["by_language"]["en"] == pytest.approx(80.0)
    assert vqa["exact_match"]["overall"] == 100.0
    yn = res["tasks"]["marvl"]
    assert yn["metrics"]["accuracy"]["by_language"] == {"id": 100.0, "sw": 100.0, "tr": 100.0, "zh": 100.0}
    assert res["tasks"]["caps"]["metrics"]["cider_d"]["overall"] >= 0.0
    assert set(res["tasks"]["caps"]["metrics"]) == {"cider_d", "bleu4", "rouge_l"}
    assert res["tasks"]["mgsm"]["metrics"]["mgsm"]["overall"] == pytest.approx(100 / 3)


def test_suite_reports_en_and_mul(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"suite: mini-pangea\ntasks:\n  - {ASSETS / 'mmmb'}\n  - {ASSETS / 'vqa.jsonl'}\n"
                     f"  - name: vqa_tr_prompt\n    type: vqa\n    data: {ASSETS / 'vqa.jsonl'}\n"
                     "    prompt: {en: '{question} One word.', zh: '{question} 一个词。'}\n")
    res = run([str(suite)], tmp_path)
    s = res["suites"][0]
    assert s["suite"] == "mini-pangea" and set(s["tasks"]) == {"mmmb", "vqa", "vqa_tr_prompt"}
    assert s["en"] == pytest.approx((100.0 + 80.0 + 80.0) / 3)
    assert s["mul"] == pytest.approx((100.0 + 100.0 + 100.0) / 3)
    assert "Suite **mini-pangea**" in (tmp_path / "results.md").read_text(encoding="utf-8")
    assert res["tasks"]["vqa_tr_prompt"]["config"]["prompt"]["en"] == "{question} One word."


def test_resume_after_interruption_asks_only_the_rest(tmp_path: Path) -> None:
    full = run([str(ASSETS / "mmmb")], tmp_path / "full")
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run([str(ASSETS / "mmmb")], out, FakeGenerator(stop_after_batches=2))
    assert not (out / "results.json").exists()
    second = FakeGenerator()
    res = run([str(ASSETS / "mmmb")], out, second)
    assert sum(second.batches) == 18 - 8  # two batches of 4 were already answered
    assert res["tasks"]["mmmb"]["metrics"] == full["tasks"]["mmmb"]["metrics"]
    third = FakeGenerator()
    run([str(ASSETS / "mmmb")], out, third)
    assert third.batches == []  # nothing left to ask
    other = FakeGenerator()
    other.name = "another-model"  # answers of one model are never reused for another
    with pytest.raises(TaskError, match="different run .*model changed: 'fake' -> 'another-model'"):
        run([str(ASSETS / "mmmb")], out, other)
    a = (tmp_path / "full" / "samples_mmmb.jsonl").read_text(encoding="utf-8")
    assert a == (out / "samples_mmmb.jsonl").read_text(encoding="utf-8")


def test_failures_are_recorded_not_scored_and_retried(tmp_path: Path) -> None:
    res = run([str(ASSETS / "vqa.jsonl")], tmp_path, FakeGenerator(fail_on="Resim"))
    t = res["tasks"]["vqa"]
    assert t["failed"] == 1 and t["n_scored"] == 3
    rows = [json.loads(x) for x in (tmp_path / "samples_vqa.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "prompt too long" in next(r for r in rows if r["id"] == "v4")["error"]
    assert "Warning" in (tmp_path / "results.md").read_text(encoding="utf-8")
    again = FakeGenerator()
    res = run([str(ASSETS / "vqa.jsonl")], tmp_path, again)
    assert sum(again.batches) == 1 and res["tasks"]["vqa"]["failed"] == 0


def test_batch_sizes_give_identical_predictions(tmp_path: Path) -> None:
    outs = []
    for bs in (1, 16):
        gen = FakeGenerator()
        run([str(ASSETS / "mmmb")], tmp_path / f"bs{bs}", gen, bs=bs)
        assert max(gen.batches) == min(bs, 18)
        outs.append((tmp_path / f"bs{bs}" / "samples_mmmb.jsonl").read_text(encoding="utf-8"))
    assert outs[0] == outs[1]


def test_limit(tmp_path: Path) -> None:
    assert run([str(ASSETS / "vqa.jsonl")], tmp_path, limit=2)["tasks"]["vqa"]["n"] == 2


def test_bad_input_gets_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("index\tquestion\tA\tB\n0\tq?\tx\ty\n")
    with pytest.raises(TaskError, match="bad.tsv: missing column 'answer'"):
        resolve([str(bad)])[0][0].samples()
    bad2 = tmp_path / "bad2.jsonl"
    bad2.write_text('{"id": 1, "question": "q", "answers": ["a"]}\n{"id": 2, "question": \n')
    with pytest.raises(TaskError, match=r"bad2.jsonl:2: malformed JSON"):
        resolve([str(bad2)])[0][0].samples()
    bad3 = tmp_path / "bad3.jsonl"
    bad3.write_text('{"id": 1, "question": "q", "image": "../../etc/passwd", "answers": ["a"]}\n')
    with pytest.raises(TaskError, match="escapes the image root"):
        resolve([str(bad3)])[0][0].samples()
    assert eval_main(["--predictions", str(bad), "--tasks", "no_such_task", "--out", str(tmp_path / "o")]) == 2
    assert "'no_such_task' is neither a registered task" in capsys.readouterr().err
    wrong_answer = tmp_path / "wa.tsv"
    wrong_answer.write_text("index\tquestion\tA\tB\tanswer\n7\tq?\tx\ty\tE\n")
    with pytest.raises(TaskError, match=r"wa.tsv:2 index=7: answer 'E' is not one of the options"):
        resolve([str(wrong_answer)])[0][0].samples()
    with pytest.raises(TaskError, match="task x: unknown metric 'bleu5'"):
        build_task(TaskSpec(name="x", type="vqa", data=str(ASSETS / "vqa.jsonl"), metrics=["bleu5"]))


def cli_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert eval_main(list(args)) == 2
    return capsys.readouterr().err


def test_cli_names_the_bad_file_and_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "o")
    good = tmp_path / "p.jsonl"
    good.write_text('{"index": 0, "prediction": "A"}\n')
    lines = (ASSETS / "circular_en.tsv").read_text().splitlines()
    cells = lines[2].split("\t")
    cells[1] = "bm90IGFuIGltYWdl" * 8  # valid base64, not a picture
    (tmp_path / "img.tsv").write_text("\n".join([lines[0], lines[1], "\t".join(cells)]) + "\n")
    err = cli_error(capsys, "--predictions", str(good), "--tasks", str(tmp_path / "img.tsv"), "--out", out)
    assert "img.tsv:3 id=1000000: base64 image cannot be decoded" in err
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"index": 0, "prediction": "A"}\n\n{"index": 0, "prediction": "B"}\n')
    err = cli_error(capsys, "--predictions", str(dup), "--tasks", str(ASSETS / "circular_en.tsv"), "--out", out)
    assert "dup.jsonl:3: a second prediction for id 0 (the first is on line 1)" in err
    null = tmp_path / "null.jsonl"
    null.write_text('{"index": 0, "prediction": null}\n')
    err = cli_error(capsys, "--predictions", str(null), "--tasks", str(ASSETS / "circular_en.tsv"), "--out", out)
    assert "null.jsonl:1: 'prediction' must be a string" in err
    yml = tmp_path / "t.yaml"
    yml.write_text(f"name: t\ntype: caption\ndata: {ASSETS / 'captions.jsonl'}\nmetrics: cider_d\n")
    err = cli_error(capsys, "--predictions", str(good), "--tasks", str(yml), "--out", out)
    assert "t.yaml: task key 'metrics' must be a list of metric names, not str 'cider_d'" in err
    yml.write_text(f"name: t\ntype: caption\ndata: {ASSETS / 'captions.jsonl'}\nmetrics: [cider]\n")
    assert "task t: unknown metric 'cider'" in cli_error(capsys, "--predictions", str(good), "--tasks", str(yml),
                                                          "--out", out)
    yml.write_text(f"name: t\ntype: mcq\ndata: {ASSETS / 'circular_en.tsv'}\nprompt: '{{question}} {{choices}}'\n")
    err = cli_error(capsys, "--predictions", str(good), "--tasks", str(yml), "--out", out)
    assert "task t: bad prompt template '{question} {choices}' (KeyError: 'choices')" in err
    yml.write_text(f"name: t\ntype: judge\ndata: {ASSETS / 'chat.jsonl'}\n")
    err = cli_error(capsys, "--predictions", str(good), "--tasks", str(yml), "--out", out)
    assert "task(s) t are scored by an LLM judge: pass --judge URL" in err and not (tmp_path / "o").exists()
    err = cli_error(capsys, "--model", str(tmp_path), "--tasks", str(ASSETS / "circular_en.tsv"), "--out", out)
    assert f"--model {tmp_path}: not a polyvlm checkpoint" in err
    err = cli_error(capsys, "--predictions", str(good), "--tasks", str(ASSETS / "circular_en.tsv"), "--limit", "0")
    assert "--limit must be at least 1" in err


def test_predictions_that_match_no_sample_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"index": 0, "prediction": "A"}\n')  # MMMB ids are <language>/<index>: needs `language`
    assert eval_main(["--predictions", str(preds), "--tasks", str(ASSETS / "mmmb"), "--out", str(tmp_path / "o")]) == 0
    assert "no prediction matches a sample id" in caplog.text and "needs `language`" in caplog.text
    preds.write_text('{"index": 0, "language": "ru", "prediction": "А"}\n')
    assert eval_main(["--predictions", str(preds), "--tasks", str(ASSETS / "mmmb"), "--out", str(tmp_path / "o")]) == 0
    t = json.loads((tmp_path / "o" / "results.json").read_text())["tasks"]["mmmb"]
    assert t["n_scored"] == 1 and t["failed"] == 17 and t["metrics"]["accuracy"]["by_language"] == {"ru": 100.0}


def test_builtin_tasks_and_suite_read_polyvlm_eval_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLYVLM_EVAL_DATA", raising=False)
    spec = tmp_path / "translate.yaml"
    spec.write_text("name: translate\ntype: text\ndata: ${POLYVLM_EVAL_DATA}/translate\nmetrics: [chrf]\n")
    with pytest.raises(TaskError, match="POLYVLM_EVAL_DATA"):
        resolve([str(spec)])[0][0].samples()
    (tmp_path / "data" / "translate").mkdir(parents=True)
    (tmp_path / "data" / "translate" / "t.jsonl").write_text((ASSETS / "mgsm.jsonl").read_text(encoding="utf-8"))
    monkeypatch.setenv("POLYVLM_EVAL_DATA", str(tmp_path / "data"))
    res = run([str(spec)], tmp_path / "out")
    assert res["tasks"]["translate"]["n"] > 0 and res["tasks"]["translate"]["failed"] == 0
    tasks, suites = resolve(["pangeabench"])
    assert [t.name for t in tasks] == ["xgqa", "marvl", "maxm", "xm100", "xmmmu", "m3exam", "cvqa", "m_llavabench",
                                       "xchatbench"]
    assert suites[0].name == "pangeabench" and suites[0].tasks == [t.name for t in tasks]


def test_one_predictions_file_for_several_tasks(tmp_path: Path) -> None:
    """Records may name their `task` when ids collide between tasks; a `language` the task's ids lack is fine."""
    recs = [{"task": "circular_en", "index": 0, "prediction": "A"},  # right
            {"task": "mmmb_en", "index": 0, "prediction": "B"},  # wrong: the red picture is A
            {"task": "mmmb_en", "index": 1, "language": "en", "prediction": "Answer: B"}]  # right
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in recs))
    tasks = f"{ASSETS / 'circular_en.tsv'},{ASSETS / 'mmmb' / 'mmmb_en.tsv'}"
    assert eval_main(["--predictions", str(preds), "--tasks", tasks, "--out", str(tmp_path / "o"), "--limit", "2"]) == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())["tasks"]
    assert res["circular_en"]["n_scored"] == 1 and res["circular_en"]["failed"] == 1
    assert res["mmmb_en"]["n_scored"] == 2 and res["mmmb_en"]["metrics"]["accuracy"]["overall"] == 50.0
