"""Local-file tasks (JSONL and VLMEvalKit TSV) read their records' language tags through the one normaliser of
polyvlm.data.langs (`urdu` -> `ur`, `eng` -> `en`, `zh_simplified` -> `zh-Hans`), as `polyvlm data` and training show
them: results.json / results.md / samples, the instruction and yes/no word lookups and predictions files all see the
normalised tag; predictions that carry the dataset's raw `language` still match their records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from polyvlm.data.langs import normalize_language
from polyvlm.eval.cli import main as eval_main
from polyvlm.eval.tasks.jsonl import YESNO_PROMPT

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "eval"
RAW = {"eng": "en", "urdu": "ur", "swahili": "sw", "zh_simplified": "zh-Hans"}


def _eval(tmp_path: Path, spec_text: str, preds: list[dict], name: str) -> tuple[dict, dict[str, dict], str]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(spec_text, encoding="utf-8")
    pred_file = tmp_path / f"{name}_preds.jsonl"
    pred_file.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
    out = tmp_path / f"out_{name}"
    assert eval_main(["--predictions", str(pred_file), "--tasks", str(spec), "--out", str(out)]) == 0
    task = json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"][name]
    rows = [json.loads(x) for x in (out / f"samples_{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    return task, {r["id"]: r for r in rows}, (out / "results.md").read_text(encoding="utf-8")


def test_jsonl_records_raw_tags_are_normalised_everywhere(tmp_path: Path) -> None:
    assert {k: normalize_language(k)[0] for k in RAW} == RAW  # the one normaliser `polyvlm data` uses
    rows = [{"id": "en0", "question": "Is it red?", "answer": True, "language": "eng"},
            {"id": "ur0", "question": "کیا یہ سرخ ہے؟", "answer": True, "language": "urdu"},
            # Swahili "Si." is "no" when read as Swahili (elsewhere "si" is Italian/Spanish "yes")
            {"id": "sw0", "question": "Ni nyekundu?", "answer": False, "language": "swahili"},
            {"id": "zh0", "question": "是红色的吗？", "answer": True, "language": "zh_simplified"}]
    data = tmp_path / "yn.jsonl"
    data.write_text("".join(json.dumps({**r, "image": "images/red.png"}, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    preds = [{"id": "en0", "prediction": "Yes."}, {"id": "ur0", "prediction": "ہاں"},
             {"id": "sw0", "prediction": "Si."}, {"id": "zh0", "prediction": "是的"}]
    task, samples, md = _eval(tmp_path, f"name: yn\ntype: yesno\ndata: {data}\nimage_root: {ASSETS}\n", preds, "yn")
    assert task["metrics"]["accuracy"]["by_language"] == {"en": 100.0, "sw": 100.0, "ur": 100.0, "zh-Hans": 100.0}
    assert {k: s["language"] for k, s in samples.items()} == {"en0": "en", "ur0": "ur", "sw0": "sw", "zh0": "zh-Hans"}
    # each language's own instruction (ur from language_forms.yaml, zh-Hans as zh), so no English fallback
    assert samples["ur0"]["input"].endswith(YESNO_PROMPT["ur"].format(question=rows[1]["question"]))
    assert samples["zh0"]["input"].endswith("请回答是或否。")
    assert "english_fallback" not in task
    assert "| zh-Hans |" in md and "urdu" not in md and "zh_simplified" not in md and "swahili" not in md


def test_task_prompt_keys_and_default_language_are_normalised_too(tmp_path: Path) -> None:
    """A task's own per-language prompt written with names (`urdu:`) applies to `ur` records; `language: eng` (the
    task's default for records without one) is `en`."""
    data = tmp_path / "vqa.jsonl"
    data.write_text(json.dumps({"id": "a", "question": "رنگ؟", "answer": "سرخ", "language": "ur"}) + "\n"
                    + json.dumps({"id": "b", "question": "Colour?", "answer": "red"}) + "\n", encoding="utf-8")
    spec = (f"name: q\ntype: vqa\ndata: {data}\nlanguage: eng\n"
            "prompt: {urdu: 'URDU {question}', english: 'EN {question}'}\n")
    task, samples, _ = _eval(tmp_path, spec, [{"id": "a", "prediction": "سرخ"}, {"id": "b", "prediction": "red"}], "q")
    assert samples["a"]["input"].endswith("URDU رنگ؟") and samples["b"]["input"].endswith("EN Colour?")
    assert task["metrics"]["vqa_accuracy"]["by_language"] == {"en": 100.0, "ur": 100.0}


