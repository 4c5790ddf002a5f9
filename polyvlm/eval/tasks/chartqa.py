"""ChartQA as lmms-eval defines it (lmms_eval/tasks/chartqa/ at 3b686384: chartqa.yaml, utils.py): lmms-lab/ChartQA
split test, the question then "\\nAnswer the question with a single word.", relaxed accuracy (5%) as official score."""

from __future__ import annotations

import random
from typing import Any

from polyvlm.eval.extract import Extraction
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

POST_PROMPT = "\nAnswer the question with a single word."  # chartqa.yaml lmms_eval_specific_kwargs default


def _float(text: str) -> float | None:
    """utils.py relaxed_correctness._to_float: Python's float() of the text, a trailing % read as /100."""
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def chartqa_relaxed(prediction: str, target: str, max_relative_change: float = 0.05) -> bool:
    """The official rule, quirks included: both numbers and the target non-zero -> within 5% of the target; else
    the strings equal after lower-casing (so "0.0" is wrong for 0, "1,000" must be written as the target writes it,
    and "12%" is 0.12)."""
    pred, gold = _float(prediction), _float(target)
    if pred is not None and gold:
        return abs(pred - gold) / abs(gold) <= max_relative_change
    return prediction.lower() == target.lower()


@register_published
class ChartQA(PublishedTask):
    """Columns type (human_test / augmented_test), question, answer, image; reported overall and per type."""

    task_name, repo, kind = "chartqa", "lmms-lab/ChartQA", "vqa"
    splits = {"test": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/chartqa/ (chartqa.yaml, utils.py relaxed_correctness)"
    default_metrics = ["relaxed_accuracy"]

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        return Sample(id=f"{split}/{row}", prompt=f"{record['question']}{POST_PROMPT}", target=[str(record["answer"])],
                      language=language, category=record.get("type"))

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        lines = [ln.strip() for ln in prediction.strip().splitlines() if ln.strip()]
        return Extraction(lines[0] if lines else "", "first_line")

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [p.strip() for p in predictions]  # lmms-eval strips generate_until results before scoring
        return Official("relaxed_overall", [float(chartqa_relaxed(p, s.target[0])) for s, p in zip(samples, read)],
                        read)
