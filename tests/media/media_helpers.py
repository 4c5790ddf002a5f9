"""Media bytes for the media tests: PNG, WAV and MP4 files made in memory or on disk."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image


def png_bytes(color: tuple[int, int, int] = (220, 20, 20), size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def data_uri(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


def tone(seconds: float, rate: int, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def wav_bytes(seconds: float = 0.5, rate: int = 8000, channels: int = 1, hz: float = 1000.0) -> bytes:
    wave = tone(seconds, rate, hz)
    buf = io.BytesIO()
    sf.write(buf, np.stack([wave] * channels, 1) if channels > 1 else wave, rate, format="WAV")
    return buf.getvalue()


def write_video(path: Path, n_frames: int = 20, fps: int = 10, size: int = 32, gop: int = 12) -> Path:
    """Frame i is a flat grey of level (4 * i) % 256, so a decoded frame says which one it is; a keyframe every `gop`."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = gop
        for i in range(n_frames):
            arr = np.full((size, size, 3), (4 * i) % 256, dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def level(frame) -> float:
    return float(np.asarray(frame).mean())
