"""The thermal modality (ImageBind / PandaGPT): an infrared image file -> a grey-scale PIL image ("L")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyvlm.media.base import MediaError, MediaLimits, Modality, register_modality
from polyvlm.media.image import load_image, probe_image, url_part


def load_thermal(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> Any:
    """Decode (pixel limit checked from the header first) to a grey-scale PIL image: ImageBind reads a thermal
    frame as one channel (PandaGPT's load_and_transform_thermal_data converts to "L")."""
    try:
        return load_image(raw, limits, where).convert("L")
    except MediaError as e:
        raise MediaError(e.reason.replace("image", "thermal image", 1), e.where, e.code, e.status) from None


THERMAL = register_modality(Modality(
    name="thermal", placeholder="<thermal>", record_key="thermal", api_part="input_thermal", load=load_thermal,
    probe=probe_image, part_source=url_part("input_thermal"), check="load", limits=("max_bytes", "max_pixels"),
    help="a thermal (infrared) image, any format PIL reads, taken as one grey channel",
))
