"""PandaGPT quick start evaluation: held-out questions answered from one input of one modality (image, audio,
thermal, depth or IMU) through PandaGPT's one summed row, greedy, batched; accuracy per modality and language."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import torch
from tqdm import tqdm

from polyvlm.data.records import Turn
from polyvlm.data.scenes import QUESTIONS
from polyvlm.models import pandagpt
from polyvlm.models.encoders import imagebind_data as ib
from polyvlm.quickstart.evaluate import normalize_answer


def load_input(model, modality: str, path: Path, rid: str) -> torch.Tensor:
    """One file -> the tensor the model's ImageBind takes, at its configured sizes (PandaGPT's loaders read
    ImageBind-huge's 224 px; the tiny quick start model reads 64 px)."""
    from PIL import Image

    c = model.vision.tower.cfg
    src = f"quickstart-pandagpt-eval#{rid}"
    if modality in ("image", "thermal"):
        with Image.open(path) as im:
            im.load()
            return (ib.image_pixels if modality == "image" else ib.thermal_pixels)([im], c.image_size)[0]
    if modality == "depth":
        import numpy as np

        with Image.open(path) as im:
            arr = np.asarray(im)
        return ib.depth_pixels([arr], c.image_size)[0]
    if modality == "audio":
        return ib.load_audio_clips(path, src, rid, n_mels=c.audio_mels, frames=c.audio_frames)
    return ib.load_imu(path, src, rid, length=c.imu_length)


def _left_pad(rows: list[torch.Tensor]) -> torch.Tensor:
    """[1, s_i, d] each -> [b, max s, d], zeros on the left (generate_ids masks them)."""
    width = max(r.shape[1] for r in rows)
    return torch.cat([torch.nn.functional.pad(r, (0, 0, width - r.shape[1], 0)) for r in rows])


def answer_batch(model, processor, records: list[dict], root: Path, max_new_tokens: int = 8) -> list[str]:
    """Greedy answers to records `{"modality", <modality>: rel_path, "language", "qtype", "id"}`, each asked with
    its one input as PandaGPT's media row (the question without a placeholder: the template puts the row)."""
    from polyvlm.models.generate import SampleParams, generate_ids

    prompts, embeds = [], []
    for r in records:
        m = r["modality"]
        x = load_input(model, m, root / r[m], r["id"])
        ids, emb = pandagpt.prompt(model, processor, [Turn("user", QUESTIONS[r["language"]][r["qtype"]])], [(m, x)])
        prompts.append(ids)
        embeds.append(emb)
    params = [SampleParams(max_new_tokens=max_new_tokens, temperature=0.0)] * len(records)
    with torch.no_grad():
        outs = generate_ids(model, prompts, None, params, processor.stop_ids, processor.pad_id, embeds=_left_pad(embeds))
    return [processor.decode(o).split("###")[0].strip() for o in outs]


def score(model, processor, records: list[dict], root: Path, batch_size: int = 32,
          show_progress: bool = True) -> tuple[dict, list[dict]]:
    """-> ({"by_modality": {m: {lang: acc}}, "by_type": {m: {qtype: acc}}}, samples)."""
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    by_type: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    samples = []
    for i in tqdm(range(0, len(records), batch_size), desc="evaluate", disable=not show_progress, dynamic_ncols=True):
        chunk = records[i : i + batch_size]
        for r, text in zip(chunk, answer_batch(model, processor, chunk, root)):
            ok = int(normalize_answer(text) == normalize_answer(r["answer"]))
            hits[r["modality"]][r["language"]].append(ok)
            by_type[r["modality"]][r["qtype"]].append(ok)
            samples.append({"id": r["id"], "modality": r["modality"], "language": r["language"], "qtype": r["qtype"],
                            "target": r["answer"], "prediction": text, "correct": bool(ok)})
    return {"by_modality": _means(hits), "by_type": _means(by_type)}, samples


def majority(train: list[dict], records: list[dict]) -> dict[str, dict[str, float]]:
    """Always the most frequent training answer of the question's language and type -> {modality: {lang: acc}}."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in train:
        if "qtype" in r:
            counts[(r["language"], r["qtype"])][normalize_answer(r["answer"])] += 1
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        common = counts.get((r["language"], r["qtype"]))
        guess = common.most_common(1)[0][0] if common else None
        hits[r["modality"]][r["language"]].append(int(guess == normalize_answer(r["answer"])))
    return _means(hits)


def _means(d: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, float]]:
    return {m: {k: sum(v) / len(v) for k, v in inner.items()} for m, inner in d.items()}
