"""MAmmoTH-VL's benchmarks as lmms-eval defines them (EvolvingLMMs-Lab/lmms-eval at 3827381f / 3b686384, Dec 2024):
mmmu_val (lmms_eval/tasks/mmmu/) and mmmu_pro_standard (lmms_eval/tasks/mmmu_pro/), scored with the MMMU rules."""

from __future__ import annotations

import re
from typing import Any

from polyvlm.eval.metrics import official as off
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.pangea import XMMMU, _mmmu_subject
from polyvlm.eval.tasks.published import register_published

_IMAGE = re.compile(r"<image (\d+)>")


class _LmmsMMMU(XMMMU):
    """lmms-eval's MMMU prompt: options after one newline, the instruction after a blank line; `<image n>` tokens
    stay in the text (interleaved_format: false) and the pictures are the distinct ones named, sorted."""

    choice_prompt = "Answer with the option's letter from the given choices directly."
    open_prompt = "Answer the question using a single word or phrase."

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        question = record["question"]
        options: dict[str, str] = {}
        if record.get("question_type", "multiple-choice") == "multiple-choice":
            options = {chr(65 + i): o for i, o in enumerate(off.mmmu_options(record["options"]))}
            listing = "\n".join(f"{k}. {v}" for k, v in options.items())
            prompt = f"{question}\n{listing}\n\n{self.choice_prompt}"
        else:
            prompt = f"{question}\n\n{self.open_prompt}"
        visual = sorted({f"image_{n}" for n in _IMAGE.findall(prompt)})
        sid = str(record["id"])
        return Sample(id=f"{split}/{row}", prompt=prompt, target=off.mmmu_answer(record["answer"]), language=language,
                      options=options, category=record.get("subject") or _mmmu_subject(sid),
                      extra={"id": sid, "question_type": record.get("question_type", "multiple-choice"),
                             "visual": visual})


@register_published
class MMMUVal(_LmmsMMMU):
    task_name, repo = "mmmu_val", "lmms-lab/MMMU"
    splits = {"validation": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mmmu/ (mmmu_val.yaml, utils.py construct_prompt)"


@register_published
class MMMUPro(_LmmsMMMU):
    """MMMU/MMMU_Pro config "standard (10 options)", split test (every question multiple choice)."""

    task_name, repo, config = "mmmu_pro", "MMMU/MMMU_Pro", "standard (10 options)"
    splits = {"test": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mmmu_pro/ (mmmu_pro_standard.yaml, utils.py)"
    choice_prompt = "Answer with the option letter from the given choices directly."
    max_new_tokens = 256
