"""Video: PyAV decoding at a target fps, uniform resampling to frames_upbound, 2x2 pooling of each frame's
grid, `<video>` placeholder counts known before decoding, and a video record trains."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from polyvlm.config import load_config
from polyvlm.data.records import RecordError
from polyvlm.data.scenes import write_jsonl
from polyvlm.models.encoders.video import pool_frames, probe_video, read_frames, sample_indices
from polyvlm.testing import TINY_RECIPE


def write_video(path, n_frames: int = 20, fps: int = 10, size: int = 64):
    """Frame i is a flat grey of level 10 * i (so a decoded frame says which one it is)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(n_frames):
            arr = np.full((size, size, 3), 10 * i, dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def test_probe_sample_and_decode(tmp_path):
    p = write_video(tmp_path / "v.mp4", 20, 10)
    n, fps = probe_video(p)
    assert (n, fps) == (20, 10.0)
    assert sample_indices(n, fps, 2.0, 32) == [0, 5, 10, 15]  # 2 frames per second of a 2 s clip
    assert sample_indices(n, fps, 10.0, 4) == [0, 6, 13, 19]  # capped at frames_upbound, uniformly
    frames = read_frames(p, [0, 5, 10, 15])
    levels = [float(np.asarray(f).mean()) for f in frames]
    assert levels == pytest.approx([0, 50, 100, 150], abs=4)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(RecordError, match="unreadable video 'bad.mp4'"):
        probe_video(tmp_path / "bad.mp4", "d.jsonl:1", "v1")


def test_pool_frames_2x2():
    x = torch.arange(2 * 16 * 3, dtype=torch.float32).reshape(2, 16, 3)
    y = pool_frames(x)
    assert y.shape == (2, 4, 3)
    grid = x[0].reshape(4, 4, 3)
    torch.testing.assert_close(y[0, 0], grid[:2, :2].reshape(4, 3).mean(0))
    assert pool_frames(torch.zeros(1, 49, 2)).shape == (1, 16, 2)  # odd grids round up


def test_video_record_trains(tmp_path):
    from polyvlm.train.dataset import TrainDataset
    from polyvlm.train.loop import train

    write_video(tmp_path / "clip.mp4", 20, 10)
    recs = [{"id": f"v{i}", "video": "clip.mp4", "language": "en",
             "conversations": [{"from": "human", "value": "<video>\nIs it getting brighter?"},
                               {"from": "gpt", "value": "yes"}]} for i in range(2)]
    data = write_jsonl(recs, tmp_path / "v.jsonl")
    cfg = load_config(TINY_RECIPE, [f"data.path={data}", f"train.output_dir={tmp_path / 'run'}", "model.video_fps=2",
                                    "model.frames_upbound=3", "train.max_steps=2", "train.batch_size=2"])
    from polyvlm.data.readers import iter_records
    from polyvlm.models import factory

    model, proc = factory.build(cfg.model)
    ds = TrainDataset(list(iter_records([data])), proc, tmp_path)
    video_id = proc.media_token_ids["video"]
    # 3 frames (4 at 2 fps, capped at 3) x (8x8 patches pooled 2x2 = 16 tokens)
    assert ds.example(0).input_ids.count(video_id) == 3 * 16
    item = ds[0]
    assert [v.shape for v in item.media.video] == [(3, 3, 64, 64)]
    res = train(cfg, show_progress=False)
    assert len(res.history) == 2 and np.isfinite(res.history[-1]["loss"])
