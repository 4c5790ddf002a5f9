"""Connector registry and the LLaVA connectors: `linear` and `mlp2x_gelu` (encoder width -> LM width)."""

from __future__ import annotations

import torch
from torch import nn

from polyvlm.models.connectors.base import Connector
from polyvlm.registry import Registry

CONNECTORS: Registry[type[Connector]] = Registry("connector")


@CONNECTORS.register("linear")
class LinearConnector(Connector):
    """features [n, t, d_enc] -> embeddings [n, t, d_lm] through one linear layer."""

    def __init__(self, d_enc: int, d_lm: int):
        super().__init__(d_enc, d_lm)
        self.proj = nn.Linear(d_enc, d_lm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


@CONNECTORS.register("mlp2x_gelu")
class MLP2xGelu(Connector):
    """LLaVA-1.5 projector: Linear(d_enc, d_lm) -> GELU -> Linear(d_lm, d_lm). [n, t, d_enc] -> [n, t, d_lm]."""

    def __init__(self, d_enc: int, d_lm: int):
        super().__init__(d_enc, d_lm)
        self.linear_1 = nn.Linear(d_enc, d_lm)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(d_lm, d_lm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


def build_connector(name: str, d_enc: int, d_lm: int, cfg=None) -> Connector:
    """`cfg` (a ModelConfig) feeds connectors with settings (their `from_config`, e.g. moe's experts)."""
    cls = CONNECTORS.get(name)
    return cls(d_enc, d_lm) if cfg is None else cls.from_config(d_enc, d_lm, cfg)


from polyvlm.models.connectors import moe, pool  # noqa: E402,F401  (registers moe, pool1)

__all__ = ["CONNECTORS", "Connector", "LinearConnector", "MLP2xGelu", "build_connector"]
