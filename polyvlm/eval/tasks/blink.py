"""BLINK as lmms-eval defines it (lmms_eval/tasks/blink/ since fcd18a73, Dec 2025, read at 75571cfe:
_default_template_yaml, blink.yaml, blink_<subtask>.yaml, utils.py): BLINK-Benchmark/BLINK, one config per subtask,
split val; the "Note: ..." pre prompt before the row's own `prompt`; the reply's first letter; the group score the
plain mean of the 14 subtasks' accuracies (aggregate_metric_list without weight_by_size)."""

from __future__ import annotations

import math
import random
import re
from typing import Any

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.hub import load_split
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

SUBTASKS = ("Art_Style", "Counting", "Forensic_Detection", "Functional_Correspondence", "IQ_Test", "Jigsaw",
            "Multi-view_Reasoning", "Object_Localization", "Relative_Depth", "Relative_Reflectance",
            "Semantic_Correspondence", "Spatial_Relation", "Visual_Correspondence", "Visual_Similarity")
PRE_PROMPT = "Note: You only need to respond with {} without providing any additional information.\n"


def blink_letter(response: str) -> str:
    """utils.py _extract_answer_letter: after any "(" or spaces, the first character if it is a letter (any case,
    upper-cased): "The answer is B" is T, "Answer: B" is A; "" when the reply opens otherwise."""
    m = re.match(r"[\(\s]*([A-Z])[\)\.\s]*", response.strip(), flags=re.IGNORECASE)
    return m.group(1).upper() if m else ""


@register_published
class BLINK(PublishedTask):
    """Columns idx, question, sub_task, image_1..image_4 (null when unused), choices, answer ("(A)"), prompt (the
    question with its options), explanation. Predictions name the subtask config as their `split`."""

    task_name, repo, kind = "blink", "BLINK-Benchmark/BLINK", "mcq"
    splits = {config: "en" for config in SUBTASKS}  # configs, each read at split val
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/blink/ (_default_template_yaml, blink.yaml, utils.py "
             "blink_doc_to_text, _extract_answer_letter, blink_process_results)")
    image_columns = ("image_1", "image_2", "image_3", "image_4")
    max_new_tokens = 1024
    default_metrics = ["accuracy"]
    parsed = True

    def dataset(self, split: str) -> Any:
        return load_split(self.repo, "val", self.name, config=split)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        choices = [str(c) for c in record["choices"]]
        letters = ", ".join(chr(65 + i) for i in range(len(choices)))
        return Sample(id=f"{split}/{row}", prompt=PRE_PROMPT.format(letters) + str(record["prompt"]),
                      target=str(record["answer"]).strip("()"), language=language, category=split,
                      options={chr(65 + i): c for i, c in enumerate(choices)}, extra={"idx": record.get("idx")})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [blink_letter(p) for p in predictions]
        return Official("blink_acc", [float(r == s.target) for s, r in zip(samples, read)], read)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """The group's blink_acc: each subtask's accuracy, then their plain mean (x 100)."""
        by_task: dict[str, list[float]] = {}
        for s, v in zip(samples, per_sample):
            by_task.setdefault(str(s.category), []).append(v)
        return 100.0 * sum(sum(v) / len(v) for v in by_task.values()) / len(by_task) if by_task else math.nan
