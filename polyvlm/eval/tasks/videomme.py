"""Video-MME without subtitles as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/videomme/ at
80391ce3, Dec 2024: videomme.yaml, utils.py): lmms-lab/Video-MME config `videomme`, split test, the videos from the
repo's zip chunks (`videos_chunked_NN.zip`, members `data/<videoID>.mp4`)."""

from __future__ import annotations

import random
import re
from typing import Any

from polyvlm.eval.tasks.base import Sample, TaskError
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask
from polyvlm.infer import ChatRequest

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
                      extra={"question_id": record.get("question_id"), "videoID": video, "question": question,
                             "domain": record.get("domain"), "sub_category": record.get("sub_category"),
                             "task_type": record.get("task_type"),
                             # videomme_doc_to_visual tries <cache>/data/<videoID>.mp4, then that path with every
                             # "mp4" replaced by "MP4", then by "mkv"
                             "video_candidates": [mp4, mp4.replace("mp4", "MP4"), mp4.replace("mp4", "mkv")]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [official_letter(p.strip()) for p in predictions]  # api/task.py strips the reply first
        return Official("videomme_perception_score", [float(r == s.target) for s, r in zip(samples, read)], read)


# ---- Video-MME with subtitles (videomme_w_subtitle.yaml, utils.py videomme_doc_to_text_subtitle) --------------------
SUBTITLES_PROMPT = "This video's subtitles are listed below: \n"
FRAME_NUM = 32  # lmms_eval_specific_kwargs.default.frame_num: the subtitles shown are those at 32 uniform frames
_FONT = re.compile(r'<font color="white" size=".72c">(.*?)</font>')


def _seconds(stamp: str) -> float:
    h, m, s_ms = stamp.split(":")
    s, ms = s_ms.split(",")
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def srt_lines(text: str, where: str) -> dict[tuple[float, float], str]:
    """load_subtitles: blocks split on blank lines; a block of 3+ lines gives (start, end) -> its text lines joined
    by spaces (a later block with the same times replaces the text, keeping the first one's place)."""
    out: dict[tuple[float, float], str] = {}
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if block.strip() and len(lines) >= 3:
            try:
                start, end = (_seconds(t) for t in lines[1].split(" --> "))
            except ValueError as e:
                raise ValueError(f"{where}: bad SRT time line {lines[1]!r} ({e})") from None
            out[(start, end)] = " ".join(lines[2:])
    return out


def subtitle_text(srt: str, frames: int, fps: float, where: str = "") -> str:
    """The subtitles lmms-eval shows: each SRT block whose frame range [int(start x fps), int(end x fps)) holds one of
    the 32 frames np.linspace(0, frames - 1, 32) picks, once, in Python's set order, each reduced to the text of its
    first white `<font>` tag (a block without one is dropped), one per line."""
    import numpy as np

    spans = [(int(a * fps), int(b * fps), t) for (a, b), t in srt_lines(srt, where).items()]
    picked = np.linspace(0, frames - 1, FRAME_NUM, dtype=int).tolist()
    hits = list(set([i for f in picked for i, (a, b, _) in enumerate(spans) if a <= f < b]))  # noqa: C403
    return "\n".join(m[0] for m in (_FONT.findall(spans[i][2]) for i in hits) if m)


@register_published
class VideoMMESubtitle(VideoMME):
    """lmms-eval's `videomme_w_subtitle`: the same questions and scoring, the prompt opened by the subtitles shown at
    32 uniformly sampled frames (`subtitle/<videoID>.srt` from the repo's subtitle.zip; "No subtitles available" when
    the video has none) and closed by "The best answer is:" (the yaml's post_prompt is never used). The frame count
    and fps come from `data/<videoID>.mp4` only (OpenCV there, polyvlm.media's header probe here: the same numbers
    for constant-rate files): a video stored as .MP4 or .mkv gets no subtitle lines. The prompt is completed when
    the files are on disk (a zipped video: when it is first asked)."""

    task_name = "videomme_w_subtitle"
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/videomme/ at 80391ce3 (videomme_w_subtitle.yaml, utils.py "
             "videomme_doc_to_text_subtitle, load_subtitles, extract_subtitles, extract_characters_regex)")
    PENDING = "[subtitles at 32 frames: read when the video is]"

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        sample = super().make_sample(record, split, row, language, where)
        sample.prompt = (f"{SUBTITLES_PROMPT}{self.PENDING}\n{OPTION_PROMPT}\n{sample.extra['question']}\n"
                         "The best answer is:")
        return sample

    def load(self) -> list[Sample]:
        samples = super().load()
        for s in samples:
            srt = f"subtitle/{s.extra['videoID']}.srt"  # <cache>/subtitle/<videoID>.srt
            s.extra["subtitle"] = srt if self.store.find([srt]) else None
            self.complete(s, extract=False)
        return samples

    def complete(self, sample: Sample, extract: bool) -> None:
        """Put the subtitles into the prompt, reading (or, with `extract`, first extracting) the SRT and the header
        of `data/<videoID>.mp4`; left pending when one of them is still zipped and `extract` is False."""
        if self.PENDING not in sample.prompt:
            return
        text = "No subtitles available"
        if sample.extra["subtitle"] is not None:
            mp4 = f"data/{sample.extra['videoID']}.mp4"
            timed = sample.extra["video"] == mp4  # OpenCV opens only this name: any other gets 0 frames at fps 0
            if not extract and not all(self.store.on_disk(r) for r in [sample.extra["subtitle"]] + [mp4] * timed):
                return
            frames, fps = 0, 0.0
            if timed:
                from polyvlm import media

                try:
                    facts = media.probe("video", self.store.path(mp4), where=mp4)
                except media.MediaError as e:
                    raise TaskError(f"{sample.source}: video {mp4} cannot be read ({e.code}: {e.reason})") from None
                frames, fps = facts["frames"], facts["fps"]
            srt = self.store.path(sample.extra["subtitle"]).read_text(encoding="utf-8")
            try:
                text = subtitle_text(srt, frames, fps, sample.extra["subtitle"])
            except ValueError as e:
                raise TaskError(f"{sample.source}: {e}") from None
        sample.prompt = sample.prompt.replace(self.PENDING, text, 1)

    def request(self, sample: Sample) -> ChatRequest:
        self.complete(sample, extract=True)  # the samples file then shows the prompt as asked
        return super().request(sample)
