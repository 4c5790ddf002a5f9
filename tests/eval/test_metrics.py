"""Metric parity: CIDEr-D and ROUGE-L against pycocoevalcap, VQA accuracy against the official formula."""

from __future__ import annotations

import math
import re

import pytest
import sacrebleu

from polyvlm.eval.metrics import METRICS, get_metric
from polyvlm.eval.metrics.caption import cider_d_scores, rouge_l_one
from polyvlm.eval.metrics.text import anls_one, final_number, relaxed_match, tokenize
from polyvlm.eval.metrics.vqa import normalize_vqa, vqa_accuracy_one

CAPTIONS = [
    ("a black cat sleeps on a red sofa", ["a cat sleeping on a sofa", "black cat on the red couch", "a cat naps"]),
    ("two dogs run on the beach", ["two dogs running along a beach", "dogs playing at the sea"]),
    ("一只猫在沙发上睡觉", ["猫在红色沙发上睡觉", "一只黑猫躺在沙发上"]),
    ("แมวนอนบนโซฟา", ["แมวดำนอนบนโซฟาสีแดง"]),
    ("a man", ["a man riding a horse in a field", "person on a horse"]),
    ("", ["an empty street at night"]),
    ("猫が２匹います", ["二匹の猫がいます", "猫が二匹"]),
]


def test_cider_d_matches_pycocoevalcap() -> None:
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    cands = [tokenize(c) for c, _ in CAPTIONS]
    refs = [[tokenize(r) for r in rs] for _, rs in CAPTIONS]
    ours = cider_d_scores(cands, refs)
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(c)] for i, c in enumerate(cands)}
    mean, theirs = cider_mod.Cider().compute_score(gts, res)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert abs(a - float(b)) < 1e-6
    assert abs(get_metric("cider_d")([c for c, _ in CAPTIONS], [r for _, r in CAPTIONS]).score - 100 * mean) < 1e-4


def test_rouge_l_matches_pycocoevalcap() -> None:
    rouge_mod = pytest.importorskip("pycocoevalcap.rouge.rouge")
    scorer = rouge_mod.Rouge()
    for cand, refs in CAPTIONS:
        c, rs = tokenize(cand), [tokenize(r) for r in refs]
        if not c:
            continue
        assert abs(rouge_l_one(c, rs) - scorer.calc_score([" ".join(c)], [" ".join(r) for r in rs])) < 1e-9


def test_cider_scores_identical_caption_highest() -> None:
    refs = [["a cat on a mat", "a cat sits on a mat"], ["a dog in a park", "dog playing in the park"]]
    good = get_metric("cider_d")(["a cat on a mat", "a dog in a park"], refs).score
    bad = get_metric("cider_d")(["a dog in a park", "a cat on a mat"], refs).score
    assert good > bad


def test_tokenizer_segments_unspaced_scripts() -> None:
    assert tokenize("两只猫") == ["两", "只", "猫"]
    assert tokenize("แมว") == ["แ", "ม", "ว"]
    assert tokenize("ตั") == ["ตั"]  # the combining vowel stays with its consonant
    assert tokenize("Ｈｅｌｌｏ, World!") == ["hello", "world"]
    assert tokenize("Кошка, собака; قطة") == ["кошка", "собака", "قطة"]


def test_bleu_gives_chinese_partial_credit() -> None:
    # one token per clause would score 0; per-character tokens see the shared n-grams.
    assert get_metric("bleu4")(["一只猫在沙发上睡觉"], [["一只猫在沙发上睡觉了"]]).score > 50


def official_vqa(pred: str, answers: list[str]) -> float:
    """The VQA evaluation loop written out: each human answer left out in turn, matches among the rest."""
    res = normalize_vqa(pred)
    gts = [normalize_vqa(a) for a in answers]
    accs = []
    for i in range(len(gts)):
        others = gts[:i] + gts[i + 1:]
        accs.append(min(1.0, sum(o == res for o in others) / 3))
    return sum(accs) / len(accs)


