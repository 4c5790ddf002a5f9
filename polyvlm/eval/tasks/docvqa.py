"""DocVQA validation as lmms-eval defines it (lmms_eval/tasks/docvqa/ at 3b686384: _default_template_docvqa_yaml,
docvqa_val.yaml, utils.py; the `anls` metric of lmms_eval/api/metrics.py, given every answer of the row as
lmms_eval/api/task.py ConfigurableTask.process_results does since b5c99bc2, Nov 2024: v0.3.0 and later)."""

from __future__ import annotations

import random
from typing import Any

from polyvlm.eval.extract import Extraction
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

POST_PROMPT = "\nAnswer the question using a single word or phrase."


def lmms_anls(gold: str, prediction: str, threshold: float = 0.5) -> float:
    """lmms-eval's `anls` against one answer: the edit distance of the trimmed, lower-cased, space-collapsed texts
    over the longer *raw* length (upper-cased, as written), 1 - that, and 0 below the threshold (0.5 itself stays)."""
    from rapidfuzz.distance import Levenshtein

    g, p = " ".join(gold.strip().lower().split()), " ".join(prediction.strip().lower().split())
    length = max(len(gold.upper()), len(prediction.upper()))
    score = 1.0 - (Levenshtein.distance(g, p) / length if length else 0.0)
    return 0.0 if score < threshold else score


def best_answer_anls(answers: list[str], prediction: str) -> float:
    """What lmms-eval reports as `anls` for a row with a list of answers: metrics.py anls gets them all (task.py skips
    its any-answer-is-1.0 multiple-target rule for `anls` since b5c99bc2) and scores 1 - the least normalised
    distance, 0 below the threshold: the best answer's ANLS."""
    return max(lmms_anls(g, prediction) for g in answers)


class LmmsDocVQA(PublishedTask):
    """lmms-lab/DocVQA, one config per dataset, split validation: question, answers (a list), image."""

    kind = "vqa"
    repo = "lmms-lab/DocVQA"
    splits = {"validation": "en"}
    max_new_tokens = 32
    default_metrics = ["anls"]

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        answers = record["answers"]
        if not isinstance(answers, list) or not answers:
            raise TaskError(f"{where}: 'answers' must be a non-empty list, not {answers!r}")
        return Sample(id=f"{split}/{row}", prompt=f"{record['question']}{POST_PROMPT}",
                      target=[str(a) for a in answers], language=language,
                      extra={"questionId": record.get("questionId")})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        lines = [ln.strip() for ln in prediction.strip().splitlines() if ln.strip()]
        return Extraction(lines[0] if lines else "", "first_line")

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [p.strip() for p in predictions]  # lmms-eval strips generate_until results before scoring
        return Official("anls", [best_answer_anls(s.target, p) for s, p in zip(samples, read)], read)


@register_published
class DocVQAVal(LmmsDocVQA):
    task_name, config = "docvqa_val", "DocVQA"
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/docvqa/ (docvqa_val.yaml, _default_template_docvqa_yaml), "
             "lmms_eval/api/metrics.py anls, lmms_eval/api/task.py process_results (all answers to anls since b5c99bc2)")
