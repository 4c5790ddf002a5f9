"""MVBench as lmms-eval defines it (EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mvbench/ at 80391ce3, Dec 2024:
mvbench.yaml, _default_template_yaml, mvbench_<task>.yaml, utils.py): OpenGVLab/MVBench at its `video` branch, one
config per task (`json/<task>.json`, split train), each video under its source dataset's folder."""

from __future__ import annotations

import random
import re
import string
from typing import Any

from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.hub import load_split
from polyvlm.eval.tasks.published import Official, register_published
from polyvlm.eval.tasks.videos import PublishedVideoTask

# utils.py DATA_LIST: the folder (under the repo root) holding each task's videos
DATA_LIST = {
    "object_interaction": "star/Charades_segment", "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment", "action_localization": "sta/sta_video_segment",
    "moving_count": "clevrer/video_validation", "fine_grained_pose": "nturgbd_convert",
    "character_order": "perception/videos", "object_shuffle": "perception/videos", "egocentric_navigation": "vlnqa",
    "moving_direction": "clevrer/video_validation", "episodic_reasoning": "tvqa/video_fps3_hq_segment",
    "fine_grained_action": "Moments_in_Time_Raw/videos", "scene_transition": "scene_qa/video",
    "state_change": "perception/videos", "moving_attribute": "clevrer/video_validation",
    "action_antonym": "ssv2_video_mp4", "unexpected_action": "FunQA_test/test",
    "counterfactual_inference": "clevrer/video_validation", "object_existence": "clevrer/video_validation",
    "action_count": "perception/videos",
}
# mvbench.yaml's task order
TASKS = ["action_sequence", "moving_count", "action_prediction", "episodic_reasoning", "action_antonym", "action_count",
         "scene_transition", "object_shuffle", "object_existence", "fine_grained_pose", "unexpected_action",
         "moving_direction", "state_change", "object_interaction", "character_order", "action_localization",
         "counterfactual_inference", "fine_grained_action", "moving_attribute", "egocentric_navigation"]
POST_PROMPT = "Only give the best option.\n"  # every mvbench_<task>.yaml

# mcq_acc's answer normalisation (the VQA punctuation rules)
_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # "(?!<=" is a lookahead for "<=": every "." not before a digit goes
_COMMA = re.compile(r"(\d)(\,)(\d)")
_LEAD = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)


def _punctuation(text: str) -> str:
    out = text
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or _COMMA.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out, 32)  # the official call passes re.UNICODE (32) where `count` goes: 32 periods at most


def official_reading(reply: str) -> str:
    """mcq_acc's process(): "X. text" (one line, any case) is X; otherwise, after the punctuation rules and
    lower-casing, the first lone letter a-e ("A dog runs, so B" is A; "I'd say C" is D), else the text itself."""
    m = _LEAD.match(reply.strip())
    if m:
        return m.group(1).upper()
    text = _punctuation(reply.replace("\n", " ").replace("\t", " ").strip())
    text = text.strip("'").strip('"').strip(")").strip("(").strip().lower()
    m = re.search(r"\b([A-E])\b", text, re.IGNORECASE)
    return m.group(1).upper() if m else text


@register_published
class MVBench(PublishedVideoTask):
    """The 20 tasks of mvbench.yaml, each a config of the repo read as split train (`split` in predictions and
    samples is the task: `action_sequence`, ...): `video`, `question`, `candidates` (the options) and `answer` (the
    right candidate's text; its letter is the first candidate equal to it). Official: mcq_acc compares the readings
    of the reply and of the letter; mvbench_aggregate_results leaves empty replies out of a task's accuracy.
    lmms-eval's group has no aggregate and prints the 20 tasks' accuracies; their mean (MVBench's average) is the
    headline, each task's under `by_category`."""

    task_name, repo, kind = "mvbench", "OpenGVLab/MVBench", "mcq"
    revision = "video"  # _default_template_yaml dataset_kwargs.revision
    splits = {t: "en" for t in TASKS}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mvbench/ at 80391ce3 (mvbench.yaml, _default_template_yaml, "
             "mvbench_<task>.yaml, utils.py mvbench_doc_to_visual, mvbench_doc_to_text, mcq_acc, "
             "mvbench_process_results, mvbench_aggregate_results)")
    lmms_cache_dir = "mvbench_video"  # dataset_kwargs.cache_dir (create_link: a link to the repo snapshot)
    max_new_tokens = 16
    default_metrics = ["accuracy"]
    parsed = True

    def dataset(self, split: str) -> Any:
        return load_split(self.repo, "train", self.name, config=split, revision=self.revision)

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        candidates = [str(c) for c in record["candidates"]]
        options = dict(zip(string.ascii_uppercase, candidates))
        answer = str(record["answer"])
        gold = next((k for k, v in options.items() if v == answer), None)
        if gold is None:
            raise ValueError(f"answer {answer!r} is none of the candidates {candidates}")
        listing = "".join(f"({k}) {v}\n" for k, v in options.items())
        prompt = "Question:" + str(record["question"]) + "\nOption:\n" + listing + POST_PROMPT
        video = str(record["video"])
        return Sample(id=f"{split}/{row}", prompt=prompt, target=gold, language=language, options=options,
                      category=split, extra={"video_name": video, "video_candidates": [f"{DATA_LIST[split]}/{video}"]})

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [official_reading(p.strip()) for p in predictions]  # api/task.py strips the reply first
        per = [float(r == official_reading(s.target)) for s, r in zip(samples, read)]
        empty = sum(not p.strip() for p in predictions)
        note = f"{empty} empty repl{'y' if empty == 1 else 'ies'} left out of the accuracy, as lmms-eval does" \
            if empty else ""
        return Official("mvbench_accuracy", per, read, note=note)

    def official_corpus(self, samples: list[Sample], predictions: list[str], per_sample: list[float]) -> float:
        """The mean over tasks of correct / non-empty replies (a task whose replies are all empty scores 0)."""
        tasks: dict[str, list[float]] = {}
        for s, p, v in zip(samples, predictions, per_sample):
            scores = tasks.setdefault(str(s.category), [])
            if p.strip():
                scores.append(v)
        accs = [100.0 * sum(v) / len(v) if v else 0.0 for v in tasks.values()]
        return sum(accs) / len(accs) if accs else float("nan")
