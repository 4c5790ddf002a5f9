"""Media from requests, decoded by polyvlm.media under the server's limits and allow-lists; refusals become
APIErrors with the same code, status and parameter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polyvlm import media
from polyvlm.media.audio import SAMPLE_RATE, resample
from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError

__all__ = ["SAMPLE_RATE", "decode_base64", "fetch_url", "limits", "load_audio", "load_image", "load_media",
           "load_video_frames", "parse_data_uri", "policy", "resample"]


@contextlib.contextmanager
def _api_errors(param: str) -> Iterator[None]:
    try:
        yield
    except media.MediaError as e:
        raise APIError(f"{e.where or param}: {e.reason}", status=e.status, param=e.where or param, code=e.code) from None


def limits(cfg: ServeConfig) -> media.MediaLimits:
    """The server's decode limits (pixels, audio seconds, frames per video; videos sampled uniformly)."""
    return media.MediaLimits(max_bytes=cfg.max_body_bytes, max_pixels=cfg.max_image_pixels,
                             max_audio_seconds=cfg.max_audio_seconds, video_fps=0.0,
                             max_video_frames=max(1, cfg.max_video_frames))


def policy(cfg: ServeConfig) -> media.SourcePolicy:
    """Where a request's media may come from: data URIs always; allowed domains and the allowed local path."""
    return media.SourcePolicy(allowed_domains=list(cfg.allowed_media_domains or []),
                              allowed_local_path=cfg.allowed_local_media_path, paths=False,
                              max_bytes=cfg.max_body_bytes, timeout_s=cfg.fetch_timeout_s)


def decode_base64(data: str, param: str, what: str = "media") -> bytes:
    """Strict base64 (whitespace allowed, missing padding tolerated); raises APIError `invalid_base64`."""
    with _api_errors(param):
        return media.decode_base64(data, param, what)


def parse_data_uri(url: str, param: str) -> tuple[str, bytes]:
    """`data:image/png;base64,....` -> ("image/png", bytes)."""
    with _api_errors(param):
        return media.parse_data_uri(url, param)


def fetch_url(url: str, cfg: ServeConfig, param: str) -> bytes:
    """Bytes behind a media URL: data URIs always; http(s) and file:// only where the config allows."""
    if not isinstance(url, str) or not url:
        raise APIError(f"{param}: missing URL", param=param, code="invalid_url")
    with _api_errors(param):
        return media.read_bytes(url, policy(cfg), param)


def load_media(modality: str, source: bytes | str | Path, cfg: ServeConfig, param: str) -> Any:
    """Decode one input of any registered modality (bytes, a URL the config allows, or a local Path)."""
    with _api_errors(param):
        raw = source if isinstance(source, bytes) else media.read_source(
            source, policy(cfg) if isinstance(source, str) else media.SourcePolicy(max_bytes=cfg.max_body_bytes), param)
        return media.get_modality(modality).load(raw, limits(cfg), param)


def load_image(raw: bytes, cfg: ServeConfig, param: str) -> Any:
    """Decode image bytes to RGB, refusing non-images and pixel counts over `max_image_pixels` before decoding."""
    return load_media("image", raw, cfg, param)


def load_audio(raw: bytes, cfg: ServeConfig, param: str) -> np.ndarray:
    """Decode WAV/FLAC/OGG/MP3 bytes to a mono float32 waveform at 16 kHz, shape `(t,)`."""
    return load_media("audio", raw, cfg, param)


def load_video_frames(source: bytes | str | Path, cfg: ServeConfig, param: str) -> list[Any]:
    """Up to `max_video_frames` RGB frames sampled uniformly over a video (bytes or a path), by seeking."""
    return load_media("video", Path(source) if isinstance(source, str) else source, cfg, param)
