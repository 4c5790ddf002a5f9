"""ActivityNet-QA as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/activitynetqa/ at 80391ce3, Dec
2024: activitynetqa_generation.yaml, _default_template_yaml, utils.py): lmms-lab/ActivityNetQA split test
(`data/test-00000-of-00001.parquet`), videos from the repo's zips (members `all_test/v_<video_name>.mp4`, .webm or
.mkv), scored by an LLM judge (`--judge`; lmms-eval asks gpt-3.5-turbo-0613) with its system and user prompts
(`polyvlm/eval/prompts/activitynetqa_*.txt`)."""

from __future__ import annotations

import ast
import logging
import math
import random
from typing import Any, ClassVar

from polyvlm.eval.extract import Extraction
from polyvlm.eval.judge import JudgeClient, prompt_file
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.mmvet import rule_grade
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask

log = logging.getLogger("polyvlm.eval")
POST_PROMPT = " Answer the question using a single word or phrase."  # _default_template_yaml
JUDGE_MAX_TOKENS = 64  # activitynetqa_process_results: get_eval(question, answer, pred, 64)


def parse_review(review: str) -> tuple[str, int] | None:
    """parse_score: the text between the first "{" and the next "}" read as a Python dict; `score` through int()
    (4.8 is 4); `pred` "yes" when it holds "yes", else "no" when it holds "no", else as written. None when that fails
    (lmms-eval then stops with a TypeError)."""
    try:
        review_dict = ast.literal_eval("{" + review.split("{")[1].split("}")[0] + "}")
        score = int(review_dict["score"])
        pred = str(review_dict["pred"])
    except (IndexError, SyntaxError, ValueError, TypeError, KeyError, MemoryError, RecursionError):
        return None
    low = pred.lower()
    return ("yes" if "yes" in low else "no" if "no" in low else pred), score


@register_published
class ActivityNetQA(PublishedVideoTask):
    """`video_name`, `question` (lower-case, no "?"), `answer`, `question_id`, `type` (0-8: `by_category`). The prompt
    is question.capitalize() (the rest lower-cased: "tom" stays "tom") + "?" + the single-word instruction. Official
    (with --judge): the judge's "yes"/"no" and 0-5 score per reply; gpt_eval_accuracy = yes / (yes + no) x 100 (a
    verdict that is neither is left out), gpt_eval_score = the mean score over all (in `other_metrics`). A review that
    cannot be read stops lmms-eval; here it is counted in `official.note`, left out of the accuracy and scored 0.
    Without --judge there is no official score, only polyvlm's rule reading (the answer's words found in the reply)."""

    task_name, repo, kind = "activitynetqa", "lmms-lab/ActivityNetQA", "vqa"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/activitynetqa/ at 80391ce3 (activitynetqa_generation.yaml, "
             "_default_template_yaml, utils.py activitynetqa_doc_to_visual, activitynetqa_doc_to_text, get_eval, "
             "parse_score, activitynetqa_process_results, activitynetqa_aggregate_score, "
             "activitynetqa_aggregate_accuracy)")
    lmms_cache_dir = "activitynetqa"  # dataset_kwargs.cache_dir: the zips are unzipped to $HF_HOME/activitynetqa
    max_new_tokens = 64  # activitynetqa_generation.yaml generation_kwargs
    default_metrics = ["accuracy"]
    judged: ClassVar[bool] = True
    client: JudgeClient | None = None

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question, name = str(record["question"]), str(record["video_name"])
        mp4 = f"all_test/v_{name}.mp4"  # activitynetqa_doc_to_visual: every "mp4" of the path -> mp4, webm, mkv
        return Sample(id=f"{split}/{row}", prompt=question.capitalize() + "?" + POST_PROMPT,
                      target=str(record["answer"]), language=language, category=str(record.get("type")),
                      extra={"question_id": record.get("question_id"), "question": question, "video_name": name,
                             "video_candidates": [mp4.replace("mp4", ext) for ext in ("mp4", "webm", "mkv")]})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return Extraction(prediction, "raw")

    def sample_scores(self, samples: list[Sample], answers: list[str | None]) -> dict[str, list[float]]:
        per = [rule_grade(a or "", s.target) for s, a in zip(samples, answers)]
        return {m: per for m in self.metrics}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official | None:
        if self.client is None:
            log.warning("%s: no --judge given; ActivityNet-QA has no official score without a judging model, only "
                        "polyvlm's rule reading", self.name)
            return None
        system, user = prompt_file("activitynetqa_system"), prompt_file("activitynetqa_user")
        prompts = [user.format(question=s.extra["question"], answer=s.target, pred=p.strip())
                   for s, p in zip(samples, predictions)]
        replies = [r or "" for r in self.client.ask(prompts, system=system, temperature=0.0,
                                                    max_tokens=JUDGE_MAX_TOKENS)]
        verdicts = [parse_review(r) for r in replies]
        per = [math.nan if v is None or v[0] not in ("yes", "no") else float(v[0] == "yes") for v in verdicts]
        scores = [v[1] if v is not None else 0 for v in verdicts]
        unread, other = sum(v is None for v in verdicts), sum(v is not None and v[0] not in ("yes", "no")
                                                               for v in verdicts)
        notes = ([f"{unread} review(s) unreadable (lmms-eval stops on them): left out, score 0"] if unread else []) + \
            ([f"{other} verdict(s) neither yes nor no: left out of the accuracy, as lmms-eval does"] if other else [])
        return Official("gpt_eval_accuracy", per, replies, note="; ".join(notes),
                        other_metrics={"gpt_eval_score": sum(scores) / len(scores) if scores else math.nan})
