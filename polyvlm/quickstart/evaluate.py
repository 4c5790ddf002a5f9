"""Score a checkpoint on the quick start's held-out scenes: batched greedy answers, exact match of the
normalised answer, accuracy per language and per question type, in percent (0-100, the scale of `polyvlm eval`)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from polyvlm.data.records import Record, resolve_media
from polyvlm.infer import ChatRequest, Generator
from polyvlm.train.dataset import open_image


def normalize_answer(text: str) -> str:
    """NFKC, case-folded, punctuation (any script) and surrounding space removed."""
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    return re.sub(r"\s+", " ", text).strip()


def percent(hits: dict[str, list[int]]) -> dict[str, float]:
    """{group: [0/1 per sample]} -> {group: accuracy in percent (0-100)}."""
    return {k: 100 * sum(v) / len(v) for k, v in hits.items()}


def score(gen: Generator, records: list[Record], batch_size: int = 32, show_progress: bool = True) -> dict:
    """Returns {"accuracy": {lang: %}, "by_type": {qtype: %}, "by_lang_type": {"lang/qtype": %}, "samples": [...]}."""
    hits: dict[str, list[int]] = defaultdict(list)
    by_type: dict[str, list[int]] = defaultdict(list)
    by_lt: dict[str, list[int]] = defaultdict(list)
    samples = []
    for i in tqdm(range(0, len(records), batch_size), desc="evaluate", disable=not show_progress, dynamic_ncols=True):
        chunk = records[i : i + batch_size]
        reqs = []
        for r in chunk:
            root = Path(r.extra["image_root"])
            imgs = [open_image(resolve_media(root, p, r.source, r.id)) for p in r.media.get("image", [])]
            reqs.append(ChatRequest([{"role": "user", "content": r.turns[0].text}], images=imgs, max_new_tokens=8))
        for r, out in zip(chunk, gen.generate(reqs)):
            ok = int(normalize_answer(out.text) == normalize_answer(r.extra["answer"]))
            hits[r.language or "und"].append(ok)
            by_type[r.extra["qtype"]].append(ok)
            by_lt[f"{r.language}/{r.extra['qtype']}"].append(ok)
            samples.append({"id": r.id, "language": r.language, "qtype": r.extra["qtype"],
                            "target": r.extra["answer"], "prediction": out.text, "correct": bool(ok)})

    return {"accuracy": percent(hits), "by_type": percent(by_type), "by_lang_type": percent(by_lt), "samples": samples}


def majority_baseline(train: list[dict], records: list[Record]) -> dict:
    """The most-frequent-answer baseline: for each (language, question type), always answer what the
    training questions of that kind most often answer. Same keys as `score`, without samples."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in train:
        if "qtype" in r and "answer" in r:
            counts[(r.get("language") or "und", r["qtype"])][normalize_answer(r["answer"])] += 1
    hits: dict[str, list[int]] = defaultdict(list)
    by_type: dict[str, list[int]] = defaultdict(list)
    by_lt: dict[str, list[int]] = defaultdict(list)
    for r in records:
        lang, qtype = r.language or "und", r.extra["qtype"]
        common = counts.get((lang, qtype))
        guess = common.most_common(1)[0][0] if common else None
        ok = int(guess == normalize_answer(r.extra["answer"]))
        hits[lang].append(ok)
        by_type[qtype].append(ok)
        by_lt[f"{lang}/{qtype}"].append(ok)

    return {"accuracy": percent(hits), "by_type": percent(by_type), "by_lang_type": percent(by_lt)}
