"""Published benchmarks read from their Hub layouts and scored twice: the official scorer's rules (quirks included,
worked out by hand from the official code cited in each test) and polyvlm's robust reading, with disagreements."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from published_fixtures import m3exam_repo, parrot_repo, xgqa_repo

from polyvlm.eval.cli import main as eval_main
from polyvlm.eval.tasks import TaskError, resolve


@pytest.fixture()
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import datasets

    root = tmp_path / "data"
    monkeypatch.setenv("POLYVLM_EVAL_DATA", str(root))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # nothing cached: missing repos stay missing
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # read at import: without it a missing repo is
    # looked up online first (~20 s of retries per test)
    return root


def predict(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def run(tmp_path: Path, tasks: str, records: list[dict], *extra: str) -> dict:
    preds = predict(tmp_path / "preds.jsonl", records)
    out = tmp_path / "out"
    assert eval_main(["--predictions", str(preds), "--tasks", tasks, "--output_path", str(out), *extra]) == 0
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def samples(tmp_path: Path, task: str) -> dict[str, dict]:
    lines = (tmp_path / "out" / f"samples_{task}.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def test_xgqa_official_substring_rule_beside_the_robust_reading(tmp_path: Path, data: Path) -> None:
    # neulab/Pangea evaluation/lmms-eval/lmms_eval/tasks/xgqa/utils.py xgqa_process_result: right when
    # doc["answer"].strip().lower() is a substring of the lower-cased prediction.
    xgqa_repo(data)
    preds = [("en", 0, "No, it is not."),  # official: "no" in it -> 1; robust (VQA normalisation): "no it is not" -> 0
             ("en", 1, "Red."),  # both right
             ("en", 2, "two"),  # official: "2" not in "two" -> 0; robust: number word -> "2" -> 1
             ("en", 3, "nothing"),  # official: "no" in "nothing" -> 1 (the quirk); robust 0
             ("zh", 0, "猫"),  # English gold "cat": both wrong
             ("zh", 1, "red car")]  # official: "red" in "red car" -> 1; robust 0
    res = run(tmp_path, "xgqa", [{"task": "xgqa", "split": s, "row": r, "prediction": p} for s, r, p in preds])
    t = res["tasks"]["xgqa"]
    assert t["official"]["by_language"] == {"en": 75.0, "zh": 50.0} and t["official"]["metric"] == "exact_match"
    assert t["metrics"]["vqa_accuracy"]["by_language"] == {"en": 50.0, "zh": 0.0}
    assert t["en"] == 75.0 and t["mul"] == 50.0 and t["headline"] == "official"
    assert sorted(t["official"]["disagree"]) == ["en/0", "en/2", "en/3", "zh/1"]
    rows = samples(tmp_path, "xgqa")
    assert rows["en/0"]["split"] == "en" and rows["en/0"]["row"] == 0 and rows["en/0"]["disagree"] is True
    assert rows["en/3"]["scores"] == {"vqa_accuracy": 0.0, "official": 1.0}
    # the prompt as xgqa_doc_to_text builds it (post_prompt stripped, after one space; "in English" off en)
    assert rows["zh/0"]["input"] == "桌子上有什么动物？ Answer the question using a single word or phrase in English."
    assert rows["en/1"]["images"] == ["neulab/PangeaBench-xgqa split en row 1 column image"]
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| xgqa | exact_match (official) | 66.7 | 75.0 | 50.0 | 50.0 | 33.3 |" in md
    assert "4 samples read differently" in md


def test_mmmb_cn_file_is_chinese_and_vlmevalkit_matching_gives_0_to_full_width_colon(tmp_path: Path,
                                                                                     data: Path) -> None:
    # VLMEvalKit vlmeval/utils/matching_util.py can_infer_option: ".()[],:;!*#{}" become spaces, then an option
    # letter must stand alone; "答案：B" (full-width colon) is one word, no option text is in it -> not read -> 0.
    parrot_repo(data, ("en", "cn"))
    preds = [("en", 0, "A cat is sitting there."),  # official: the article "A" is a lone letter -> A (wrong)
             ("en", 1, "The answer is (A)."),  # both A (right)
             ("cn", 0, "答案：B"),  # official 0; robust B (right)
             ("cn", 1, "A")]
    res = run(tmp_path, "mmmb", [{"task": "mmmb", "split": s, "index": i, "prediction": p} for s, i, p in preds])
    t = res["tasks"]["mmmb"]
    assert t["official"]["by_language"] == {"en": 50.0, "zh": 50.0}
    assert t["metrics"]["accuracy"]["by_language"] == {"en": 100.0, "zh": 100.0}
    assert sorted(t["official"]["disagree"]) == ["cn/0", "en/0"]
    rows = samples(tmp_path, "mmmb")
    assert rows["cn/0"]["language"] == "zh" and rows["cn/0"]["official_answer"] is None
    assert rows["cn/0"]["split"] == "cn" and rows["cn/0"]["index"] == 0
    # vlmeval/vlm/parrot.py build_multi_choice_prompt: options as "A. dog", the instruction of the `_cn` dataset
    assert rows["cn/1"]["input"].endswith("\nC. green\n请直接用给定选项中的选项字母回答。")


def test_m3exam_letter_rule_and_seeded_random_fallback_counted(tmp_path: Path, data: Path) -> None:
    # neulab/Pangea .../tasks/m3exam/utils.py parse_multi_choice_response: r'\(?([A-D])[).:\s]' case-insensitive,
    # then any A-D, then option similarity > 0.7, else random.choice(['A','B','C','D']) (seeded here with 0).
    m3exam_repo(data)
    preds = [("english", 0, "I think it is a circle"),  # official: the "a " reads as A (gold "2" = B) -> 0
             ("english", 1, "我不知道"),  # official: no letter, no similar option -> random; robust: refusal -> 0
             ("english", 2, "and so it is C"),  # official: the "d " of "and" -> D -> 0; robust C -> 1
             ("chinese", 0, "B")]
    res = run(tmp_path, "m3exam", [{"task": "m3exam", "split": s, "row": r, "prediction": p} for s, r, p in preds])
    t = res["tasks"]["m3exam"]
    draw = random.Random(0).choice(["A", "B", "C", "D"])
    assert t["official"]["random_fallback"] == 1
    assert t["official"]["by_language"]["en"] == pytest.approx(100 * (draw == "B") / 3)
    assert t["metrics"]["accuracy"]["by_language"] == {"en": pytest.approx(200 / 3), "zh": 100.0}
    rows = samples(tmp_path, "m3exam")
    assert rows["english/1"]["random_fallback"] is True and rows["english/1"]["official_answer"] == draw
    assert rows["english/0"]["official_answer"] == "A" and rows["english/0"]["extracted"] == "B"
    assert rows["english/2"]["official_answer"] == "D" and rows["english/2"]["extracted"] == "C"
    # construct_prompt: the hint, the first "(image)[...]" as <image>, options standardised to "(A) ...", "Answer:"
    first = rows["english/0"]["input"]
    assert first.startswith("The following is a multiple choice question about Math.")
    assert "What is shown in <image>?\n(A) a square\n(B) a circle\n(C) a line\n(D) a dot\nAnswer:" in first
    assert len(rows["english/0"]["images"]) == 1 and rows["english/1"]["images"] == []


def test_missing_dataset_names_its_download_command(tmp_path: Path, data: Path) -> None:
    tasks, _ = resolve(["xgqa"])
    with pytest.raises(TaskError, match=r"huggingface-cli download --repo-type dataset neulab/PangeaBench-xgqa "
                                        r"--local-dir \$POLYVLM_EVAL_DATA/neulab/PangeaBench-xgqa"):
        tasks[0].samples()


def test_tasks_list_shows_languages_repo_and_presence(tmp_path: Path, data: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    xgqa_repo(data)
    assert eval_main(["--tasks", "list"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("xgqa "))
    assert "local" in line and "neulab/PangeaBench-xgqa" in line and "bn,de,en,id,ko,pt,ru,zh" in line
    mmmb = next(x for x in out.splitlines() if x.startswith("mmmb "))
    assert "missing" in mmmb and "ar,en,pt,ru,tr,zh" in mmmb
    assert "huggingface-cli download --repo-type dataset AIDC-AI/Parrot-dataset" in out
    assert "pangeabench = " in out


def test_suite_averages_en_and_mul_over_its_tasks(tmp_path: Path, data: Path) -> None:
    xgqa_repo(data)
    m3exam_repo(data)
    suite = tmp_path / "mini.yaml"
    suite.write_text("suite: mini\ntasks: [xgqa, m3exam]\n")
    records = [{"task": "xgqa", "split": s, "row": r, "prediction": "no"} for s, r in
               [("en", 0), ("en", 1), ("en", 2), ("en", 3), ("zh", 0), ("zh", 1)]]
    records += [{"task": "m3exam", "split": s, "row": r, "prediction": "B"} for s, r in
                [("english", 0), ("english", 1), ("english", 2), ("chinese", 0)]]
    res = run(tmp_path, str(suite), records, "--batch_size", "2", "--log_samples")
    s = res["suites"][0]
    assert s["tasks"]["xgqa"] == {"en": 50.0, "mul": 0.0}
    assert s["tasks"]["m3exam"]["en"] == pytest.approx(200 / 3) and s["tasks"]["m3exam"]["mul"] == 100.0
    assert s["en"] == pytest.approx((50 + 200 / 3) / 2) and s["mul"] == pytest.approx(50.0)