@pytest.mark.parametrize("pred,answers,expected", [
    ("2", ["2"] * 10, 1.0),
    ("2", ["2"] * 3 + ["3"] * 7, 0.9),  # 3 x min(2/3,1) + 7 x 1 over 10
    ("2", ["2"] * 2 + ["3"] * 8, 0.6),
    ("2", ["2"] + ["3"] * 9, 0.3),
    ("2", ["3"] * 10, 0.0),
    ("2", ["2"] * 4 + ["3"] * 6, 1.0),
    ("Two", ["2"] * 3 + ["3"] * 7, 0.9),  # number words become digits
    ("The dog.", ["dog"] * 10, 1.0),  # articles and final period dropped
    ("yes!", ["yes"] * 10, 1.0),
    ("dont", ["don't"] * 10, 1.0),  # contraction restored
    ("1,000", ["1000"] * 10, 1.0),  # comma between digits removed
    ("red-white", ["red white"] * 10, 1.0),
])
def test_vqa_accuracy_official_formula(pred: str, answers: list[str], expected: float) -> None:
    assert vqa_accuracy_one(pred, answers) == pytest.approx(expected)
    assert vqa_accuracy_one(pred, answers) == pytest.approx(official_vqa(pred, answers))


def test_vqa_accuracy_random_cases_equal_official_loop() -> None:
    import random

    rng = random.Random(0)
    vocab = ["yes", "no", "2", "two", "the cat", "cat", "red"]
    for _ in range(200):
        answers = [rng.choice(vocab) for _ in range(10)]
        pred = rng.choice(vocab)
        assert vqa_accuracy_one(pred, answers) == pytest.approx(official_vqa(pred, answers))


def test_relaxed_anls_mgsm() -> None:
    assert relaxed_match("104", "100") and not relaxed_match("106", "100")
    assert relaxed_match("12%", "0.12") and relaxed_match("Paris", "paris")
    assert anls_one("hello wrld", ["hello world"]) == pytest.approx(1 - 1 / 11)
    assert anls_one("completely different", ["abc"]) == 0.0
    assert final_number("So she has ١٢ apples.") == 12.0
    assert final_number("答案是 1,234。") == 1234.0
    assert final_number("La respuesta es -3.5.") == -3.5
    assert get_metric("mgsm")(["Step 1: 3+4=7. The answer is 7"], [["7"]]).score == 100.0


def test_chrf_is_sacrebleu() -> None:
    hyps, refs = ["the cat sat", "o gato"], [["the cat sat down"], ["o gato preto"]]
    ours = get_metric("chrf")(hyps, refs).score
    assert math.isclose(ours, sacrebleu.corpus_chrf(hyps, [[r[0] for r in refs]]).score)


def test_every_metric_handles_empty_predictions() -> None:
    for name in METRICS.names():
        if get_metric(name).scored_by != "references":
            continue  # accuracy and the judge scores: scored by their task (tests/eval/test_runner.py, test_judge*.py)
        res = get_metric(name)(["", "x"], [["a", "b"], ["x"]])
        assert len(res.per_sample) == 2 and all(math.isfinite(v) for v in res.per_sample), name


class OfficialVQAEval:
    """The accuracy loop of the VQA v2 evaluation tool (vqaEval.py, GT-Vision-Lab/VQA), transcribed without
    polyvlm code: its own punctuation, digit and article handling, applied when the human answers differ."""

    contractions = {"dont": "don't", "isnt": "isn't", "whats": "what's", "cant": "can't", "thats": "that's"}
    manual_map = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                  "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
    articles = ["a", "an", "the"]
    period_strip = re.compile(r"(?!<=\d)(\.)(?!\d)")
    comma_strip = re.compile(r"(\d)(,)(\d)")
    punct = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]

    def process_punctuation(self, in_text: str) -> str:
        out_text = in_text
        for p in self.punct:
            if (p + " " in in_text or " " + p in in_text) or (re.search(self.comma_strip, in_text) is not None):
                out_text = out_text.replace(p, "")
            else:
                out_text = out_text.replace(p, " ")
        return self.period_strip.sub("", out_text, re.UNICODE)

    def process_digit_article(self, in_text: str) -> str:
        out = []
        for word in in_text.lower().split():
            word = self.manual_map.setdefault(word, word)
            if word not in self.articles:
                out.append(word)
        for i, word in enumerate(out):
            if word in self.contractions:
                out[i] = self.contractions[word]
        return " ".join(out)

    def accuracy(self, res_ans: str, gt_answers: list[str]) -> float:
        gts = [{"answer": a.replace("\n", " ").replace("\t", " ").strip(), "answer_id": i}
               for i, a in enumerate(gt_answers)]
        res_ans = res_ans.replace("\n", " ").replace("\t", " ").strip()
        if len({g["answer"] for g in gts}) > 1:
            for g in gts:
                g["answer"] = self.process_digit_article(self.process_punctuation(g["answer"]))
            res_ans = self.process_digit_article(self.process_punctuation(res_ans))
        acc = []
        for datum in gts:
            others = [item for item in gts if item != datum]
            acc.append(min(1, float(len([item for item in others if item["answer"] == res_ans])) / 3))
        return sum(acc) / len(acc)


