"""LazyRecords: random access with media decoded per item, the on_bad_record policy, DataLoader workers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from datahelpers import rec, write_jsonl

from polyvlm.data.dataset import LazyRecords
from polyvlm.data.records import RecordError


def test_decodes_and_applies_policy(image_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = write_jsonl(image_dir / "d.jsonl", [rec("a"), rec("b", image="trunc.jpg"), rec("c", q="no placeholder"), rec("d", image="whole.jpg")])
    strict = LazyRecords(p)
    assert len(strict) == 4 and strict[0].images[0].size == (16, 16) and strict[3].images[0].mode == "RGB"
    with pytest.raises(RecordError, match=r"d\.jsonl:2 id=b: image 'trunc.jpg'"):
        strict[1]
    lenient = LazyRecords(p, on_bad_record="skip")
    with caplog.at_level(logging.WARNING, logger="polyvlm.data"):
        got = [lenient[i] for i in range(4)]
    assert [g.record.id if g else None for g in got] == ["a", None, None, "d"]
    assert lenient.skipped == {"media_unreadable": 1, "placeholder_mismatch": 1} and "d.jsonl:3" in caplog.text


def test_several_files_and_workers(image_dir: Path, tmp_path: Path) -> None:
    a = write_jsonl(image_dir / "a.jsonl", [rec(f"a{i}") for i in range(3)])
    b = write_jsonl(image_dir / "b.jsonl", [rec(f"b{i}") for i in range(2)])
    ds = LazyRecords([a, b])
    assert len(ds) == 5 and ds[4].record.id == "b1" and ds[3].record.source == f"{b}:1"
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=lambda xs: [x.record.id for x in xs])
    assert sum(loader, []) == ["a0", "a1", "a2", "b0", "b1"]


def test_mixture_yaml(image_dir: Path, tmp_path: Path) -> None:
    write_jsonl(image_dir / "a.jsonl", [rec(f"a{i}") for i in range(10)])
    y = tmp_path / "m.yaml"
    y.write_text(f"datasets:\n  - path: {image_dir / 'a.jsonl'}\n    sampling_strategy: end:3\n")
    ds = LazyRecords(y)
    assert [ds[i].record.id for i in range(len(ds))] == ["a7", "a8", "a9"] and ds[0].images[0].size == (16, 16)
