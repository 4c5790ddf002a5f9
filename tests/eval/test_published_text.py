"""Text benchmarks as lm-evaluation-harness scores them: XStoryCloze from the Hub's parquet export, choices scored
by log-likelihood on a checkpoint (acc, acc_norm; checked against transformers' own loss) and by a generated
letter for endpoints (stated in the results)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from eval_fakes import tiny_checkpoint
from published_fixtures import xstorycloze_repo
from test_published import data, run, samples  # noqa: F401  (the fixture and helpers)

from polyvlm.eval.backends import GeneratorBackend
from polyvlm.eval.loglik import acc_and_norm
from polyvlm.eval.runner import evaluate
from polyvlm.eval.tasks import resolve

STORIES = {
    "en": [(["Tom went to the shop.", "He wanted milk.", "The shop was closed.", "He went home."],
            "He was sad.", "He bought a very large amount of milk at the shop.", 1),
           (["Ana planted seeds.", "She watered them.", "Weeks passed.", "Green shoots came up."],
            "Ana was happy.", "The seeds were rocks.", 1)],
    "ru": [(["Маша пошла в лес.", "Она искала грибы.", "Пошёл дождь.", "Маша промокла."],
            "Она вернулась домой.", "Грибы запели.", 1)],
}


def reference_loglik(llm: torch.nn.Module, tokenizer, context: str, choice: str) -> float:
    """transformers' own loss over the continuation tokens (labels -100 on the context), times their count:
    the summed log-likelihood lm-eval compares (lm_eval/models/huggingface.py _loglikelihood_tokens)."""
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    whole = tokenizer(context + " " + choice, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([whole])
    labels = ids.clone()
    labels[0, : len(ctx)] = -100
    with torch.no_grad():
        loss = llm(input_ids=ids, labels=labels).loss
    return -float(loss) * (len(whole) - len(ctx))


def test_xstorycloze_loglikelihood_on_a_checkpoint(tmp_path: Path, data: Path) -> None:  # noqa: F811
    import polyvlm

    xstorycloze_repo(data, STORIES)
    generator = polyvlm.load_generator(str(tiny_checkpoint(tmp_path / "ckpt")))
    tasks, _ = resolve(["xstorycloze"])
    res = evaluate(tasks, tmp_path / "out", backend=GeneratorBackend(generator, 2))
    assert res is not None
    t = res["tasks"]["xstorycloze"]
    assert t["scored_by"].startswith("loglikelihood") and t["official"]["metric"] == "acc"
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "samples_xstorycloze.jsonl").read_text().splitlines())}
    accs, norms = [], []
    llm, tok = generator.model.llm, generator.processor.tokenizer
    for lang, stories in STORIES.items():
        for i, (sentences, q1, q2, right) in enumerate(stories):
            context = " ".join(sentences)
            lls = json.loads(rows[f"{lang}/{i}"]["prediction"])
            assert lls == pytest.approx([reference_loglik(llm, tok, context, q) for q in (q1, q2)], abs=1e-4)
            acc, norm = acc_and_norm(lls, [q1, q2], right - 1)
            accs.append(acc)
            norms.append(norm)
            assert rows[f"{lang}/{i}"]["scores"]["acc_norm"] == norm
    assert t["official"]["overall"] == pytest.approx(100 * sum(accs) / len(accs))
    assert t["metrics"]["acc_norm"]["overall"] == pytest.approx(100 * sum(norms) / len(norms))


def test_acc_norm_divides_by_characters() -> None:
    # lm_eval/api/task.py process_results (multiple_choice): acc_norm = argmax(lls / len(choice))
    assert acc_and_norm([-10.0, -12.0], ["short", "a much longer ending"], 1) == (0.0, 1.0)
    assert acc_and_norm([-3.0, -3.0], ["ab", "ab"], 0) == (1.0, 1.0)  # ties: the first, as numpy's argmax


def test_xstorycloze_from_an_endpoint_is_read_from_the_reply(tmp_path: Path, data: Path) -> None:  # noqa: F811
    xstorycloze_repo(data, STORIES)
    records = [{"task": "xstorycloze", "split": "en", "row": 0, "prediction": "A"},
               {"task": "xstorycloze", "split": "en", "row": 1, "prediction": "Answer: B"},
               {"task": "xstorycloze", "split": "ru", "row": 0, "prediction": "Ответ: А"}]
    t = run(tmp_path, "xstorycloze", records)["tasks"]["xstorycloze"]
    assert t["scored_by"].startswith("generation") and "official" not in t
    assert t["metrics"]["accuracy"]["by_language"] == {"en": 50.0, "ru": 100.0}
    assert t["en"] == 50.0 and t["mul"] == 100.0
    assert samples(tmp_path, "xstorycloze")["en/0"]["input"].startswith("Tom went to the shop. He wanted milk.")


def test_mgsm_flexible_extract_beside_the_final_number(tmp_path: Path, data: Path) -> None:  # noqa: F811
    # lm_eval/tasks/mgsm/direct/direct_yaml: until "\n"; regex (-?[$0-9.,]{2,})|(-?[0-9]+), last match;
    # exact_match with ignore_case and ignore_punctuation against str(answer_number)
    from published_fixtures import mgsm_repo

    mgsm_repo(data, {"en": [("Tom has 3 apples and buys 15 more. How many?", 18)] * 4,
                     "bn": [("রাম ১২টি আম কিনল, ৬টি খেল। কত বাকি?", 6)], "zh": [("小明有5本书，又买了6本。", 11)]})
    preds = [("en", 0, "$18"), ("en", 1, "18.0"), ("en", 2, "Let me think.\n18"), ("en", 3, "It is 1,8"),
             ("bn", 0, "৬"), ("zh", 0, "答案是11。")]
    t = run(tmp_path, "mgsm", [{"task": "mgsm", "split": s, "row": r, "prediction": p}
                               for s, r, p in preds])["tasks"]["mgsm"]
    # official: "$18" -> 18 right; "18.0" -> "180" wrong; cut at "\n" -> no number; "1,8" -> "18" right (!);
    # Bengali digits are not [0-9] -> "[invalid]"; "11" right
    assert t["official"]["by_language"] == {"bn": 0.0, "en": 50.0, "zh": 100.0}
    assert t["metrics"]["mgsm"]["by_language"] == {"bn": 100.0, "en": 100.0, "zh": 100.0}  # "1,8": 18 for both
    rows = samples(tmp_path, "mgsm")
    assert rows["en/2"]["official_answer"] == "[invalid]" and rows["bn/0"]["official_answer"] == "[invalid]"
    assert rows["zh/0"]["input"] == "问题： 小明有5本书，又买了6本。\nAnswer:"