@pytest.mark.parametrize("pred,answers", [
    ("2", ["2"] * 3 + ["3"] * 7), ("Two", ["2", "two", "3", "3", "4", "2", "2", "3", "3", "3"]),
    ("The dog.", ["dog", "the dog", "a dog", "dogs", "dog", "cat", "dog", "dog", "puppy", "dog"]),
    ("yes!", ["yes", "yes", "no", "yes", "yes", "yes", "yes", "yes", "yes", "no"]),
    ("dont", ["don't", "dont", "no", "no", "no", "no", "no", "no", "no", "no"]),
    ("1,000", ["1000", "1,000", "1 000", "one thousand", "1000", "1000", "1000", "1000", "100", "1000"]),
    ("red-white", ["red white", "red-white", "red and white", "white", "red white", "red white", "red", "red",
                   "red white", "red white"]),
    ("left (near tree)", ["left", "left near tree", "left", "right", "left", "left", "left", "left", "left", "left"]),
    ("3.5", ["3.5", "3.5.", "35", "3", "4", "3.5", "3.5", "3.5", "3.5", "3.5"]),
    ("What's that?", ["whats that", "what's that", "no", "no", "no", "no", "no", "no", "no", "no"]),
    ("ten", ["10", "ten", "10", "9", "10", "10", "10", "11", "10", "10"]),
])
def test_vqa_accuracy_equals_the_official_tool(pred: str, answers: list[str]) -> None:
    """On the usual 10 differing human answers the score is the official tool's, to the last bit. (When all
    answers are identical the tool skips normalisation; polyvlm normalises anyway, as lmms-eval does for
    the prediction, so "The dog." still matches ten "dog".)"""
    assert len(set(answers)) > 1
    assert vqa_accuracy_one(pred, answers) == OfficialVQAEval().accuracy(pred, answers)


def test_cider_d_matches_pycocoevalcap_on_a_random_corpus() -> None:
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    import random

    rng = random.Random(7)
    vocab = "a the cat dog sits runs on under red blue sofa mat park 猫 狗 在 上".split()

    def sentence() -> list[str]:
        return [rng.choice(vocab) for _ in range(rng.randint(1, 14))]

    cands = [sentence() for _ in range(60)]
    refs = [[sentence() for _ in range(rng.randint(1, 5))] for _ in range(60)]
    ours = cider_d_scores(cands, refs)
    _, theirs = cider_mod.Cider().compute_score({i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)},
                                                {i: [" ".join(c)] for i, c in enumerate(cands)})
    assert max(abs(a - float(b)) for a, b in zip(ours, theirs)) < 1e-6


def test_metrics_registry_holds_every_metric_the_readme_lists() -> None:
    """README "Metrics (`polyvlm.eval.metrics.METRICS`): ..." names exactly the registry's metrics, the judge
    scores and MCQ accuracy included; those cannot be called on bare predictions, and say why."""
    from pathlib import Path

    from polyvlm.eval.tasks import TaskError, TaskSpec, build_task  # task modules register squad_em, token_f1

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    para = readme[readme.index("Metrics (`polyvlm.eval.metrics.METRICS`):"):]
    para = para[: para.index("Judge tasks and")]
    listed = set(re.findall(r"`([a-z][a-z0-9_]*)`", para))
    assert listed == set(METRICS.names())
    assert {"accuracy", "judge_rubric", "judge_relative", "judge_winrate"} <= listed
    for name, why in (("judge_rubric", "an LLM judge"), ("accuracy", "the task")):
        with pytest.raises(ValueError, match=f"metric {name} is scored by {why}"):
            get_metric(name)(["a"], [["a"]])
    assets = Path(__file__).resolve().parents[1] / "assets" / "eval"
    with pytest.raises(TaskError, match="task v: metric judge_rubric is scored by an LLM judge; use it in a judge task"):
        build_task(TaskSpec(name="v", type="vqa", data=str(assets / "vqa.jsonl"), metrics=["judge_rubric"]))
    assert build_task(TaskSpec(name="j", type="judge", data=str(assets / "chat.jsonl"), metrics=["judge_relative"]))
