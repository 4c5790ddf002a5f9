"""NExT-QA's multiple-choice test set as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/nextqa/ at
80391ce3, Dec 2024: nextqa_mc_test.yaml, _default_template_yaml, utils.py, _task_utils/video_loader.py):
lmms-lab/NExTQA config `MC`, split test, videos from the repo's `videos.zip` (members `NExTVideo/<video>.mp4`)."""

from __future__ import annotations

import random
from typing import Any

from polyvlm.eval.metrics import official as off
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask

LETTERS = ["A", "B", "C", "D", "E"]  # utils.py OPTIONS


def _video_file(name: str, suffix: str) -> str:
    """video_loader._get_video_file: `<name>.<suffix>` unless the name already ends with the suffix."""
    return name if name.endswith(suffix) else f"{name}.{suffix}"


@register_published
class NExTQAMCTest(PublishedVideoTask):
    """lmms-eval's `nextqa_mc_test`: `question`, the five answers `a0`..`a4`, `answer` (the right one's index), `video`
    (its id), `type` (the question type, CW / CH / TN / TC / TP / DL / DC / DO: `by_category`). The prompt is the
    stripped question and "A. <a0>" ... "E. <a4>", one per line, with no instruction (the yaml sets no post_prompt).
    Official: nextqa_mc_process_results reads the letter with MMMU's parse_multi_choice_response (the copy in that
    file: "(X)" first, then "X ", then "X.", then option text in replies over 5 words; several -> the last; none ->
    a random letter, seeded and counted) and `exact_match` is its mean."""

    task_name, repo, config, kind = "nextqa_mc_test", "lmms-lab/NExTQA", "MC", "mcq"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/nextqa/ at 80391ce3 (nextqa_mc_test.yaml, _default_template_yaml, "
             "utils.py nextqa_doc_to_visual, nextqa_doc_to_text_mc, get_multi_choice_info, parse_multi_choice_response, "
             "nextqa_mc_process_results; _task_utils/video_loader.py get_cache_dir, get_video)")
    lmms_cache_dir = "nextqa"  # dataset_kwargs.cache_dir: videos.zip is unzipped to $HF_HOME/nextqa
    max_new_tokens = 16
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        answers = [str(record[f"a{i}"]).strip() for i in range(5)]
        answer = int(record["answer"])
        if not 0 <= answer < 5:
            raise ValueError(f"answer {answer} is not an option index 0-4")
        prompt = "\n".join([str(record["question"]).strip()] + [f"{k}. {a}" for k, a in zip(LETTERS, answers)])
        video = str(record["video"])
        return Sample(id=f"{split}/{row}", prompt=prompt, target=LETTERS[answer], language=language,
                      options=dict(zip(LETTERS, answers)), category=record.get("type"),
                      extra={"qid": record.get("qid"), "video_id": video,
                             # get_video(<cache>/NExTVideo, video): .mp4, then .MP4, then .mp4 again
                             "video_candidates": [f"NExTVideo/{_video_file(video, 'mp4')}",
                                                  f"NExTVideo/{_video_file(video, 'MP4')}"]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        per, read, drawn = [], [], []
        for s, p in zip(samples, predictions):
            letter, rand = off.mmmu_choice(p.strip(), list(s.options.values()), rng)  # api/task.py strips the reply
            per.append(float(letter == s.target))
            read.append(letter)
            drawn.append(rand)
        return Official("exact_match", per, read, drawn)
