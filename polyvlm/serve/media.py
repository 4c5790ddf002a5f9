"""Media from requests: data URIs, allowed URLs and files, decoded to PIL images and 16 kHz mono waveforms under limits."""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image, UnidentifiedImageError

from polyvlm.serve.config import ServeConfig
from polyvlm.serve.errors import APIError

SAMPLE_RATE = 16_000
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,(?P<data>.*)$", re.S)
_WS = re.compile(r"\s+")


def decode_base64(data: str, param: str, what: str = "media") -> bytes:
    """Strict base64 (whitespace allowed, missing padding tolerated); raises APIError `invalid_base64`."""
    if not isinstance(data, str):
        raise APIError(f"{param}: {what} data must be a base64 string, got {type(data).__name__}", param=param,
                       code="invalid_base64")
    if not data.strip():
        raise APIError(f"{param}: empty {what} data", param=param, code="invalid_base64")
    s = _WS.sub("", data)
    s += "=" * (-len(s) % 4)
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(f"{param}: {what} data is not valid base64", param=param, code="invalid_base64") from None
    if not raw:
        raise APIError(f"{param}: empty {what} data", param=param, code="invalid_base64")
    return raw


def parse_data_uri(url: str, param: str) -> tuple[str, bytes]:
    """`data:image/png;base64,....` -> ("image/png", bytes)."""
    m = _DATA_URI.match(url)
    if not m:
        raise APIError(f"{param}: malformed data URI (expected data:<mime>;base64,<data>)", param=param, code="invalid_data_uri")
    if not m.group("b64"):
        raise APIError(f"{param}: data URI must be base64-encoded (';base64,')", param=param, code="invalid_data_uri")
    return (m.group("mime") or "application/octet-stream"), decode_base64(m.group("data"), param)


def _host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (a.lower().lstrip(".") for a in allowed))


def fetch_url(url: str, cfg: ServeConfig, param: str) -> bytes:
    """Bytes behind a media URL: data URIs always; http(s) and file:// only where the config allows."""
    if not isinstance(url, str) or not url:
        raise APIError(f"{param}: missing URL", param=param, code="invalid_url")
    if url.startswith("data:"):
        return parse_data_uri(url, param)[1]
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or ""
        if not cfg.allowed_media_domains or not _host_allowed(host, cfg.allowed_media_domains):
            raise APIError(
                f"{param}: fetching remote media from '{host}' is not allowed; send a data URI, or start the "
                "server with --allowed-media-domains", status=400, param=param, code="media_url_not_allowed")
        return _http_get(url, cfg, param)
    if parsed.scheme == "file":
        if not cfg.allowed_local_media_path:
            raise APIError(f"{param}: file:// URLs are not allowed; send a data URI, or start the server with "
                           "--allowed-local-media-path", param=param, code="media_url_not_allowed")
        return _read_local(unquote(parsed.path), cfg, param)
    raise APIError(f"{param}: unsupported URL scheme '{parsed.scheme}' (use a data URI)", param=param, code="invalid_url")


def _http_get(url: str, cfg: ServeConfig, param: str) -> bytes:
    import httpx

    limit = cfg.max_body_bytes
    try:
        # no redirects: a redirect could lead outside the allowed domains
        with httpx.stream("GET", url, timeout=cfg.fetch_timeout_s, follow_redirects=False) as r:
            if r.status_code != 200:
                raise APIError(f"{param}: fetching {url} returned HTTP {r.status_code}", param=param, code="media_fetch_failed")
            buf = bytearray()
            for chunk in r.iter_bytes():
                buf += chunk
                if len(buf) > limit:
                    raise APIError(f"{param}: {url} is larger than {limit} bytes", status=413, param=param, code="media_too_large")
            return bytes(buf)
    except httpx.HTTPError as e:
        raise APIError(f"{param}: could not fetch {url}: {type(e).__name__}", param=param, code="media_fetch_failed") from None


