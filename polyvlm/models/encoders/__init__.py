"""Encoder registry: name -> class building a modality encoder from a ModelConfig."""

from polyvlm.registry import Registry

ENCODERS: Registry = Registry("encoder")

from polyvlm.models.encoders import vision  # noqa: E402,F401  (registers clip_vision_model, siglip_vision_model)
