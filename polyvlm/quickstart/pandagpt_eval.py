"""PandaGPT quick start evaluation: held-out questions answered from one input of one modality (image, audio,
thermal, depth or IMU) through the generator every surface uses (PandaGPT's one row per prompt), greedy, batched;
accuracy per modality and language, and the majority-answer baseline, in percent (0-100, the scale of `polyvlm eval`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from polyvlm.infer import ChatRequest
from polyvlm.quickstart.evaluate import normalize_answer, percent


def requests(records: list[dict], root: Path, max_new_tokens: int = 8) -> list[ChatRequest]:
    """Records `{"modality", <modality>: rel_path, "conversations", ...}` -> ChatRequests carrying that one file,
    as `polyvlm chat --<modality> FILE` and the API send it (the generator reads and sizes it for its ImageBind)."""
    out = []
    for r in records:
        m, ref = r["modality"], str(root / r[r["modality"]])
        own = {"image": "images", "audio": "audios"}
        kw = {own[m]: [ref]} if m in own else {"extra": {m: [ref]}}
        out.append(ChatRequest([{"role": "user", "content": r["conversations"][0]["value"]}],
                               max_new_tokens=max_new_tokens, language=r["language"], **kw))
    return out


def score(gen, records: list[dict], root: Path, batch_size: int = 32,
          show_progress: bool = True) -> tuple[dict, list[dict]]:
    """Greedy answers of `gen` (a Generator over a PandaGPT checkpoint), exact match of the normalised answer.
    -> ({"by_modality": {m: {lang: %}}, "by_type": {m: {qtype: %}}}, samples)."""
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    by_type: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    samples = []
    for i in tqdm(range(0, len(records), batch_size), desc="evaluate", disable=not show_progress, dynamic_ncols=True):
        chunk = records[i : i + batch_size]
        for r, res in zip(chunk, gen.generate(requests(chunk, root))):
            text = res.text
            ok = int(normalize_answer(text) == normalize_answer(r["answer"]))
            hits[r["modality"]][r["language"]].append(ok)
            by_type[r["modality"]][r["qtype"]].append(ok)
            samples.append({"id": r["id"], "modality": r["modality"], "language": r["language"], "qtype": r["qtype"],
                            "target": r["answer"], "prediction": text, "correct": bool(ok)})
    return {"by_modality": _means(hits), "by_type": _means(by_type)}, samples


def majority(train: list[dict], records: list[dict]) -> dict[str, dict[str, float]]:
    """Always the most frequent training answer of the question's language and type -> {modality: {lang: %}}."""
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
    return {m: percent(inner) for m, inner in d.items()}
