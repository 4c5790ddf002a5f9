"""ImageBind preprocessing as its data loaders define it (ImageBind imagebind/data.py: load_and_transform_*;
PandaGPT code/model/ImageBind/data.py: load_and_transform_thermal_data; pytorchvideo
data/clip_sampling.py: ConstantClipsPerVideoSampler; torchaudio compliance/kaldi.py: fbank).

`kaldi_fbank` was checked against torchaudio 2.11.1's compliance/kaldi.py fbank (same settings as ImageBind's
waveform2melspec): max abs difference 4.9e-05 on log energies; here it is compared with a per-frame NumPy
transcription of Kaldi's definition (feature-window.cc, mel-computations.cc)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from polyvlm.data.records import RecordError
from polyvlm.models.encoders.imagebind_data import (
    audio_clips,
    clip_starts,
    depth_pixels,
    image_pixels,
    imu_tensor,
    kaldi_fbank,
    load_audio_clips,
    load_imu,
    thermal_pixels,
    video_clips,
)


def _kaldi_numpy(x: np.ndarray, sr: int = 16000, n_mels: int = 128) -> np.ndarray:
    x = x.astype(np.float64)
    size, shift, n_fft = 400, 160, 512
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel(20.0), mel(sr / 2)
    d = (hi - lo) / (n_mels + 1)
    banks = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = lo + m * d, lo + (m + 1) * d, lo + (m + 2) * d
        for k in range(n_fft // 2):
            f = mel(sr / n_fft * k)
            if left < f < right:
                banks[m, k] = (f - left) / (centre - left) if f <= centre else (right - f) / (right - centre)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / (size - 1))
    out = []
    for i in range(1 + (len(x) - size) // shift):
        fr = x[i * shift: i * shift + size].copy()
        fr -= fr.mean()
        fr = fr - 0.97 * np.concatenate([fr[:1], fr[:-1]])
        spec = np.abs(np.fft.rfft(fr * window, n_fft)) ** 2
        out.append(np.log(np.maximum(banks @ spec, np.finfo(np.float32).eps)))
    return np.array(out)


def test_kaldi_fbank_matches_definition():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(8000) + np.sin(np.arange(8000) / 7.0)).astype(np.float32)
    got = kaldi_fbank(torch.from_numpy(x)).numpy()
    want = _kaldi_numpy(x)
    assert got.shape == want.shape == (48, 128)
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_clip_starts_follow_constant_clips_sampler():
    # i * max(duration - 2, 0) / 3 for 3 clips (not / (3 - 1)); all at 0 for audio of 2 s or less
    assert [float(s) for s in clip_starts(80123 / 16000, 2.0, 3)] == pytest.approx([0.0, 1.0025625, 2.005125])
    assert clip_starts(1.0, 2.0, 3) == [0, 0, 0]
    assert [float(s) for s in clip_starts(12.0, 2.0, 5)] == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_audio_clips_shape_padding_and_normalisation():
    rng = np.random.default_rng(1)
    clips = audio_clips(rng.standard_normal(16000 * 5).astype(np.float32) * 0.3)
    assert clips.shape == (3, 1, 128, 204)
    short = audio_clips(np.zeros(8000, np.float32))  # 0.5 s: 48 frames, then zero padding (normalised)
    assert short.shape == (3, 1, 128, 204)
    torch.testing.assert_close(short[0, 0, :, 60], torch.full((128,), 4.268 / 9.138))


def test_audio_file_and_bad_wav(tmp_path):
    p = tmp_path / "tone.wav"
    sf.write(p, np.stack([np.sin(np.arange(22050 * 3) / 5.0), np.zeros(22050 * 3)], 1), 22050)
    assert load_audio_clips(p).shape == (3, 1, 128, 204)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not audio")
    with pytest.raises(RecordError, match="bad.wav.*does not decode"):
        load_audio_clips(bad, "data.json", "r1")


def test_image_resize_short_side_then_centre_crop():
    img = np.zeros((200, 300, 3), np.uint8)  # h 200, w 300 -> 224 x 336, crop columns 56..280
    img[:, :150] = 255
    px = image_pixels([Image.fromarray(img)])
    assert px.shape == (1, 3, 224, 224)
    white = (1 - 0.48145466) / 0.26862954
    assert px[0, 0, 100, 10].item() == pytest.approx(white, abs=1e-3)  # left half is white
    assert px[0, 0, 100, 200].item() == pytest.approx(-0.48145466 / 0.26862954, abs=1e-3)


def test_thermal_and_depth_are_one_channel_in_unit_range():
    grey = Image.fromarray(np.full((240, 320, 3), 128, np.uint8))
    th = thermal_pixels([grey])
    assert th.shape == (1, 1, 224, 224) and th.max().item() == pytest.approx(128 / 255, abs=1e-3)
    d16 = np.full((224, 224), 65535 // 2, np.uint16)
    dp = depth_pixels([d16, Image.fromarray(np.full((224, 224), 255, np.uint8))])
    assert dp.shape == (2, 1, 224, 224)
    assert dp[0].mean().item() == pytest.approx(0.5, abs=1e-3) and dp[1].mean().item() == pytest.approx(1.0)


def test_video_clips_take_first_and_last_frame_and_three_crops():
    n, fps = 60, 10.0  # 6 s: 5 clips of 2 s starting at 0, 0.8, ... 3.2 s
    asked = []

    def frames_at(idx):
        asked.append(idx)
        return [Image.fromarray(np.full((120, 160, 3), i * 4, np.uint8)) for i in idx]

    v = video_clips(frames_at, n, fps)
    assert v.shape == (15, 3, 2, 224, 224)
    assert asked == [[0, 19], [8, 27], [16, 35], [24, 43], [32, 51]]
    assert not torch.equal(v[0, :, 0], v[0, :, 1])


def test_imu_shapes_and_errors(tmp_path):
    assert imu_tensor(np.ones((6, 2500))).shape == (6, 2000)
    t = imu_tensor(np.ones((1000, 6)))
    assert t.shape == (6, 2000) and t[:, 999].sum() == 6 and t[:, 1000:].abs().sum() == 0
    p = tmp_path / "walk.npy"
    np.save(p, np.ones((5, 100)))
    with pytest.raises(RecordError, match=r"walk.npy.*\(5, 100\)"):
        load_imu(p, "data.json", "r7")
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"nope")
    with pytest.raises(RecordError, match="junk.npy.*does not load"):
        load_imu(junk)
