"""ImageBind's input preprocessing per modality, as its published data loaders define it (ImageBind's data.py,
PandaGPT's copy for thermal): image, thermal and depth crops, 2-frame video clips, 2 s log-mel audio clips, IMU.

- image: short side resized to 224 (bicubic), centre crop, CLIP mean/std -> [3, 224, 224];
- thermal: grey scale, the same resize and crop, values in [0, 1], no normalisation -> [1, 224, 224];
- depth: one channel (a disparity map), the same resize and crop, scaled to [0, 1] by the pixel type's range;
- video: 5 clips of 2 s evenly spread over the video, the first and last frame of each, short side scaled to
  224 (bilinear), CLIP mean/std, then 3 spatial crops (left/top, centre, right/bottom) -> [15, 3, 2, 224, 224];
- audio: 3 clips of 2 s evenly spread (pytorchvideo's ConstantClipsPerVideoSampler), each made zero-mean, then
  Kaldi filter banks (128 mel bins, 25 ms Hann windows every 10 ms, pre-emphasis 0.97, HTK mel, log), padded
  or cut to 204 frames, normalised with mean -4.268 and std 9.138 -> [3, 1, 128, 204];
- imu: 6 channels (accelerometer xyz, gyroscope xyz) x 2000 samples -> [6, 2000].
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from polyvlm.data.records import RecordError

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
AUDIO_MEAN, AUDIO_STD = -4.268, 9.138
SAMPLE_RATE = 16_000


def _resize_crop(img: Image.Image, size: int) -> Image.Image:
    """Short side -> `size` (bicubic; the long side as int(size * long / short)), then the centre square."""
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def image_pixels(images: list[Image.Image], size: int = 224, mean_: tuple[float, ...] = CLIP_MEAN,
                 std_: tuple[float, ...] = CLIP_STD) -> torch.Tensor:
    """PIL images -> [n, 3, size, size] (resize, centre crop, normalisation; CLIP's mean/std by default)."""
    mean, std = np.asarray(mean_, np.float32), np.asarray(std_, np.float32)
    out = [((np.asarray(_resize_crop(im.convert("RGB"), size), np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
           for im in images]
    return torch.from_numpy(np.stack(out)) if out else torch.zeros(0, 3, size, size)


def thermal_pixels(images: list[Image.Image], size: int = 224) -> torch.Tensor:
    """Thermal images -> [n, 1, size, size] in [0, 1] (grey scale, resize, centre crop; not normalised)."""
    out = [np.asarray(_resize_crop(im.convert("L"), size), np.float32)[None] / 255.0 for im in images]
    return torch.from_numpy(np.stack(out)) if out else torch.zeros(0, 1, size, size)


def depth_pixels(maps: list[Image.Image | np.ndarray], size: int = 224) -> torch.Tensor:
    """Depth (disparity) maps -> [n, 1, size, size] in [0, 1]: 8-bit / 16-bit images are divided by 255 / 65535,
    float arrays taken as they are; resized (bicubic) and centre-cropped like images."""
    out = []
    for m in maps:
        arr = np.asarray(m)
        if arr.ndim == 3:  # an RGB rendering of a depth map: its first channel
            arr = arr[..., 0]
        scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(arr.dtype, 1.0)
        if arr.dtype == np.int32:  # PIL's mode "I" for 16-bit PNGs
            scale = 65535.0
        f = Image.fromarray(arr.astype(np.float32) / np.float32(scale), mode="F")
        out.append(np.asarray(_resize_crop(f, size), np.float32)[None])
    return torch.from_numpy(np.stack(out)) if out else torch.zeros(0, 1, size, size)


def clip_starts(duration: float, clip_s: float, n_clips: int) -> list[Fraction]:
    """Starts (s) of `n_clips` clips of `clip_s` seconds evenly placed: i * max(duration - clip_s, 0) / n_clips
    (pytorchvideo's ConstantClipsPerVideoSampler, which stops early once a start passes the last possible one)."""
    last = Fraction(max(duration - clip_s, 0))
    step = last / n_clips
    starts = []
    for i in range(n_clips):
        starts.append(step * i)
        if step * (i + 1) > last:
            break
    return starts


def _mel_banks(n_mels: int, n_fft: int, sr: int, low: float = 20.0) -> torch.Tensor:
    """Kaldi's triangular filters on the HTK mel scale 1127 ln(1 + f / 700), low..sr/2 -> [n_mels, n_fft/2 + 1]."""
    mel = lambda f: 1127.0 * torch.log1p(torch.as_tensor(f, dtype=torch.float32) / 700.0)  # noqa: E731
    lo, hi = mel(low), mel(sr / 2)
    delta = (hi - lo) / (n_mels + 1)
    b = torch.arange(n_mels, dtype=torch.float32).unsqueeze(1)
    left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
    freqs = mel(sr / n_fft * torch.arange(n_fft // 2, dtype=torch.float32)).unsqueeze(0)
    up, down = (freqs - left) / (centre - left), (right - freqs) / (right - centre)
    return F.pad(torch.clamp(torch.minimum(up, down), min=0.0), (0, 1))  # no weight on the Nyquist bin


def kaldi_fbank(wave: torch.Tensor, n_mels: int = 128, sr: int = SAMPLE_RATE) -> torch.Tensor:
    """Waveform [samples] -> log mel filter-bank energies [frames, n_mels], Kaldi's `compute-fbank-feats` with
    25 ms frames every 10 ms (edges snipped), per-frame DC removal, pre-emphasis 0.97, a symmetric Hann
    window, FFT size rounded to a power of two, power spectrum, log floored at float32 eps."""
    size, shift = sr * 25 // 1000, sr * 10 // 1000
    n_fft = 1 << (size - 1).bit_length()
    if wave.shape[0] < size:
        return wave.new_zeros(0, n_mels)
    frames = wave.unfold(0, size, shift)  # [f, size]
    frames = frames - frames.mean(dim=1, keepdim=True)
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # x[-1] := x[0]
    frames = (frames - 0.97 * prev) * torch.hann_window(size, periodic=False, dtype=frames.dtype)
    power = torch.fft.rfft(F.pad(frames, (0, n_fft - size))).abs().pow(2)  # [f, n_fft/2 + 1]
    energies = power @ _mel_banks(n_mels, n_fft, sr).T
    return energies.clamp(min=torch.finfo(torch.float32).eps).log()


def audio_clips(wave: np.ndarray | torch.Tensor, sr: int = SAMPLE_RATE, clip_s: float = 2.0, n_clips: int = 3,
                n_mels: int = 128, frames: int = 204) -> torch.Tensor:
    """Mono waveform [samples] at `sr` -> normalised log-mel clips [n_clips, 1, n_mels, frames]."""
    w = torch.as_tensor(np.asarray(wave, dtype=np.float32)).flatten().clone()
    out = []
    for start in clip_starts(w.shape[0] / sr, clip_s, n_clips):
        seg = w[int(start * sr): int((start + Fraction(clip_s)) * sr)]
        # in place on the shared waveform, as the reference does: a later overlapping clip sees the shift
        seg -= seg.mean()
        mel = kaldi_fbank(seg, n_mels, sr).T  # [n_mels, f]
        mel = F.pad(mel, (0, frames - mel.shape[1])) if mel.shape[1] < frames else mel[:, :frames]
        out.append(((mel - AUDIO_MEAN) / AUDIO_STD).unsqueeze(0))
    return torch.stack(out)


def load_audio_clips(path: str | Path, source: str = "", record_id: str | None = None, **kw) -> torch.Tensor:
    """An audio file -> [clips, 1, 128, 204]; the first channel, resampled to 16 kHz."""
    import soundfile as sf

    from polyvlm.models.encoders.audio import resample

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's errors for data that is not audio
        raise RecordError(f"audio '{Path(path).name}' does not decode: {e}", source, record_id,
                          code="media_unreadable") from None
    if data.shape[0] == 0:
        raise RecordError(f"audio '{Path(path).name}' is empty", source, record_id, code="media_unreadable")
    return audio_clips(resample(data[:, 0], int(sr)), **kw)


def video_clips(frames_at, n_frames: int, fps: float, size: int = 224, clip_s: float = 2.0, n_clips: int = 5,
                crops: int = 3) -> torch.Tensor:
    """A video -> [n_clips * crops, 3, 2, size, size]: per clip its first and last frame (`frames_at(indices)`
    returns PIL frames), short side scaled to `size` (bilinear), CLIP mean/std, then `crops` square crops."""
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1, 1)
    out = []
    for start in clip_starts(n_frames / fps, clip_s, n_clips):
        first = math.ceil(start * fps)
        last = min(math.ceil((start + Fraction(clip_s)) * fps) - 1, n_frames - 1)
        first = min(first, last)
        imgs = frames_at([first, last])
        clip = torch.from_numpy(np.stack([np.asarray(im.convert("RGB"), np.float32) for im in imgs]))  # [2, H, W, 3]
        clip = clip.permute(3, 0, 1, 2) / 255.0  # [3, 2, H, W]
        h, w = clip.shape[-2:]
        nh, nw = (int(math.floor(h / w * size)), size) if w < h else (size, int(math.floor(w / h * size)))
        clip = F.interpolate(clip, size=(nh, nw), mode="bilinear", align_corners=False)
        clip = (clip - mean) / std
        y, x = math.ceil((nh - size) / 2), math.ceil((nw - size) / 2)
        for i in ([1] if crops == 1 else range(3)):
            if nh > nw:
                yy, xx = (0, y, nh - size)[i], x
            else:
                yy, xx = y, (0, x, nw - size)[i]
            out.append(clip[:, :, yy: yy + size, xx: xx + size])
    return torch.stack(out)


def load_video_clips(path: str | Path, source: str = "", record_id: str | None = None, **kw) -> torch.Tensor:
    """A video file -> [15, 3, 2, 224, 224] (see `video_clips`)."""
    from polyvlm.models.encoders.video import probe_video, read_frames

    n, fps = probe_video(path, source, record_id)
    return video_clips(lambda idx: read_frames(path, idx, source, record_id), n, fps, **kw)


def imu_tensor(arr: np.ndarray, name: str = "imu", channels: int = 6, length: int = 2000, source: str = "",
               record_id: str | None = None) -> torch.Tensor:
    """An IMU trace [6, T] (or [T, 6]) -> [6, length]: cut, or padded with zeros at the end."""
    a = np.asarray(arr)
    if a.ndim != 2 or channels not in a.shape or not np.issubdtype(a.dtype, np.number):
        raise RecordError(f"IMU '{name}' has shape {tuple(a.shape)} ({a.dtype}); expected numbers shaped "
                          f"[{channels}, T] or [T, {channels}] (accelerometer xyz, gyroscope xyz)", source, record_id,
                          code="media_unreadable")
    if a.shape[0] != channels:
        a = a.T
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[:, :length]
    return F.pad(t, (0, length - t.shape[1]))


def load_imu(path: str | Path, source: str = "", record_id: str | None = None, **kw) -> torch.Tensor:
    """A `.npy` (or `.csv`, comma-separated rows) IMU file -> [6, 2000]."""
    p = Path(path)
    try:
        arr = np.loadtxt(p, delimiter=",", ndmin=2) if p.suffix.lower() == ".csv" else np.load(p, allow_pickle=False)
    except Exception as e:  # numpy's errors for a bad header / bad numbers / pickled object arrays
        raise RecordError(f"IMU '{p.name}' does not load: {e}", source, record_id, code="media_unreadable") from None
    return imu_tensor(arr, p.name, source=source, record_id=record_id, **kw)
