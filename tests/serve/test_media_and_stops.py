"""Media decoding (allowed URLs and files, video frames, resampling) and stop strings on streamed text."""

from __future__ import annotations

import av
import numpy as np
import pytest
from serve_helpers import data_uri, png_bytes, wav_bytes

from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError
from polyvlm.serve.media import decode_base64, fetch_url, load_audio, load_image, load_video_frames, resample
from polyvlm.serve.stops import StopStream, truncate_at_stop
from polyvlm.testing import loopback_http


@pytest.fixture(scope="module")
def http_server():
    """A loopback HTTP server: /img.png is an image, /redirect redirects to it."""
    png = png_bytes((10, 200, 10))

    with loopback_http({"/img.png": png}, {"/redirect": "/img.png"}) as url:
        yield url


def test_remote_image_only_from_allowed_domains(http_server):
    with pytest.raises(APIError, match="--allowed-media-domains"):
        fetch_url(f"{http_server}/img.png", ServeConfig(), "p")
    cfg = ServeConfig(allowed_media_domains=["127.0.0.1"])
    assert load_image(fetch_url(f"{http_server}/img.png", cfg, "p"), cfg, "p").getpixel((0, 0)) == (10, 200, 10)
    for path, code in (("/redirect", "media_fetch_failed"), ("/missing", "media_fetch_failed")):
        with pytest.raises(APIError) as e:
            fetch_url(f"{http_server}{path}", cfg, "p")
        assert e.value.code == code
    with pytest.raises(APIError) as e:
        fetch_url(f"{http_server}/img.png", ServeConfig(allowed_media_domains=["127.0.0.1"], max_body_mb=1e-5), "p")
    assert e.value.status == 413


def test_file_urls_only_under_the_allowed_path(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.png").write_bytes(png_bytes())
    (tmp_path / "secret.png").write_bytes(png_bytes())
    (tmp_path / "media" / "link.png").symlink_to(tmp_path / "secret.png")
    cfg = ServeConfig(allowed_local_media_path=str(tmp_path / "media"))
    assert fetch_url(f"file://{tmp_path}/media/a.png", cfg, "p") == png_bytes()
    for bad in (f"file://{tmp_path}/secret.png", f"file://{tmp_path}/media/../secret.png", f"file://{tmp_path}/media/link.png"):
        with pytest.raises(APIError) as e:
            fetch_url(bad, cfg, "p")
        assert e.value.status == 403, bad
    with pytest.raises(APIError) as e:
        fetch_url(f"file://{tmp_path}/media/none.png", cfg, "p")
    assert e.value.code == "media_not_found"


def test_base64_and_data_uris():
    assert decode_base64("aGVs\nbG8", "p") == b"hello"  # whitespace and missing padding are fine
    assert fetch_url(data_uri(b"abc", "text/plain"), ServeConfig(), "p") == b"abc"
    for bad in ("", "   ", "a$b"):
        with pytest.raises(APIError):
            decode_base64(bad, "p")


def test_resample_keeps_duration_and_pitch():
    rate = 44100
    t = np.arange(rate) / rate
    out = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), rate)
    assert out.dtype == np.float32 and abs(len(out) - 16000) <= 32
    spectrum = np.abs(np.fft.rfft(out[:16000]))
    assert abs(int(spectrum.argmax()) - 1000) <= 2  # 1 s at 16 kHz: bin k is k Hz


def test_audio_is_mixed_to_mono_at_16k():
    wave = load_audio(wav_bytes(0.5, 16000, channels=2), ServeConfig(), "p")
    assert wave.ndim == 1 and len(wave) == 8000


def _write_video(path, n_frames: int = 20) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(n_frames):
            img = np.zeros((32, 32, 3), np.uint8)
            img[..., 0] = i * 12  # red grows frame by frame
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_video_frames_sampled_uniformly(tmp_path):
    path = tmp_path / "v.mp4"
    _write_video(path)
    frames = load_video_frames(path.read_bytes(), ServeConfig(max_video_frames=4), "p")
    assert len(frames) == 4 and frames[0].size == (32, 32)
    reds = [np.asarray(f)[..., 0].mean() for f in frames]
    assert reds == sorted(reds) and reds[-1] - reds[0] > 150
    with pytest.raises(APIError) as e:
        load_video_frames(b"not a video at all", ServeConfig(), "p")
    assert e.value.code == "invalid_video"


def test_truncate_at_stop():
    assert truncate_at_stop("hello world", ["wor", "lo"], "length") == ("hel", "stop")
    assert truncate_at_stop("hello", ["x"], "length") == ("hello", "length")


@pytest.mark.parametrize("deltas", [["ab", "c<", "/s", "> tail"], ["abc", "<", "/", "s", ">"], ["abc</s>"]])
def test_stop_stream_holds_back_partial_stop(deltas):
    s = StopStream(["</s>"])
    sent = "".join(s.push(d) for d in deltas)
    assert sent == "abc" and s.stopped
    assert s.finish("abc") == ""


def test_stop_stream_releases_false_alarm_and_finishes():
    s = StopStream(["END"])
    assert s.push("x E") == "x "
    assert s.push("ND?") == ""  # "END" completed across deltas
    s = StopStream(["END"])
    assert s.push("x E") == "x " and s.push("arly") == "Early"
    assert s.finish("x Early bird") == " bird" and not s.stopped
    assert StopStream([]).push("anything") == "anything"


def test_video_url_part_becomes_image_frames(tmp_path, make_client):
    from serve_fakes import FakeGenerator

    _write_video(tmp_path / "v.mp4")
    gen = FakeGenerator(batch_sleep=0.0)
    client = make_client(gen, max_video_frames=3)
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": data_uri((tmp_path / "v.mp4").read_bytes(), "video/mp4")}},
        {"type": "text", "text": "what happens?"}]}]})
    assert r.status_code == 200, r.text
    assert "images=3" in r.json()["choices"][0]["message"]["content"]
    assert gen.requests[-1].messages[0]["content"] == "<image><image><image>\nwhat happens?"


def test_cli_flags_come_from_the_config_dataclass():
    from polyvlm.serve.cli import parser
    from polyvlm.serve.config import config_from_args

    args = parser().parse_args(["ckpt", "--port", "9000", "--no-batching", "--allowed-media-domains", "a.com,B.org",
                                "--allowed-media-domains", "c.net", "--batch-wait-ms", "2.5"])
    cfg = config_from_args(args)
    assert (cfg.port, cfg.batch_size, cfg.batch_wait_ms) == (9000, 1, 2.5)
    assert cfg.allowed_media_domains == ["a.com", "b.org", "c.net"]
    assert config_from_args(parser().parse_args(["ckpt"])).allowed_media_domains == []
