"""Encoders of the modalities beyond image, audio and video (`model.encoders` in the config): the `ModalityEncoder`
contract, building them with their connectors, and their feature rows for the embedding merge.

A new modality is its module under polyvlm/media (its `Modality` with `to_tensor`) plus its encoder here: a
`ModalityEncoder` subclass registered in `ENCODERS` under a `model_type`, with `modality` set. Its
`tokens_per_input` is the number of placeholder tokens one input takes (the processor's `tokens_per_media`),
unless its connector emits a fixed number itself (`Connector.tokens_out`, e.g. pool1: 1).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from polyvlm.models.connectors import build_connector
from polyvlm.models.encoders import ENCODERS, encoder_type

# the modalities PolyVLM encodes with its own parts (the vision tower, the audio encoder)
BUILT_IN = ("image", "video", "audio")


class ModalityEncoder(nn.Module):
    """`forward(x [n, *input]) -> [n, tokens_per_input, hidden_size]`, where `x` stacks what the modality's
    `to_tensor` made of each input (`encode` stacks; override it for inputs of varying shapes).

    Subclasses set `modality` (a registered polyvlm.media modality), `hidden_size` and `tokens_per_input`, and
    build themselves with `create(path, config)` (`config`: the kwargs of `model.encoders[modality]`).
    """

    modality: ClassVar[str] = ""
    hidden_size: int
    tokens_per_input: int

    @classmethod
    def create(cls, path: str, config: dict[str, Any]) -> ModalityEncoder:
        raise NotImplementedError(f"{cls.__name__} does not say how to build itself (create)")

    def encode(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """n inputs -> features [n, tokens_per_input, hidden_size]."""
        return self(torch.stack(inputs))


def _spec(modality: str, spec: Any) -> tuple[str, str, dict[str, Any]]:
    """`model.encoders[modality]` -> (path, connector name, encoder config kwargs with `model_type`)."""
    from polyvlm.media import get_modality

    where = f"model.encoders.{modality}"
    if modality in BUILT_IN:
        raise ValueError(f"{where}: {modality} has its own encoder settings (model.vision / model.audio)")
    try:
        get_modality(modality)
    except KeyError as e:
        raise ValueError(f"{where}: {e.args[0]}") from None
    if not isinstance(spec, dict) or not spec.get("model_type"):
        raise ValueError(f"{where}: expected a mapping with model_type (a registered {modality} encoder), got {spec!r}")
    rest = dict(spec)
    return str(rest.pop("path", "") or ""), str(rest.pop("connector", "linear")), rest


def configured_modalities(specs: dict[str, Any]) -> list[str]:
    """The modalities `model.encoders` adds, each checked (a registered modality beyond image/audio/video, a
    mapping with `model_type`); raises ValueError naming the config key."""
    for modality, spec in (specs or {}).items():
        _spec(modality, spec)
    return list(specs or {})


def build_modality_encoders(specs: dict[str, Any], d_lm: int, cfg: Any = None) -> tuple[nn.ModuleDict, nn.ModuleDict]:
    """`model.encoders` -> (encoders, connectors), each a ModuleDict by modality; an unknown modality, encoder
    or connector raises naming the config key."""
    encoders, connectors = nn.ModuleDict(), nn.ModuleDict()
    for modality, spec in (specs or {}).items():
        path, connector, config = _spec(modality, spec)
        enc = ENCODERS.get(encoder_type(path, config, modality)).create(path, config)
        if not isinstance(enc, ModalityEncoder):
            raise ValueError(f"model.encoders.{modality}: {type(enc).__name__} is not a ModalityEncoder")
        encoders[modality] = enc
        connectors[modality] = build_connector(connector, enc.hidden_size, d_lm, cfg)
    return encoders, connectors


def tokens_per_input(encoder: ModalityEncoder, connector: nn.Module) -> int:
    """Placeholder tokens one input takes: the connector's fixed count, else the encoder's."""
    return connector.tokens_out or encoder.tokens_per_input


def modality_features(model: Any, modality: str, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per input of `modality` its feature rows [tokens_per_input, d_lm], in placeholder order."""
    if not inputs:
        return []
    enc, conn = model.encoders[modality], model.encoder_connectors[modality]
    frozen = not any(p.requires_grad for p in enc.parameters())
    with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
        feats = enc.encode([x.to(model.device) for x in inputs])  # [n, t, d_enc]
    return list(conn(feats.to(conn.dtype)))  # n x [t_out, d_lm]
