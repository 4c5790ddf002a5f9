"""Text benchmarks as lm-evaluation-harness defines them: XStoryCloze (lm_eval/tasks/xstorycloze/default_*.yaml),
scored by log-likelihood (`acc`, `acc_norm`) for checkpoints and by the letter of a generated reply for endpoints,
and MGSM (lm_eval/tasks/mgsm/direct/), its official reading beside polyvlm's final-number reading."""

from __future__ import annotations

import json
import math
import random
import re
import string
from typing import Any

from polyvlm.eval.extract import Extraction, english_fallback, extract_choice
from polyvlm.eval.loglik import acc_and_norm
from polyvlm.eval.tasks.base import Sample, TaskSpec
from polyvlm.eval.tasks.hub import load_split
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

LOGLIK = "loglikelihood"


def logliks_of(prediction: str) -> list[float] | None:
    """A log-likelihood prediction is the JSON list of the choices' log-likelihoods; anything else is text."""
    text = prediction.strip()
    if not text.startswith("["):
        return None
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        return None
    return [float(v) for v in values] if isinstance(values, list) and values else None


@register_published
class XStoryCloze(PublishedTask):
    """juletxara/xstory_cloze: one config per language, split `eval`; context = the four sentences joined by
    spaces, choices = the two endings (after one space), gold = answer_right_ending - 1."""

    task_name, repo, kind = "xstorycloze", "juletxara/xstory_cloze", "mcq"
    splits = {c: c for c in ("en", "ar", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh")}  # configs
    cites = "EleutherAI/lm-evaluation-harness lm_eval/tasks/xstorycloze/default_*.yaml (multiple_choice, acc)"
    max_new_tokens = 8
    image_columns = ()
    loglik = True  # checkpoints: choices scored by log-likelihood; endpoints: a generated letter
    parsed = True

    def __init__(self, spec: TaskSpec | None = None):
        super().__init__(spec)
        self.metrics = ["accuracy", "acc_norm"]  # acc_norm: lm-eval's length-normalised choice

    def dataset(self, split: str) -> Any:
        return load_split(self.repo, "eval", self.name, config=split)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        context = " ".join(record[f"input_sentence_{i}"] for i in range(1, 5))
        choices = [record["sentence_quiz1"], record["sentence_quiz2"]]
        gold = int(record["answer_right_ending"]) - 1
        options = {"A": choices[0], "B": choices[1]}
        prompt = f"{context}\nWhich ending fits the story?\nA. {choices[0]}\nB. {choices[1]}\nAnswer with the letter."
        return Sample(id=f"{split}/{row}", prompt=prompt, target="AB"[gold], language=language, options=options,
                      extra={"context": context, "choices": choices, "gold": gold})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        lls = logliks_of(prediction)
        if lls is not None:
            sample.extra["acc_norm"] = acc_and_norm(lls, sample.extra["choices"], sample.extra["gold"])[1]
            return Extraction(string.ascii_uppercase[max(range(len(lls)), key=lambda i: (lls[i], -i))], LOGLIK)
        return extract_choice(prediction, sample.options)

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        return {"answer_phrases": english_fallback(languages, "phrases")}

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        acc = [float(a is not None and a == s.target) for s, a in zip(samples, answers)]
        norm = [s.extra.get("acc_norm", math.nan) for s in samples]
        return {"accuracy": acc, "acc_norm": norm}

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        values = [v for v in per_sample if not math.isnan(v)]
        return 100.0 * sum(values) / len(values) if values else math.nan

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official | None:
        """lm-eval's `acc` over log-likelihoods; generated replies have no official scorer (None)."""
        per = []
        for s, p in zip(samples, predictions):
            lls = logliks_of(p)
            if lls is None:
                return None
            per.append(acc_and_norm(lls, s.extra["choices"], s.extra["gold"])[0])
        return Official("acc", per, [p for p in predictions])


# lm_eval/tasks/mgsm/direct/mgsm_direct_<lang>.yaml: the test prompt's question word, the answer word, stop words
_MGSM = {
    "en": ("Question: ", "Answer:", "Question:"), "bn": ("প্রশ্ন: ", "Answer:", "প্রশ্ন:"),
    "de": ("Frage: ", "Antwort:", "Frage:"), "es": ("Pregunta: ", "Respuesta:", "Pregunta:"),
    "fr": ("Question : ", "Réponse :", "Question :"), "ja": ("問題： ", "Answer:", "問題："),
    "ru": ("Задача: ", "Answer:", "Задача:"), "sw": ("Swali: ", "Answer:", "Swali:"),
    "te": ("ప్రశ్న: ", "Answer:", "ప్రశ్న:"), "th": ("โจทย์: ", "Answer:", "โจทย์:"), "zh": ("问题： ", "Answer:", "问题："),
}
_MGSM_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_PUNCT = str.maketrans("", "", string.punctuation)


def mgsm_reading(prediction: str, stop: str) -> str:
    """lm-eval's mgsm_direct `flexible-extract`: the reply cut at its stop sequences ("\\n\\n", "\\n", the question
    word, "</s>", "<|im_end|>"), then the last match of (-?[$0-9.,]{2,})|(-?[0-9]+), else "[invalid]"."""
    for s in ("\n\n", "\n", stop, "</s>", "<|im_end|>"):
        prediction = prediction.split(s)[0]
    found = _MGSM_NUMBER.findall(prediction)
    if not found:
        return "[invalid]"
    groups = [g for g in found[-1] if g]
    return groups[0].strip() if groups else "[invalid]"


@register_published
class MGSM(PublishedTask):
    """juletxara/mgsm (the Hub's parquet export: `<lang>/test/`): the direct prompt of lm-eval's mgsm_direct."""

    task_name, repo, kind = "mgsm", "juletxara/mgsm", "text"
    splits = {c: c for c in _MGSM}  # configs
    cites = "EleutherAI/lm-evaluation-harness lm_eval/tasks/mgsm/direct/ (direct_yaml flexible-extract, exact_match)"
    max_new_tokens = 256
    image_columns = ()
    default_metrics = ["mgsm"]

    def dataset(self, split: str) -> Any:
        return load_split(self.repo, "test", self.name, config=split)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question_word, answer_word, _ = _MGSM[split]
        prompt = (f"{record['question']}\n{answer_word}" if record.get("answer") is not None
                  else f"{question_word}{record['question']}\n{answer_word}")
        return Sample(id=f"{split}/{row}", prompt=prompt, target=[str(record["answer_number"])], language=language)

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [mgsm_reading(p, _MGSM.get(s.extra["split"], _MGSM["en"])[2]) for s, p in zip(samples, predictions)]
        per = [float(r.lower().translate(_PUNCT) == s.target[0].lower().translate(_PUNCT))
               for s, r in zip(samples, read)]
        return Official("exact_match,flexible-extract", per, read)