def _tsv(path: Path, question: str, gold: str) -> None:
    path.write_text("index\tquestion\tA\tB\tC\tD\tanswer\n" f"0\t{question}\tx1\ty2\tz3\tw4\t{gold}\n"
                    f"1\t{question}\tx1\ty2\tz3\tw4\t{gold}\n", encoding="utf-8")


def test_tsv_file_tags_are_normalised_and_raw_prediction_languages_still_match(tmp_path: Path) -> None:
    data = tmp_path / "bench"
    data.mkdir()
    _tsv(data / "bench_eng.tsv", "Which?", "B")
    _tsv(data / "bench_zho.tsv", "哪个？", "C")
    preds = [{"index": 0, "language": "eng", "prediction": "B"},  # the dataset's raw tag
             {"index": 1, "language": "en", "prediction": "B"},  # the normalised one
             {"index": 0, "language": "zho", "prediction": "C"},
             {"id": "zh/1", "prediction": "C"}]  # by id, as samples files write it
    task, samples, _ = _eval(tmp_path, f"name: mc\ntype: mcq\ndata: {data}\n", preds, "mc")
    assert task["failed"] == 0 and task["metrics"]["accuracy"]["by_language"] == {"en": 100.0, "zh": 100.0}
    assert sorted(samples) == ["en/0", "en/1", "zh/0", "zh/1"] and samples["zh/0"]["language"] == "zh"
    assert samples["zh/0"]["input"].endswith("请直接回答正确选项的字母。")  # the Chinese instruction, not English
    # one file per task: ids are the bare index, and a raw `language` in the predictions still finds its row
    one = tmp_path / "one"
    one.mkdir()
    _tsv(one / "data_eng.tsv", "Which?", "A")
    task, samples, _ = _eval(tmp_path, f"name: one\ntype: mcq\ndata: {one / 'data_eng.tsv'}\n",
                             [{"index": 0, "language": "eng", "prediction": "A"},
                              {"index": 1, "language": "english", "prediction": "A"}], "one")
    assert task["failed"] == 0 and task["metrics"]["accuracy"]["by_language"] == {"en": 100.0}


def test_a_tag_the_normaliser_will_not_guess_is_kept_and_named(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """A local `bench_jp.tsv`: 'jp' is a country code (Japanese is 'ja'); flagged, never guessed, as in training."""
    data = tmp_path / "jp"
    data.mkdir()
    _tsv(data / "bench_jp.tsv", "どれ？", "A")
    with caplog.at_level(logging.WARNING, logger="polyvlm.eval"):
        task, _, _ = _eval(tmp_path, f"name: jp\ntype: mcq\ndata: {data / 'bench_jp.tsv'}\n",
                           [{"index": 0, "language": "jp", "prediction": "A"},
                            {"index": 1, "language": "jp", "prediction": "A"}], "jp")
    assert task["metrics"]["accuracy"]["by_language"] == {"jp": 100.0}
    assert "bench_jp.tsv: language 'jp' kept as written: 'jp' is a country code, not a language; Japanese is 'ja'" \
        in caplog.text


def test_a_judge_is_told_the_language_by_name(tmp_path: Path) -> None:
    """Judge tasks name each sample's language to the judge from the normalised tag (polyvlm.data.langs'
    `language_name`, the names the synth prompts use): `zh_simplified` is Chinese (Simplified), `urdu` Urdu."""
    from polyvlm.eval.tasks.base import TaskSpec
    from polyvlm.eval.tasks.chat import JudgeTask

    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"id": i, "question": "Describe it.", "language": lang}) + "\n"
                            for i, lang in enumerate(["zh_simplified", "urdu", "ko", "xx"])), encoding="utf-8")
    task = JudgeTask(TaskSpec(name="chat", type="judge", data=str(data)))

    class Judge:
        prompts: list[str] = []

        def ask(self, prompts: list[str]) -> list[str]:
            self.prompts.extend(prompts)
            return ["Score: 5"] * len(prompts)

    task.client = judge = Judge()  # type: ignore[assignment]
    samples = task.samples()
    task.sample_scores(samples, ["x"] * len(samples))
    said = [p.split("The request and the reply are in ", 1)[1].split(".")[0] for p in judge.prompts]
    assert said == ["Chinese (Simplified)", "Urdu", "Korean", "xx"]
