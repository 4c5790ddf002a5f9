"""Perception Test's multiple-choice validation set as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval
lmms_eval/tasks/perceptiontest/val/ at 80391ce3, Dec 2024: perceptiontest_mc.yaml, _default_template_yaml, utils.py):
lmms-lab/PerceptionTest_Val config `mc_question_val`, split validation, videos from the repo's zip chunks
(`videos_chunked_NN.zip`, members `videos/<video_name>.mp4`; the repo's `valid_audios.zip` is not needed)."""

from __future__ import annotations

import random
import re
from typing import Any

from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.hub import download_command
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask

POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."  # perceptiontest_val_doc_to_text
_LONE = re.compile(r"\b([A-D])\b")


def official_letter(reply: str) -> str:
    """perceptiontest_val_process_results_mc: the first lone capital A-D in the stripped reply ("A dog runs, B" is A;
    "b" and "BC" are nothing), else ""."""
    m = _LONE.search(reply.strip())
    return m.group(1) if m else ""


@register_published
class PerceptionTestValMC(PublishedVideoTask):
    """lmms-eval's `perceptiontest_val_mc`: `question`, `options` (three answers), `answer_id` (the right one's 0-based
    index), `video_name`, `area` (memory, abstraction, physics, semantics: `by_category`). The prompt labels the first
    option "A. ", the second "B. " and every further one "C. " (the official labelling), then asks for the letter.
    Official: the letter read becomes 0-3 (-1 when none) and is right when it equals int(answer_id); `accuracy` is the
    fraction right over every question (shown here x 100)."""

    task_name, repo, config, kind = "perceptiontest_val_mc", "lmms-lab/PerceptionTest_Val", "mc_question_val", "mcq"
    splits = {"validation": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/perceptiontest/val/ at 80391ce3 (perceptiontest_mc.yaml, "
             "_default_template_yaml, utils.py perceptiontest_val_doc_to_visual, perceptiontest_val_doc_to_text, "
             "perceptiontest_val_process_results_mc, perceptiontest_val_aggregate_accuracy)")
    lmms_cache_dir = "perceptiontest_val"  # dataset_kwargs.cache_dir: the zips are unzipped to $HF_HOME/perceptiontest_val
    max_new_tokens = 16
    default_metrics = ["accuracy"]
    parsed = True

    @classmethod
    def download(cls) -> str:
        """The questions and the two video chunks, without the 35 GB of audio (`valid_audios.zip`) no prompt uses."""
        return download_command(cls.repo).replace(" --local-dir", " --exclude valid_audios.zip --local-dir")

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        opts = [str(o) for o in record["options"]]
        labels = ["A", "B"] + ["C"] * max(0, len(opts) - 2)
        answer = int(record["answer_id"])
        if not 0 <= answer < len(opts):
            raise ValueError(f"answer_id {answer} is not the index of one of the {len(opts)} options")
        question = str(record["question"]) + "".join(f"\n{k}. {o}" for k, o in zip(labels, opts))
        mp4 = f"videos/{record['video_name']}.mp4"
        return Sample(id=f"{split}/{row}", prompt=question + POST_PROMPT, target="ABCD"[answer] if answer < 4 else "",
                      language=language, options=dict(zip("ABCD", opts[:4])), category=record.get("area"),
                      extra={"question_id": record.get("question_id"), "video_name": str(record["video_name"]),
                             "answer_id": answer,
                             # perceptiontest_val_doc_to_visual: <cache>/videos/<video_name>.mp4, then "mp4" -> "MP4"
                             "video_candidates": [mp4, mp4.replace("mp4", "MP4")]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [official_letter(p) for p in predictions]
        index = [{"A": 0, "B": 1, "C": 2, "D": 3}.get(r, -1) for r in read]
        return Official("accuracy", [float(i == s.extra["answer_id"]) for s, i in zip(samples, index)], read)
