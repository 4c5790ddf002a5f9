"""MLVU's dev set (multiple choice) as lmms-eval defined it in the MAmmoTH-VL period (EvolvingLMMs-Lab/lmms-eval
lmms_eval/tasks/mlvu/ at 80391ce3, Dec 2024: mlvu.yaml, utils.py; task `mlvu`, renamed `mlvu_dev` in March 2025 when
its reading changed): the dataset sy1998/temp, since renamed sy1998/MLVU_dev (the Hub redirects the old name), split
test (`mlvu/test-00000-of-00001.parquet`, no README), each video stored in the repo's zips under its `video_name`."""

from __future__ import annotations

import random
import re
from typing import Any

from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.hub import load_split
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videomme import official_letter
from polyvlm.eval.tasks.videos import PublishedVideoTask

# utils.py TASK_TYPES: mlvu_aggregate_results counts into these keys only (any other task_type is a KeyError there)
TASK_TYPES = ["TR", "AR", "VS", "NQA", "ER", "PQA", "SSC", "AO", "AC"]
_OPTION = re.compile(r"^\s*\(?([A-H])[).]\s*(.+?)\s*$")


@register_published
class MLVUDev(PublishedVideoTask):
    """`question` (the options already in it, "(A) ..." one per line; `candidates` holds their texts), `answer` (the
    letter), `task_type` (TR, AR, NQA, ER, PQA, AO, AC: `by_category`), `video_name` (its path in the zips). The prompt is mlvu_doc_to_text's: a newline,
    the question, "Only give the best option.", a blank line and "Best option: (". Official: Video-MME's
    extract_characters_regex (that file's copy at 80391ce3: the first capital A-D once "The answer is" and the like
    are deleted, nothing for more than 10 words without one) equal to `answer`; the score is the accuracy over all
    questions (not the mean of the task types)."""

    task_name, repo, kind = "mlvu_dev", "sy1998/MLVU_dev", "mcq"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mlvu/ at 80391ce3 (mlvu.yaml: dataset sy1998/temp, now "
             "sy1998/MLVU_dev; utils.py mlvu_doc_to_visual, mlvu_doc_to_text, extract_characters_regex, "
             "mlvu_process_results, mlvu_aggregate_results)")
    lmms_cache_dir = "mlvu"  # dataset_kwargs.cache_dir: the zips are unzipped to $HF_HOME/mlvu
    max_new_tokens = 16  # mlvu.yaml generation_kwargs
    default_metrics = ["accuracy"]
    parsed = True

    def dataset(self, split: str) -> Any:
        return load_split(self.repo, split, self.name, config=None)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question, answer, task_type = str(record["question"]), str(record["answer"]).strip(), str(record["task_type"])
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type {task_type!r} is none of {', '.join(TASK_TYPES)} (lmms-eval stops on it)")
        options = {m.group(1): m.group(2) for m in map(_OPTION.match, question.split("\n")) if m}
        if not options and record.get("candidates"):  # the robust reading's options: the candidates column else
            options = {chr(65 + i): str(c) for i, c in enumerate(record["candidates"])}
        if answer not in options:
            if options:
                raise ValueError(f"answer {answer!r} is not one of the option letters {''.join(options)}")
            options = {k: k for k in "ABCD"}
        prompt = "\n" + question + "\nOnly give the best option.\n" + "\n" + "Best option: ("
        video = str(record["video_name"])
        return Sample(id=f"{split}/{row}", prompt=prompt, target=answer, language=language, options=options,
                      category=task_type, extra={"video_name": video, "video_candidates": [video]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [official_letter(p.strip()) for p in predictions]  # api/task.py strips the reply first
        return Official("mlvu_perception_score", [float(r == s.target) for s, r in zip(samples, read)], read)
