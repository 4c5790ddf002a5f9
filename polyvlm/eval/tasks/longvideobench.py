"""LongVideoBench's validation set, video only, as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval
lmms_eval/tasks/longvideobench/ at 80391ce3, Dec 2024: longvideobench_val_v.yaml, utils.py): longvideobench/
LongVideoBench (gated), default config, split validation (`lvb_val.json`), each video at `videos/<video_path>`: read
from the repo's split tar (`videos.tar.part.*`, its parts read as one) and extracted beside it on first use, unless
already unpacked there or where lmms-eval unpacks it (`$HF_HOME/longvideobench`)."""

from __future__ import annotations

import math
import random
import re
from typing import Any

from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask

POST_PROMPT = "Answer with the option's letter from the given choices directly.\n"  # longvideobench_val_v.yaml
# parse_multi_choice_response's prefixes (this file's list has every comma)
ANSWER_PREFIXES = ["The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option is", "The correct option is", "Best answer:", "Best option:"]


def official_choice(reply: str, choices: list[str], rng: random.Random) -> tuple[str, bool]:
    """parse_multi_choice_response: strip, delete the prefixes, then the first capital A-E anywhere ("Definitely C" is
    D); a random one of `choices` when there is none, or when more than 10 words hold no A-E (True in the second
    slot)."""
    s = reply.strip()
    for prefix in ANSWER_PREFIXES:
        s = s.replace(prefix, "")
    m = re.search(r"[ABCDE]", s)
    if m is None:  # (the > 10 words rule draws too, so it changes nothing here)
        return rng.choice(choices), True
    return m[0], False


@register_published
class LongVideoBenchValV(PublishedVideoTask):
    """lmms-eval's `longvideobench_val_v`: `question`, `option0`..`option4` ("N/A" where a question has fewer),
    `correct_choice` (the right one's index), `video_path`, `duration_group` (15, 60, 600, 3600 s: `by_duration_group`)
    and `question_category` (`by_category`). The prompt is the question, "A. ..." lines for the options that are not
    "N/A", then the letter instruction. Official: the letter read (a random one of the question's letters when none,
    seeded and counted) equals chr(65 + correct_choice); longvideobench_aggregate_results counts every question
    twice (in its duration group and its category), so its overall accuracy is the plain one, rounded to 5 decimals
    as a fraction (shown here x 100), as is each group's."""

    task_name, repo, kind = "longvideobench_val_v", "longvideobench/LongVideoBench", "mcq"
    splits = {"validation": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/longvideobench/ at 80391ce3 (longvideobench_val_v.yaml, "
             "utils.py longvideobench_doc_to_text, longvideobench_doc_to_visual_v, parse_multi_choice_response, "
             "longvideobench_process_results, longvideobench_aggregate_results, calculate_ins_level_acc)")
    lmms_cache_dir = "longvideobench"  # dataset_kwargs.cache_dir: the tar is unpacked to $HF_HOME/longvideobench
    max_new_tokens = 32  # longvideobench_val_v.yaml generation_kwargs
    group_by = ["language", "category", "duration_group"]
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        shown = [str(record[f"option{i}"]) for i in range(5) if record.get(f"option{i}") != "N/A"]
        choices = []  # longvideobench_process_results: the letters up to the first "N/A"
        for i in range(5):
            if record.get(f"option{i}") == "N/A":
                break
            choices.append(chr(65 + i))
        answer = int(record["correct_choice"])
        if not 0 <= answer < len(choices):
            raise ValueError(f"correct_choice {answer} is not the index of one of the {len(choices)} options")
        question = str(record["question"]) + "\n" + "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(shown))
        return Sample(id=f"{split}/{row}", prompt=f"{question}\n{POST_PROMPT}", target=chr(65 + answer),
                      language=language, options={chr(65 + i): c for i, c in enumerate(shown)},
                      category=record.get("question_category"),
                      extra={"lvb_id": record.get("id"), "choices": choices,
                             "duration_group": record.get("duration_group"),
                             "video_candidates": [f"videos/{record['video_path']}"]})  # <cache>/videos/<video_path>

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        per, read, drawn = [], [], []
        for s, p in zip(samples, predictions):
            letter, rand = official_choice(p.strip(), s.extra["choices"], rng)  # api/task.py strips the reply first
            per.append(float(letter == s.target))
            read.append(letter)
            drawn.append(rand)
        return Official("lvb_acc", per, read, drawn)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        return 100.0 * round(sum(per_sample) / len(per_sample), 5) if per_sample else math.nan
