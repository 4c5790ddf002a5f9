"""Serving sees video as video: a `video_url` part reaches a model with a video encoder as one `<video>` input whose
frames are sampled as training samples them (frames at `video_fps`, capped at `frames_upbound`, 2x2-pooled frame
tokens), and generation runs on it through the API."""

from __future__ import annotations

import av
import numpy as np
import pytest
from serve_helpers import data_uri

from polyvlm.infer import ChatRequest, Video
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.protocol import parse_chat

pytestmark = pytest.mark.slow


def _video(path, n_frames: int, fps: int = 10, size: int = 64) -> bytes:
    """Frame i is a flat grey of level 10 * i."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 10 * i, dtype=np.uint8), format="rgb24")
            for pkt in s.encode(frame):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path.read_bytes()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from polyvlm import testing

    return testing.make_tiny_checkpoint(tmp_path_factory.mktemp("video") / "tiny")


@pytest.fixture(scope="module")
def generator(ckpt):
    import polyvlm

    return polyvlm.load_generator(ckpt)


def _body(raw: bytes, text: str = "what happens?") -> dict:
    return {"messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": data_uri(raw, "video/mp4")}}, {"type": "text", "text": text}]}],
        "max_tokens": 3, "temperature": 0}


def test_video_url_is_a_video_sampled_as_in_training(generator, tmp_path, make_client):
    cfg = generator.processor.config
    assert "video" in generator.modalities and (cfg.video_fps, cfg.frames_upbound) == (1.0, 32)
    two_s = _video(tmp_path / "a.mp4", 20)  # 2 s at 10 fps -> frames 0 and 10 at 1 fps
    parsed = parse_chat(_body(two_s), ServeConfig(), generator.modalities, generator.name)
    req = parsed.request
    assert req.images == [] and len(req.videos) == 1 and req.messages[0]["content"] == "<video>\nwhat happens?"
    n = generator.count_prompt_tokens(req)
    levels = [float(np.asarray(f).mean()) for f in req.videos[0].frames]  # sampled once, cached on the Video
    assert levels == pytest.approx([0, 100], abs=4)
    half_s = _video(tmp_path / "b.mp4", 5)  # 0.5 s -> one frame
    one = parse_chat(_body(half_s), ServeConfig(), generator.modalities, generator.name).request
    assert n - generator.count_prompt_tokens(one) == 16  # one more frame: 8x8 patches pooled 2x2 (as tests/models/test_video.py trains)

    client = make_client(generator)
    r = client.post("/v1/chat/completions", json=_body(two_s))
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == n and r.json()["usage"]["completion_tokens"] <= 3


def test_frames_given_with_their_rate_are_subsampled(generator):
    from PIL import Image

    frames = [Image.new("RGB", (64, 64), (10 * i,) * 3) for i in range(30)]
    video = Video(frames=frames, fps=10.0)  # 3 s at 10 fps -> 3 frames at 1 fps
    req = ChatRequest([{"role": "user", "content": "<video>\nwhat happens?"}], videos=[video], max_new_tokens=2)
    done = generator.generate([req])[0]
    assert [f.getpixel((0, 0))[0] for f in video.frames] == [0, 100, 200]
    assert done.prompt_tokens == generator.count_prompt_tokens(req)


def test_bad_video_bytes_are_refused_naming_the_part(generator, make_client):
    r = make_client(generator).post("/v1/chat/completions", json=_body(b"not a video at all"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_video"
    assert r.json()["error"]["param"] == "messages[0].content[0].video_url"


def test_web_demo_sends_a_video_as_a_video(generator, tmp_path):
    from polyvlm.serve.webui import build_request

    _video(tmp_path / "clip.mp4", 20)
    state = {"turns": [{"role": "user", "text": "what happens?", "videos": [str(tmp_path / "clip.mp4")]}]}
    req = build_request(state, ServeConfig(max_video_frames=3), 4, 0.0, 1.0, generator.modalities)
    assert req.images == [] and len(req.videos) == 1 and req.messages[0]["content"] == "<video>\nwhat happens?"
    assert len(generator.video_frames(req.videos[0])) == 2  # 2 s at the model's 1 fps, not --max-video-frames
    frames = build_request(state, ServeConfig(max_video_frames=3), 4, 0.0, 1.0, {"image"})
    assert len(frames.images) == 3 and frames.videos == [] and frames.messages[0]["content"].count("<image>") == 3


def test_terminal_video_is_a_video(generator, tmp_path):
    import io

    from polyvlm.serve.terminal import run_chat

    _video(tmp_path / "clip.mp4", 20)
    out = io.StringIO()
    seen = []
    real = generator.generate

    def spy(requests, on_token=None):
        seen.extend(requests)
        return real(requests, on_token)

    generator.generate = spy
    try:
        assert run_chat(generator, io.StringIO(f"/video {tmp_path}/clip.mp4\nwhat happens?\n"), out, max_tokens=2) == 0
    finally:
        del generator.generate
    assert "[attached video clip.mp4 (20 frames at 10 fps)" in out.getvalue()
    (req,) = seen
    assert req.images == [] and req.messages[-1]["content"] == "<video>\nwhat happens?"
    assert len(req.videos) == 1 and len(req.videos[0].frames) == 2  # sampled at the model's 1 fps


def test_chat_one_shot_with_a_video(ckpt, tmp_path, capsys):
    from polyvlm.serve.chat import main

    _video(tmp_path / "clip.mp4", 20)
    assert main([str(ckpt), "--video", str(tmp_path / "clip.mp4"), "what happens?", "--max-tokens", "2"]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # the answer, one line
    assert main([str(ckpt), "--video", str(tmp_path / "missing.mp4"), "what happens?"]) == 1
    assert "missing.mp4" in capsys.readouterr().err
    assert main([str(ckpt), "--video", str(tmp_path / "clip.mp4")]) == 2  # no question: the interactive chat
