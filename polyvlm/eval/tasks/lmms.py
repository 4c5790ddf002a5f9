"""MAmmoTH-VL's benchmarks as lmms-eval defines them (EvolvingLMMs-Lab/lmms-eval at 3827381f / 3b686384, Dec 2024):
mmmu_val (lmms_eval/tasks/mmmu/) and mmmu_pro_standard (lmms_eval/tasks/mmmu_pro/), scored with the MMMU rules,
mmmu_pro_vision (the same folder at 80391ce3, Dec 2024: the reply itself must be the letter), and muirbench
(lmms_eval/tasks/muirbench/)."""

from __future__ import annotations

import random
import re
from typing import Any

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.metrics import official as off
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.pangea import XMMMU, _mmmu_subject
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

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
                             "visual": visual, "answer": str(record["answer"])})


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


@register_published
class MMMUProVision(PublishedTask):
    """MMMU/MMMU_Pro config "vision", split test (`vision/test-*.parquet`): one screenshot per question (`image`)
    that shows the question and its options; `options` (the list the screenshot shows) and `answer` (a letter)
    are columns, the question text is not. lmms-eval's mmmu_pro_vision.yaml sends only the picture and "Answer with
    the option letter from the given choices directly."; its mmmu_pro_process_results, finding no `question` in
    the row, skips the MMMU letter parser and keeps the reply (stripped by api/task.py) as the answer, which must
    equal the letter: "B." and "(B)" score 0, and no letter is ever drawn at random. mmmu_pro_aggregate_results
    groups by `subject`, then weighs subjects by size: the plain accuracy."""

    task_name, repo, config, kind = "mmmu_pro_vision", "MMMU/MMMU_Pro", "vision", "mcq"
    splits = {"test": "en"}
    cites = ("EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mmmu_pro/ at 80391ce3 (mmmu_pro_vision.yaml, utils.py "
             "mmmu_pro_doc_to_visual, mmmu_pro_process_results, mmmu_pro_aggregate_results; api/task.py strips)")
    prompt = "Answer with the option letter from the given choices directly."
    max_new_tokens = 256  # _default_template_yaml
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        options = {chr(65 + i): o for i, o in enumerate(off.mmmu_options(record["options"]))}
        answer = str(record["answer"]).strip()
        if answer not in options:
            raise ValueError(f"answer {answer!r} is not one of the option letters {''.join(options)}")
        return Sample(id=f"{split}/{row}", prompt=self.prompt, target=answer, language=language, options=options,
                      category=record.get("subject"), extra={"id": str(record["id"])})

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [p.strip() for p in predictions]
        return Official("mmmu_acc", [float(r == s.target) for s, r in zip(samples, read)], read)


@register_published
class MuirBench(PublishedTask):
    """MUIRBENCH/MUIRBENCH, split test: several pictures per question (`image_list`), options a list, answer a
    letter. Official (lmms_eval/tasks/muirbench/ at 7548ebe1): a reply starting with "X." is read as X, any other
    reply is kept whole, and it must equal the answer letter after lower-casing and trimming ("(B)" scores 0)."""

    task_name, repo, kind = "muirbench", "MUIRBENCH/MUIRBENCH", "mcq"
    splits = {"test": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/muirbench/ (muirbench.yaml, utils.py MultiChoiceRegexFilter)"
    image_columns = ("image_list",)
    default_metrics = ["accuracy"]
    parsed = True

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample:
        options = {chr(65 + i): str(o) for i, o in enumerate(record["options"])}
        listing = "\n".join(f"{k}. {v}" for k, v in options.items())
        prompt = f"{record['question']}\n{listing}\nAnswer with the option's letter from the given choices directly."
        return Sample(id=f"{split}/{row}", prompt=prompt, target=str(record["answer"]).strip(), language=language,
                      options=options, category=record.get("task"),
                      extra={"n_images": record.get("image_list") or 0, "idx": record.get("idx")})

    def images_of(self, record: dict[str, Any], columns: list[str], sample: Sample) -> list[Any]:
        return [("image_list", i) for i in range(int(record.get("image_list") or 0))]

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def english_fallback(self, languages: list[str | None]) -> dict[str, list[str]]:
        return {}

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = []
        for p in predictions:
            m = re.match(r"^\s*([A-Z])\.", p)
            read.append(m.group(1) if m else p)
        return Official("accuracy", [float(r.lower().strip() == s.target.lower().strip()) for s, r in zip(samples, read)],
                        read)
