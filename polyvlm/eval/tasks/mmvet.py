"""MM-Vet as lmms-eval defines it (lmms_eval/tasks/mmvet/ at 3b686384: mmvet.yaml, utils.py): lmms-lab/MMVet split
test, the step-by-step pre prompt, and the official score the `--judge` model's 0.0-1.0 grade of each reply with
MM-Vet's few-shot table (`polyvlm/eval/prompts/mmvet_grade.txt`), averaged x 100."""

from __future__ import annotations

import logging
import random
import re
import unicodedata
from typing import Any, ClassVar

from polyvlm.eval.extract import Extraction
from polyvlm.eval.judge import JudgeClient, prompt_file
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.mathverse import ask
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

log = logging.getLogger("polyvlm.eval")
PRE_PROMPT = "First please perform reasoning, and think step by step to provide best answer to the following question: \n\n"


def parse_grade(reply: str) -> float | None:
    """mmvet_process_results: the reply's first space-separated piece as a float in [0, 1]; else None (the official
    loop asks again at a higher temperature, up to 2.0, then gives 0.0)."""
    try:
        score = float(reply.split(" ")[0].strip())
    except ValueError:
        return None
    return score if 0.0 <= score <= 1.0 else None


def _words(text: str) -> str:
    """NFKC, case-folded words (signs and decimal points kept, other punctuation a space), space-padded."""
    tokens = re.sub(r"[^\w.\-]+", " ", unicodedata.normalize("NFKC", text).casefold()).split()
    return " " + " ".join(t.strip(".") for t in tokens if t.strip(".")) + " "


def rule_grade(prediction: str, answer: str) -> float:
    """polyvlm's reading without a judge: `a <AND> b` scores the share of its parts found in the reply, `a <OR> b`
    1 when any part is, any other answer 1 when it is found; whole words after NFKC, case and punctuation folding."""
    said = _words(prediction)

    def found(part: str) -> bool:
        words = _words(part)
        return words.strip() != "" and words in said

    if "<AND>" in answer:
        parts = [p for p in answer.split("<AND>") if p.strip()]
        return sum(found(p) for p in parts) / len(parts) if parts else 0.0
    return float(any(found(p) for p in answer.split("<OR>")))


@register_published
class MMVet(PublishedTask):
    """Columns question_id, image, question, answer (with <AND> / <OR>), image_source, capability ("rec,ocr")."""

    task_name, repo, kind = "mmvet", "lmms-lab/MMVet", "vqa"
    splits = {"test": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mmvet/ (mmvet.yaml, utils.py MM_VET_PROMPT, mmvet_process_results)"
    max_new_tokens = 1024
    default_metrics = ["accuracy"]
    judged: ClassVar[bool] = True
    client: JudgeClient | None = None

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        return Sample(id=f"{split}/{row}", prompt=f"{PRE_PROMPT}{record['question']}", target=str(record["answer"]),
                      language=language, category=record.get("capability"),
                      extra={"question_id": record.get("question_id"), "question": str(record["question"])})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(prediction, "raw")

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        per = [rule_grade(a or "", s.target) for s, a in zip(samples, answers)]
        return {m: per for m in self.metrics}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official | None:
        if self.client is None:  # the official score is an LLM's grade: none without a judge
            log.warning("%s: no --judge given; MM-Vet has no official score without a grading model, only polyvlm's "
                        "rule reading", self.name)
            return None
        table = prompt_file("mmvet_grade")
        prompts = [f"{table}\n{s.extra['question']} | {s.target.replace('<AND>', ' <AND> ').replace('<OR>', ' <OR> ')}"
                   f" | {p.strip()} |" for s, p in zip(samples, predictions)]
        replies = ask(self.client, prompts)
        grades = [parse_grade(r) if r else 0.0 for r in replies]  # no reply at all: 0.0, as the official code
        unread = sum(g is None for g in grades)
        note = (f"{unread} grade(s) unreadable, scored 0.0 (the official loop would ask again at a higher "
                "temperature)") if unread else ""
        return Official("gpt_eval_score", [0.0 if g is None else g for g in grades], replies, note=note)
