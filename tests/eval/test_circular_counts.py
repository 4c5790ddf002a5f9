"""CircularEval's `n` counts questions, not the rotated copies asked (VLMEvalKit's circular TSVs: the copies
of question `i` have indices `i + k * 1e6`, grouped back by `index % 1e6` when scored)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from polyvlm.eval.runner import evaluate, read_predictions
from polyvlm.eval.tasks import resolve

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "eval"


def test_n_counts_questions_and_n_prompts_the_copies(tmp_path: Path) -> None:
    with open(ASSETS / "circular_en.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    questions = {int(r["index"]) % 1_000_000 for r in rows}
    assert len(rows) > len(questions)  # the asset holds rotated copies
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"index": int(r["index"]), "prediction": r["answer"]}) + "\n" for r in rows))
    tasks, _ = resolve([str(ASSETS / "circular_en.tsv")])
    res = evaluate(tasks, tmp_path / "o", predictions=read_predictions(preds))
    t = res["tasks"]["circular_en"]
    assert (t["n"], t["n_prompts"]) == (len(questions), len(rows))
    table = (tmp_path / "o" / "results.md").read_text(encoding="utf-8")
    assert f"| {len(questions)} |" in table
