"""The data path of a training step: a record is checked once (before step 1, headers only), decoded once per
use with no re-check, turned into Features by the processor, and collated into one typed Batch (padded or packed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from polyvlm import media
from polyvlm.config import load_config
from polyvlm.data.scenes import write_jsonl
from polyvlm.models.encoders.media import MediaBatch
from polyvlm.models.processor import IGNORE, Features
from polyvlm.testing import TINY_RECIPE
from polyvlm.train.batch import Batch, collate


def _features() -> list[Features | None]:
    a = MediaBatch(torch.zeros(1, 3, 4, 4), [1], [(4, 4)], ["en"])
    b = MediaBatch(torch.ones(2, 3, 4, 4), [1, 1], [(4, 4), (8, 8)], ["zh", "zh"])
    return [Features([1, 2, 3], [IGNORE, 2, 3], a, "en"), None, Features([4], [4], None, "pt"),
            Features([5, 6], [IGNORE, 6], b, "zh")]


def test_padded_batch() -> None:
    batch = collate(_features(), packing=False, pad_id=0)  # None: a skipped bad record, dropped
    assert isinstance(batch, Batch) and batch.languages == ["en", "pt", "zh"]
    assert batch.input_ids.tolist() == [[1, 2, 3], [4, 0, 0], [5, 6, 0]]
    assert batch.labels.tolist() == [[IGNORE, 2, 3], [4, IGNORE, IGNORE], [IGNORE, 6, IGNORE]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]] and batch.position_ids is None
    assert batch.segment_ids.tolist() == [[0, 0, 0], [1, -1, -1], [2, 2, -1]] and batch.attn_kwargs is None
    assert batch.media.n_images == 3 and batch.media.pixels[:, 0, 0, 0].tolist() == [0, 1, 1]


def test_packed_batch() -> None:
    batch = collate(_features(), packing=True)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5, 6]] and batch.attention_mask is None
    # the first token of each later sample is not a target of the previous sample's last token
    assert batch.labels.tolist() == [[IGNORE, 2, 3, IGNORE, IGNORE, 6]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 0, 1]] and batch.segment_ids.tolist() == [[0, 0, 0, 1, 2, 2]]
    assert batch.attn_kwargs["cu_seq_lens_q"].tolist() == [0, 3, 4, 6] and batch.attn_kwargs["max_length_k"] == 3
    moved = batch.to("cpu")
    assert set(moved.model_inputs()) == {"input_ids", "attention_mask", "pixels", "labels", "position_ids", "attn_kwargs"}
    with pytest.raises(ValueError, match="every sample of the micro-batch was skipped"):
        collate([None, None])


def test_media_batch_no_longer_overrides_torch_cat() -> None:
    mb = MediaBatch(torch.zeros(1, 3, 4, 4), [1], [(4, 4)], ["en"])
    with pytest.raises(TypeError):
        torch.cat([mb, mb])
    assert MediaBatch.merge([mb, mb]).n_images == 2


@pytest.fixture
def counted(monkeypatch):
    """Every polyvlm.media probe and decode, counted per modality (the registry entries wrapped in place)."""
    calls: dict[str, list[str]] = {"probe": [], "load": []}
    for m in media.modalities():
        def wrap(fn, kind, name=m.name):
            def inner(*a, **kw):
                calls[kind].append(name)
                return fn(*a, **kw)
            return inner

        monkeypatch.setitem(media.MODALITIES._items, m.name,
                            dataclasses.replace(m, probe=wrap(m.probe, "probe"), load=wrap(m.load, "load")))
    return calls


def test_a_step_decodes_each_input_once_and_checks_nothing_again(tmp_path: Path, counted) -> None:
    """Before step 1 each image / video is probed from its header (not decoded); a sample of a step decodes each
    of its inputs exactly once and probes nothing (the old path read every image header and probed every video
    again in each step, then decoded)."""
    import av

    from polyvlm.data.readers import iter_records
    from polyvlm.models import factory
    from polyvlm.train.dataset import TrainDataset

    with av.open(str(tmp_path / "clip.mp4"), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for i in range(20):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), 10 * i, np.uint8), format="rgb24")))
        c.mux(s.encode(None))
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / "red.png")
    turns = [{"from": "human", "value": "<image>\n<video>\nSame colour?"}, {"from": "gpt", "value": "no"}]
    data = write_jsonl([{"id": f"r{i}", "image": "red.png", "video": "clip.mp4", "language": "en", "conversations": turns}
                        for i in range(3)], tmp_path / "d.jsonl")
    cfg = load_config(TINY_RECIPE, ["model.video_fps=2", "model.frames_upbound=3"])
    _, proc = factory.build(cfg.model)
    ds = TrainDataset(list(iter_records([data])), proc, tmp_path)
    assert sorted(counted["probe"]) == ["image"] * 3 + ["video"] * 3 and counted["load"] == []
    counted["probe"].clear()
    items = [ds[i] for i in range(3)]
    assert counted["probe"] == [] and sorted(counted["load"]) == ["image"] * 3 + ["video"] * 3
    assert [len(it.input_ids) for it in items] == ds.lengths.tolist()  # the lengths the check measured
    batch = collate(items, packing=False, pad_id=proc.pad_id)
    assert batch.media.n_images == 3 and [v.shape[0] for v in batch.media.video] == [3, 3, 3]
    assert int((batch.input_ids == proc.media_token_ids["video"]).sum()) == 3 * 3 * proc.config.tokens_per_media["video"]
