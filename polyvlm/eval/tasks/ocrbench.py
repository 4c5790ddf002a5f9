"""OCRBench as lmms-eval defines it (lmms_eval/tasks/ocrbench/ at 3b686384: ocrbench.yaml, utils.py): echo840/OCRBench
split test, the question as the prompt, a hit when a gold answer is a substring of the lower-cased reply, and the
score the number of hits over 1000 (the benchmark's size, whatever the number of questions scored)."""

from __future__ import annotations

import math
import random
import unicodedata
from typing import Any

from polyvlm.eval.extract import Extraction
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

TOTAL = 1000  # ocrbench_aggregate_accuracy returns Final_score / 1000


def ocrbench_hit(prediction: str, answers: list[str], dataset: str) -> bool:
    """ocrbench_process_results: the reply lower-cased and trimmed; for HME100k (formulas) spaces and newlines
    are removed from both and the answer keeps its case (so an upper-case formula never matches); otherwise both
    lower-cased, newlines as spaces; right when any answer is a substring of the reply."""
    pred = prediction.lower().strip()
    for gold in answers:
        if dataset == "HME100k":
            answer = gold.strip().replace("\n", " ").replace(" ", "")
            said = pred.strip().replace("\n", " ").replace(" ", "")
        else:
            answer = gold.lower().strip().replace("\n", " ")
            said = pred.lower().strip().replace("\n", " ")
        if answer in said:
            return True
    return False


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


@register_published
class OCRBench(PublishedTask):
    """Columns dataset (the source set), question, question_type (the 10 categories), answer (a list), image."""

    task_name, repo, kind = "ocrbench", "echo840/OCRBench", "vqa"
    splits = {"test": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/ocrbench/ (ocrbench.yaml, utils.py ocrbench_process_results, ocrbench_aggregate_accuracy)"
    max_new_tokens = 128
    default_metrics = ["accuracy"]

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        answers = record["answer"]
        answers = [str(a) for a in answers] if isinstance(answers, list) else [str(answers)]
        return Sample(id=f"{split}/{row}", prompt=str(record["question"]).strip(), target=answers, language=language,
                      category=record.get("question_type"), extra={"dataset": record.get("dataset")})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(prediction, "raw")

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        """polyvlm's reading: an answer inside the reply after NFKC, case folding and removing every space (any
        script; formulas keep no case trap)."""
        per = [float(any(_fold(g) and _fold(g) in _fold(a or "") for g in s.target)) for s, a in zip(samples, answers)]
        return {m: per for m in self.metrics}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        per = [float(ocrbench_hit(p.strip(), s.target, str(s.extra["dataset"]))) for s, p in zip(samples, predictions)]
        return Official("ocrbench_accuracy", per, [p.strip().lower() for p in predictions])

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """Hits over 1000 (x 100), as the official aggregation: equal to the accuracy on the full benchmark only."""
        return 100.0 * sum(per_sample) / TOTAL if per_sample else math.nan
