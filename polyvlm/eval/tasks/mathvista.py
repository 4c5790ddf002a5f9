"""MathVista testmini as lmms-eval defines it (lmms_eval/tasks/mathvista/ at 3b686384: mathvista_testmini_format.yaml,
the group mathvista_testmini's format-prompt task; utils.py; mathvista_evals.py MathVistaEvaluator): the official
score asks `--judge` to extract the answer (the official few-shot prompt) unless a rule reads it first, normalises it
to the answer type and compares strings."""

from __future__ import annotations

import logging
import random
import re
from typing import Any, ClassVar

from rapidfuzz.distance import Levenshtein

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.judge import JudgeClient, prompt_file
from polyvlm.eval.metrics.text import final_number, normalize_answer
from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.mathverse import ask
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

log = logging.getLogger("polyvlm.eval")
_HINTS = {  # create_one_query, shot_type format-prompt: the instruction after the question and its choices
    ("integer", None): "Answer the question using a single integer number.",
    ("float", 1): "Answer the question using a single floating-point number with one decimal place.",
    ("float", 2): "Answer the question using a single floating-point number with two decimal places.",
    ("list", None): "Answer the question using a Python list.",
}
_QUICK = re.compile(r'The answer is "(.*)"\.')  # extract_answer's quick_extract rule


def format_prompt(record: dict[str, Any], where: str) -> str:
    """The format-prompt query: question (+ " (Unit: u)"), "A. choice" lines, then the answer-type instruction."""
    question = str(record["question"]) + (f" (Unit: {record['unit']})" if record.get("unit") else "")
    choices = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(record.get("choices") or []))
    if record["question_type"] == "multi_choice":
        hint = "Answer with the option's letter from the given choices directly."
    else:
        precision = record.get("precision")
        key = (record["answer_type"], int(precision) if record["answer_type"] == "float" and precision else None)
        if key not in _HINTS:  # the official code has no instruction here and stops
            raise TaskError(f"{where}: no format-prompt instruction for answer_type {record['answer_type']!r} "
                            f"precision {precision!r}")
        hint = _HINTS[key]
    return "\n".join(e for e in (question, choices, hint) if e).strip()


def rule_extraction(response: str, problem: dict[str, Any], quick: bool = False) -> str | None:
    """extract_answer before it asks the LLM: "" for an empty reply, a reply that is one of the choices, an integer
    or float reply as int()/float() read it; with `quick`, `The answer is "x".`. None: the LLM must extract."""
    if not response:
        return ""
    if problem["question_type"] == "multi_choice" and response in (problem["choices"] or []):
        return response
    if problem["answer_type"] == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if problem["answer_type"] == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    if quick:
        m = _QUICK.search(response)
        if m:
            return m.group(1)
    return None


def normalize_extraction(extraction: str, problem: dict[str, Any]) -> str | None:
    """normalize_extracted_answer: a letter (or "(X)") becomes its choice, anything else the choice with the least
    edit distance (so even "" picks a choice); integers int(float()); floats round(float(), precision) with the
    precision as the dataset stores it (a float64 there makes round() refuse, giving None); lists as they are."""
    choices, answer_type = problem["choices"] or [], problem["answer_type"]
    if problem["question_type"] == "multi_choice":
        text = extraction.strip()
        letter = re.findall(r"\(([a-zA-Z])\)", text)
        text = letter[0].upper() if letter else text
        letters = [chr(65 + i) for i in range(len(choices))]
        if text in letters:
            return choices[letters.index(text)]
        distances = [Levenshtein.distance(text, c) for c in choices]
        return choices[distances.index(min(distances))]
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), problem["precision"]))
    except (TypeError, ValueError):
        return None
    return str(extraction)


@register_published
class MathVistaTestmini(PublishedTask):
    """AI4Math/MathVista split testmini: the picture in `decoded_image`, `query` (the dataset's own hint + question)
    is what the extraction prompt shows, `choices` the options, `answer` the text compared."""

    task_name, repo, kind = "mathvista_testmini", "AI4Math/MathVista", "vqa"
    splits = {"testmini": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mathvista/ (mathvista_testmini_format.yaml, utils.py "
             "mathvista_process_results, mathvista_evals.py extract_answer, normalize_extracted_answer, safe_equal)")
    image_columns = ("decoded_image",)
    max_new_tokens = 1024
    default_metrics = ["accuracy"]
    parsed = True
    judged: ClassVar[bool] = True
    client: JudgeClient | None = None

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        problem = {k: record.get(k) for k in ("question_type", "answer_type", "choices", "precision", "query")}
        choices = {chr(65 + i): str(c) for i, c in enumerate(record.get("choices") or [])}
        meta = record.get("metadata") or {}
        return Sample(id=f"{split}/{row}", prompt=format_prompt(record, where), target=str(record["answer"]),
                      language=language, category=meta.get("task"),
                      extra={"pid": record.get("pid"), "problem": problem, "choices": choices})

    # ---- robust score: the option for multiple choice, the value for numbers, normalised text otherwise ----------
    def extract(self, sample: Sample, prediction: str) -> Extraction:
        choices = sample.extra["choices"]
        if choices:
            got = extract_choice(prediction, choices)
            return Extraction(choices[got.answer], got.method) if got.answer else got
        return Extraction(prediction.strip() or None, "raw")

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        per = []
        for s, a in zip(samples, answers):
            kind = s.extra["problem"]["answer_type"]
            if a is None:
                per.append(0.0)
            elif s.extra["choices"]:
                per.append(float(a == s.target))
            elif kind in ("integer", "float"):
                got, gold = final_number(a), final_number(s.target)
                per.append(float(got is not None and gold is not None and abs(got - gold) <= 1e-6 * max(1, abs(gold))))
            else:
                lines = [ln for ln in a.splitlines() if ln.strip()]
                per.append(float(normalize_answer(lines[-1] if lines else "") == normalize_answer(s.target)))
        return {m: per for m in self.metrics}

    # ---- official score ------------------------------------------------------------------------------------------
    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [p.strip() for p in predictions]
        problems = [s.extra["problem"] for s in samples]
        extracted = [rule_extraction(r, p, quick=self.client is None) for r, p in zip(read, problems)]
        note = ""
        if self.client is None:  # no LLM: the quick_extract rule, else the reply itself is the extraction
            todo = sum(e is None for e in extracted)
            extracted = [r if e is None else e for r, e in zip(read, extracted)]
            note = (f"no --judge: {todo} repl(ies) not read by a rule were taken whole (quick_extract, no LLM "
                    "extraction)") if todo else "no --judge: every reply was read by a rule"
            log.warning("%s: %s", self.name, note)
        else:
            demo = prompt_file("mathvista_extract").strip()
            asked = ask(self.client, [f"{demo}\n\n{p['query']}\n\n{r}\n\nExtracted answer: " if e is None else None
                                      for r, p, e in zip(read, problems, extracted)])
            extracted = [a if e is None else e for a, e in zip(asked, extracted)]
        normal = [normalize_extraction(e, p) for e, p in zip(extracted, problems)]
        per = [float(str(n).strip() == s.target.strip()) for n, s in zip(normal, samples)]
        return Official("gpt_eval_score", per, normal, note=note)
