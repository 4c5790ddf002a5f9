"""polyvlm.media decoders: images under the pixel limit, audio mixed to mono and resampled once (PyAV), videos
sampled at a target fps and decoded by seeking (fewer decoded frames than the clip has)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from media_helpers import level, png_bytes, tone, wav_bytes, write_video
from PIL import Image

from polyvlm import media
from polyvlm.media import MediaError, MediaLimits
from polyvlm.media.audio import resample
from polyvlm.media.video import load_video, read_frames, sample_indices


def _err(fn, *args, **kw) -> MediaError:
    with pytest.raises(MediaError) as e:
        fn(*args, **kw)
    return e.value


def test_image_limits_and_errors() -> None:
    raw = png_bytes(size=(40, 30))
    assert media.probe("image", raw) == {"size": (40, 30)}
    e = _err(media.load, "image", raw, MediaLimits(max_pixels=1000), where="rec.jsonl:3")
    assert e.code == "image_too_large" and "40x30 = 1200 pixels" in str(e) and str(e).startswith("rec.jsonl:3: ")
    e = _err(media.load, "image", raw[:60], where="a.png")  # a truncated file fails the full decode
    assert e.code == "invalid_image" and str(e).startswith("a.png: ")
    e = _err(media.load, "image", b"plain text")
    assert e.code == "invalid_image" and str(e).startswith("<bytes>: ")
    # a palette image with transparency, a greyscale one: RGB out
    buf = io.BytesIO()
    Image.new("L", (4, 4), 7).save(buf, format="PNG")
    assert media.load("image", buf.getvalue()).getpixel((0, 0)) == (7, 7, 7)


def test_audio_is_mono_16k_and_limited() -> None:
    wave = media.load("audio", wav_bytes(0.5, 44100, channels=2))
    assert wave.dtype == np.float32 and wave.shape == (8000,)  # ceil(22050 * 16000 / 44100)
    assert media.probe("audio", wav_bytes(0.5, 8000)) == {"seconds": 0.5, "rate": 8000, "channels": 1}
    e = _err(media.load, "audio", wav_bytes(0.5), MediaLimits(max_audio_seconds=0.2), where="clip.wav")
    assert e.code == "audio_too_long" and "0.5 s long" in str(e) and str(e).startswith("clip.wav: ")
    assert _err(media.load, "audio", b"RIFF????not audio").code == "invalid_audio"
    buf = io.BytesIO()
    import soundfile as sf

    sf.write(buf, np.zeros(0, np.float32), 16000, format="WAV")
    assert _err(media.probe, "audio", buf.getvalue()).code == "media_empty"


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_one_resampler_keeps_pitch_and_length(rate: int) -> None:
    out = resample(tone(1.0, rate, 1000.0), rate)
    assert out.dtype == np.float32 and out.shape == (16000,)
    assert abs(int(np.abs(np.fft.rfft(out)).argmax()) - 1000) <= 2  # 1 s at 16 kHz: bin k is k Hz
    assert resample(np.ones(160, np.float32), 16000).shape == (160,)


def test_the_package_has_one_resampler() -> None:
    """Serve, the audio encoder module and the data path all use polyvlm.media's (scipy is not a dependency)."""
    from polyvlm.models.encoders import audio as enc_audio
    from polyvlm.serve import media as serve_media

    assert enc_audio.resample is resample and serve_media.resample is resample
    src = (Path(media.__file__).parents[1]).rglob("*.py")
    assert not [p for p in src if "scipy" in p.read_text()]


def test_sampler() -> None:
    assert sample_indices(20, 10.0, 2.0, 32) == [0, 5, 10, 15]  # 2 frames per second of a 2 s clip
    assert sample_indices(20, 10.0, 10.0, 4) == [0, 6, 13, 19]  # capped, uniformly over the clip
    assert sample_indices(20, 10.0, 0.0, 4) == [0, 6, 13, 19]  # fps 0: uniform only (the server)
    assert sample_indices(3, 10.0, 0.0, 8) == [0, 1, 2]
    assert sample_indices(1, 25.0, 1.0, 0) == [0]


def test_video_load_seeks_instead_of_decoding_every_frame(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", n_frames=300, fps=25, gop=10)
    assert media.probe("video", path) == {"frames": 300, "fps": 25.0, "size": (32, 32)}
    stats: dict = {}
    frames = load_video(path, MediaLimits(max_video_frames=4), "v.mp4", stats)
    idx = sample_indices(300, 25.0, 0.0, 4)
    assert idx == [0, 100, 199, 299] and len(frames) == 4 and frames[0].size == (32, 32)
    assert [level(f) for f in frames] == pytest.approx([(4 * i) % 256 for i in idx], abs=4)
    # each sampled frame costs at most one keyframe interval: 4 frames, keyframes every 10
    assert stats["decoded"] <= 4 * 10 and stats["seeks"] >= 3, stats
    # dense sampling (every 5th frame) decodes on instead of seeking back to each keyframe: never more than the clip
    dense: dict = {}
    frames = load_video(path, MediaLimits(video_fps=5.0, max_video_frames=0), "v.mp4", dense)
    assert len(frames) == 60 and dense["decoded"] <= 300, dense
    assert [level(f) for f in frames[:3]] == pytest.approx([0, 20, 40], abs=4)


def test_video_same_frames_from_bytes_and_read_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", n_frames=20, fps=10)
    by_path = media.load("video", path, MediaLimits(video_fps=2.0, max_video_frames=32))
    by_bytes = media.load("video", path.read_bytes(), MediaLimits(video_fps=2.0, max_video_frames=32))
    assert [level(f) for f in by_path] == [level(f) for f in by_bytes] == pytest.approx([0, 20, 40, 60], abs=4)
    frames = read_frames(path, [3, 7, 19, 25])  # 25 is past the end: repeats the last decoded frame
    assert [level(f) for f in frames] == pytest.approx([12, 28, 76, 76], abs=4)


def test_video_errors_name_the_input(tmp_path: Path) -> None:
    e = _err(media.load, "video", b"not a video at all", where="messages[0].content[0].video_url")
    assert e.code == "invalid_video" and str(e).startswith("messages[0].content[0].video_url: ")
    path = write_video(tmp_path / "v.mp4", n_frames=4, size=64)
    e = _err(media.load, "video", path, MediaLimits(max_pixels=1000))
    assert e.code == "image_too_large" and "64x64" in str(e) and str(path) in str(e)
