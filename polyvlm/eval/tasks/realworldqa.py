"""RealWorldQA as lmms-eval defines it (lmms_eval/tasks/realworldqa/ at 3b686384: realworldqa.yaml, utils.py):
lmms-lab/RealWorldQA split test, the question as written (its own instruction kept), the `flexible-extract` filters
(a whole-reply number word -> digits; an option's text found in the reply -> that option's letter) and
`exact_match` ignoring case and ASCII punctuation."""

from __future__ import annotations

import random
import re
from typing import Any

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.metrics.text import normalize_answer
from polyvlm.eval.tasks.ai2d import hf_exact_match
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

_NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                 "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_CHOICE = re.compile(r"\b([A-Z])\.\s+([^\n]*)")


def realworldqa_filter(response: str, question: str) -> str:
    """NumberWordsToDigitsFilter then MultiChoiceRegexFilter, quirks included: the option texts are every
    "X. text" in the question, lettered A, B, ... in the order found (whatever letter they were written with); the
    reply loses everything but letters, digits, "_" and spaces, and the first option text found inside it (even
    inside a word: "right" in "brightness") gives that letter; otherwise the cleaned reply."""
    response = _NUMBER_WORDS.get(response.lower(), response)
    texts = [t.strip() for _, t in _CHOICE.findall(question)]
    letters = {t: chr(65 + i) for i, t in enumerate(texts)}  # a repeated text keeps its last letter, as a dict does
    cleaned = re.sub(r"[^\w\s]", "", response).strip()
    m = re.search("|".join(re.escape(t) for t in texts), cleaned)
    return letters[m.group()] if m and m.group() in letters else cleaned


@register_published
class RealWorldQA(PublishedTask):
    """Columns image, question (options and instruction included), answer (a letter, a number or a word)."""

    task_name, repo, kind = "realworldqa", "lmms-lab/RealWorldQA", "vqa"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/realworldqa/ (realworldqa.yaml flexible-extract + "
             "exact_match, utils.py NumberWordsToDigitsFilter, MultiChoiceRegexFilter)")
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question = str(record["question"]).strip()
        options = {k: v.strip() for k, v in re.findall(r"^([A-Z])\.\s+(.*)$", question, re.MULTILINE)}
        return Sample(id=f"{split}/{row}", prompt=question, target=str(record["answer"]).strip(), language=language,
                      options=options)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        if sample.options and sample.target.upper() in sample.options:
            return extract_choice(prediction, sample.options)
        said = normalize_answer(prediction)
        return Extraction(_NUMBER_WORDS.get(said, said) or None, "normalised")

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        per = [float(a is not None and normalize_answer(a) == normalize_answer(s.target)) for s, a in zip(samples, answers)]
        return {m: per for m in self.metrics}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        # the filters see the reply as the model wrapper returns it: MAmmoTH-VL's llava_onevision (lmms-eval
        # models/llava_onevision.py generate_until) strips it, so "Two\n" is still a number word
        read = [realworldqa_filter(p.strip(), s.prompt).strip() for s, p in zip(samples, predictions)]
        return Official("exact_match", [float(hf_exact_match(r, s.target)) for s, r in zip(samples, read)], read)
