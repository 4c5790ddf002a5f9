"""AI2D as lmms-eval defines it (lmms_eval/tasks/ai2d/ at 3b686384: ai2d.yaml, utils.py): lmms-lab/ai2d split test,
options as "A. text" lines, the `flexible-extract` filter (a reply opening with "X." is X, else the reply) and
`exact_match` ignoring case and ASCII punctuation."""

from __future__ import annotations

import random
import re
import string
from typing import Any

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."
_PUNCT = str.maketrans("", "", string.punctuation)


def hf_exact_match(prediction: str, reference: str) -> bool:
    """lmms_eval/api/metrics.py exact_match_hf_evaluate with ignore_case and ignore_punctuation: both lower-cased,
    ASCII punctuation deleted (spaces kept), then equal."""
    return prediction.lower().translate(_PUNCT) == reference.lower().translate(_PUNCT)


def leading_letter(response: str) -> str:
    """utils.py MultiChoiceRegexFilter: "^\\s*([A-Z])\\." gives the letter, otherwise the reply is kept whole."""
    m = re.match(r"^\s*([A-Z])\.", response)
    return m.group(1) if m else response


@register_published
class AI2D(PublishedTask):
    """Columns question, options (a list), answer (the 0-based index as text), image."""

    task_name, repo, kind = "ai2d", "lmms-lab/ai2d", "mcq"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/ai2d/ (ai2d.yaml flexible-extract + exact_match, utils.py), "
             "lmms_eval/api/metrics.py exact_match_hf_evaluate")
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        options = {chr(65 + i): str(o) for i, o in enumerate(record["options"])}
        index = int(record["answer"])
        if not 0 <= index < len(options):
            raise TaskError(f"{where}: answer {record['answer']!r} is not an index into {len(options)} options")
        listing = "\n".join(f"{k}. {v}" for k, v in options.items())
        return Sample(id=f"{split}/{row}", prompt=f"{record['question']}\n{listing}{POST_PROMPT}",
                      target=chr(65 + index), language=language, options=options)

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [leading_letter(p).strip() for p in predictions]  # the filter, then lmms-eval's strip
        return Official("exact_match", [float(hf_exact_match(r, s.target)) for s, r in zip(samples, read)], read)
