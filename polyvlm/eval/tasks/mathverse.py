"""MathVerse testmini, vision versions ("mini-vision", what MAmmoTH-VL reports) as lmms-eval defines it
(lmms_eval/tasks/mathverse/ at 3b686384, Oct 2024: mathverse_testmini_vision.yaml and its three tasks, utils.py,
mathverse_evals.py): the official score is an LLM's extraction of the answer from the reply's last 30 words, then an
LLM's 0/1 judgement against the standard answer, both asked through `--judge` with the official few-shot prompts."""

from __future__ import annotations

import logging
import random
import re
from typing import Any, ClassVar

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.judge import JudgeClient, prompt_file
from polyvlm.eval.metrics.text import final_number, normalize_answer
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

log = logging.getLogger("polyvlm.eval")
TRUNK_WORDS = 30  # mathverse.yaml metadata trunk_response: only the reply's last 30 space-separated words are read
_CHOICE_LINE = re.compile(r"^\s*([A-H])\s*[:：.]\s*(.+?)\s*$", re.MULTILINE)
_ANSWER_TAIL = re.compile(r"(?:answer|答案)\s*(?:is|:|：|是)?\s*(.+)$", re.IGNORECASE | re.DOTALL)


def ask(client: JudgeClient, prompts: list[str | None]) -> list[str]:
    """The judge's reply to each prompt; None prompts are not sent (""), a failed request gives "" as the official
    client does once its retries are spent."""
    todo = [i for i, p in enumerate(prompts) if p is not None]
    replies = client.ask([prompts[i] for i in todo]) if todo else []  # type: ignore[misc]
    out = [""] * len(prompts)
    for i, r in zip(todo, replies):
        out[i] = (r or "").strip()
    return out


def trunk(prediction: str, words: int = TRUNK_WORDS) -> str:
    """The reply's last `words` pieces split on single spaces (newlines stay inside pieces), as eval_results."""
    return " ".join(prediction.strip().split(" ")[-words:])


def choices_of(question: str) -> dict[str, str]:
    """MathVerse writes its options in the question after "Choices:" as `A:text` lines."""
    tail = question.split("Choices:", 1)[1] if "Choices:" in question else ""
    return {k: v for k, v in _CHOICE_LINE.findall(tail)}


def robust_free_form(prediction: str, answer: str) -> bool:
    """polyvlm's reading of a free-form reply: the text after the last "answer is" (else the last line); numbers
    compare by value (1e-6 relative), other answers after normalisation (case, spaces, punctuation, NFKC)."""
    lines = [ln for ln in prediction.strip().splitlines() if ln.strip()]
    m = _ANSWER_TAIL.search(prediction)
    said = m.group(1).strip() if m else (lines[-1] if lines else "")
    gold, got = final_number(answer), final_number(said)
    if gold is not None and re.fullmatch(r"[\s\d.,+\-−%]*", answer):
        return got is not None and abs(got - gold) <= 1e-6 * max(1.0, abs(gold))
    return normalize_answer(said) == normalize_answer(answer)


@register_published
class MathVerse(PublishedTask):
    """CaraJ/MathVerse-lmmseval, config testmini_version_split, splits vision_intensive, vision_dominant and
    vision_only (788 questions each): the prompt is the row's `query_wo` (shot_type format-prompt), the picture its
    `image`. lmms-eval prints the three versions' scores (its group yaml has no aggregate); with 788 questions each,
    their mean is the accuracy over all questions, which is what polyvlm reports, per version under `by_category`."""

    task_name, repo, config, kind = "mathverse", "CaraJ/MathVerse-lmmseval", "testmini_version_split", "vqa"
    splits = {"vision_intensive": "en", "vision_dominant": "en", "vision_only": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mathverse/ (mathverse_testmini_vision.yaml, "
             "mathverse_testmini_vision_*.yaml, utils.py, mathverse_evals.py MathVerseEvaluator.eval_results)")
    max_new_tokens = 1024
    default_metrics = ["accuracy"]
    parsed = True
    judged: ClassVar[bool] = True  # the runner hands `--judge` to `client`
    client: JudgeClient | None = None

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question_type = str(record["question_type"])
        meta = record.get("metadata") or {}
        return Sample(id=f"{split}/{row}", prompt=str(record["query_wo"]).strip(), target=str(record["answer"]),
                      language=language, category=split,
                      extra={"sample_index": record.get("sample_index"), "question": str(record["question"]),
                             "question_type": question_type, "subfield": meta.get("subfield"),
                             "choices": choices_of(str(record["question"])) if question_type == "multi-choice" else {}})

    # ---- robust score: option letters for multiple choice, the stated value for free-form -------------------------
    def extract(self, sample: Sample, prediction: str) -> Extraction:
        choices = sample.extra["choices"]
        if choices:
            return extract_choice(prediction, choices)
        return Extraction(prediction.strip() or None, "raw")

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        per = []
        for s, a in zip(samples, answers):
            if a is None:
                per.append(0.0)
            elif s.extra["choices"]:
                per.append(float(a == s.target.strip().upper()))
            else:
                per.append(float(robust_free_form(a, s.target)))
        return {m: per for m in self.metrics}

    # ---- official score ------------------------------------------------------------------------------------------
    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [trunk(p) for p in predictions]
        if self.client is None:  # the official evaluator's own quick_match switch: the reply itself equals the answer
            log.warning("%s: no --judge given; the official score uses MathVerse's quick_match rule instead of the "
                        "LLM extraction and judgement", self.name)
            return Official("gpt_eval_score", [float(r == s.target) for s, r in zip(samples, read)], read,
                            note="no --judge: quick_match (the reply's last 30 words equal the answer), "
                                 "not the LLM extraction and judgement")
        extract_tpl = prompt_file("mathverse_extract").strip()
        extracted = ask(self.client, [f"{extract_tpl}\n\nModel response: '{r}'\nExtracted Answer: " if r else None
                                      for r in read])
        score_tpl = prompt_file("mathverse_score").strip()
        verdicts = ask(self.client, [score_tpl.format(question=s.extra["question"], gt=s.target, extraction=e)
                                     for s, e in zip(samples, extracted)])
        per, unparsed = [], 0
        for v in verdicts:
            judgement = v.replace("Judgement:", "").strip()
            unparsed += judgement not in ("0", "1")  # the official loop asks again until it gets 0 or 1
            per.append(float(judgement == "1"))
        note = f"{unparsed} judgement(s) neither 0 nor 1, scored 0" if unparsed else ""
        return Official("gpt_eval_score", per, extracted, note=note)


@register_published
class MathVerseTestmini(MathVerse):
    """lmms-eval's `mathverse_testmini` (mathverse_testmini.yaml): config testmini, split testmini, every problem
    version of testmini in one split (reported per version under `by_category`), scored as `mathverse`."""

    task_name, config = "mathverse_testmini", "testmini"
    splits = {"testmini": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mathverse/ (mathverse_testmini.yaml, utils.py, "
             "mathverse_evals.py MathVerseEvaluator.eval_results)")

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        sample = super().make_sample(record, split, row, language, where)
        sample.category = str(record.get("problem_version") or "")
        return sample
