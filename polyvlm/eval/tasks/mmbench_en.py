"""MMBench (English, dev) as lmms-eval defines it (lmms_eval/tasks/mmbench/ at 3b686384: mmbench_en_dev.yaml,
_default_template_mmbench_en_yaml, en_utils.py, mmbench_evals.py MMBench_Evaluator): CircularEval over each
question's rotated copies; a copy's letter read by rules, else asked of `--judge` with the official matching prompt,
else a letter drawn at random (A-E, seeded with 2680) as the official evaluator does once its API calls fail."""

from __future__ import annotations

import logging
import math
import random
import string
from collections import Counter
from typing import Any, ClassVar

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.judge import JudgeClient
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.mathverse import ask
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

log = logging.getLogger("polyvlm.eval")
SYS_PROMPT = "There are several options:"  # mmbench.yaml metadata sys_prompt
POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."
RANDOM_SEED = 2680  # eval_result seeds Python's random with 2680
CIRCULAR_OFFSET = 1_000_000  # eval_result: rows with index >= 1e6 are rotated copies of question index % 1e6
API_FAILED = "Failed to obtain answer via API"
_TUPS = [("", "."), ("", ","), ("", ":"), ("", ")"), ("", ")."), ("(", ")"), ("(", ")."), (":", ""), (":", ","),
         (":", "."), (":", ")"), (":", ").")]
MATCH_PROMPT = (  # build_prompt's template (the official words, as data the judge is sent)
    "You are an AI assistant who will help me to match an answer with several options of a single-choice question. "
    "You are provided with a question, several options, and an answer, and you need to find which option is most "
    "similar to the answer. If the meaning of all options are significantly different from the answer, output E. "
    "Your should output a single uppercase character in A, B, C, D (if they are valid options), and E. \n"
    "Example 1: \nQuestion: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
    "Answer: a cute teddy bear\nYour output: A\nExample 2: \nQuestion: What is the main object in image?\n"
    "Options: A. teddy bear B. rabbit C. cat D. dog\nAnswer: Spider\nYour output: E\nExample 3: \n"
    "Question: {}?\nOptions: {}\nAnswer: {}\nYour output: ")


def _present(value: Any) -> bool:
    return value is not None and value == value and str(value) not in ("", "nan")  # value == value: not NaN


def can_infer_option(answer: str, num_choice: int = 5) -> str | None:
    """MMBench_Evaluator.can_infer_option: exactly one of A-E as a whole word (unless "A" is among more than three
    words: a quantifier), else exactly one letter in one of the shapes "B.", "B,", "B:", "B)", "(B)", ":B" ..."""
    choices = string.ascii_uppercase[:num_choice]
    if API_FAILED in answer:
        return None
    splits = [x.strip() for x in answer.split()]

    def count(prefix: str = "", suffix: str = "") -> int:
        return sum(prefix + c + suffix in splits for c in choices)

    if count() == 1:
        for ch in choices:
            if "A" in splits and len(splits) > 3:
                break
            if ch in splits:
                return ch
    for prefix, suffix in _TUPS:
        if count(prefix, suffix) == 1:
            for ch in choices:
                if prefix + ch + suffix in splits:
                    return ch
    return None


def can_infer_text(answer: str, choices: dict[str, str]) -> str | None:
    """can_infer_text: the one option (A-D) whose lower-cased text is inside the lower-cased answer."""
    found = [k for k, v in choices.items() if str(v).lower() in answer.lower()]
    return found[0] if len(found) == 1 else None


def can_infer(answer: str, choices: dict[str, str]) -> str | None:
    return can_infer_option(answer) or can_infer_text(answer, choices)


