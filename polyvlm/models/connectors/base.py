"""The `Connector` base class: what a connector needs (the prompt) and exposes (routing, tokens per input)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class Connector(nn.Module):
    """Encoder features [n, t, d_enc] -> LM embeddings [n, t_out, d_lm]; every registered connector is one.

    Callers read these declarations instead of probing attributes:

    - `needs_prompt`: `forward(x, cls [n, d_enc], prompt [n, k, d_lm], prompt_mask [n, k])` routes with the
      prompt embeddings (Parrot's moe); otherwise `forward(x)` only.
    - `tokens_out`: tokens per input when fixed (PandaGPT's pool1: 1); None: one per encoder feature (t_out = t).
    - `last_routing`: router distributions [n, X] of the last prompt-conditioned call (detached), else None.
    - `project(x)`: the prompt-free mapping [n, t, d_enc] -> [n, t, d_lm] (moe: its MLP projector, used for
      video frames, which are not routed).
    - `set_active(active)`: switch the parts that only train after `align` (moe's mixture); a no-op by default.
    """

    needs_prompt: ClassVar[bool] = False
    tokens_out: ClassVar[int | None] = None
    last_routing: torch.Tensor | None = None

    def __init__(self, d_enc: int, d_lm: int):
        super().__init__()
        self.d_enc, self.d_lm = d_enc, d_lm

    @classmethod
    def from_config(cls, d_enc: int, d_lm: int, cfg: Any) -> Connector:
        """Build with settings from a ModelConfig (a connector with options overrides this)."""
        return cls(d_enc, d_lm)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """[n, t, d_enc] -> [n, t_out, d_lm] without a prompt."""
        return self(x)

    def set_active(self, active: bool) -> None:
        """Stage hook: `align` passes False, later stages True."""

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype
