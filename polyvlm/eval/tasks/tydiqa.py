"""TyDi QA GoldP (google-research-datasets/tydiqa, config `secondary_task`, split `validation`; the language is
the `id` prefix) scored per language as the official GoldP evaluation does: the SQuAD v1.1 script's F1 and exact
match, beside polyvlm's script-aware token F1 and exact match."""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from typing import Any

from polyvlm.eval.metrics import MetricResult, mean_result, register_metric
from polyvlm.eval.metrics.text import tokenize
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

# the `id` prefix of each GoldP row -> language code
LANGUAGES = {"arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id",
             "japanese": "ja", "korean": "ko", "russian": "ru", "swahili": "sw", "telugu": "te", "thai": "th"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = set(string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 `normalize_answer`: lower case, ASCII punctuation removed, English articles removed, whitespace
    collapsed. Nothing else: full-width `。`, Arabic `ال` and unspaced scripts stay as they are."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_f1_one(prediction: str, truth: str) -> float:
    """SQuAD v1.1 `f1_score`: bag-of-tokens F1 of the normalised strings split on whitespace."""
    pred, gold = squad_normalize(prediction).split(), squad_normalize(truth).split()
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


@register_metric("squad_em", help="SQuAD v1.1 exact match (lower case, ASCII punctuation, English articles)")
def squad_em(predictions: list[str], references: list[list[str]]) -> MetricResult:
    return mean_result([float(any(squad_normalize(p) == squad_normalize(r) for r in refs))
                        for p, refs in zip(predictions, references)])


@register_metric("token_f1", help="best token F1 over the references on script-aware tokens (CJK/Thai per character)")
def token_f1(predictions: list[str], references: list[list[str]]) -> MetricResult:
    def f1(p: list[str], g: list[str]) -> float:
        same = sum((Counter(p) & Counter(g)).values())
        return 0.0 if same == 0 else 2 * same / (len(p) + len(g))

    return mean_result([max(f1(tokenize(p), tokenize(r)) for r in refs) for p, refs in zip(predictions, references)])


@register_published
class TyDiQA(PublishedTask):
    """One passage and one question per row; the reply is compared with every gold span (`answers.text`)."""

    task_name, repo, kind = "tydiqa", "google-research-datasets/tydiqa", "text"
    config = "secondary_task"
    splits = {"validation": "mul"}  # one split; each row's language comes from its id
    cites = ("google-research-datasets/tydiqa README (GoldP is scored with the SQuAD 1.1 evaluation script), "
             "SQuAD evaluate-v1.1.py (normalize_answer, f1_score, exact_match_score, max over ground truths)")
    max_new_tokens = 32
    image_columns = ()
    default_metrics = ["squad_em", "token_f1", "exact_match"]
    open_ended = True  # spans of a passage in the question's language: the results give the rate answered so

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {**super().describe(), "languages": sorted(LANGUAGES.values())}

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        prefix = str(record["id"]).split("-", 1)[0]
        if prefix not in LANGUAGES:
            raise ValueError(f"id {record['id']!r} does not start with a TyDi QA language ({', '.join(LANGUAGES)})")
        answers = [str(a) for a in record["answers"]["text"]]
        if not answers:
            raise ValueError(f"id {record['id']}: no gold answer in `answers.text`")
        prompt = (f"Answer the question with a short span copied from the passage.\n\nPassage: {record['context']}"
                  f"\n\nQuestion: {record['question']}\nAnswer:")
        return Sample(id=f"{split}/{row}", prompt=prompt, target=answers, language=LANGUAGES[prefix],
                      extra={"tydiqa_id": record["id"]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        """The SQuAD v1.1 F1 of each reply (best over the gold spans); the answer shown is the normalised reply."""
        per = [max(squad_f1_one(p, t) for t in s.references()) for s, p in zip(samples, predictions)]
        return Official("f1", per, [squad_normalize(p) for p in predictions])
