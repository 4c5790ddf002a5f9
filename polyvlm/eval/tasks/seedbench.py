"""SEED-Bench as lmms-eval defines it (lmms_eval/tasks/seedbench/ at 3b686384: seedbench.yaml, utils.py):
lmms-lab/SEED-Bench split test, the question with choice_a..choice_d as "A. text" lines, the reply's first character
compared with the answer letter. lmms-eval asks every row and reports `seed_image` over the image rows (the number
MAmmoTH-VL and LLaVA-OneVision report as SEED-Bench) and `seed_video` over the video rows, whose `image` column holds
the clip's frames (MAmmoTH-VL's "SeedBench video"): `seedbench` and `seedbench_video` here, each asking its own rows
(row numbers stay those of the split)."""

from __future__ import annotations

import random
from typing import Any

from polyvlm.eval.extract import Extraction, extract_choice
from polyvlm.eval.tasks.base import Sample
from polyvlm.eval.tasks.published import Official, PublishedTask, register_published

POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."


def seed_reading(prediction: str) -> str:
    """seed_process_result: the trimmed reply, cut to its first character when longer."""
    pred = prediction.strip()
    return pred[0] if len(pred) > 1 else pred


@register_published
class SEEDBench(PublishedTask):
    """Columns question_id, question, choice_a..choice_d, answer (a letter), data_type (image / video), image (a
    list of pictures: one for image questions)."""

    task_name, repo, kind = "seedbench", "lmms-lab/SEED-Bench", "mcq"
    splits = {"test": "en"}
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/seedbench/ (seedbench.yaml seed_image, utils.py seed_process_result)"
    default_metrics = ["accuracy"]
    parsed = True
    max_new_tokens = 16

    data_type = "image"  # the rows this task asks (data_type column) and its official metric, seed_<data_type>

    def make_sample(self, record: dict[str, Any], split: str, row: int, language: str, where: str) -> Sample | None:
        if record.get("data_type") != self.data_type:
            return None
        options = {k: str(record[f"choice_{k.lower()}"]) for k in "ABCD"}
        listing = "\n".join(f"{k}. {v}" for k, v in options.items())
        return Sample(id=f"{split}/{row}", prompt=f"{record['question']}\n{listing}{POST_PROMPT}",
                      target=str(record["answer"]).strip(), language=language, options=options,
                      category=str(record.get("question_type_id", "")) or None,
                      extra={"question_id": record.get("question_id"), "n_images": record.get("image") or 0})

    def images_of(self, record: dict[str, Any], columns: list[str], sample: Sample) -> list[Any]:
        return [("image", i) for i in range(int(record.get("image") or 0))]

    def extract(self, sample: Sample, prediction: str) -> Extraction:
        return extract_choice(prediction, sample.options)

    def official(self, samples: list[Sample], predictions: list[str], rng: random.Random) -> Official:
        read = [seed_reading(p) for p in predictions]
        return Official(f"seed_{self.data_type}",
                        [float(r.lower().strip() == s.target.lower()) for s, r in zip(samples, read)], read)


@register_published
class SEEDBenchVideo(SEEDBench):
    """The video rows: every frame the row's `image` list holds, in order, as seed_doc_to_visual passes them."""

    task_name = "seedbench_video"
    cites = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/seedbench/ (seedbench.yaml seed_video, utils.py seed_process_result)"
    data_type = "video"
