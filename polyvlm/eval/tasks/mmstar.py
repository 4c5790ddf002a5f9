"""MMStar as lmms-eval defines it (lmms_eval/tasks/mmstar/ at 3b686384: mmstar.yaml, utils.py): Lin-Chen/MMStar
split val, the question (options inline) then "\\nAnswer with the option's letter from the given choices directly",
MMStar's own first-character rule, and the `average` as the mean over the l2 categories of their accuracy."""

from __future__ import annotations

import math
import random
import re
from typing import Any

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

POST_PROMPT = "\nAnswer with the option's letter from the given choices directly"  # no full stop, as the yaml
YES_NO = " Please answer yes or no."  # removed from the question when a post prompt is set
_OPTION = re.compile(r"(?:^|[\s,])([A-F]):\s*(.*?)(?=,\s*[A-F]:|\n|$)")


def mmstar_match(prediction: str, answer: str) -> bool:
    """utils.py exact_match ("brought from MMStar"): the first character of the lower-cased reply is the answer, or
    it follows "(", "option " or "the answer is " at the very start; an empty reply is wrong."""
    gold = answer.lower().strip().replace("\n", " ")
    said = prediction.lower().strip().replace("\n", " ")
    if not said:
        return False
    for prefix in ("", "(", "option ", "the answer is "):
        if said.startswith(prefix) and len(said) > len(prefix) and said[len(prefix)] == gold:
            return True
    return False


@register_published
class MMStar(PublishedTask):
    """Columns index, question ("...\\nOptions: A: x, B: y, ..."), image, answer, category, l2_category, meta_info."""

    task_name, repo, kind = "mmstar", "Lin-Chen/MMStar", "mcq"
    splits = {"val": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mmstar/ (mmstar.yaml, utils.py exact_match, mmstar_aggregate_results)"
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question = str(record["question"]).strip().replace(YES_NO, "")
        tail = question.rsplit("Options:", 1)[1] if "Options:" in question else ""
        options = {k: v.strip() for k, v in _OPTION.findall(tail)}
        return Sample(id=f"{split}/{row}", prompt=f"{question}{POST_PROMPT}", target=str(record["answer"]).strip(),
                      language=language, category=record.get("category"), options=options,
                      extra={"index": record.get("index"), "l2_category": record.get("l2_category")})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        if not sample.options:
            return Extraction(None, "no_options")
        return extract_choice(prediction, sample.options)

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [p.strip() for p in predictions]
        return Official("average", [float(mmstar_match(r, s.target)) for s, r in zip(samples, read)], read)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """mmstar_aggregate_results: each l2 category's accuracy, then their plain mean (x 100)."""
        by_l2: dict[str, list[float]] = {}
        for s, v in zip(samples, per_sample):
            by_l2.setdefault(str(s.extra["l2_category"]), []).append(v)
        return 100.0 * sum(sum(v) / len(v) for v in by_l2.values()) / len(by_l2) if by_l2 else math.nan