def _read_local(path: str, cfg: ServeConfig, param: str) -> bytes:
    root = Path(os.path.realpath(cfg.allowed_local_media_path))
    full = Path(os.path.realpath(path))
    if root not in full.parents:
        raise APIError(f"{param}: file '{path}' is outside the allowed local media path", status=403, param=param,
                       code="media_url_not_allowed")
    if not full.is_file():
        raise APIError(f"{param}: file '{path}' not found", param=param, code="media_not_found")
    if full.stat().st_size > cfg.max_body_bytes:
        raise APIError(f"{param}: file '{path}' is larger than {cfg.max_body_bytes} bytes", status=413, param=param,
                       code="media_too_large")
    return full.read_bytes()


def load_image(raw: bytes, cfg: ServeConfig, param: str) -> Image.Image:
    """Decode image bytes to RGB, refusing non-images and pixel counts over `max_image_pixels` before decoding."""
    try:
        im = Image.open(io.BytesIO(raw))  # reads the header only
        w, h = im.size
        if w * h > cfg.max_image_pixels:
            raise APIError(f"{param}: image is {w}x{h} = {w * h} pixels, over the limit of {cfg.max_image_pixels}",
                           param=param, code="image_too_large")
        im.load()
        return im.convert("RGB")
    except APIError:
        raise
    except Image.DecompressionBombError:
        raise APIError(f"{param}: image pixel count is over the decompression-bomb limit", param=param,
                       code="image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise APIError(f"{param}: bytes are not a readable image ({type(e).__name__})", param=param, code="invalid_image") from None


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D float32 waveform (shape `(t,)`) with libswresample via PyAV."""
    if rate == target or wave.size == 0:
        return wave.astype(np.float32, copy=False)
    import av

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave, dtype=np.float32)[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    rs = av.AudioResampler(format="flt", layout="mono", rate=target)
    out = [f.to_ndarray().reshape(-1) for f in [*rs.resample(frame), *rs.resample(None)]]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def load_audio(raw: bytes, cfg: ServeConfig, param: str) -> np.ndarray:
    """Decode WAV/FLAC/OGG/MP3 bytes with soundfile to a mono float32 waveform at 16 kHz, shape `(t,)`."""
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(raw)) as f:
            seconds = f.frames / max(f.samplerate, 1)
            if seconds > cfg.max_audio_seconds:
                raise APIError(f"{param}: audio is {seconds:.1f} s long, over the limit of {cfg.max_audio_seconds:g} s",
                               param=param, code="audio_too_long")
            rate = f.samplerate
            data = f.read(dtype="float32", always_2d=True)  # (t, channels)
    except APIError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise APIError(f"{param}: bytes are not readable audio ({type(e).__name__})", param=param, code="invalid_audio") from None
    if data.shape[0] == 0:
        raise APIError(f"{param}: audio has no samples", param=param, code="invalid_audio")
    return resample(data.mean(axis=1), rate)


def load_video_frames(source: bytes | str | Path, cfg: ServeConfig, param: str) -> list[Image.Image]:
    """Up to `max_video_frames` RGB frames sampled uniformly over a video (bytes or a path), via PyAV."""
    import av

    n = max(1, cfg.max_video_frames)
    try:
        with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
            if not container.streams.video:
                raise APIError(f"{param}: no video stream", param=param, code="invalid_video")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > cfg.max_image_pixels:
                raise APIError(f"{param}: video frames are {w}x{h}, over the pixel limit of {cfg.max_image_pixels}",
                               param=param, code="image_too_large")
            total = stream.frames
            if total > 0:
                wanted = {int(i) for i in np.linspace(0, total - 1, n).round()}
                frames = [f.to_image() for i, f in enumerate(container.decode(stream)) if i in wanted]
            else:  # unknown length: keep a bounded reservoir, then sample from it
                frames = []
                for f in container.decode(stream):
                    frames.append(f.to_image())
                    if len(frames) >= 64 * n:
                        frames = frames[::2]
                idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int) if frames else []
                frames = [frames[i] for i in idx]
    except APIError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise APIError(f"{param}: bytes are not a readable video ({type(e).__name__})", param=param, code="invalid_video") from None
    if not frames:
        raise APIError(f"{param}: video has no frames", param=param, code="invalid_video")
    return [f.convert("RGB") for f in frames]
