"""The audio modality: WAV/FLAC/OGG/MP3 bytes or a file -> mono float32 waveform `(t,)` at 16 kHz, with the
one resampler of the package (libswresample through PyAV)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from polyvlm.media.base import MediaError, MediaLimits, Modality, register_modality

SAMPLE_RATE = 16_000
AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg")  # what an OpenAI `input_audio` part may declare


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """A 1-D waveform `(t,)` at `rate` Hz -> float32 `(ceil(t * target / rate),)` at `target` Hz.

    libswresample (PyAV) with its filter delay flushed; the length is made exact so the same clip always
    gives the same number of samples.
    """
    if rate == target or wave.size == 0:
        return wave.astype(np.float32, copy=False)
    import av

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave, dtype=np.float32)[None, :], format="flt", layout="mono")
    frame.sample_rate = int(rate)
    rs = av.AudioResampler(format="flt", layout="mono", rate=target)
    out = [f.to_ndarray().reshape(-1) for f in [*rs.resample(frame), *rs.resample(None)]]
    y = np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
    n = math.ceil(wave.size * target / rate)
    return y[:n] if y.size >= n else np.pad(y, (0, n - y.size))


def _sf(raw: bytes | Path):
    import soundfile as sf

    return sf.SoundFile(io.BytesIO(raw) if isinstance(raw, bytes) else str(raw))


def _unreadable(e: Exception, where: str) -> MediaError:
    return MediaError(f"bytes are not readable audio ({type(e).__name__}: {e})", where, "invalid_audio")


def probe_audio(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> dict:
    """{"seconds", "rate", "channels"} from the header; empty clips and clips over the limit are refused."""
    limits = limits or MediaLimits()
    try:
        with _sf(raw) as f:
            frames, rate, channels = f.frames, f.samplerate, f.channels
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError... for non-audio data
        raise _unreadable(e, where) from None
    if frames == 0:
        raise MediaError("audio has no samples", where, "media_empty")
    seconds = frames / max(rate, 1)
    if seconds > limits.max_audio_seconds:
        raise MediaError(f"audio is {seconds:.1f} s long, over the limit of {limits.max_audio_seconds:g} s", where,
                         "audio_too_long")
    return {"seconds": seconds, "rate": rate, "channels": channels}


def load_audio(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> np.ndarray:
    """Decode, mix to mono and resample to 16 kHz: float32 `(t,)`. The length limit is checked first."""
    limits = limits or MediaLimits()
    try:
        with _sf(raw) as f:
            seconds = f.frames / max(f.samplerate, 1)
            if seconds > limits.max_audio_seconds:
                raise MediaError(f"audio is {seconds:.1f} s long, over the limit of {limits.max_audio_seconds:g} s",
                                 where, "audio_too_long")
            rate = f.samplerate
            data = f.read(dtype="float32", always_2d=True)  # (t, channels)
    except MediaError:
        raise
    except Exception as e:
        raise _unreadable(e, where) from None
    if data.shape[0] == 0:
        raise MediaError("audio has no samples", where, "media_empty")
    return resample(data.mean(axis=1), rate)


def input_audio_part(part: dict, where: str) -> bytes:
    """The bytes of an OpenAI `input_audio` part (`{"data": base64, "format": "wav"}`)."""
    from polyvlm.media.source import decode_base64

    audio = part.get("input_audio")
    if not isinstance(audio, dict):
        raise MediaError("input_audio must be an object with 'data' and 'format'", f"{where}.input_audio", "invalid_value")
    fmt = audio.get("format", "wav")
    if not isinstance(fmt, str) or fmt not in AUDIO_FORMATS:
        raise MediaError(f"input_audio.format {fmt!r} is not supported ({', '.join(sorted(AUDIO_FORMATS))})",
                         f"{where}.input_audio.format", "invalid_value")
    return decode_base64(audio.get("data", ""), f"{where}.input_audio.data", "audio")


AUDIO = register_modality(Modality(
    name="audio", placeholder="<audio>", record_key="audio", api_part="input_audio", load=load_audio,
    probe=probe_audio, part_source=input_audio_part, check="probe", limits=("max_bytes", "max_audio_seconds"),
    help="an audio clip (WAV, FLAC, OGG, MP3), mixed to mono at 16 kHz",
))
