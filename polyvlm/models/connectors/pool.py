"""PandaGPT / ImageBind-style `pool1` connector: one pooled embedding per input -> one linear layer -> one token."""

from __future__ import annotations

import torch
from torch import nn

from polyvlm.models.connectors import CONNECTORS
from polyvlm.models.connectors.base import Connector


@CONNECTORS.register("pool1")
class Pool1Connector(Connector):
    """features [n, t, d_enc] (or an already pooled [n, d_enc]) -> [n, 1, d_lm]: mean over t, then Linear."""

    tokens_out = 1

    def __init__(self, d_enc: int, d_lm: int):
        super().__init__(d_enc, d_lm)
        self.proj = nn.Linear(d_enc, d_lm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=1) if x.dim() == 3 else x
        return self.proj(pooled).unsqueeze(1)
