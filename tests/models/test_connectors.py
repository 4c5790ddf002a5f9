"""The `Connector` base class: every registered connector declares what it needs (the prompt) and exposes
(tokens per input, routing of the last call, a prompt-free projection, the stage hook) without attribute probing."""

from __future__ import annotations

import pytest
import torch

from polyvlm.config import ModelConfig
from polyvlm.models.connectors import CONNECTORS, Connector, build_connector

D_ENC, D_LM = 12, 16


@pytest.mark.parametrize("name", CONNECTORS.names())
def test_every_registered_connector_is_a_connector(name):
    c = build_connector(name, D_ENC, D_LM, ModelConfig(moe_experts=3))
    assert isinstance(c, Connector) and (c.d_enc, c.d_lm) == (D_ENC, D_LM) and c.dtype == torch.float32
    x = torch.randn(2, 5, D_ENC)
    out = c.project(x)  # [n, t_out, d_lm]
    assert out.shape == (2, c.tokens_out or 5, D_LM)
    assert c.last_routing is None


def test_declarations_per_connector():
    needs = {n: CONNECTORS.get(n).needs_prompt for n in CONNECTORS.names()}
    tokens = {n: CONNECTORS.get(n).tokens_out for n in CONNECTORS.names()}
    assert needs == {"linear": False, "mlp2x_gelu": False, "moe": True, "pool1": False}
    assert tokens == {"linear": None, "mlp2x_gelu": None, "moe": None, "pool1": 1}


def test_moe_routes_with_the_prompt_and_exposes_its_routing():
    torch.manual_seed(0)
    c = build_connector("moe", D_ENC, D_LM, ModelConfig(moe_experts=3))
    x, cls = torch.randn(2, 5, D_ENC), torch.randn(2, D_ENC)
    prompt, mask = torch.randn(2, 4, D_LM), torch.ones(2, 4, dtype=torch.bool)
    routed = c(x, cls, prompt, mask)
    assert c.last_routing is not None and c.last_routing.shape == (2, 3)
    torch.testing.assert_close(c.last_routing.sum(-1), torch.ones(2))
    # project(): the MLP projector alone, which is not the routed output
    torch.testing.assert_close(c.project(x), c.projector(x))
    assert not torch.allclose(routed, c.project(x))
    c.set_active(False)  # stage align: the mixture is bypassed and frozen
    torch.testing.assert_close(c(x, cls, prompt, mask), c.project(x))
    assert c.last_routing is None and not any(p.requires_grad for p in c.experts.parameters())


def test_set_active_is_a_no_op_for_plain_connectors():
    c = build_connector("mlp2x_gelu", D_ENC, D_LM)
    before = {k: v.clone() for k, v in c.state_dict().items()}
    c.set_active(False)
    assert all(p.requires_grad for p in c.parameters())
    assert all(torch.equal(before[k], v) for k, v in c.state_dict().items())


def test_pool1_gives_one_token_per_input():
    c = build_connector("pool1", D_ENC, D_LM)
    x = torch.randn(3, 7, D_ENC)
    torch.testing.assert_close(c.project(x), c.proj(x.mean(1)).unsqueeze(1))
