"""Parrot's mixture-of-experts connector (`moe`): MLP projector, then a prompt-routed dense mixture of SwiGLU
experts with a residual, and the per-language router statistics it records.

Equations, for one image with projected tokens h [t, d], projected CLS feature c [d] and the static input
embeddings E [k, d] of its sample's non-answer prompt tokens:

    a = softmax(c E^T / sqrt(d))              [k]   parameter-free cross-attention
    s = a E                                   [d]   prompt summary
    w = softmax(W_r s)                        [X]   router, W_r [X, d] without bias (one distribution per image)
    y = sum_x w_x * SwiGLU_x(h) + moe_weight * h    SwiGLU(h) = W_down(silu(W_gate h) * W_up h), no biases
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from polyvlm.models.connectors import CONNECTORS, MLP2xGelu
from polyvlm.models.connectors.base import Connector


class SwiGLUExpert(nn.Module):
    """[..., d] -> [..., d] through d -> intermediate -> d, gated by SiLU, no biases."""

    def __init__(self, d: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, intermediate, bias=False)
        self.up_proj = nn.Linear(d, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def prompt_summary(query: torch.Tensor, prompt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """query [n, d] attends (no parameters) over prompt [n, k, d] where mask [n, k] is True -> [n, d].

    A sample without any prompt token gets a zero summary (uniform router)."""
    scores = torch.einsum("nd,nkd->nk", query, prompt) / math.sqrt(query.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    attn = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return torch.einsum("nk,nkd->nd", attn, prompt)


@CONNECTORS.register("moe")
class MoEConnector(Connector):
    """`forward(x [n, t, d_enc], cls [n, d_enc], prompt [n, k, d_lm], prompt_mask [n, k]) -> [n, t, d_lm]`.

    Without `cls`/`prompt`, or while inactive (stage `align`), it is the plain MLP projector. `active` is a
    buffer, so a checkpoint remembers whether its mixture was trained. `last_routing` [n, X] keeps the router
    distributions of the last call (detached) for statistics.
    """

    needs_prompt = True

    def __init__(self, d_enc: int, d_lm: int, n_experts: int = 6, intermediate: int = 0, moe_weight: float = 0.1):
        super().__init__(d_enc, d_lm)
        if n_experts < 1:
            raise ValueError(f"model.moe_experts must be >= 1, got {n_experts}")
        self.projector = MLP2xGelu(d_enc, d_lm)
        self.router = nn.Linear(d_lm, n_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLUExpert(d_lm, intermediate or d_lm) for _ in range(n_experts))
        self.moe_weight = moe_weight
        self.register_buffer("active", torch.tensor(True))
        self.last_routing: torch.Tensor | None = None

    @classmethod
    def from_config(cls, d_enc: int, d_lm: int, cfg) -> MoEConnector:
        return cls(d_enc, d_lm, cfg.moe_experts, cfg.moe_intermediate, cfg.moe_weight)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """[n, t, d_enc] -> [n, t, d_lm] through the MLP projector only (no routing)."""
        return self.projector(x)

    def set_active(self, active: bool) -> None:
        """Stage `align` bypasses (and freezes) the mixture; `finetune` trains it."""
        self.active.fill_(active)
        self.router.requires_grad_(active)
        self.experts.requires_grad_(active)

    def route(self, query: torch.Tensor, prompt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Projected CLS [n, d], prompt embeddings [n, k, d], mask [n, k] -> router distribution [n, X]."""
        return torch.softmax(self.router(prompt_summary(query, prompt, mask)), dim=-1)

    def forward(self, x: torch.Tensor, cls: torch.Tensor | None = None, prompt: torch.Tensor | None = None,
                prompt_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.projector(x)
        if not bool(self.active) or cls is None or prompt is None:
            self.last_routing = None
            return h
        if prompt_mask is None:
            prompt_mask = torch.ones(prompt.shape[:2], dtype=torch.bool, device=prompt.device)
        w = self.route(self.projector(cls), prompt.to(h.dtype), prompt_mask)  # [n, X]
        mixed = sum(w[:, i, None, None] * expert(h) for i, expert in enumerate(self.experts))
        self.last_routing = w.detach()
        return mixed + self.moe_weight * h
