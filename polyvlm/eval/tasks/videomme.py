"""Video-MME without subtitles as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/videomme/ at
80391ce3, Dec 2024: videomme.yaml, utils.py): lmms-lab/Video-MME config `videomme`, split test, the videos from the
repo's zip chunks (`videos_chunked_NN.zip`, members `data/<videoID>.mp4`)."""

from __future__ import annotations

import random
import re
from typing import Any

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask

# videomme_doc_to_text: the instruction, the question, the options one per line, then the `default` post_prompt
OPTION_PROMPT = ("Select the best answer to the following multiple-choice question based on the video and the "
                 "subtitles. Respond with only the letter (A, B, C, or D) of the correct option.")
POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."
# extract_characters_regex's prefixes, removed from the reply in this order; two pairs lack the comma between them in
# the official list, so Python joined them and they never match
ANSWER_PREFIXES = ["The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option isThe correct option is", "Best answer:Best option:"]
_OPTION = re.compile(r"^\s*([A-Z])\s*[.:)]\s*(.*)$", re.DOTALL)


def official_letter(reply: str) -> str:
    """extract_characters_regex: strip, delete the answer prefixes, "" when more than 10 words hold no A-D, else the
    first capital A, B, C or D anywhere ("Definitely C" is D; "b" is "")."""
    s = reply.strip()
    for prefix in ANSWER_PREFIXES:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return ""
    m = re.search(r"[ABCD]", s)
    return m[0] if m else ""


@register_published
class VideoMME(PublishedVideoTask):
    """One question per row (2700: 900 videos x 3): `videoID` names the video, `options` lists "A. ..." lines,
    `answer` is the letter, `duration` (short / medium / long), `domain`, `sub_category` and `task_type` are what
    videomme_aggregate_results reports by. The headline is the accuracy over every question (an unread reply counts,
    as wrong); by_category is by duration, and by_domain / by_sub_category / by_task_type follow."""

    task_name, repo, config, kind = "videomme", "lmms-lab/Video-MME", "videomme", "mcq"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/videomme/ at 80391ce3 (videomme.yaml, utils.py "
             "videomme_doc_to_visual, videomme_doc_to_text, extract_characters_regex, videomme_aggregate_results)")
    lmms_cache_dir = "videomme"  # dataset_kwargs.cache_dir: the zips are unzipped to $HF_HOME/videomme
    max_new_tokens = 16
    group_by = ["language", "category", "domain", "sub_category", "task_type"]
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        lines = [str(o) for o in record["options"]]
        options = {}
        for i, line in enumerate(lines):
            m = _OPTION.match(line)
            options[m.group(1) if m else chr(65 + i)] = (m.group(2) if m else line).strip()
        answer = str(record["answer"]).strip()
        if answer not in options:
            raise ValueError(f"answer {answer!r} is not one of the option letters {''.join(options)}")
        question = str(record["question"]) + "\n" + "\n".join(lines)
        video = str(record["videoID"])
        mp4 = f"data/{video}.mp4"
        return Sample(id=f"{split}/{row}", prompt=f"{OPTION_PROMPT}\n{question}\n{POST_PROMPT}", target=answer,
                      language=language, options=options, category=str(record["duration"]),
                      extra={"question_id": record.get("question_id"), "videoID": video,
                             "domain": record.get("domain"), "sub_category": record.get("sub_category"),
                             "task_type": record.get("task_type"),
                             # videomme_doc_to_visual tries <cache>/data/<videoID>.mp4, then that path with every
                             # "mp4" replaced by "MP4", then by "mkv"
                             "video_candidates": [mp4, mp4.replace("mp4", "MP4"), mp4.replace("mp4", "mkv")]})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        return {}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [official_letter(p.strip()) for p in predictions]  # api/task.py strips the reply first
        return Official("videomme_perception_score", [float(r == s.target) for s, r in zip(samples, read)], read)