@register_published
class MMBenchEnDev(PublishedTask):
    """lmms-lab/MMBench config en, split dev: index, question, hint, answer, A-E, category, L2-category, source,
    split, image; like MMBench's dev TSV it holds each question's rotated copies (index + k x 1e6, options shifted),
    which CircularEval scores as one question (`n` counts questions)."""

    task_name, repo, config, kind = "mmbench_en_dev", "lmms-lab/MMBench", "en", "mcq"
    splits = {"dev": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mmbench/ (mmbench_en_dev.yaml, en_utils.py, "
             "mmbench_evals.py MMBench_Evaluator.eval_result, eval_sub_data, extract_answer_from_item, can_infer)")
    max_new_tokens = 1024
    default_metrics = ["accuracy"]
    parsed = True
    judged: ClassVar[bool] = True
    client: JudgeClient | None = None

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        options = {k: str(record[k]) for k in "ABCDE" if k in record and record[k] and _present(record[k])}
        listing = SYS_PROMPT + "\n" + "\n".join(f"{k}. {v}" for k, v in sorted(options.items()))
        hint = record.get("hint")
        # a hint that is not null and not "nan" goes first, even an empty one (then the prompt opens with a space)
        has_hint = hint is not None and hint == hint and str(hint) != "nan"
        query = f"{hint} {record['question']} {listing}" if has_hint else f"{record['question']} {listing}"
        abcd = {k: v for k, v in options.items() if k in "ABCD"}  # build_choices / extract_options: A-D only
        return Sample(id=f"{split}/{row}", prompt=f"{query}\n{POST_PROMPT}", target=str(record["answer"]).strip(),
                      language=language, options=options, category=record.get("category"),
                      group=str(int(record["index"]) % CIRCULAR_OFFSET),  # rotated copies: index + k * 1e6
                      extra={"index": int(record["index"]), "question": str(record["question"]), "abcd": abcd,
                             "l2-category": record.get("L2-category")})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def _match_prompt(self, sample: Sample, prediction: str) -> str:
        listing = "There are several options: \n" + "".join(f"{k}. {v}\n" for k, v in sample.extra["abcd"].items())
        return MATCH_PROMPT.format(sample.extra["question"], listing, prediction)

    def corpus_score(self, metric: str, samples: list[Sample], answers: list[str | None],
                     per_sample: list[float]) -> float:
        """The robust score, CircularEval as the official one: a question counts when all its copies are right;
        a question with a copy that got no answer (a failure) is left out."""
        units = _circular_units(samples, per_sample, self.scope or samples)
        return 100.0 * sum(units.values()) / len(units) if units else math.nan

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        """MMBench_Evaluator.eval_result: questions (index < 1e6) in index order; eval_sub_data reads every copy
        (index % 1e6) by rule and stops at a wrong one, then reads the unread copies one by one (the judge, else a
        letter drawn from "ABCDE") and stops at the first wrong. The question's hit is the main row's score; its
        copies score NaN (the official mean is over questions), as does a question with a failed copy."""
        read = [p.strip() for p in predictions]
        pre: list[str | None] = [can_infer(r, s.extra["abcd"]) for s, r in zip(samples, read)]
        judged: dict[int, str | None] = {}
        if self.client is not None:  # asked up front for every row no rule reads (the judge answers at temperature 0)
            todo = [i for i, x in enumerate(pre) if x is None]
            replies = ask(self.client, [self._match_prompt(samples[i], read[i]) for i in todo])
            judged = {i: can_infer(reply, samples[i].extra["abcd"]) if reply else None for i, reply in zip(todo, replies)}
        letters, drawn = list(pre), [False] * len(samples)
        per = [math.nan] * len(samples)
        sizes = Counter(s.group for s in self.scope or samples)
        groups: dict[str, list[int]] = {}
        for i in sorted(range(len(samples)), key=lambda i: samples[i].extra["index"]):
            groups.setdefault(str(samples[i].group), []).append(i)
        draws = random.Random(RANDOM_SEED)
        for key in sorted(groups, key=lambda k: samples[groups[k][0]].extra["index"]):
            members = groups[key]
            main = members[0]
            if samples[main].extra["index"] >= CIRCULAR_OFFSET or len(members) != sizes[samples[main].group]:
                continue  # no main row, or a copy failed: not scored
            hit = all(pre[i] is None or pre[i] == samples[i].target for i in members)
            for i in members if hit else []:
                if pre[i] is None:
                    letters[i] = judged.get(i)
                    if letters[i] is None:
                        letters[i], drawn[i] = "ABCDE"[draws.randint(0, 4)], True
                    if letters[i] != samples[i].target:
                        hit = False
                        break
            per[main] = float(hit)
        note = "" if self.client is not None else (
            "no --judge: replies no rule reads get a random letter, as the official evaluator does when its API "
            "calls fail")
        if note:
            log.warning("%s: %s", self.name, note)
        return Official("gpt_eval_score", per, letters, random=drawn, note=note)


def _circular_units(samples: list[Sample], per_sample: list[float], scope: list[Sample]) -> dict[str, bool]:
    """Question -> all its copies right, for the questions whose copies are all in `samples`."""
    sizes = Counter(s.group for s in scope)
    units: dict[str, bool] = {}
    seen: Counter[str | None] = Counter()
    for s, v in zip(samples, per_sample):
        units[str(s.group)] = units.get(str(s.group), True) and v == 1.0
        seen[s.group] += 1
    return {k: v for k, v in units.items() if seen[k] == sizes[k]}
