"""Training logs and metrics name languages as `polyvlm data` does: raw tags (`urdu`, `zh_simplified`)
are normalised once, when a record becomes a training example."""

from __future__ import annotations

import json

from polyvlm.config import load_config
from polyvlm.data.scenes import make_split, write_jsonl
from polyvlm.testing import TINY_RECIPE


def test_loss_by_language_uses_normalised_tags(tmp_path, caplog):
    from polyvlm.train.loop import train

    recs = make_split(tmp_path, 4, seed=3)
    for r, raw in zip(recs, ["urdu", "zh_simplified", "Urdu", "zh-hans"]):
        r["language"] = raw
    data = write_jsonl(recs, tmp_path / "qa.jsonl")
    cfg = load_config(TINY_RECIPE, [f"data.path={data}", f"train.output_dir={tmp_path / 'run'}", "train.max_steps=1",
                                    "train.batch_size=4"])
    caplog.set_level("INFO", logger="polyvlm")
    res = train(cfg, show_progress=False)
    assert set(res.history[0]["loss_by_language"]) == {"ur", "zh-Hans"}
    logged = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert logged and all(set(row["loss_by_language"]) == {"ur", "zh-Hans"} for row in logged if "loss_by_language" in row)
    assert "urdu" not in caplog.text and "zh_simplified" not in caplog.text
