"""PangeaBench tasks from their Hub layouts: XM100 CIDEr against pycocoevalcap (the official scorer), and the
official rules of MaRVL, MaXM, xMMMU and CVQA worked out by hand from neulab/Pangea's lmms-eval task code."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from published_fixtures import cvqa_repo, marvl_repo, maxm_repo, xm100_repo, xmmmu_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.metrics.official import ptb_tokenize

CAPTIONS = {
    "en": ["A dog runs on the green grass.", "Two people are riding bikes down a street.",
           "A plate of food with rice and vegetables."],
    "zh": ["一只狗在绿色的草地上奔跑。", "两个人在街上骑自行车。", "一盘有米饭和蔬菜的食物。"],
}
PREDICTIONS = {
    "en": ["a dog running on grass", "Two people ride bicycles on a street.", "rice, vegetables and meat"],
    # the second is the reference itself; the third answers in English (a wrong-language caption)
    "zh": ["一只狗在草地上跑。", "两个人在街上骑自行车。", "A plate of rice with vegetables."],
}


def pycocoevalcap_cider(refs: list[str], preds: list[str]) -> float:
    """What xm100/utils.py xm100_aggregation_result computes: PTBTokenizer (Stanford, Java) then Cider, x100."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": r}] for i, r in enumerate(refs)}
    res = {i: [{"caption": p}] for i, p in enumerate(preds)}
    tok = PTBTokenizer()
    score, _ = Cider().compute_score(tok.tokenize(gts), tok.tokenize(res))
    return 100 * float(score)


needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTBTokenizer runs Java")


@needs_java
def test_ptb_tokenisation_matches_pycocoevalcap() -> None:
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    texts = ["A dog's toy, isn't it?", "Two (2) people... riding \"bikes\"!", "It costs $5.50; cheap.",
             "一只狗在草地上跑。", "两个人，在街上「骑」自行车！", "Ｆｕｌｌ-width ＡＢＣ。", "well-known: don't, can't",
             "50% of U.S. cats", "e.g. dogs & cats", "Собака бежит по траве.", "كلب يجري على العشب.",
             "It's 3:30 p.m.", "a b-c -- d", "l'homme d'affaires", "We're here, they've gone."]
    ref = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
    for i, t in enumerate(texts):
        assert " ".join(ptb_tokenize(t)) == ref[i][0], t


@needs_java
def test_xm100_official_cider_equals_pycocoevalcap_and_keeps_chinese_unsplit(tmp_path: Path, data: Path) -> None:  # noqa: F811
    pytest.importorskip("pycocoevalcap")
    xm100_repo(data, CAPTIONS)
    records = [{"task": "xm100", "split": s, "row": r, "prediction": p}
               for s, preds in PREDICTIONS.items() for r, p in enumerate(preds)]
    t = run(tmp_path, "xm100", records)["tasks"]["xm100"]
    for lang in ("en", "zh"):
        assert t["official"]["by_language"][lang] == pytest.approx(
            pycocoevalcap_cider(CAPTIONS[lang], PREDICTIONS[lang]), abs=1e-6)
    # the PTB tokenisation leaves each Chinese caption one token: only the exact copy scores, per character it differs
    assert t["metrics"]["cider_d"]["by_language"]["zh"] > t["official"]["by_language"]["zh"]
    assert t["official"]["overall"] == pytest.approx(sum(t["official"]["by_language"].values()) / 2)
    assert t["official"]["disagree"] is None  # a corpus score: no per-sample right/wrong to compare
    rates = t["answered_in_language"]
    assert rates["rate"] == {"en": 100.0, "zh": pytest.approx(200 / 3)} and rates["checked"] == {"en": 3, "zh": 3}


