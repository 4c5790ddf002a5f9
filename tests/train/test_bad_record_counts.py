"""The bad-record error counts what the skip policy would skip (not the 20 it shows) and names the file."""

from __future__ import annotations

import json

import pytest

from polyvlm.config import load_config
from polyvlm.testing import TINY_RECIPE
from polyvlm.train.dataset import BadRecords


def test_error_counts_every_bad_record_and_names_the_file(tmp_path):
    from polyvlm.train.loop import train

    lines = [json.dumps({"id": f"b{i}", "conversations": [{"from": "human", "value": "hi"}]}) for i in range(24)]
    data = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "ok", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]})
    data.write_text("\n".join([*lines, "{oops", good, *lines[:1]]) + "\n")

    def cfg(*extra: str):
        return load_config(TINY_RECIPE, [f"data.path={data}", f"train.output_dir={tmp_path / 'run'}",
                                         "train.max_steps=1", *extra])

    with pytest.raises(BadRecords) as e:
        train(cfg(), show_progress=False)
    msg = str(e.value)
    assert msg.startswith(f"{data}: 26 bad record(s) of 27 ") and "the first 20:" in msg
    assert msg.count("\n") == 20 and "<record>" not in msg
    res = train(cfg("data.on_bad_record=skip"), show_progress=False)
    assert sum(res.skipped.values()) == 26  # the count the error gave
