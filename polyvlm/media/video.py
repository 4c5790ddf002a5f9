"""The video modality: the one video sampler (frames at a target fps, uniformly capped) and a decoder that
seeks to the sampled frames instead of decoding every frame (PyAV). Decoded: a list of RGB PIL frames."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from polyvlm.media.base import MediaError, MediaLimits, Modality, register_modality
from polyvlm.media.image import url_part


def sample_indices(n_frames: int, native_fps: float, fps: float, upbound: int) -> list[int]:
    """Frame indices one every `native_fps / fps` frames (every frame when fps <= 0); more than `upbound`
    (> 0) are resampled uniformly over the whole clip."""
    step = max(native_fps / fps, 1.0) if fps > 0 else 1.0
    idx = [int(round(i * step)) for i in range(int(math.ceil(n_frames / step)))]
    idx = [i for i in idx if i < n_frames] or [0]
    if upbound > 0 and len(idx) > upbound:
        idx = np.linspace(0, n_frames - 1, upbound).round().astype(int).tolist()
    return idx


def _open(raw: bytes | Path, where: str) -> Any:
    import av

    try:
        c = av.open(io.BytesIO(raw) if isinstance(raw, bytes) else str(raw))
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(f"bytes are not a readable video ({type(e).__name__}: {e})", where, "invalid_video") from None
    if not c.streams.video:
        c.close()
        raise MediaError("no video stream", where, "invalid_video")
    return c


def _facts(c: Any, limits: MediaLimits, where: str) -> dict:
    """Frame count, fps and size from the container (packets are counted, not decoded, when it has no count)."""
    s = c.streams.video[0]
    w, h = s.codec_context.width, s.codec_context.height
    if w * h > limits.max_pixels:
        raise MediaError(f"video frames are {w}x{h}, over the pixel limit of {limits.max_pixels}", where, "image_too_large")
    fps = float(s.average_rate or s.guessed_rate or 0) or 25.0
    n = int(s.frames or 0)
    if n <= 0:
        n = sum(1 for p in c.demux(s) if p.size)
        c.seek(0)
    if n <= 0:
        raise MediaError("video has no frames", where, "media_empty")
    return {"frames": n, "fps": fps, "size": (w, h)}


def probe_video(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> dict:
    """{"frames", "fps", "size"} from the container metadata; nothing is decoded."""
    import av

    limits = limits or MediaLimits()
    c = _open(raw, where)
    try:
        return _facts(c, limits, where)
    except av.FFmpegError as e:
        raise MediaError(f"bytes are not a readable video ({type(e).__name__}: {e})", where, "invalid_video") from None
    finally:
        c.close()


def _decode_at(c: Any, indices: list[int], fps: float, stats: dict | None) -> dict[int, Any]:
    """Frames at sorted `indices` -> {index: PIL image}. Seeks to the keyframe before a wanted frame when that
    is expected to cost fewer decoded frames than decoding on (the keyframe spacing is learnt from each seek)."""
    s = c.streams.video[0]
    tb, start = s.time_base, s.start_time or 0
    seekable = tb is not None and fps > 0
    got: dict[int, Any] = {}
    it, pos, gap, decoded, seeks = None, -1, 0, 0, 0
    for t in indices:
        if t in got:
            continue
        if it is None or (seekable and t - pos > gap):
            if seekable and t > 0:
                c.seek(start + int(t / fps / tb), stream=s, backward=True, any_frame=False)
                seeks += 1
            it, pos, landed = c.decode(s), -1, None
        else:
            landed = pos  # decoding on: no new keyframe
        for frame in it:
            decoded += 1
            pos = round(float((frame.pts - start) * tb) * fps) if frame.pts is not None and seekable else pos + 1
            landed = pos if landed is None else landed
            if pos >= t:
                got[t] = frame.to_image()
                break
        else:
            break  # the stream ended (its metadata promised more frames)
        gap = max(gap, t - landed)
    if stats is not None:
        stats.update(decoded=stats.get("decoded", 0) + decoded, seeks=stats.get("seeks", 0) + seeks)
    return got


def read_frames(raw: bytes | Path, indices: list[int], where: str = "", fps: float | None = None,
                stats: dict | None = None) -> list[Any]:
    """RGB frames at `indices` (ascending); frames the stream does not have repeat the last one decoded.
    `stats` (a dict) receives the decoded frame and seek counts."""

    def pick(c: Any) -> tuple[list[int], float]:
        s = c.streams.video[0]
        return indices, fps if fps is not None else float(s.average_rate or s.guessed_rate or 0)

    return _sampled(raw, pick, where, stats)


def load_video(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "", stats: dict | None = None) -> list[Any]:
    """Frames sampled at `limits.video_fps` (0: uniformly), at most `limits.max_video_frames`: a list of RGB
    PIL images. One open of the container: metadata, then the sampled frames by seeking."""
    limits = limits or MediaLimits()

    def pick(c: Any) -> tuple[list[int], float]:
        facts = _facts(c, limits, where)
        return sample_indices(facts["frames"], facts["fps"], limits.video_fps, limits.max_video_frames), facts["fps"]

    return _sampled(raw, pick, where, stats)


def _sampled(raw: bytes | Path, pick: Any, where: str, stats: dict | None) -> list[Any]:
    """Open the container once, let `pick(container) -> (indices, fps)` choose the frames, decode them by
    seeking; a frame the stream lacks repeats the last one decoded. -> RGB PIL images, one per index."""
    import av

    c = _open(raw, where)
    try:
        idx, rate = pick(c)
        got = _decode_at(c, sorted(set(idx)), rate, stats)
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(f"bytes are not a readable video ({type(e).__name__}: {e})", where, "invalid_video") from None
    finally:
        c.close()
    if not got:
        raise MediaError("video has no frames", where, "invalid_video")
    out, last = [], got[min(got)]
    for i in idx:
        last = got.get(i, last)
        out.append(last.convert("RGB"))
    return out


VIDEO = register_modality(Modality(
    name="video", placeholder="<video>", record_key="video", api_part="video_url", load=load_video,
    probe=probe_video, part_source=url_part("video_url"), check="probe",
    limits=("max_bytes", "max_pixels", "video_fps", "max_video_frames"),
    help="a video (MP4, WebM, ...): frames sampled at video_fps, at most max_video_frames",
))