def test_marvl_official_reads_know_as_no(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # tasks/marvl/utils.py marvl_process_result: "yes" in it -> true, elif "no" in it -> false ("I don't know")
    marvl_repo(data)
    preds = [("en", 0, "Yes."), ("en", 1, "I don't know"), ("en", 2, "False"), ("zh", 0, "是")]
    t = run(tmp_path, "marvl", [{"task": "marvl", "split": s, "row": r, "prediction": p}
                                for s, r, p in preds])["tasks"]["marvl"]
    assert t["official"]["by_language"] == {"en": 100.0, "zh": 0.0}
    assert t["metrics"]["accuracy"]["by_language"] == {"en": pytest.approx(200 / 3), "zh": 100.0}
    assert sorted(t["official"]["disagree"]) == ["en/1", "zh/0"]
    rows = samples(tmp_path, "marvl")
    assert rows["en/0"]["input"] == "The left image contains two dogs. Answer with the option directly."


def test_maxm_official_exact_match_is_raw(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # tasks/maxm/utils.py exact_match_with_multiple_references: `pred in answers`, no normalisation
    maxm_repo(data)
    preds = [("en", 0, "Yes"), ("en", 1, "2."), ("zh", 0, "红色")]
    t = run(tmp_path, "maxm", [{"task": "maxm", "split": s, "row": r, "prediction": p}
                               for s, r, p in preds])["tasks"]["maxm"]
    assert t["official"]["by_language"] == {"en": 50.0, "zh": 100.0}
    assert t["metrics"]["exact_match"]["by_language"] == {"en": 100.0, "zh": 100.0}
    rows = samples(tmp_path, "maxm")
    assert rows["zh/0"]["input"] == ("Given the image and the question, provide a concise answer. 车是什么颜色？"
                                     "\nAnswer the question using a single word or phrase in Chinese.")
    assert len(rows["en/0"]["images"]) == 1
    # answers asked for in the split's language are checked by py3langid; one-word answers are too short to tell
    assert t["answered_in_language"]["too_short"] == {"en": 2, "zh": 1} and t["answered_in_language"]["rate"] == {}


def test_xmmmu_mmmu_rules_with_seeded_random_letter(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # tasks/xmmmu/utils.py (MMMU eval_utils): "B " as a word -> B; nothing readable -> random.choice(all_choices);
    # open answers: the tail after "is ", numbers compared as floats rounded to 2 places
    xmmmu_repo(data)
    preds = [("en", 0, "The answer is B because it has four sides"), ("en", 1, "I am not sure."),
             ("en", 2, "The result is 3.50")]
    t = run(tmp_path, "xmmmu", [{"task": "xmmmu", "split": s, "row": r, "prediction": p}
                                for s, r, p in preds])["tasks"]["xmmmu"]
    draw = random.Random(0).choice(["A", "B"])
    assert t["official"]["random_fallback"] == 1
    assert t["official"]["by_language"]["en"] == pytest.approx(100 * (2 + (draw == "A")) / 3)
    assert t["metrics"]["accuracy"]["by_language"]["en"] == pytest.approx(200 / 3)
    rows = samples(tmp_path, "xmmmu")
    assert rows["en/0"]["input"] == ("Which shape is <image>?\nA. A circle\nB. A square\n"
                                     "Answer with the option letter from the given choices directly.")
    assert rows["en/2"]["input"].endswith("\nAnswer the question using a single word or phrase.")
    assert rows["en/0"]["category"] == "Math" and len(rows["en/0"]["images"]) == 1


def test_cvqa_scores_both_languages_and_leaves_hidden_labels_unscored(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # tasks/cvqa/utils.py: the prompt "Question: ... Options: A. ..."; cvqa_translated.yaml asks in English
    cvqa_repo(data)
    records = [{"task": "cvqa", "split": "test", "row": 0, "prediction": "B"},
               {"task": "cvqa", "id": "test/0/en", "prediction": "b"},  # any-case letter: B
               {"task": "cvqa", "split": "test", "row": 1, "prediction": "A"},
               {"task": "cvqa", "id": "test/1/en", "prediction": "A"}]
    t = run(tmp_path, "cvqa", records)["tasks"]["cvqa"]
    assert t["official"]["by_language"] == {"en": 100.0, "ja": 100.0} and t["unlabeled"] == 2
    assert t["en"] == 100.0 and t["mul"] == 100.0
    rows = samples(tmp_path, "cvqa")
    assert rows["test/0"]["input"].startswith("Question: これは何ですか？ \n\n Options: A. 寿司\nB. ラーメン")
    assert rows["test/0/en"]["input"].startswith("Question: What is this? \n\n Options: A. sushi\nB. ramen")
    assert rows["test/1"]["official_answer"] == "A" and rows["test/1"]["category"] == "Oromo-Ethiopia"
    # Oromo has answer phrases of its own (polyvlm/eval/prompts/language_forms.yaml): no English fallback
    assert "english_fallback" not in t


def test_mmmu_val_and_mmmu_pro_as_lmms_eval_builds_them(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # lmms-eval lmms_eval/tasks/mmmu/utils.py (Dec 2024): f"{question}\n{options}\n\n{MULTI_CHOICE_PROMPT}", the
    # <image n> tokens left in the text, the pictures the distinct ones named, sorted; mmmu_pro: the config
    # "standard (10 options)" and "Answer with the option letter ..."
    from published_fixtures import mmmu_repos, muirbench_repo

    mmmu_repos(data)
    muirbench_repo(data)
    records = [*({"task": "muirbench", "split": "test", "row": i, "prediction": "B."} for i in range(4)),{"task": "mmmu_val", "split": "validation", "row": 0, "prediction": "(B) different"},
               {"task": "mmmu_val", "split": "validation", "row": 1, "prediction": "The area is 12.0"},
               {"task": "mmmu_pro", "split": "test", "row": 0, "prediction": "J"}]
    res = run(tmp_path, "mmmu_val,mmmu_pro,muirbench", records)  # the whole mammoth_vl suite: test_published_mammoth
    assert res["tasks"]["mmmu_val"]["official"]["overall"] == 100.0
    assert res["tasks"]["mmmu_pro"]["official"]["overall"] == 100.0
    rows = samples(tmp_path, "mmmu_val")
    assert rows["validation/0"]["input"] == ("Compare <image 2> with <image 1>.\nA. same\nB. different\n\n"
                                             "Answer with the option's letter from the given choices directly.")
    assert [x.rsplit(" ", 1)[-1] for x in rows["validation/0"]["images"]] == ["image_1", "image_2"]
    assert rows["validation/1"]["input"].endswith("?\n\nAnswer the question using a single word or phrase.")
    pro = samples(tmp_path, "mmmu_pro")["test/0"]
    assert pro["input"].endswith("J. choice J\n\nAnswer with the option letter from the given choices directly.")
    assert pro["category"] == "History"


def test_muirbench_reads_a_leading_letter_or_the_whole_reply(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # lmms-eval lmms_eval/tasks/muirbench/utils.py (7548ebe1): "^\s*([A-Z])\." else the reply itself, compared
    # with the answer lower-cased and trimmed
    from published_fixtures import muirbench_repo

    muirbench_repo(data)
    preds = ["B. two cats", "(B)", "b", "The answer is B"]
    t = run(tmp_path, "muirbench", [{"task": "muirbench", "split": "test", "row": i, "prediction": p}
                                    for i, p in enumerate(preds)])["tasks"]["muirbench"]
    assert t["official"]["overall"] == 50.0 and t["metrics"]["accuracy"]["overall"] == 100.0
    assert sorted(t["official"]["disagree"]) == ["test/1", "test/3"]
    rows = samples(tmp_path, "muirbench")
    assert len(rows["test/0"]["images"]) == 2 and rows["test/0"]["images"][1].endswith("column image_list[1]")
    assert rows["test/0"]["input"] == ("How many cats are in <image> and <image>?\nA. one\nB. two\nC. three\n"
                                       "Answer with the option's letter from the given choices directly.")


def test_xmmmu_official_keeps_a_list_literal_answer_as_one_string(tmp_path: Path, data: Path) -> None:  # noqa: F811
    """Pangea's tasks/xmmmu/utils.py, as lmms-eval's mmmu: mmmu_process_results passes doc["answer"] unparsed to
    evaluate_mmmu, so eval_open normalises a stored list literal as one string (a reply must hold that whole text);
    the robust score accepts each listed value."""
    from datasets import Image as ImageFeature
    from datasets import Value
    from published_fixtures import png, write_split

    features = {"id": Value("string"), "question": Value("string"), "options": Value("string"),
                "question_type": Value("string"), "answer": Value("string"),
                **{f"image_{i}": ImageFeature() for i in range(1, 8)}}
    pictures = {"image_1": {"bytes": png(), "path": None}, **{f"image_{k}": None for k in range(2, 8)}}
    write_split(data, "neulab/PangeaBench-xmmmu", "fr", [
        {"id": "validation_Math_1", "question": "Rapport dans <image 1> ?", "options": "[]", "question_type": "open",
         "answer": "['24/7', '3.429']", **pictures},
        {"id": "validation_Math_2", "question": "Aire de <image 1> ?", "options": "[]", "question_type": "open",
         "answer": "12", **pictures}], features)
    preds = ["Le rapport is 3.429", "The area is 12"]
    t = run(tmp_path, "xmmmu", [{"task": "xmmmu", "split": "fr", "row": i, "prediction": p}
                                for i, p in enumerate(preds)])["tasks"]["xmmmu"]
    assert t["official"]["by_language"]["fr"] == 50.0 and t["metrics"]["accuracy"]["by_language"]["fr"] == 100.0
    assert t["official"]["disagree"] == ["fr/0"]
