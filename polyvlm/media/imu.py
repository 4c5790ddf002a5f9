"""The IMU modality (ImageBind): a `.npy` array or a CSV of numbers, 6 channels (accelerometer xyz, gyroscope
xyz) by T samples ([6, T] or [T, 6]) -> float32 [6, T]."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from polyvlm.media.base import MediaError, MediaLimits, Modality, register_modality
from polyvlm.media.image import url_part

CHANNELS = 6


def _array(raw: bytes | Path, where: str) -> np.ndarray:
    data = raw if isinstance(raw, bytes) else Path(raw).read_bytes()
    try:
        if data[:6] == b"\x93NUMPY":
            return np.load(io.BytesIO(data), allow_pickle=False)
        return np.loadtxt(io.StringIO(data.decode("utf-8")), delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError, OSError) as e:  # bad header, pickled objects, bad numbers
        raise MediaError(f"not an IMU array (.npy or CSV of numbers): {e}", where, "invalid_imu") from None


def load_imu(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> np.ndarray:
    """Decode and check the shape: 2-D, numbers, one axis of 6 channels -> float32 [6, T]."""
    a = _array(raw, where)
    if a.ndim != 2 or CHANNELS not in a.shape or not np.issubdtype(a.dtype, np.number):
        raise MediaError(f"IMU array has shape {tuple(a.shape)} ({a.dtype}); expected numbers shaped [6, T] or "
                         "[T, 6] (accelerometer xyz, gyroscope xyz)", where, "invalid_imu")
    if a.shape[0] != CHANNELS:
        a = a.T
    if a.shape[1] == 0:
        raise MediaError("IMU array has no samples", where, "media_empty")
    return np.ascontiguousarray(a, dtype=np.float32)


def probe_imu(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> dict:
    return {"samples": int(load_imu(raw, limits, where).shape[1])}


IMU = register_modality(Modality(
    name="imu", placeholder="<imu>", record_key="imu", api_part="input_imu", load=load_imu, probe=probe_imu,
    part_source=url_part("input_imu"), check="load", limits=("max_bytes",),
    help="an IMU trace: .npy or CSV, 6 channels (accelerometer xyz, gyroscope xyz) x T samples",
))
